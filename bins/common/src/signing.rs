//! Reading what signature verification needs from files named on the command line: PEM
//! public keys (`--key FILE`) and signature policy documents (`--signature-policy [NAME=]FILE`).

use std::path::{Path, PathBuf};

use ferry_registry::signature::{PublicKey, SignaturePolicy};

use crate::Failure;

/// Read and parse PEM public keys; an unreadable or unusable file is an error naming it.
pub fn read_keys(paths: &[PathBuf]) -> Result<Vec<PublicKey>, Failure> {
    paths
        .iter()
        .map(|p| {
            let pem = std::fs::read_to_string(p).map_err(|e| {
                Failure::operational(format!("cannot read key {}: {e}", p.display()))
            })?;
            PublicKey::from_pem(&p.display().to_string(), &pem)
                .map_err(|e| Failure::operational(e.to_string()))
        })
        .collect()
}

/// Read a signature policy document and its keys. A policy with keyless identities is refused:
/// keyless verification is not supported yet.
pub fn load_policy(file: &Path) -> Result<Vec<PublicKey>, Failure> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Failure::operational(format!(
            "cannot read signature policy {}: {e}",
            file.display()
        ))
    })?;
    let policy =
        SignaturePolicy::parse(file, &text).map_err(|e| Failure::operational(e.to_string()))?;
    if !policy.keyless.is_empty() || policy.trusted_root.is_some() {
        return Err(Failure::operational(format!(
            "signature policy {}: keyless identities and trusted_root are not supported yet (list keys:)",
            file.display()
        )));
    }
    read_keys(&policy.keys)
}

/// `NAME=FILE` of `--signature-policy`: the name and the policy's keys.
pub fn named_policy(arg: &str) -> Result<(String, Vec<PublicKey>), Failure> {
    let Some((name, file)) = arg
        .split_once('=')
        .filter(|(n, f)| !n.is_empty() && !f.is_empty())
    else {
        return Err(Failure::usage(format!(
            "--signature-policy {arg:?}: expected NAME=FILE"
        )));
    };
    Ok((name.to_string(), load_policy(Path::new(file))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_policy_needs_both_parts_and_keyless_is_refused_naming_the_file() {
        assert_eq!(
            named_policy("=x").unwrap_err().code,
            ferry_core::exit::USAGE
        );
        assert_eq!(named_policy("x").unwrap_err().code, ferry_core::exit::USAGE);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.yaml");
        std::fs::write(&f, "keyless:\n  - issuer: https://i\n    subject: s\n").unwrap();
        let e = named_policy(&format!("prod={}", f.display())).unwrap_err();
        assert!(
            e.message.contains("p.yaml") && e.message.contains("not supported yet"),
            "{}",
            e.message
        );
        std::fs::write(&f, "keys: [missing.pub]\n").unwrap();
        let e = named_policy(&format!("prod={}", f.display())).unwrap_err();
        assert!(e.message.contains("missing.pub"), "{}", e.message);
    }
}
