//! Why an image rebuilds, and the report's summary: typed values, rendered as text only by
//! their `Display` (and serialized as that text, so the JSON holds the same strings).

use git2::Oid;

use super::QueryFailure;
use crate::git::ChangeKind;
use crate::images::CONFIG_FILE;
use crate::revision::{Basis, RebuildAll, short};

/// Why one image rebuilds (one of [`ChangedImage::reasons`](super::ChangedImage::reasons)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebuildReason {
    /// Everything is rebuilt.
    RebuildAll(RebuildAll),
    /// The image's Dockerfile changed.
    Dockerfile {
        /// Repository-relative path.
        path: String,
    },
    /// An ignore file the image reads changed.
    IgnoreFile {
        /// Repository-relative path.
        path: String,
    },
    /// The image's definition in `ferry.toml` changed.
    Configuration,
    /// The image is not at the base revision.
    NewImage,
    /// An extra input (`ferry.toml`) changed.
    ExtraInput {
        /// Repository-relative path.
        path: String,
    },
    /// A build input in the context changed.
    Input {
        /// How it changed.
        kind: ChangeKind,
        /// Repository-relative path.
        path: String,
    },
    /// More changed inputs than reasons listed.
    MoreInputs {
        /// How many are not listed.
        count: usize,
    },
    /// An in-repo image it builds on rebuilds.
    BaseRebuilds {
        /// The base image's name.
        image: String,
        /// The base image's registry repository, if configured.
        repository: Option<String>,
    },
    /// `--base published`: the image has no repository.
    NoRepository,
    /// `--base published`: the caller did not ask the registry about this image.
    RegistryNotAsked,
    /// `--base published`: the tag is not in the registry.
    NotPublished,
    /// `--base published`: the tag carries no revision label.
    NoRevisionLabel,
    /// `--base published`: the registry could not be asked.
    QueryFailed(QueryFailure),
    /// `--base published`: the published revision is not a commit of this repository.
    PublishedRevisionNotFound {
        /// The label's value.
        revision: String,
    },
}

fn change_word(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Added => "added",
        ChangeKind::Deleted => "deleted",
        ChangeKind::Modified => "modified",
        ChangeKind::ModeChanged => "mode changed",
    }
}

impl std::fmt::Display for RebuildReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RebuildReason::RebuildAll(why) => write!(f, "rebuild all: {why}"),
            RebuildReason::Dockerfile { path } => write!(f, "Dockerfile changed: {path}"),
            RebuildReason::IgnoreFile { path } => write!(f, "ignore file changed: {path}"),
            RebuildReason::Configuration => write!(f, "configuration changed in {CONFIG_FILE}"),
            RebuildReason::NewImage => f.write_str("new image (not at the base revision)"),
            RebuildReason::ExtraInput { path } => write!(f, "extra input changed: {path}"),
            RebuildReason::Input { kind, path } => {
                write!(f, "input {}: {path}", change_word(*kind))
            }
            RebuildReason::MoreInputs { count } => {
                write!(f, "… and {count} more changed input(s)")
            }
            RebuildReason::BaseRebuilds { image, repository } => write!(
                f,
                "base image rebuilds: {image} ({})",
                repository.as_deref().unwrap_or_default()
            ),
            RebuildReason::NoRepository => f.write_str("no repository to compare with"),
            RebuildReason::RegistryNotAsked => f.write_str("registry not asked for this image"),
            RebuildReason::NotPublished => f.write_str("not published"),
            RebuildReason::NoRevisionLabel => f.write_str("no revision label"),
            RebuildReason::QueryFailed(e) => write!(f, "registry query failed: {e}"),
            RebuildReason::PublishedRevisionNotFound { revision } => {
                write!(f, "published revision {revision} not found")
            }
        }
    }
}

impl serde::Serialize for RebuildReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What a [`ChangedReport`](super::ChangedReport) found, in one sentence (its `reason`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Summary {
    /// Everything is rebuilt.
    RebuildAll(RebuildAll),
    /// Head compared with one base commit.
    Compared {
        /// Images to rebuild.
        rebuilt: usize,
        /// Images at head.
        images: usize,
        /// Paths that changed between base and head.
        changed_paths: usize,
        /// The base commit.
        base: Oid,
        /// The head commit.
        head: Oid,
        /// How the base was chosen.
        how: Basis,
    },
    /// `--base published`: each image compared with its published revision.
    Published {
        /// Images to rebuild.
        rebuilt: usize,
        /// Images at head.
        images: usize,
        /// Distinct published revisions found in the repository.
        revisions: usize,
        /// Images without a usable published revision.
        without_revision: usize,
    },
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Summary::RebuildAll(why) => why.fmt(f),
            Summary::Compared {
                rebuilt,
                images,
                changed_paths,
                base,
                head,
                how,
            } => {
                let (b, h) = (base.to_string(), head.to_string());
                let (b, h) = (short(&b), short(&h));
                if *rebuilt == 0 {
                    write!(
                        f,
                        "{changed_paths} path(s) changed between {b} and {h} ({how}); none is an input of any of the {images} image(s)"
                    )
                } else {
                    write!(
                        f,
                        "{rebuilt} of {images} image(s) to rebuild: {changed_paths} path(s) changed between {b} and {h} ({how})"
                    )
                }
            }
            Summary::Published {
                rebuilt,
                images,
                revisions,
                without_revision,
            } => {
                if *rebuilt == 0 {
                    f.write_str("nothing to rebuild")?;
                } else {
                    write!(f, "{rebuilt} of {images} image(s) to rebuild")?;
                }
                write!(
                    f,
                    ": each image compared with its published revision ({revisions} distinct revision(s) found in the repository, {without_revision} image(s) without one)"
                )
            }
        }
    }
}

impl serde::Serialize for Summary {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Refused;
    impl std::fmt::Display for Refused {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("connection refused")
        }
    }
    impl std::error::Error for Refused {}

    #[test]
    fn rebuild_reason_texts() {
        let path = || "app/main.go".to_string();
        let cases = [
            (
                RebuildReason::RebuildAll(RebuildAll::NoBase),
                "rebuild all: no base revision: rebuilding everything",
            ),
            (
                RebuildReason::Dockerfile {
                    path: "app/Dockerfile".into(),
                },
                "Dockerfile changed: app/Dockerfile",
            ),
            (
                RebuildReason::IgnoreFile {
                    path: "app/.dockerignore".into(),
                },
                "ignore file changed: app/.dockerignore",
            ),
            (
                RebuildReason::Configuration,
                "configuration changed in ferry.toml",
            ),
            (
                RebuildReason::NewImage,
                "new image (not at the base revision)",
            ),
            (
                RebuildReason::ExtraInput { path: path() },
                "extra input changed: app/main.go",
            ),
            (
                RebuildReason::Input {
                    kind: ChangeKind::Added,
                    path: path(),
                },
                "input added: app/main.go",
            ),
            (
                RebuildReason::Input {
                    kind: ChangeKind::Deleted,
                    path: path(),
                },
                "input deleted: app/main.go",
            ),
            (
                RebuildReason::Input {
                    kind: ChangeKind::Modified,
                    path: path(),
                },
                "input modified: app/main.go",
            ),
            (
                RebuildReason::Input {
                    kind: ChangeKind::ModeChanged,
                    path: path(),
                },
                "input mode changed: app/main.go",
            ),
            (
                RebuildReason::MoreInputs { count: 3 },
                "… and 3 more changed input(s)",
            ),
            (
                RebuildReason::BaseRebuilds {
                    image: "base".into(),
                    repository: Some("registry.example/acme/base".into()),
                },
                "base image rebuilds: base (registry.example/acme/base)",
            ),
            (
                RebuildReason::BaseRebuilds {
                    image: "base".into(),
                    repository: None,
                },
                "base image rebuilds: base ()",
            ),
            (RebuildReason::NoRepository, "no repository to compare with"),
            (
                RebuildReason::RegistryNotAsked,
                "registry not asked for this image",
            ),
            (RebuildReason::NotPublished, "not published"),
            (RebuildReason::NoRevisionLabel, "no revision label"),
            (
                RebuildReason::QueryFailed(QueryFailure::from(Refused)),
                "registry query failed: connection refused",
            ),
            (
                RebuildReason::PublishedRevisionNotFound {
                    revision: "main".into(),
                },
                "published revision main not found",
            ),
        ];
        for (reason, text) in cases {
            assert_eq!(reason.to_string(), text);
            assert_eq!(
                serde_json::to_value(&reason).unwrap(),
                serde_json::json!(text)
            );
        }
    }

    #[test]
    fn summary_texts() {
        let base = Oid::from_str(&"a".repeat(40)).unwrap();
        let head = Oid::from_str(&"b".repeat(40)).unwrap();
        let (a12, b12) = ("a".repeat(12), "b".repeat(12));
        let compared = |rebuilt| Summary::Compared {
            rebuilt,
            images: 4,
            changed_paths: 7,
            base,
            head,
            how: Basis::Explicit {
                base: "HEAD~1".into(),
            },
        };
        let published = |rebuilt| Summary::Published {
            rebuilt,
            images: 4,
            revisions: 2,
            without_revision: 1,
        };
        let cases = [
            (
                Summary::RebuildAll(RebuildAll::FirstCommit),
                "the head commit has no parent (first commit): rebuilding everything".to_string(),
            ),
            (
                compared(0),
                format!("7 path(s) changed between {a12} and {b12} (--base HEAD~1); none is an input of any of the 4 image(s)"),
            ),
            (
                compared(2),
                format!("2 of 4 image(s) to rebuild: 7 path(s) changed between {a12} and {b12} (--base HEAD~1)"),
            ),
            (
                published(0),
                "nothing to rebuild: each image compared with its published revision (2 distinct revision(s) found in the repository, 1 image(s) without one)".into(),
            ),
            (
                published(3),
                "3 of 4 image(s) to rebuild: each image compared with its published revision (2 distinct revision(s) found in the repository, 1 image(s) without one)".into(),
            ),
        ];
        for (summary, text) in cases {
            assert_eq!(summary.to_string(), text);
            assert_eq!(
                serde_json::to_value(&summary).unwrap(),
                serde_json::json!(text)
            );
        }
    }

    #[test]
    fn report_json_keeps_its_shape_reasons_are_strings() {
        use super::super::{ChangedImage, ChangedReport};
        let head = Oid::from_str(&"b".repeat(40)).unwrap();
        let report = ChangedReport {
            base: None,
            head: head.to_string(),
            rebuild_all: true,
            reason: Summary::RebuildAll(RebuildAll::FirstCommit),
            images: vec![ChangedImage {
                name: "app".into(),
                dockerfile: "app/Dockerfile".into(),
                context: "app".into(),
                repository: Some("registry.example/acme/app".into()),
                target: None,
                platforms: vec!["linux/amd64".into()],
                reasons: vec![
                    RebuildReason::RebuildAll(RebuildAll::FirstCommit),
                    RebuildReason::BaseRebuilds {
                        image: "base".into(),
                        repository: None,
                    },
                ],
                build_args: [("V".to_string(), "1".to_string())].into(),
                tags: vec!["latest".into()],
                base: None,
                rebuilt_bases: vec!["base".into()],
            }],
            waves: vec![vec!["app".into()]],
            changed_paths: 0,
            warnings: vec![],
        };
        let all = "the head commit has no parent (first commit): rebuilding everything";
        assert_eq!(
            serde_json::to_value(&report).unwrap(),
            serde_json::json!({
                "base": null,
                "head": "b".repeat(40),
                "rebuild_all": true,
                "reason": all,
                "images": [{
                    "name": "app",
                    "dockerfile": "app/Dockerfile",
                    "context": "app",
                    "repository": "registry.example/acme/app",
                    "target": null,
                    "platforms": ["linux/amd64"],
                    "reasons": [format!("rebuild all: {all}"), "base image rebuilds: base ()"],
                    "build_args": {"V": "1"},
                    "tags": ["latest"],
                    "base": null,
                }],
                "waves": [["app"]],
                "warnings": [],
            })
        );
    }
}
