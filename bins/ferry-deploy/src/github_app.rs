//! The GitHub App flags (`--github-app-id`, `--github-app-key-file`,
//! `--github-app-installation-id`) turned into settings: the key file is read here.

use ferry_cli::Failure;

use crate::Global;

/// The https token: `--git-token-file` (else `$FERRY_GIT_TOKEN`), or a GitHub App's settings.
pub(crate) fn credentials(
    g: &Global,
    api_url: Option<url::Url>,
) -> Result<
    (
        Option<String>,
        Option<ferry_deploy::forge::GitHubAppSettings>,
    ),
    Failure,
> {
    let github_app = settings(g, api_url)?;
    let token = match (&g.git_token_file, &github_app) {
        (Some(f), _) => Some(
            std::fs::read_to_string(f)
                .map_err(|e| Failure::usage(format!("--git-token-file {}: {e}", f.display())))?,
        ),
        (None, Some(_)) => None,
        (None, None) => std::env::var("FERRY_GIT_TOKEN").ok(),
    };
    // An empty token file means no token (deploy/components/git-write-back always passes one).
    if github_app.is_some() && token.as_deref().is_some_and(|t| !t.trim().is_empty()) {
        return Err(Failure::usage(
            "--git-token-file and --github-app-id are two ways to the same token: give one \
             (or leave the token file empty)",
        ));
    }
    Ok((token, github_app))
}

/// The GitHub App flags: both of id and key file or neither.
pub(crate) fn settings(
    g: &Global,
    api_url: Option<url::Url>,
) -> Result<Option<ferry_deploy::forge::GitHubAppSettings>, Failure> {
    let (app_id, key_file) = match (g.github_app_id, &g.github_app_key_file) {
        (None, None) if g.github_app_installation_id.is_some() => {
            return Err(Failure::usage(
                "--github-app-installation-id needs --github-app-id and --github-app-key-file",
            ));
        }
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(Failure::usage(
                "--github-app-id needs --github-app-key-file",
            ));
        }
        (None, Some(_)) => {
            return Err(Failure::usage(
                "--github-app-key-file needs --github-app-id",
            ));
        }
        (Some(id), Some(f)) => (id, f),
    };
    let key_pem = std::fs::read_to_string(key_file).map_err(|e| {
        Failure::usage(format!("--github-app-key-file {}: {e}", key_file.display()))
    })?;
    let api_url = match api_url {
        Some(u) => u,
        None => url::Url::parse(ferry_deploy::forge::github::DEFAULT_API)
            .map_err(|e| Failure::usage(e.to_string()))?,
    };
    Ok(Some(ferry_deploy::forge::GitHubAppSettings {
        app_id,
        key_pem,
        installation: g.github_app_installation_id,
        api_url,
        timeout: std::time::Duration::from_secs(30),
        refresh_before: std::time::Duration::from_secs(300),
    }))
}
