//! Reading what signature verification needs from files named on the command line: PEM
//! public keys (`--key FILE`) and signature policy documents (`--signature-policy [NAME=]FILE`).

use std::path::{Path, PathBuf};

use ferry_registry::signature::{Identity, Keyless, PublicKey, Trust};

use crate::Failure;

fn operational(e: ferry_registry::Error) -> Failure {
    Failure::operational(e.to_string())
}

/// Read and parse PEM public keys; an unreadable or unusable file is an error naming it.
pub fn read_keys(paths: &[PathBuf]) -> Result<Vec<PublicKey>, Failure> {
    paths
        .iter()
        .map(|p| PublicKey::read(p).map_err(operational))
        .collect()
}

/// Keyless checking for `identities` under the trusted root in `file`, or, without one, the
/// Sigstore public-good root embedded in ferry (sigstore-verify's copy; never fetched).
pub fn keyless(file: Option<&Path>, identities: Vec<Identity>) -> Result<Keyless, Failure> {
    Keyless::from_root_file(file, identities).map_err(operational)
}

/// Read a signature policy document: its keys, and its keyless identities under its trusted
/// root (the embedded public-good root when it names none).
pub fn load_policy(file: &Path) -> Result<Trust, Failure> {
    Trust::from_policy_file(file).map_err(operational)
}

/// `NAME=FILE` of `--signature-policy`: the name and what the policy trusts.
pub fn named_policy(arg: &str) -> Result<(String, Trust), Failure> {
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
    use ferry_registry::signature::RootSource;

    #[test]
    fn a_named_policy_needs_both_parts_and_a_bad_trusted_root_or_key_names_its_file() {
        assert_eq!(
            named_policy("=x").unwrap_err().code,
            ferry_core::exit::USAGE
        );
        assert_eq!(named_policy("x").unwrap_err().code, ferry_core::exit::USAGE);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.yaml");
        std::fs::write(&f, "keyless:\n  - issuer: https://i\n    subject: s\n").unwrap();
        let (_, trust) = named_policy(&format!("prod={}", f.display())).unwrap();
        assert_eq!(
            trust.keyless.unwrap().source(),
            &RootSource::Embedded,
            "no trusted_root: the embedded public-good root"
        );
        std::fs::write(dir.path().join("tr.json"), "{}").unwrap();
        std::fs::write(
            &f,
            "keyless: [{issuer: i, subject: s}]\ntrusted_root: tr.json\n",
        )
        .unwrap();
        let e = named_policy(&format!("prod={}", f.display())).unwrap_err();
        assert!(e.message.contains("tr.json"), "{}", e.message);
        std::fs::write(&f, "keys: [missing.pub]\n").unwrap();
        let e = named_policy(&format!("prod={}", f.display())).unwrap_err();
        assert!(e.message.contains("missing.pub"), "{}", e.message);
    }
}
