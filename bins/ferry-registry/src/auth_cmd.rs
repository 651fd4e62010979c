//! `ferry-registry auth REF`: which credential the registry of REF gets, from where, whether the
//! registry accepts it and when it expires. Never prints a secret.

use std::time::SystemTime;

use ferry_cli::{Failure, RegistryArgs};
use ferry_core::exit;
use ferry_registry::{AuthCheck, AuthKind};
use serde_json::json;

use crate::output::Output;

/// Exit 0 accepted (or anonymous allowed), 1 refused, 3 on other errors.
pub async fn cmd_auth(
    reg: &RegistryArgs,
    reference: &str,
    out: &mut Output,
) -> Result<u8, Failure> {
    let r = crate::parse_ref(reference)?;
    let check = reg.client(None)?.check_auth(&r).await?;
    render(&check, out);
    Ok(if check.accepted {
        exit::SUCCESS
    } else {
        exit::NEGATIVE
    })
}

fn time(t: Option<SystemTime>) -> Option<String> {
    t.map(|t| humantime::format_rfc3339_seconds(t).to_string())
}

fn scheme_name(k: AuthKind) -> &'static str {
    match k {
        AuthKind::Anonymous => "anonymous access allowed",
        AuthKind::Basic => "basic authentication",
        AuthKind::Bearer => "bearer token",
        AuthKind::Unknown => "scheme not learned",
    }
}

fn render(c: &AuthCheck, out: &mut Output) {
    out.text_line(&format!(
        "registry:   {} (repository {})",
        c.registry, c.repository
    ));
    let credential = match &c.source {
        Some(s) => s.to_string(),
        None if c.searched.is_empty() => "anonymous (none configured)".to_string(),
        None => format!("anonymous (none found in {})", c.searched.join("; ")),
    };
    out.text_line(&format!("credential: {credential}"));
    match &c.refusal {
        None => out.text_line(&format!("accepted:   yes ({})", scheme_name(c.scheme))),
        Some(r) => out.text_line(&format!("accepted:   no: {r}")),
    }
    if let Some(t) = time(c.token_expires_at) {
        out.text_line(&format!("token:      obtained, expires {t}"));
    }
    out.text_line(&format!(
        "expires:    {}",
        time(c.credential_expires_at).unwrap_or_else(|| "not known to ferry".into())
    ));
    out.github("accepted", if c.accepted { "true" } else { "false" });
    out.set_json(json!({
        "registry": c.registry,
        "repository": c.repository,
        "anonymous": c.source.is_none(),
        "source": c.source,
        "searched": c.searched,
        "accepted": c.accepted,
        "scheme": c.scheme,
        "token_obtained": c.token_expires_at.is_some(),
        "token_expires_at": time(c.token_expires_at),
        "credential_expires_at": time(c.credential_expires_at),
        "refusal": c.refusal,
    }));
}
