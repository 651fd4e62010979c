//! Re-tags: a tag strategy choosing a tag whose digest is the one the workload already runs
//! (common in monorepos, where one build is tagged for several components). Changing the pod
//! template for it would restart every pod for the same bytes, so by default ferry records the
//! tag in `ferry.dev/running-tag` (a metadata patch) and counts it as the current tag in later
//! passes; `ferry.dev/retag: restart` writes it into the template (or git) as before.

use std::collections::BTreeMap;
use std::fmt;

use crate::tags::{TagPattern, TagStrategy, is_valid_tag};

/// What a re-tag does (`ferry.dev/retag`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Retag {
    /// Record the tag in `ferry.dev/running-tag`; no template change, no commit (the default).
    #[default]
    Record,
    /// Write it like any update: a template change (pods restart) or a git commit.
    Restart,
}

/// Why `ferry.dev/retag` or `ferry.dev/running-tag` cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadRetag {
    /// `ferry.dev/retag` is neither `record` nor `restart`.
    Mode {
        /// The value as written.
        value: String,
    },
    /// An item of `ferry.dev/running-tag` is not `container=tag` with a valid tag.
    RunningTag {
        /// The item as written.
        item: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

impl fmt::Display for BadRetag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadRetag::Mode { value } => write!(
                f,
                "{}: {value:?}: expected record (the default) or restart",
                crate::RETAG
            ),
            BadRetag::RunningTag { item, why } => {
                write!(f, "{}: {item:?}: {why}", crate::RUNNING_TAG)
            }
        }
    }
}

/// Parse `ferry.dev/retag` (absent or blank: [`Retag::Record`]).
pub fn parse_retag(value: Option<&str>) -> Result<Retag, BadRetag> {
    match value.map(str::trim) {
        None | Some("" | "record") => Ok(Retag::Record),
        Some("restart") => Ok(Retag::Restart),
        Some(v) => Err(BadRetag::Mode {
            value: v.to_string(),
        }),
    }
}

/// Parse `ferry.dev/running-tag: container=tag,…` (absent or blank: none). A container named
/// twice keeps its last tag.
pub fn parse_running_tags(value: Option<&str>) -> Result<BTreeMap<String, String>, BadRetag> {
    let mut out = BTreeMap::new();
    for item in value.unwrap_or_default().split(',') {
        if item.trim().is_empty() {
            continue;
        }
        let bad = |why| BadRetag::RunningTag {
            item: item.trim().to_string(),
            why,
        };
        let (container, tag) = item
            .split_once('=')
            .ok_or_else(|| bad("expected container=tag"))?;
        let (container, tag) = (container.trim(), tag.trim());
        if container.is_empty() {
            return Err(bad("no container name"));
        }
        if !is_valid_tag(tag) {
            return Err(bad("not a valid tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})"));
        }
        out.insert(container.to_string(), tag.to_string());
    }
    Ok(out)
}

/// `ferry.dev/running-tag`'s value for `tags` (sorted by container; `""` when empty).
pub fn format_running_tags(tags: &BTreeMap<String, String>) -> String {
    tags.iter()
        .map(|(c, t)| format!("{c}={t}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The tag a container counts as current under `strategy`: its recorded re-tag when the
/// registry still lists it and it ranks above the template's tag (a later template change,
/// by ferry or by hand, makes the record stale), else the template's tag.
pub(crate) fn current_tag<'t>(
    strategy: &TagStrategy,
    template: &'t str,
    recorded: Option<&'t str>,
    tags: &[String],
    ignore: Option<&TagPattern>,
    created: impl Fn(&str) -> Option<u64>,
) -> &'t str {
    match recorded {
        Some(r) if r != template && tags.iter().any(|t| t == r) => {
            let ranks_above = strategy
                .choose(template, &[r.to_string()], ignore, created)
                .is_ok_and(|c| c.tag == r);
            if ranks_above { r } else { template }
        }
        _ => template,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn retag_modes() {
        assert_eq!(parse_retag(None), Ok(Retag::Record));
        assert_eq!(parse_retag(Some(" restart ")), Ok(Retag::Restart));
        assert_eq!(parse_retag(Some("record")), Ok(Retag::Record));
        let e = parse_retag(Some("always")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ferry.dev/retag: \"always\": expected record (the default) or restart"
        );
    }

    #[test]
    fn running_tags_parse_and_name_the_bad_item() {
        let t = parse_running_tags(Some("app=1.2, side = v3 ,")).unwrap();
        assert_eq!(t["app"], "1.2");
        assert_eq!(t["side"], "v3");
        assert!(parse_running_tags(Some("")).unwrap().is_empty());
        let e = parse_running_tags(Some("app=1.2,side")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ferry.dev/running-tag: \"side\": expected container=tag"
        );
        let e = parse_running_tags(Some("app=-x")).unwrap_err();
        assert!(e.to_string().contains("\"app=-x\": not a valid tag"), "{e}");
        let e = parse_running_tags(Some("=1")).unwrap_err();
        assert!(e.to_string().contains("no container name"), "{e}");
    }

    use crate::{
        Action, Answers, ContainerView, Kind, POLICY, RETAG, RUNNING_TAG, Reason, Route, TagFacts,
        WorkloadView, decide,
    };
    use ferry_core::{Digest, Platform, Reference};

    fn view(image: &str, extra: &[(&str, &str)]) -> WorkloadView {
        let mut annotations = BTreeMap::from([(POLICY.to_string(), "semver:^1".to_string())]);
        for (k, v) in extra {
            annotations.insert(k.to_string(), v.to_string());
        }
        WorkloadView {
            kind: Kind::Deployment,
            namespace: "shop".into(),
            name: "web".into(),
            annotations,
            labels: BTreeMap::new(),
            containers: vec![ContainerView {
                name: "app".into(),
                image: image.into(),
                init: false,
            }],
            running: BTreeMap::new(),
            healthy: None,
        }
    }

    /// Tags 1.0.0 and 1.1.0 both at `same`; 1.2.0 at `other` when listed.
    fn registry(same: &Digest, newer: Option<&Digest>) -> Answers {
        let mut a = Answers::default();
        let mut tags = vec!["1.0.0".to_string(), "1.1.0".to_string()];
        let mut put = |tag: &str, d: &Digest| {
            a.resolved.insert(
                Reference::parse(&format!("acme/web:{tag}")).unwrap(),
                Ok(TagFacts {
                    digest: d.clone(),
                    platforms: Some(Platform::parse_list("linux/amd64").unwrap()),
                }),
            );
        };
        put("1.0.0", same);
        put("1.1.0", same);
        if let Some(n) = newer {
            put("1.2.0", n);
            tags.push("1.2.0".into());
        }
        a.tags
            .insert(Reference::parse("acme/web").unwrap(), Ok(tags));
        a
    }

    fn one(w: &WorkloadView, a: &Answers) -> crate::Decision {
        let plats = Platform::parse_list("linux/amd64").unwrap();
        decide(w, a, &plats).remove(0)
    }

    #[test]
    fn a_retag_to_the_running_digest_is_recorded_not_written() {
        let same = Digest::sha256_of(b"one build");
        let a = registry(&same, None);
        for image in [
            format!("acme/web:1.0.0@{same}"),
            "acme/web:1.0.0".to_string(),
        ] {
            let mut w = view(&image, &[]);
            w.running.insert("app".into(), same.clone());
            let d = one(&w, &a);
            assert_eq!(d.action, Action::None, "{image}: {}", d.reason);
            assert_eq!(
                d.reason,
                Reason::RetagRecorded {
                    tag: "1.1.0".into(),
                    digest: same.clone()
                }
            );
            assert_eq!(d.records.running_tag.as_deref(), Some("1.1.0"));
            assert!(d.reason.to_string().contains("no restart"), "{}", d.reason);
            // The next pass, with the tag recorded, has nothing to do.
            w.annotations.insert(RUNNING_TAG.into(), "app=1.1.0".into());
            let d = one(&w, &a);
            assert_eq!(d.action, Action::None, "{}", d.reason);
            assert_eq!(d.records.running_tag, None, "{}", d.reason);
            assert!(
                matches!(d.reason, Reason::AtTarget | Reason::RunsAlready(_)),
                "{}",
                d.reason
            );
        }
    }

    #[test]
    fn retag_restart_writes_the_template_and_says_so() {
        let same = Digest::sha256_of(b"one build");
        let a = registry(&same, None);
        let w = view(&format!("acme/web:1.0.0@{same}"), &[(RETAG, "restart")]);
        let d = one(&w, &a);
        assert_eq!(d.action, Action::Update, "{}", d.reason);
        assert_eq!(d.route, Route::Live);
        assert_eq!(d.target_image(), Some(format!("acme/web:1.1.0@{same}")));
        assert!(
            matches!(d.reason, Reason::RetagRestart { .. }),
            "{}",
            d.reason
        );
        assert!(d.reason.to_string().contains("ferry.dev/retag: restart"));
        assert_eq!(d.records.running_tag, None);
    }

    #[test]
    fn a_recorded_tag_that_moves_or_is_overtaken_updates_the_template() {
        let same = Digest::sha256_of(b"one build");
        let newer = Digest::sha256_of(b"next build");
        let a = registry(&same, Some(&newer));
        let recorded = [(RUNNING_TAG, "app=1.1.0")];
        let w = view(&format!("acme/web:1.0.0@{same}"), &recorded);
        let d = one(&w, &a);
        assert_eq!(d.action, Action::Update, "{}", d.reason);
        assert_eq!(d.target_image(), Some(format!("acme/web:1.2.0@{newer}")));
        assert_eq!(d.reason, Reason::NewerTag("1.2.0".into()));
        // A template edited past the record: the record is stale and the template counts.
        let w = view(
            &format!("acme/web:1.2.0@{newer}"),
            &[(RUNNING_TAG, "app=1.1.0")],
        );
        let d = one(&w, &a);
        assert_eq!(d.action, Action::None, "{}", d.reason);
        assert_eq!(d.reason, Reason::AtTarget);
    }

    #[test]
    fn git_routes_commit_a_retag_only_with_restart() {
        let same = Digest::sha256_of(b"one build");
        let a = registry(&same, None);
        let plats = Platform::parse_list("linux/amd64").unwrap();
        let mut gate = crate::Gate::new(1, &[]);
        gate.git_write_back = true;
        let image = format!("acme/web:1.0.0@{same}");
        let git = (crate::GIT_REPO, "http://127.0.0.1/deploy.git");
        let w = view(&image, &[git]);
        let d = crate::decide_gated(&w, &a, &plats, &gate).remove(0);
        assert_eq!(d.action, Action::None, "{}", d.reason);
        assert_eq!(d.route, Route::Live, "no commit");
        assert_eq!(d.records.running_tag.as_deref(), Some("1.1.0"));
        let w = view(&image, &[git, (RETAG, "restart")]);
        let d = crate::decide_gated(&w, &a, &plats, &gate).remove(0);
        assert_eq!(d.action, Action::Update, "{}", d.reason);
        assert!(d.git().is_some(), "a commit: {:?}", d.route);
        assert!(
            matches!(d.reason, Reason::RetagRestart { .. }),
            "{}",
            d.reason
        );
    }

    #[test]
    fn a_malformed_record_is_a_workload_error_naming_the_value() {
        let w = view("acme/web:1.0.0", &[(RUNNING_TAG, "app")]);
        let d = one(&w, &Answers::default());
        assert_eq!(d.action, Action::Skip);
        assert_eq!(
            d.reason.to_string(),
            "ferry.dev/running-tag: \"app\": expected container=tag"
        );
    }

    proptest! {
        #[test]
        fn running_tags_round_trip_through_format(
            m in proptest::collection::btree_map("[a-z][a-z0-9-]{0,10}", "[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", 0..5)
        ) {
            let text = format_running_tags(&m);
            prop_assert_eq!(parse_running_tags(Some(&text)).unwrap(), m);
        }

        #[test]
        fn running_tag_parser_never_panics_and_errors_name_an_item(s in "\\PC{0,60}") {
            if let Err(BadRetag::RunningTag { item, .. }) = parse_running_tags(Some(&s)) {
                prop_assert!(s.contains(&item));
            }
        }
    }
}
