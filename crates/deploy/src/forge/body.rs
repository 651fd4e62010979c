//! A request's title and body: the evidence a reviewer needs, and the hidden block by which
//! ferry recognises its own requests.

use std::fmt::Write as _;

use ferry_core::duration::human;
use ferry_core::{Reference, Shared};
use ferry_registry::revision::REVISION_KEY;

/// The signature verdict for the new image, when a signature policy applies (`ferry.dev/signed-by`,
/// `--require-signed-by`); ferry never writes one it did not check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureVerdict {
    /// Verified, and under what (the signature policy). A failed verification never reaches a
    /// request: the signature gate skips the update.
    Verified(String),
}

/// What ferry knows about one change it proposes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// `namespace/Kind/name`.
    pub workload: String,
    /// Container.
    pub container: String,
    /// The image as written now.
    pub old_image: String,
    /// The digest it runs now, when known.
    pub old_digest: Option<String>,
    /// The new image (`repository:tag@digest`).
    pub new_image: String,
    /// The new digest.
    pub new_digest: String,
    /// The new image's platforms, when inspected.
    pub platforms: Option<Vec<String>>,
    /// How long the new digest has soaked (seconds), when a soak gate applies.
    pub soak_age: Option<u64>,
    /// The `promote-from` beta workload and its health, when set.
    pub beta: Option<String>,
    /// The signature verdict, when verification is configured.
    pub signature: Option<SignatureVerdict>,
    /// Why ferry moves (the plan's reason).
    pub reason: String,
    /// The source commits the update brings, when `ferry.dev/source-repo` is set.
    pub commits: Option<Commits>,
}

/// The commits between the running and the new image's source revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commits {
    /// Listed: newest first, at most the cap, and how many more.
    Listed {
        /// The source repository.
        repo: String,
        /// Running image's revision.
        from: String,
        /// New image's revision.
        to: String,
        /// Short id and title of each.
        lines: Vec<crate::gitops::CommitLine>,
        /// Commits left out by the cap.
        more: usize,
    },
    /// They could not be listed, and why (no revision recorded, repository unreadable…).
    Unavailable(Unlisted),
}

/// Why the commits between two images cannot be listed ([`Commits::Unavailable`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unlisted {
    /// The running digest is not known.
    UnknownDigest,
    /// The image as written does not parse.
    BadImage(ferry_core::Error),
    /// The image records no source revision.
    NotRecorded(Reference),
    /// The registry failed reading the image's revision.
    Registry(Reference, Shared<ferry_registry::Error>),
    /// The source repository could not be read.
    Git(Shared<crate::Error>),
}

impl std::fmt::Display for Unlisted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unlisted::UnknownDigest => f.write_str("the running digest is not known"),
            Unlisted::BadImage(e) => write!(f, "{e}"),
            Unlisted::NotRecorded(r) => write!(f, "{r} records no {REVISION_KEY}"),
            Unlisted::Registry(r, e) => write!(f, "reading the revision of {r}: {e}"),
            Unlisted::Git(e) => write!(f, "{e}"),
        }
    }
}

/// One proposed change in the hidden block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerEntry {
    /// `namespace/Kind/name`.
    pub workload: String,
    /// Container.
    pub container: String,
    /// Proposed digest.
    pub digest: String,
}

/// The hidden block of a ferry request body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Marker {
    /// What the request proposes.
    pub entries: Vec<MarkerEntry>,
}

const OPEN: &str = "<!-- ferry-deploy";
const CLOSE: &str = "-->";

impl Marker {
    /// The block in `body`, if ferry wrote it (`None` for anyone else's request).
    pub fn parse(body: &str) -> Option<Marker> {
        let start = body.find(OPEN)? + OPEN.len();
        let end = body[start..].find(CLOSE)? + start;
        let entries = body[start..end]
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                Some(MarkerEntry {
                    workload: it.next()?.strip_prefix("workload=")?.to_string(),
                    container: it.next()?.strip_prefix("container=")?.to_string(),
                    digest: it.next()?.strip_prefix("digest=")?.to_string(),
                })
            })
            .collect();
        Some(Marker { entries })
    }

    fn render(&self) -> String {
        let mut s = format!("{OPEN}\n");
        for e in &self.entries {
            let _ = writeln!(
                s,
                "workload={} container={} digest={}",
                e.workload, e.container, e.digest
            );
        }
        s.push_str(CLOSE);
        s
    }
}

/// The tag of an image reference (`repo:tag@digest` → `tag`), if any.
fn tag_of(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    match no_digest.rsplit_once(':') {
        Some((_, t)) if !t.contains('/') => t,
        _ => "(none)",
    }
}

/// The title: the workload(s) and the move.
pub fn title(changes: &[Evidence]) -> String {
    match changes {
        [one] => format!(
            "ferry: {} {}: {} → {}",
            one.workload,
            one.container,
            tag_of(&one.old_image),
            tag_of(&one.new_image)
        ),
        many => {
            let mut ws: Vec<&str> = many.iter().map(|e| e.workload.as_str()).collect();
            ws.dedup();
            format!("ferry: update {} image(s) in {}", many.len(), ws.join(", "))
        }
    }
}

/// The body: per change the move (tag and digest), platforms, soak age, beta health and
/// signature, then the hidden block.
pub fn body(changes: &[Evidence]) -> String {
    let mut s = String::from(
        "ferry-deploy proposes this update. Merge it to deploy; close it to refuse this image (ferry then quarantines its digest for the workload).\n",
    );
    for e in changes {
        let _ = writeln!(s, "\n### {} — container `{}`\n", e.workload, e.container);
        let _ = writeln!(
            s,
            "| | image | tag | digest |\n|---|---|---|---|\n| old | `{}` | `{}` | `{}` |\n| new | `{}` | `{}` | `{}` |\n",
            e.old_image,
            tag_of(&e.old_image),
            e.old_digest.as_deref().unwrap_or("unknown"),
            e.new_image,
            tag_of(&e.new_image),
            e.new_digest
        );
        let _ = writeln!(s, "- why: {}", e.reason);
        let platforms = match &e.platforms {
            Some(p) if !p.is_empty() => p.join(", "),
            _ => "not inspected (no platform requirement)".into(),
        };
        let _ = writeln!(s, "- platforms present: {platforms}");
        if let Some(age) = e.soak_age {
            let _ = writeln!(s, "- soaked: {}", human(age));
        }
        if let Some(b) = &e.beta {
            let _ = writeln!(s, "- beta workload: {b}");
        }
        match &e.commits {
            Some(Commits::Listed {
                repo,
                from,
                to,
                lines,
                more,
            }) => {
                let (f, t) = (ferry_core::short_hash(from), ferry_core::short_hash(to));
                let _ = writeln!(s, "- commits in {repo} ({f}..{t}): {}", lines.len() + more);
                for l in lines {
                    // A title is text: markup in it must not shape the request.
                    let title = l.title.replace('<', "&lt;").replace('>', "&gt;");
                    let _ = writeln!(s, "  - `{}` {title}", l.id);
                }
                if *more > 0 {
                    let _ = writeln!(s, "  - … and {more} more");
                }
            }
            Some(Commits::Unavailable(why)) => {
                let _ = writeln!(s, "- commits: not listed ({why})");
            }
            None => {}
        }
        if let Some(SignatureVerdict::Verified(by)) = &e.signature {
            let _ = writeln!(s, "- signature: verified ({by})");
        }
    }
    let marker = Marker {
        entries: changes
            .iter()
            .map(|e| MarkerEntry {
                workload: e.workload.clone(),
                container: e.container.clone(),
                digest: e.new_digest.clone(),
            })
            .collect(),
    };
    let _ = write!(s, "\n{}\n", marker.render());
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ev() -> Evidence {
        Evidence {
            workload: "shop/Deployment/web".into(),
            container: "app".into(),
            old_image: "acme/web:1.0.0@sha256:aa".into(),
            old_digest: Some("sha256:aa".into()),
            new_image: "acme/web:1.1.0@sha256:bb".into(),
            new_digest: "sha256:bb".into(),
            platforms: Some(vec!["linux/amd64".into(), "linux/arm64".into()]),
            soak_age: Some(7200),
            beta: Some("shop/Deployment/web-beta: healthy".into()),
            signature: None,
            reason: "newer tag 1.1.0 in range".into(),
            commits: Some(Commits::Listed {
                repo: "https://git.example/o/src".into(),
                from: "1111111111111111".into(),
                to: "2222222222222222".into(),
                lines: vec![crate::gitops::CommitLine {
                    id: "2222222222222222".into(),
                    title: "fix: <b>html</b> stays text".into(),
                }],
                more: 3,
            }),
        }
    }

    #[test]
    fn title_and_body_carry_the_evidence_and_the_marker() {
        let e = ev();
        assert_eq!(
            title(std::slice::from_ref(&e)),
            "ferry: shop/Deployment/web app: 1.0.0 → 1.1.0"
        );
        let b = body(&[e]);
        for needle in [
            "| old | `acme/web:1.0.0@sha256:aa` | `1.0.0` | `sha256:aa` |",
            "| new | `acme/web:1.1.0@sha256:bb` | `1.1.0` | `sha256:bb` |",
            "- platforms present: linux/amd64, linux/arm64",
            "- soaked: 2h",
            "- beta workload: shop/Deployment/web-beta: healthy",
            "- commits in https://git.example/o/src (111111111111..222222222222): 4",
            "  - `2222222222222222` fix: &lt;b&gt;html&lt;/b&gt; stays text",
            "  - … and 3 more",
        ] {
            assert!(b.contains(needle), "{needle} not in\n{b}");
        }
        assert!(
            !b.contains("signature"),
            "no verdict was given: none is written"
        );
        let signed = Evidence {
            signature: Some(SignatureVerdict::Verified(
                "signature policy release".into(),
            )),
            ..ev()
        };
        let b2 = body(&[signed]);
        assert!(
            b2.contains("- signature: verified (signature policy release)"),
            "{b2}"
        );
        let r: Reference = format!("reg.example/acme/web@sha256:{}", "a".repeat(64))
            .parse()
            .unwrap();
        let unlisted = Evidence {
            commits: Some(Commits::Unavailable(Unlisted::NotRecorded(r))),
            ..ev()
        };
        assert!(
            body(&[unlisted]).contains(
                &format!("- commits: not listed (reg.example/acme/web@sha256:{} records no org.opencontainers.image.revision)", "a".repeat(64))
            ),
            "the reason the commits are missing is written"
        );
        let m = Marker::parse(&b).unwrap();
        assert_eq!(
            m.entries,
            [MarkerEntry {
                workload: "shop/Deployment/web".into(),
                container: "app".into(),
                digest: "sha256:bb".into()
            }]
        );
        assert_eq!(Marker::parse("someone else's request"), None);
    }

    proptest! {
        #[test]
        fn marker_parser_never_panics(s in "\\PC{0,80}") {
            let _ = Marker::parse(&format!("{OPEN}\n{s}"));
            let _ = Marker::parse(&s);
        }
    }
}
