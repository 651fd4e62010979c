//! Decision tests: unit and property tests of the pure pipeline.

use super::*;
use ferry_core::Reference;
use proptest::prelude::*;

pub(crate) fn digest(s: &str) -> Digest {
    Digest::sha256_of(s.as_bytes())
}

fn key(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

fn kf(s: String) -> Reference {
    key(&s)
}

/// The created-time query a workload still needs, if any.
fn created_query(w: &WorkloadView, a: &Answers, now: u64) -> Option<Reference> {
    let p = WorkloadPolicy::parse(w).unwrap();
    queries(w, &p, a, &plats(), &Gate::new(now, &[]))
        .into_iter()
        .find_map(|q| match q {
            Query::Created(r) => Some(r),
            _ => None,
        })
}

pub(crate) fn workload(
    annotations: &[(&str, &str)],
    containers: &[(&str, &str, bool)],
) -> WorkloadView {
    WorkloadView {
        kind: Kind::Deployment,
        namespace: "iot".into(),
        name: "sensor".into(),
        annotations: annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        labels: BTreeMap::new(),
        containers: containers
            .iter()
            .map(|(n, i, init)| ContainerView {
                name: n.to_string(),
                image: (*i).into(),
                init: *init,
            })
            .collect(),
        running: BTreeMap::new(),
        healthy: None,
    }
}

pub(crate) fn plats() -> Vec<Platform> {
    Platform::parse_list("linux/amd64,linux/arm64").unwrap()
}

pub(crate) fn answers(key: &str, d: &Digest, platforms: Option<&str>) -> Answers {
    let mut a = Answers::default();
    a.resolved.insert(
        Reference::parse(key).unwrap(),
        Ok(TagFacts {
            digest: d.clone(),
            platforms: platforms.map(|p| Platform::parse_list(p).unwrap()),
        }),
    );
    a
}

#[test]
fn policies_parse() {
    assert_eq!(parse_policy(None).unwrap(), Policy::Off);
    assert_eq!(parse_policy(Some("off")).unwrap(), Policy::Off);
    assert_eq!(parse_policy(Some("digest")).unwrap(), Policy::Digest);
    assert!(matches!(
        parse_policy(Some("semver:^1.2")).unwrap(),
        Policy::Tags(crate::tags::TagStrategy::Semver(_))
    ));
    assert!(parse_policy(Some("semver:not a range")).is_err());
    assert!(parse_policy(Some("always")).is_err());
}

#[test]
fn digest_policy_pins_the_new_index_digest() {
    let old = digest("old");
    let new = digest("new");
    let w = workload(
        &[(POLICY, "digest")],
        &[("app", &format!("acme/sensor:latest@{old}"), false)],
    );
    let a = answers(
        "docker.io/acme/sensor:latest",
        &new,
        Some("linux/amd64,linux/arm64/v8"),
    );
    let d = decide(&w, &a, &plats());
    assert_eq!(d[0].action, Action::Update, "{}", d[0].reason);
    assert_eq!(
        d[0].target_image().as_deref(),
        Some(format!("acme/sensor:latest@{new}").as_str())
    );
    assert_eq!(d[0].current_digest.as_ref(), Some(&old));
    // Second pass: the template now holds the target.
    let w2 = workload(
        &[(POLICY, "digest")],
        &[("app", &format!("acme/sensor:latest@{new}"), false)],
    );
    let d = decide(&w2, &a, &plats());
    assert_eq!(d[0].action, Action::None);
}

#[test]
fn missing_platforms_quarantine_and_argocd_skip() {
    let old = digest("old");
    let new = digest("new");
    let img = format!("acme/sensor:latest@{old}");
    let w = workload(&[(POLICY, "digest")], &[("app", &img, false)]);
    let a = answers("docker.io/acme/sensor:latest", &new, Some("linux/amd64"));
    let d = decide(&w, &a, &plats());
    assert_eq!(d[0].action, Action::Skip);
    assert!(
        d[0].reason.to_string().contains("linux/arm64"),
        "{}",
        d[0].reason
    );
    let a = answers(
        "docker.io/acme/sensor:latest",
        &new,
        Some("linux/amd64,linux/arm64"),
    );
    let q = format!("app={new}");
    let w = workload(
        &[(POLICY, "digest"), (QUARANTINED, &q)],
        &[("app", &img, false)],
    );
    assert!(
        decide(&w, &a, &plats())[0]
            .reason
            .to_string()
            .contains("quarantined")
    );
    let mut w = workload(&[(POLICY, "digest")], &[("app", &img, false)]);
    w.labels
        .insert(ARGOCD_INSTANCE_LABEL.into(), "sensors".into());
    let d = decide(&w, &a, &plats());
    assert_eq!(d[0].action, Action::Skip);
    assert!(d[0].reason.to_string().contains("Argo CD"));
    assert!(
        d[0].target.is_some(),
        "the plan still shows where it would go"
    );
}

#[test]
fn baseline_from_pods_or_recorded() {
    let new = digest("new");
    let a = answers(
        "docker.io/acme/sensor:latest",
        &new,
        Some("linux/amd64,linux/arm64"),
    );
    let mut w = workload(&[(POLICY, "digest")], &[("app", "acme/sensor", false)]);
    let d = decide(&w, &a, &plats());
    assert_eq!(d[0].action, Action::None);
    assert_eq!(d[0].records.baseline.as_ref(), Some(&new));
    w.running.insert("app".into(), new.clone());
    assert_eq!(
        decide(&w, &a, &plats())[0].action,
        Action::None,
        "pods run the target already"
    );
    w.running.insert("app".into(), digest("older"));
    let d = decide(&w, &a, &plats());
    assert_eq!(d[0].action, Action::Update);
    assert_eq!(
        d[0].target_image().as_deref(),
        Some(format!("acme/sensor:latest@{new}").as_str())
    );
}

#[test]
fn containers_annotation_limits_and_init_containers_need_naming() {
    let old = digest("old");
    let new = digest("new");
    let img = format!("acme/sensor:1@{old}");
    let w = workload(
        &[(POLICY, "digest")],
        &[("app", &img, false), ("migrate", &img, true)],
    );
    let a = answers(
        "docker.io/acme/sensor:1",
        &new,
        Some("linux/amd64,linux/arm64"),
    );
    let d = decide(&w, &a, &plats());
    assert_eq!(d[0].action, Action::Update);
    assert_eq!(d[1].action, Action::None, "init containers only when named");
    let w = workload(
        &[(POLICY, "digest"), (CONTAINERS, "migrate")],
        &[("app", &img, false), ("migrate", &img, true)],
    );
    let d = decide(&w, &a, &plats());
    assert_eq!(d[0].action, Action::None);
    assert_eq!(d[1].action, Action::Update);
    let w = workload(
        &[(POLICY, "digest"), (CONTAINERS, "nope")],
        &[("app", &img, false)],
    );
    assert!(
        decide(&w, &a, &plats())[0]
            .reason
            .to_string()
            .contains("unknown container")
    );
}

#[test]
fn semver_moves_from_a_tag_without_a_digest_or_baseline() {
    let d3 = digest("1.4.3");
    let w = workload(
        &[(POLICY, "semver:~1.4")],
        &[("meter", "acme/meter:1.4.0", false)],
    );
    let mut a = answers(
        "docker.io/acme/meter:1.4.3",
        &d3,
        Some("linux/amd64,linux/arm64"),
    );
    a.tags.insert(
        key("docker.io/acme/meter"),
        Ok(vec!["1.4.0".into(), "1.4.3".into(), "1.5.0".into()]),
    );
    let d = decide(&w, &a, &plats());
    assert_eq!(d[0].action, Action::Update, "{}", d[0].reason);
    assert_eq!(
        d[0].target_image().as_deref(),
        Some(format!("acme/meter:1.4.3@{d3}").as_str())
    );
    assert_eq!(d[0].current_digest, None);
    // The same tag without a digest still records a baseline (digest semantics).
    let w = workload(
        &[(POLICY, "semver:~1.4")],
        &[("meter", "acme/meter:1.4.3", false)],
    );
    let d = decide(&w, &a, &plats());
    assert_eq!(d[0].action, Action::None);
    assert_eq!(d[0].records.baseline.as_ref(), Some(&d3));
    // A digest policy without a baseline never moves on a guess.
    let w = workload(
        &[(POLICY, "digest")],
        &[("meter", "acme/meter:1.4.0", false)],
    );
    let a = answers(
        "docker.io/acme/meter:1.4.0",
        &d3,
        Some("linux/amd64,linux/arm64"),
    );
    assert_eq!(decide(&w, &a, &plats())[0].action, Action::None);
}

#[test]
fn no_tag_in_range_is_a_refusal() {
    let w = workload(
        &[(POLICY, "semver:^3")],
        &[("api", "acme/api:2.0.0", false)],
    );
    let mut a = Answers::default();
    a.tags.insert(
        key("docker.io/acme/api"),
        Ok(vec!["2.0.0".into(), "2.1.0".into()]),
    );
    let d = decide(&w, &a, &plats());
    assert_eq!(d[0].action, Action::Skip);
    assert!(
        d[0].reason.to_string().contains("no tag satisfies"),
        "{}",
        d[0].reason
    );
}

fn labelled(instance: &str, extra: &[(&str, &str)]) -> WorkloadView {
    let old = digest("old");
    let mut annotations = vec![(POLICY, "digest")];
    annotations.extend_from_slice(extra);
    let mut w = workload(
        &annotations,
        &[("app", &format!("acme/sensor:latest@{old}"), false)],
    );
    w.labels
        .insert(ARGOCD_INSTANCE_LABEL.into(), instance.into());
    w
}

#[test]
fn argo_cd_is_the_tracking_annotation_or_a_real_application() {
    let known = ArgoApps::Known(["sensors".to_string()].into());
    let helm = labelled("grafana", &[]);
    assert_eq!(
        argocd(&helm, &known),
        ArgoCd::NotManaged,
        "Helm's label alone"
    );
    let argo = labelled("sensors", &[]);
    assert_eq!(argocd(&argo, &known), ArgoCd::Managed("sensors".into()));
    let forbidden = ArgoApps::Unreadable(crate::AppsUnreadable {
        namespace: "argocd".into(),
        error: Failure::from(std::io::Error::other("403 Forbidden")),
    });
    let ArgoCd::Unknown(why) = argocd(&helm, &forbidden) else {
        panic!("a label alone with unreadable Applications is unknown");
    };
    assert_eq!(
        why.to_string(),
        "label app.kubernetes.io/instance=grafana may be Argo CD's or Helm's, and Argo CD \
         Applications cannot be read (listing applications.argoproj.io in argocd: 403 Forbidden): \
         not patched on a guess"
    );
    let tracked = labelled(
        "x",
        &[(
            ARGOCD_TRACKING_ANNOTATION,
            "sensors:apps/Deployment:iot/sensor",
        )],
    );
    assert_eq!(
        argocd(&tracked, &ArgoApps::Known(Default::default())),
        ArgoCd::Managed("sensors".into())
    );
    // Decisions: Helm updates, Argo CD and unreadable skip (never patched on a guess).
    let new = digest("new");
    let a = answers(
        "docker.io/acme/sensor:latest",
        &new,
        Some("linux/amd64,linux/arm64"),
    );
    let decide_with = |w: &WorkloadView, apps: &ArgoApps| {
        let gate = Gate {
            argocd: apps,
            ..Gate::new(1, &[])
        };
        decide_gated(w, &a, &plats(), &gate).remove(0)
    };
    assert_eq!(decide_with(&helm, &known).action, Action::Update);
    let d = decide_with(&argo, &known);
    assert!(
        d.action == Action::Skip && d.reason == Reason::ArgoCdManaged,
        "{d:?}"
    );
    let d = decide_with(&helm, &forbidden);
    assert!(
        d.action == Action::Skip && d.reason != Reason::ArgoCdManaged,
        "{d:?}"
    );
    assert!(
        d.reason.to_string().contains("cannot be read"),
        "{}",
        d.reason
    );
}

#[test]
fn git_annotations_are_never_patched_live() {
    let old = digest("old");
    let new = digest("new");
    let w = workload(
        &[
            (POLICY, "digest"),
            (GIT_REPO, "https://git.example.invalid/cfg.git"),
        ],
        &[("app", &format!("acme/sensor:latest@{old}"), false)],
    );
    let a = answers(
        "docker.io/acme/sensor:latest",
        &new,
        Some("linux/amd64,linux/arm64"),
    );
    let d = decide(&w, &a, &plats()).remove(0);
    assert_eq!(d.action, Action::Skip);
    assert!(
        d.reason.to_string().contains("--git-write-back"),
        "{}",
        d.reason
    );
    let gate = Gate {
        git_write_back: true,
        ..Gate::new(1, &[])
    };
    let d = decide_gated(&w, &a, &plats(), &gate).remove(0);
    assert_eq!(d.action, Action::Update, "write-back routes it to git");
}

#[test]
fn semver_moves_up_only_within_range() {
    let d1 = digest("1.4.0");
    let cur = format!("acme/api:v1.2.0@{}", digest("1.2.0"));
    let w = workload(&[(POLICY, "semver:^1.2")], &[("api", &cur, false)]);
    let mut a = answers(
        "docker.io/acme/api:v1.4.0",
        &d1,
        Some("linux/amd64,linux/arm64"),
    );
    a.tags.insert(
        key("docker.io/acme/api"),
        Ok([
            "v1.2.0",
            "v1.3.0",
            "v1.4.0",
            "v2.0.0",
            "1.5.0-rc.1",
            "latest",
            "sha-abc",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()),
    );
    let p = WorkloadPolicy::parse(&w).unwrap();
    let gate = Gate::new(1, &[]);
    assert_eq!(
        queries(
            &w,
            &p,
            &Answers {
                resolved: Default::default(),
                ..a.clone()
            },
            &plats(),
            &gate
        ),
        [Query::Resolve(key("docker.io/acme/api:v1.4.0"))]
    );
    let d = decide(&w, &a, &plats());
    assert_eq!(d[0].action, Action::Update, "{}", d[0].reason);
    assert_eq!(
        d[0].target_image().as_deref(),
        Some(format!("acme/api:v1.4.0@{d1}").as_str())
    );
    // Running something newer than the range's best: never a downgrade.
    let w = workload(
        &[(POLICY, "semver:^1.2")],
        &[("api", "acme/api:1.9.0", false)],
    );
    let d = decide(&w, &a, &plats());
    assert_eq!(d[0].action, Action::None);
    assert!(d[0].reason.to_string().contains("never a downgrade"));
    // Pre-releases only when the range names one.
    let tags: Vec<String> = ["1.4.0", "1.5.0-rc.1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let best = |range: &str| {
        let Ok(Policy::Tags(s)) = parse_policy(Some(range)) else {
            panic!("{range}")
        };
        s.choose("1.0.0", &tags, None, |_| None).unwrap().tag
    };
    assert_eq!(best("semver:>=1.5.0-rc.0, <1.6.0"), "1.5.0-rc.1");
    assert_eq!(best("semver:^1"), "1.4.0");
}

fn gated(w: &WorkloadView, a: &Answers, now: u64, others: &[WorkloadView]) -> Vec<Decision> {
    decide_gated(w, a, &plats(), &Gate::new(now, others))
}

#[test]
fn min_age_counts_from_first_seen_and_survives_restarts() {
    let old = digest("old");
    let new = digest("new");
    let img = format!("acme/etl:latest@{old}");
    let a = answers(
        "docker.io/acme/etl:latest",
        &new,
        Some("linux/amd64,linux/arm64"),
    );
    let w = workload(
        &[(POLICY, "digest"), (MIN_AGE, "72h")],
        &[("etl", &img, false)],
    );
    let d = gated(&w, &a, 1_000, &[]);
    assert_eq!(d[0].action, Action::Skip);
    assert_eq!(
        d[0].records.first_seen_stamp().as_deref(),
        Some(format!("{new}@1000").as_str())
    );
    assert_eq!(d[0].soak_remaining_seconds, Some(72 * 3600));
    // Later passes (a restarted controller reads the same annotation): the soak continues.
    let stamp = format!("etl={new}@1000");
    let w = workload(
        &[(POLICY, "digest"), (MIN_AGE, "72h"), (FIRST_SEEN, &stamp)],
        &[("etl", &img, false)],
    );
    let d = gated(&w, &a, 1_000 + 71 * 3600, &[]);
    assert_eq!(d[0].action, Action::Skip);
    assert!(
        d[0].records.first_seen.is_none(),
        "never re-recorded: a restart cannot shorten the soak"
    );
    assert_eq!(d[0].soak_remaining_seconds, Some(3600));
    assert!(
        d[0].reason.to_string().contains("1h to go"),
        "{}",
        d[0].reason
    );
    let d = gated(&w, &a, 1_000 + 72 * 3600, &[]);
    assert_eq!(d[0].action, Action::Update);
    // The tag moved again: the new digest starts its own soak.
    let newer = digest("newer");
    let a2 = answers(
        "docker.io/acme/etl:latest",
        &newer,
        Some("linux/amd64,linux/arm64"),
    );
    let d = gated(&w, &a2, 1_000 + 100 * 3600, &[]);
    assert_eq!(d[0].action, Action::Skip);
    assert!(
        d[0].records
            .first_seen_stamp()
            .unwrap()
            .starts_with(&newer.to_string())
    );
}

#[test]
fn created_age_source_asks_for_the_created_time() {
    let new = digest("new");
    let img = format!("acme/etl:latest@{}", digest("old"));
    let mut a = answers(
        "docker.io/acme/etl:latest",
        &new,
        Some("linux/amd64,linux/arm64"),
    );
    let w = workload(
        &[(POLICY, "digest"), (MIN_AGE, "1d"), (AGE_SOURCE, "created")],
        &[("etl", &img, false)],
    );
    let d = gated(&w, &a, 100_000, &[]);
    assert_eq!(d[0].action, Action::Skip);
    assert_eq!(d[0].reason, Reason::CreatedNotRead);
    assert_eq!(
        created_query(&w, &a, 100_000),
        Some(kf(format!("docker.io/acme/etl@{new}")))
    );
    a.created.insert(
        kf(format!("docker.io/acme/etl@{new}")),
        Some(100_000 - 3600),
    );
    assert!(
        gated(&w, &a, 100_000, &[])[0]
            .reason
            .to_string()
            .contains("23h to go")
    );
    a.created
        .insert(kf(format!("docker.io/acme/etl@{new}")), Some(0));
    assert_eq!(gated(&w, &a, 100_000, &[])[0].action, Action::Update);
}

#[test]
fn promote_from_rolls_what_beta_ran_healthy_long_enough() {
    let beta_digest = digest("beta");
    let tag_digest = digest("tag-moved-on");
    let prod_img = format!("acme/svc:latest@{}", digest("prod"));
    let mut beta = workload(
        &[(POLICY, "digest")],
        &[("svc", &format!("acme/svc:latest@{beta_digest}"), false)],
    );
    beta.namespace = "beta".into();
    beta.name = "svc".into();
    beta.healthy = Some(true);
    let rolled = format!("svc={beta_digest}@5000");
    beta.annotations.insert(ROLLED_AT.into(), rolled);
    let mut a = answers(
        "docker.io/acme/svc:latest",
        &tag_digest,
        Some("linux/amd64,linux/arm64"),
    );
    a.platforms
        .insert(kf(format!("docker.io/acme/svc@{beta_digest}")), plats());
    let prod = workload(
        &[
            (POLICY, "digest"),
            (MIN_AGE, "2h"),
            (PROMOTE_FROM, "beta/Deployment/svc"),
        ],
        &[("svc", &prod_img, false)],
    );
    let d = gated(&prod, &a, 5_000 + 3600, std::slice::from_ref(&beta));
    assert_eq!(d[0].action, Action::Skip);
    assert!(
        d[0].reason.to_string().contains("1h to go"),
        "{}",
        d[0].reason
    );
    let d = gated(&prod, &a, 5_000 + 7200, std::slice::from_ref(&beta));
    assert_eq!(d[0].action, Action::Update, "{}", d[0].reason);
    assert_eq!(
        d[0].target_image().as_deref(),
        Some(format!("acme/svc:latest@{beta_digest}").as_str()),
        "beta's digest, not the tag's"
    );
    // Unhealthy beta, or a digest rolled back in beta: not soaked.
    let mut sick = beta.clone();
    sick.healthy = Some(false);
    assert!(
        gated(&prod, &a, 1_000_000, std::slice::from_ref(&sick))[0]
            .reason
            .to_string()
            .contains("not healthy")
    );
    let mut rolled_back = beta.clone();
    rolled_back
        .annotations
        .insert(QUARANTINED.into(), format!("svc={beta_digest}"));
    assert!(
        gated(&prod, &a, 1_000_000, std::slice::from_ref(&rolled_back))[0]
            .reason
            .to_string()
            .contains("not soaked")
    );
    assert!(
        gated(&prod, &a, 1_000_000, &[])[0]
            .reason
            .to_string()
            .contains("not found")
    );
    // Beta not rolled by ferry: prod's own first-seen record starts the clock.
    let mut manual = beta.clone();
    manual.annotations.remove(ROLLED_AT);
    let d = gated(&prod, &a, 9_000, std::slice::from_ref(&manual));
    assert_eq!(
        d[0].records.first_seen_stamp().as_deref(),
        Some(format!("{beta_digest}@9000").as_str())
    );
}

fn any_answers() -> impl Strategy<Value = Answers> {
    let facts = prop_oneof![
        "[a-z]{1,5}".prop_map(|s| Ok(TagFacts {
            digest: Digest::sha256_of(s.as_bytes()),
            platforms: Some(Platform::parse_list("linux/amd64,linux/arm64").unwrap())
        })),
        "[a-z]{1,5}".prop_map(|s| Ok(TagFacts {
            digest: Digest::sha256_of(s.as_bytes()),
            platforms: None
        })),
        "[a-z ]{1,10}".prop_map(|s| Err(LookupError::from(Box::<
            dyn std::error::Error + Send + Sync,
        >::from(s)))),
    ];
    (
        proptest::collection::btree_map(
            "docker\\.io/acme/(a|b|c):(1|latest|v1\\.[0-9]\\.0)",
            facts,
            0..6,
        ),
        proptest::collection::btree_map(
            "docker\\.io/acme/(a|b|c)",
            proptest::collection::vec("v?1\\.[0-9]\\.[0-9]|latest", 0..5).prop_map(Ok),
            0..3,
        ),
    )
        .prop_map(|(resolved, tags)| Answers {
            resolved: resolved.into_iter().map(|(k, v)| (kf(k), v)).collect(),
            tags: tags.into_iter().map(|(k, v)| (kf(k), v)).collect(),
            ..Default::default()
        })
}

proptest! {
    #[test]
    fn without_opt_in_nothing_is_ever_changed(
        policy in proptest::option::of("off|OFF|"),
        images in proptest::collection::vec("acme/(a|b|c):(1|latest|v1\\.2\\.0)", 1..4),
        answers in any_answers(),
    ) {
        let mut ann = vec![];
        if let Some(p) = &policy { ann.push((POLICY, p.as_str())); }
        let cs: Vec<(String, String, bool)> = images.iter().enumerate().map(|(i, im)| (format!("c{i}"), im.clone(), i % 2 == 1)).collect();
        let cs_ref: Vec<(&str, &str, bool)> = cs.iter().map(|(n, i, b)| (n.as_str(), i.as_str(), *b)).collect();
        let w = workload(&ann, &cs_ref);
        for d in decide(&w, &answers, &plats()) {
            prop_assert_ne!(d.action, Action::Update, "{:?}", d);
        }
        prop_assert!(!opted_in(&w) || policy.as_deref() == Some("OFF"));
    }

    #[test]
    fn annotation_parsers_never_panic(v in "\\PC{0,60}") {
        let _ = parse_policy(Some(&v));
        let _ = parse_pairs(Some(&v));
        let _ = parse_stamps(Some(&v));
        let _ = ferry_core::duration::parse_secs(&v);
        let _ = Platform::parse_list(&v);
    }

    #[test]
    fn any_annotations_give_decisions_never_a_panic(
        policy in "(digest|off|semver:[\\^~>=<0-9., *a-z]{0,8}|[a-z:]{0,8})",
        containers in "[a-z, ]{0,10}",
        platforms in "[a-z/0-9, ]{0,20}",
        min_age in "[0-9]{0,4}[smhdwy]?",
        answers in any_answers(),
    ) {
        let w = workload(
            &[(POLICY, policy.as_str()), (CONTAINERS, containers.as_str()), (PLATFORMS, platforms.as_str()), (MIN_AGE, min_age.as_str())],
            &[("a", "acme/a:1", false), ("b", "acme/b:latest", true)],
        );
        let _ = decide_gated(&w, &answers, &plats(), &Gate::new(1_000_000, &[]));
    }

    #[test]
    fn a_soak_gate_never_rolls_before_min_age(
        min_hours in 1u64..200,
        seen in 0u64..2_000_000,
        elapsed in 0u64..2_000_000,
        recorded in proptest::bool::ANY,
    ) {
        let new = digest("new");
        let img = format!("acme/etl:latest@{}", digest("old"));
        let a = answers("docker.io/acme/etl:latest", &new, Some("linux/amd64,linux/arm64"));
        let stamp = format!("etl={new}@{seen}");
        let min = format!("{min_hours}h");
        let mut ann = vec![(POLICY, "digest"), (MIN_AGE, min.as_str())];
        if recorded {
            ann.push((FIRST_SEEN, stamp.as_str()));
        }
        let w = workload(&ann, &[("etl", img.as_str(), false)]);
        let now = seen + elapsed;
        let d = &decide_gated(&w, &a, &plats(), &Gate::new(now, &[]))[0];
        let soaked = recorded && elapsed >= min_hours * 3600;
        prop_assert_eq!(d.action == Action::Update, soaked, "{:?}", d);
        if !recorded {
            // First sight is recorded, never an earlier time.
            prop_assert_eq!(d.records.first_seen_stamp(), Some(format!("{new}@{now}")));
        }
    }

    #[test]
    fn containers_not_named_are_never_changed(
        images in proptest::collection::vec("acme/(a|b|c):(1|latest|v1\\.2\\.0)", 2..5),
        named in 0usize..4,
        policy in "digest|semver:\\^1",
        answers in any_answers(),
    ) {
        let cs: Vec<(String, String, bool)> = images.iter().enumerate().map(|(i, im)| (format!("c{i}"), im.clone(), false)).collect();
        let cs_ref: Vec<(&str, &str, bool)> = cs.iter().map(|(n, i, b)| (n.as_str(), i.as_str(), *b)).collect();
        let chosen = format!("c{}", named % cs.len());
        let w = workload(&[(POLICY, policy.as_str()), (CONTAINERS, chosen.as_str())], &cs_ref);
        for d in decide(&w, &answers, &plats()) {
            if d.container != chosen {
                prop_assert_ne!(d.action, Action::Update, "{:?}", d);
            }
        }
    }

    #[test]
    fn an_update_always_pins_a_digest_and_changes_something(
        image in "acme/(a|b|c):(1|latest)(@sha256:[0-9a-f]{64})?",
        answers in any_answers(),
    ) {
        let w = workload(&[(POLICY, "digest")], &[("app", image.as_str(), false)]);
        for d in decide(&w, &answers, &plats()) {
            if d.action == Action::Update {
                let t = Reference::parse(d.target_image().as_deref().unwrap()).unwrap();
                prop_assert!(t.digest().is_some());
                prop_assert_ne!(d.target_image(), Some(image.clone()));
            }
        }
    }
}

fn listed(a: &mut Answers, repo: &str, tags: &[&str]) {
    a.tags
        .insert(key(repo), Ok(tags.iter().map(|s| s.to_string()).collect()));
}

#[test]
fn numerical_moves_across_digit_counts_and_honours_tag_ignore() {
    let d = digest("build-100");
    let cur = format!("acme/ci:build-99@{}", digest("build-99"));
    let w = workload(
        &[
            (POLICY, r"numerical:^build-(\d+)"),
            (crate::tags::TAG_IGNORE, "-rc$"),
        ],
        &[("app", &cur, false)],
    );
    let mut a = answers(
        "docker.io/acme/ci:build-100",
        &d,
        Some("linux/amd64,linux/arm64"),
    );
    listed(
        &mut a,
        "docker.io/acme/ci",
        &["build-9", "build-99", "build-100", "build-101-rc"],
    );
    let out = decide(&w, &a, &plats());
    assert_eq!(out[0].action, Action::Update, "{}", out[0].reason);
    assert_eq!(
        out[0].target_image().as_deref(),
        Some(format!("acme/ci:build-100@{d}").as_str())
    );
    assert_eq!(out[0].reason.to_string(), "newer tag build-100 (numerical)");
}

#[test]
fn a_policy_matching_no_tag_is_a_skip_with_the_reason() {
    let w = workload(
        &[(POLICY, r"alphabetical:^\d{4}-\d\d-\d\d$")],
        &[("app", "acme/app:2026-01-01", false)],
    );
    let mut a = Answers::default();
    listed(&mut a, "docker.io/acme/app", &["latest", "main-1"]);
    let out = decide(&w, &a, &plats());
    assert_eq!(out[0].action, Action::Skip);
    assert_eq!(
        out[0].reason.to_string(),
        r"no tag matches alphabetical:^\d{4}-\d\d-\d\d$"
    );
}

#[test]
fn bad_tag_regexes_are_one_row_naming_the_annotation() {
    for (ann, needle) in [
        (vec![(POLICY, r"numerical:^build-\d+$")], "ferry.dev/policy"),
        (vec![(POLICY, "newest-build:(")], "ferry.dev/policy"),
        (
            vec![(POLICY, "semver:^1"), (crate::tags::TAG_IGNORE, "[z-a]")],
            "ferry.dev/tag-ignore",
        ),
    ] {
        let w = workload(&ann, &[("app", "acme/app:1.0.0", false)]);
        let out = decide(&w, &Answers::default(), &plats());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].action, Action::Skip);
        assert!(
            out[0].reason.to_string().contains(needle),
            "{}",
            out[0].reason
        );
    }
}

#[test]
fn newest_build_asks_for_tag_times_once_then_decides_by_created_time() {
    let cur = format!("acme/app:main-aaaaaaa@{}", digest("a"));
    let w = workload(&[(POLICY, "newest-build:^main-")], &[("app", &cur, false)]);
    let p = WorkloadPolicy::parse(&w).unwrap();
    let gate = Gate::new(1, &[]);
    let d = digest("b");
    let mut a = answers(
        "docker.io/acme/app:main-bbbbbbb",
        &d,
        Some("linux/amd64,linux/arm64"),
    );
    listed(
        &mut a,
        "docker.io/acme/app",
        &["main-aaaaaaa", "main-bbbbbbb", "main-ccccccc"],
    );
    assert_eq!(
        queries(&w, &p, &a, &plats(), &gate),
        [Query::TagTimes(key("docker.io/acme/app"))]
    );
    for (t, at) in [
        ("main-aaaaaaa", 100),
        ("main-bbbbbbb", 300),
        ("main-ccccccc", 200),
    ] {
        a.tag_created
            .insert(key(&format!("docker.io/acme/app:{t}")), at);
    }
    a.tag_times_read.insert(key("docker.io/acme/app"));
    let out = decide_with(&w, &p, &a, &plats(), &gate);
    assert_eq!(out[0].action, Action::Update, "{}", out[0].reason);
    assert_eq!(out[0].target.as_ref().unwrap().tag(), Some("main-bbbbbbb"));
    // Read, but the running tag's time is unknown: never a guess.
    a.tag_created
        .remove(&key("docker.io/acme/app:main-aaaaaaa"));
    let out = decide_with(&w, &p, &a, &plats(), &gate);
    assert_eq!(out[0].action, Action::Skip);
    assert!(
        out[0].reason.to_string().contains("never a guess"),
        "{}",
        out[0].reason
    );
}

proptest! {
    #[test]
    fn a_tag_strategy_never_moves_to_a_lower_ranked_tag(
        numbers in proptest::collection::vec(0u32..2000, 1..12),
        current in 0u32..2000,
        times in proptest::collection::vec(0u64..50, 12),
    ) {
        let tags: Vec<String> = numbers.iter().map(|n| format!("build-{n}")).collect();
        let cur_tag = format!("build-{current}");
        let time_of = |t: &str| t.trim_start_matches("build-").parse::<usize>().ok().map(|n| times[n % times.len()]);
        for policy in [r"numerical:^build-(\d+)$", r"alphabetical:^build-", "newest-build:^build-"] {
            let w = workload(&[(POLICY, policy)], &[("app", &format!("acme/app:{cur_tag}@{}", digest("cur")), false)]);
            let mut a = Answers::default();
            let mut all = tags.clone();
            all.push(cur_tag.clone());
            listed(&mut a, "docker.io/acme/app", &all.iter().map(String::as_str).collect::<Vec<_>>());
            a.tag_times_read.insert(key("docker.io/acme/app"));
            for t in &all {
                let k = key(&format!("docker.io/acme/app:{t}"));
                a.tag_created.insert(k.clone(), time_of(t).unwrap());
                a.resolved.insert(k, Ok(TagFacts { digest: digest(t), platforms: Some(plats()) }));
            }
            for d in decide(&w, &a, &plats()) {
                let Some(target) = d.target.as_ref().and_then(|t| t.tag()).filter(|_| d.action == Action::Update) else { continue };
                prop_assert!(target != cur_tag || d.reason.to_string().contains("moved"));
                if target == cur_tag { continue }
                match policy.split(':').next().unwrap() {
                    "numerical" => prop_assert!(target.trim_start_matches("build-").parse::<u32>().unwrap() > current),
                    "alphabetical" => prop_assert!(target > cur_tag.as_str()),
                    _ => prop_assert!(time_of(target).unwrap() > time_of(&cur_tag).unwrap()),
                }
            }
        }
    }
}

#[test]
fn manual_approval_holds_until_the_target_digest_is_approved() {
    let old = digest("old");
    let new = digest("new");
    let img = format!("acme/sensor:latest@{old}");
    let a = answers(
        "docker.io/acme/sensor:latest",
        &new,
        Some("linux/amd64,linux/arm64"),
    );
    let manual = ("ferry.dev/approve", "manual");
    let w = workload(&[(POLICY, "digest"), manual], &[("app", &img, false)]);
    let d = decide(&w, &a, &plats()).remove(0);
    assert_eq!(d.action, Action::Skip);
    assert_eq!(
        d.reason.to_string(),
        format!(
            "awaiting approval: kubectl annotate deployment/sensor -n iot ferry.dev/approved={new}"
        )
    );
    assert!(d.target.is_some(), "the plan shows what awaits approval");
    let yes = new.to_string();
    let w = workload(
        &[(POLICY, "digest"), manual, ("ferry.dev/approved", &yes)],
        &[("app", &img, false)],
    );
    assert_eq!(decide(&w, &a, &plats())[0].action, Action::Update);
    // An approval of another digest approves nothing else.
    let stale = old.to_string();
    let w = workload(
        &[(POLICY, "digest"), manual, ("ferry.dev/approved", &stale)],
        &[("app", &img, false)],
    );
    assert_eq!(decide(&w, &a, &plats())[0].action, Action::Skip);
    // A typo never turns approvals off.
    let w = workload(
        &[(POLICY, "digest"), ("ferry.dev/approve", "manaul")],
        &[("app", &img, false)],
    );
    let d = decide(&w, &a, &plats()).remove(0);
    assert_eq!(d.action, Action::Skip, "{}", d.reason);
}
