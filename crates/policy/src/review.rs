//! Updates people review: a pull request (GitHub) or merge request (GitLab) per workload, or
//! per Argo CD Application, from a branch named by a template (`--git-pull-request-branch`,
//! default `ferry/{namespace}-{name}`). Which forge, and the branch, are part of the route the
//! policy decides; the shell pushes the branch and talks to the forge's API.

use std::fmt;

/// The forge whose API opens the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Forge {
    /// GitHub (pull requests; also GitHub Enterprise through `--git-api-url`).
    GitHub,
    /// GitLab (merge requests; also self-hosted through `--git-api-url`).
    GitLab,
}

impl Forge {
    /// `github` or `gitlab`.
    pub fn as_str(self) -> &'static str {
        match self {
            Forge::GitHub => "github",
            Forge::GitLab => "gitlab",
        }
    }

    /// `github` / `gitlab` (trimmed, case-insensitive); `None` for anything else.
    pub fn parse(value: &str) -> Option<Forge> {
        match value.trim().to_ascii_lowercase().as_str() {
            "github" => Some(Forge::GitHub),
            "gitlab" => Some(Forge::GitLab),
            _ => None,
        }
    }
}

impl fmt::Display for Forge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `ferry.dev/git-pull-request` as written on a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullRequestMode {
    /// Open requests on this forge (wins over the flag).
    On(Forge),
    /// Never open a request for this workload, whatever the flag says.
    Off,
}

/// `ferry.dev/git-pull-request` is not `github`, `gitlab` or `off`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPullRequest {
    /// The value as written.
    pub value: String,
}

impl fmt::Display for BadPullRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {:?}: expected github, gitlab or off",
            crate::GIT_PULL_REQUEST,
            self.value
        )
    }
}

/// Parse `ferry.dev/git-pull-request` (absent: `None`, the flag decides).
pub fn parse_mode(value: Option<&str>) -> Result<Option<PullRequestMode>, BadPullRequest> {
    let Some(v) = value.map(str::trim) else {
        return Ok(None);
    };
    if v.eq_ignore_ascii_case("off") {
        return Ok(Some(PullRequestMode::Off));
    }
    Forge::parse(v)
        .map(|f| Some(PullRequestMode::On(f)))
        .ok_or_else(|| BadPullRequest {
            value: v.to_string(),
        })
}

/// One piece of a [`BranchTemplate`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Namespace,
    Name,
    Application,
}

/// A branch name template: text with `{namespace}`, `{name}` and `{application}` (the Argo CD
/// Application: one request per Application instead of per workload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchTemplate {
    source: String,
    pieces: Vec<Piece>,
}

/// The default `--git-pull-request-branch`.
pub const DEFAULT_BRANCH_TEMPLATE: &str = "ferry/{namespace}-{name}";

/// Why a branch template cannot be used, or cannot be rendered for a workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadBranch {
    /// The template does not parse.
    Template {
        /// The template as given.
        template: String,
        /// What is wrong.
        problem: TemplateProblem,
    },
    /// `{application}` for a workload no Argo CD Application manages.
    NoApplication {
        /// The template as given.
        template: String,
    },
    /// The rendered name is not a valid git branch name.
    Invalid {
        /// The template as given.
        template: String,
        /// What it rendered to.
        branch: String,
    },
}

impl std::fmt::Display for BadBranch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadBranch::Template { template, problem } => {
                write!(f, "branch template {template:?}: {problem}")
            }
            BadBranch::NoApplication { template } => write!(
                f,
                "branch template {template:?} names {{application}}, and no Argo CD Application manages this workload"
            ),
            BadBranch::Invalid { template, branch } => write!(
                f,
                "branch template {template:?} gives {branch:?}, not a valid git branch name"
            ),
        }
    }
}

/// Why a branch template does not parse ([`BadBranch::Template`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateProblem {
    /// A `}` without its `{`.
    UnopenedBrace,
    /// A `{` without its `}`.
    UnclosedBrace,
    /// A placeholder other than `{namespace}`, `{name}` or `{application}`.
    UnknownPlaceholder {
        /// The name between the braces.
        name: String,
    },
    /// The template is empty.
    Empty,
}

impl std::fmt::Display for TemplateProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateProblem::UnopenedBrace => f.write_str("a '}' without its '{'"),
            TemplateProblem::UnclosedBrace => f.write_str("a '{' without its '}'"),
            TemplateProblem::UnknownPlaceholder { name } => write!(
                f,
                "unknown placeholder {{{name}}}: use {{namespace}}, {{name}} or {{application}}"
            ),
            TemplateProblem::Empty => f.write_str("empty"),
        }
    }
}

impl BranchTemplate {
    /// Parse a template; `{` and `}` only around a known placeholder.
    pub fn parse(template: &str) -> Result<Self, BadBranch> {
        let bad = |problem| BadBranch::Template {
            template: template.to_string(),
            problem,
        };
        let mut pieces = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err(bad(TemplateProblem::UnopenedBrace));
            }
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| bad(TemplateProblem::UnclosedBrace))?;
            pieces.push(match &after[..close] {
                "namespace" => Piece::Namespace,
                "name" => Piece::Name,
                "application" => Piece::Application,
                other => {
                    return Err(bad(TemplateProblem::UnknownPlaceholder {
                        name: other.to_string(),
                    }));
                }
            });
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        if pieces.is_empty() {
            return Err(bad(TemplateProblem::Empty));
        }
        Ok(BranchTemplate {
            source: template.to_string(),
            pieces,
        })
    }

    /// The template as given.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether it groups by Argo CD Application.
    pub fn per_application(&self) -> bool {
        self.pieces.contains(&Piece::Application)
    }

    /// The branch for a workload; checked against git's branch name rules.
    pub fn render(
        &self,
        namespace: &str,
        name: &str,
        application: Option<&str>,
    ) -> Result<String, BadBranch> {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Namespace => out.push_str(namespace),
                Piece::Name => out.push_str(name),
                Piece::Application => {
                    out.push_str(application.ok_or_else(|| BadBranch::NoApplication {
                        template: self.source.clone(),
                    })?)
                }
            }
        }
        if !valid_branch(&out) {
            return Err(BadBranch::Invalid {
                template: self.source.clone(),
                branch: out,
            });
        }
        Ok(out)
    }
}

impl Default for BranchTemplate {
    fn default() -> Self {
        BranchTemplate {
            source: DEFAULT_BRANCH_TEMPLATE.to_string(),
            pieces: vec![
                Piece::Text("ferry/".into()),
                Piece::Namespace,
                Piece::Text("-".into()),
                Piece::Name,
            ],
        }
    }
}

/// git's `check-ref-format` rules for a branch name.
pub fn valid_branch(b: &str) -> bool {
    !b.is_empty()
        && !b.starts_with(['-', '/', '.'])
        && !b.ends_with(['/', '.'])
        && !b.ends_with(".lock")
        && !b.contains("..")
        && !b.contains("//")
        && !b.contains("@{")
        && b != "@"
        && !b
            .split('/')
            .any(|c| c.starts_with('.') || c.ends_with(".lock"))
        && !b
            .chars()
            .any(|c| c.is_ascii_control() || " ~^:?*[\\\x7f".contains(c))
}

/// What a decision saw that a reviewer wants to know (carried to the request's body).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    /// The new image's platforms, when they were inspected.
    pub platforms: Option<Vec<ferry_core::Platform>>,
    /// How long the new digest had soaked when it passed `ferry.dev/min-age` (seconds).
    pub soaked: Option<u64>,
    /// The `promote-from` beta workload's state, when set.
    pub beta: Option<String>,
    /// `ferry.dev/source-repo`, for the commit list of a request.
    pub source_repo: Option<String>,
    /// The signature policy whose keys verified the new digest, when one applies.
    pub signed_by: Option<String>,
}

/// The pull-request settings of a pass (`--git-pull-request`, `--git-pull-request-branch`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequests {
    /// The forge, when the flag turns requests on for every git update (`None`: only workloads
    /// that ask with `ferry.dev/git-pull-request`).
    pub forge: Option<Forge>,
    /// The branch template.
    pub branch: BranchTemplate,
}

impl PullRequests {
    /// The forge for a workload whose annotation says `mode`.
    pub fn forge_for(flag: Option<&PullRequests>, mode: Option<PullRequestMode>) -> Option<Forge> {
        match mode {
            Some(PullRequestMode::Off) => None,
            Some(PullRequestMode::On(f)) => Some(f),
            None => flag.and_then(|p| p.forge),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn templates_render_and_name_what_is_wrong() {
        let t = BranchTemplate::parse(DEFAULT_BRANCH_TEMPLATE).unwrap();
        assert_eq!(t, BranchTemplate::default());
        assert_eq!(t.render("shop", "web", None).unwrap(), "ferry/shop-web");
        let a = BranchTemplate::parse("deploy/{application}").unwrap();
        assert!(a.per_application());
        assert_eq!(
            a.render("shop", "web", Some("shop-prod")).unwrap(),
            "deploy/shop-prod"
        );
        assert_eq!(
            a.render("shop", "web", None).unwrap_err().to_string(),
            "branch template \"deploy/{application}\" names {application}, and no Argo CD Application manages this workload"
        );
        let e = BranchTemplate::parse("ferry/{tag}").unwrap_err();
        assert!(e.to_string().contains("unknown placeholder {tag}"), "{e}");
        assert!(BranchTemplate::parse("ferry/{name").is_err());
        assert!(BranchTemplate::parse("ferry/name}").is_err());
        assert!(BranchTemplate::parse("").is_err());
        let bad = BranchTemplate::parse("ferry..{name}").unwrap();
        assert!(matches!(
            bad.render("a", "b", None),
            Err(BadBranch::Invalid { .. })
        ));
    }

    #[test]
    fn modes_parse() {
        assert_eq!(parse_mode(None), Ok(None));
        assert_eq!(
            parse_mode(Some("GitHub")),
            Ok(Some(PullRequestMode::On(Forge::GitHub)))
        );
        assert_eq!(parse_mode(Some("off")), Ok(Some(PullRequestMode::Off)));
        assert_eq!(
            parse_mode(Some("bitbucket")).unwrap_err().to_string(),
            "ferry.dev/git-pull-request: \"bitbucket\": expected github, gitlab or off"
        );
    }

    proptest! {
        #[test]
        fn template_parser_never_panics(s in "\\PC{0,40}") {
            let _ = BranchTemplate::parse(&s).map(|t| t.render("ns", "web", Some("app")));
        }

        #[test]
        fn the_default_template_gives_valid_branches_for_kubernetes_names(
            ns in "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?",
            name in "[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?",
        ) {
            let b = BranchTemplate::default().render(&ns, &name, None);
            // A name with ".." is legal in Kubernetes but not in git: then a clear error.
            prop_assert_eq!(b.is_ok(), !format!("{ns}-{name}").contains(".."));
        }

        #[test]
        fn rendered_branches_are_always_valid(s in "[a-z{}/._-]{1,20}") {
            if let Ok(Ok(b)) = BranchTemplate::parse(&s).map(|t| t.render("ns", "web", Some("app"))) {
                prop_assert!(valid_branch(&b), "{}", b);
            }
        }
    }
}
