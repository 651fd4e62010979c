//! Manual approvals, the Kubernetes way: a pure decision from a workload's annotations.
//!
//! * `ferry.dev/approve: manual` on a workload holds every update of it.
//! * `ferry.dev/approved: <digest>` releases the update whose target is exactly that digest;
//!   any other target stays held. Who may set it is decided by RBAC (`patch` on the workload).
//!
//! A held update is a skip whose reason tells the operator the command to run:
//! `awaiting approval: kubectl annotate <kind>/<name> -n <ns> ferry.dev/approved=<digest>`
//! (the kind lowercase, as kubectl accepts it). When an older approval is present the command
//! ends in ` --overwrite`, without which kubectl refuses to change an existing annotation.
//!
//! ```
//! use std::collections::BTreeMap;
//! use ferry_core::Digest;
//! use ferry_policy::approval::{approval, Approval};
//! let target = Digest::sha256_of(b"v2");
//! let mut annotations = BTreeMap::from([("ferry.dev/approve".to_string(), "manual".to_string())]);
//! let held = approval(&annotations, "Deployment", "shop", "web", &target).unwrap();
//! assert!(matches!(held, Approval::Awaiting { .. }));
//! annotations.insert("ferry.dev/approved".into(), target.to_string());
//! assert_eq!(approval(&annotations, "Deployment", "shop", "web", &target).unwrap(), Approval::Approved);
//! ```

use std::collections::BTreeMap;

use ferry_core::Digest;

use crate::{Error, Result};

/// The annotation that asks for manual approval (value `manual`).
pub const APPROVE_ANNOTATION: &str = crate::keys::APPROVE;
/// The annotation that approves one target digest.
pub const APPROVED_ANNOTATION: &str = crate::keys::APPROVED;

/// Whether an update to a target digest may go ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// The workload does not ask for approval.
    NotRequired,
    /// `ferry.dev/approved` names the target digest.
    Approved,
    /// Held until someone approves with `command`.
    Awaiting {
        /// The `kubectl annotate` that approves it.
        command: ApproveCommand,
    },
}

/// The `kubectl annotate` that approves an update ([`Approval::Awaiting`]); reads
/// `awaiting approval: kubectl annotate <kind>/<name> -n <namespace> ferry.dev/approved=<digest>`
/// (with `--overwrite` when an older approval is there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApproveCommand {
    /// Workload kind (`Deployment`).
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Workload name.
    pub name: String,
    /// The digest to approve.
    pub target: Digest,
    /// Whether an approval of another digest is there (`--overwrite`).
    pub overwrite: bool,
}

impl std::fmt::Display for ApproveCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "awaiting approval: kubectl annotate {}/{} -n {} {APPROVED_ANNOTATION}={}",
            self.kind.to_ascii_lowercase(),
            self.name,
            self.namespace,
            self.target
        )?;
        if self.overwrite {
            f.write_str(" --overwrite")?;
        }
        Ok(())
    }
}

impl Approval {
    /// Whether the update may be applied now.
    pub fn allows_update(&self) -> bool {
        !matches!(self, Approval::Awaiting { .. })
    }
}

/// Decide from `annotations` whether the update of workload `kind`/`name` in `namespace` to
/// `target` is held.
///
/// An unknown `ferry.dev/approve` value is an error naming it (so a typo never silently turns
/// approvals off); the caller records it on the workload and does not update it.
pub fn approval(
    annotations: &BTreeMap<String, String>,
    kind: &str,
    namespace: &str,
    name: &str,
    target: &Digest,
) -> Result<Approval> {
    let Some(mode) = annotations.get(APPROVE_ANNOTATION) else {
        return Ok(Approval::NotRequired);
    };
    if !mode.trim().eq_ignore_ascii_case("manual") {
        return Err(Error::Annotation {
            namespace: namespace.to_string(),
            kind: kind.to_string(),
            name: name.to_string(),
            annotation: APPROVE_ANNOTATION.to_string(),
            problem: crate::AnnotationProblem::NotAMode {
                value: mode.to_string(),
            },
        });
    }
    let approved = annotations.get(APPROVED_ANNOTATION).map(|v| v.trim());
    if approved == Some(target.to_string().as_str()) {
        return Ok(Approval::Approved);
    }
    Ok(Approval::Awaiting {
        command: ApproveCommand {
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            target: target.clone(),
            overwrite: approved.is_some(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn target() -> Digest {
        Digest::sha256_of(b"release 2")
    }

    #[test]
    fn without_the_annotation_nothing_is_held() {
        let a = annotations(&[("ferry.dev/policy", "digest")]);
        let got = approval(&a, "Deployment", "shop", "web", &target()).unwrap();
        assert_eq!(got, Approval::NotRequired);
        assert!(got.allows_update());
    }

    #[test]
    fn manual_holds_with_the_exact_command() {
        let a = annotations(&[("ferry.dev/approve", "manual")]);
        let got = approval(&a, "StatefulSet", "data", "db", &target()).unwrap();
        let expected = format!(
            "awaiting approval: kubectl annotate statefulset/db -n data ferry.dev/approved={}",
            target()
        );
        let Approval::Awaiting { command } = &got else {
            panic!("held: {got:?}");
        };
        assert_eq!(command.to_string(), expected);
        assert!(!got.allows_update());
    }

    #[test]
    fn approving_the_target_releases_it_and_only_it() {
        let t = target();
        let a = annotations(&[
            ("ferry.dev/approve", "manual"),
            ("ferry.dev/approved", &format!(" {t}\n")),
        ]);
        assert_eq!(
            approval(&a, "Deployment", "shop", "web", &t).unwrap(),
            Approval::Approved
        );
        // A newer target needs a new approval; the command then overwrites the old one.
        let newer = Digest::sha256_of(b"release 3");
        let got = approval(&a, "Deployment", "shop", "web", &newer).unwrap();
        let Approval::Awaiting { command } = got else {
            panic!("held: {got:?}");
        };
        assert_eq!(
            command.to_string(),
            format!(
                "awaiting approval: kubectl annotate deployment/web -n shop ferry.dev/approved={newer} --overwrite"
            )
        );
    }

    #[test]
    fn an_unknown_mode_is_an_error_naming_it() {
        let a = annotations(&[("ferry.dev/approve", "manaul")]);
        let err = approval(&a, "DaemonSet", "ops", "agent", &target())
            .unwrap_err()
            .to_string();
        assert!(err.contains("ops/DaemonSet/agent"), "{err}");
        assert!(err.contains("ferry.dev/approve"), "{err}");
        assert!(err.contains("\"manaul\""), "{err}");
        let a = annotations(&[("ferry.dev/approve", " Manual ")]);
        assert!(approval(&a, "DaemonSet", "ops", "agent", &target()).is_ok());
    }

    proptest! {
        #[test]
        fn only_the_exact_target_digest_approves(other in "[0-9a-f]{64}", approved_target in any::<bool>()) {
            let t = target();
            let value = if approved_target { t.to_string() } else { format!("sha256:{other}") };
            let a = annotations(&[("ferry.dev/approve", "manual"), ("ferry.dev/approved", &value)]);
            let got = approval(&a, "Deployment", "ns", "w", &t).unwrap();
            prop_assert_eq!(got.allows_update(), value == t.to_string());
        }

        #[test]
        fn the_reason_names_kind_lowercase_and_the_target(kind in "[A-Z][a-zA-Z]{2,12}", name in "[a-z][a-z0-9-]{0,20}") {
            let a = annotations(&[("ferry.dev/approve", "manual")]);
            let Approval::Awaiting { command } = approval(&a, &kind, "ns", &name, &target()).unwrap() else {
                panic!("held");
            };
            let reason = command.to_string();
            let expected = format!("{}/{name} -n ns", kind.to_lowercase());
            prop_assert!(reason.contains(&expected));
            prop_assert!(reason.ends_with(&target().to_string()));
        }
    }
}
