//! Every annotation and label ferry reads or writes, in one place. A workload's annotations
//! are read by [`crate::WorkloadPolicy::parse`] (and the Argo CD tracking by
//! [`crate::argocd`]); nothing downstream of a decision reads them again.

/// Opt-in and policy: `digest`, `semver:RANGE`, `newest-build:REGEX`, `numerical:REGEX`,
/// `alphabetical:REGEX` or `off` (the default).
pub const POLICY: &str = "ferry.dev/policy";
/// Comma-separated container names ferry may change (default: all regular containers).
pub const CONTAINERS: &str = "ferry.dev/containers";
/// Platforms a new image must provide (default: the cluster's node platforms).
pub const PLATFORMS: &str = "ferry.dev/platforms";
/// Where ferry records the images it replaced (`container=image,…`).
pub const PREVIOUS_IMAGE: &str = "ferry.dev/previous-image";
/// Digests rolled back after a failed rollout (`container=digest,…`): never tried again.
pub const QUARANTINED: &str = "ferry.dev/quarantined";
/// Digests recorded as the running baseline for containers whose image has no digest.
pub const BASELINE: &str = "ferry.dev/baseline";
/// Soak gate: a new digest is rolled only once it is this old (`72h`).
pub const MIN_AGE: &str = "ferry.dev/min-age";
/// Where the age comes from: `first-seen` (default, recorded by ferry) or `created`.
pub const AGE_SOURCE: &str = "ferry.dev/age-source";
/// When ferry first saw a digest as a candidate (`container=digest@unixtime,…`).
pub const FIRST_SEEN: &str = "ferry.dev/first-seen";
/// Roll only what this beta workload (`namespace/Kind/name`) has run, healthy, for `min-age`.
pub const PROMOTE_FROM: &str = "ferry.dev/promote-from";
/// When ferry rolled a digest out on this workload (`container=digest@unixtime,…`).
pub const ROLLED_AT: &str = "ferry.dev/rolled-at";
/// Explicit git write-back: repository URL.
pub const GIT_REPO: &str = "ferry.dev/git-repo";
/// Explicit git write-back: branch (default `main`).
pub const GIT_BRANCH: &str = "ferry.dev/git-branch";
/// Explicit git write-back: directory or file in the repository (default the root).
pub const GIT_PATH: &str = "ferry.dev/git-path";
/// Push ferry's commits to this branch (created from / fast-forwarded to the Application's
/// branch) instead of the Application's branch; a person or a bot merges it.
pub const GIT_WRITE_BRANCH: &str = "ferry.dev/git-write-branch";
/// Argo CD's tracking label (before 3.0; Helm sets the same label).
pub const ARGOCD_INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
/// Argo CD's tracking annotation.
pub const ARGOCD_TRACKING_ANNOTATION: &str = "argocd.argoproj.io/tracking-id";

/// `ferry.dev/tag-ignore`: tags a tag strategy never chooses (a regex).
pub const TAG_IGNORE: &str = "ferry.dev/tag-ignore";
/// `ferry.dev/approve: manual` holds every update until it is approved.
pub const APPROVE: &str = "ferry.dev/approve";
/// `ferry.dev/approved: <digest>` approves the update to exactly that digest.
pub const APPROVED: &str = "ferry.dev/approved";
/// The dotted key of the image mapping in a Helm values file (default `image`).
pub const HELM_IMAGE: &str = "ferry.dev/helm-image";
/// The tag a re-tag moved to without touching the pod template (`container=tag,…`): it counts
/// as the current tag while it ranks above the template's.
pub const RUNNING_TAG: &str = "ferry.dev/running-tag";
/// What a re-tag (a new tag with the running digest) does: `record` (default) or `restart`.
pub const RETAG: &str = "ferry.dev/retag";
/// Open a pull/merge request for git updates: `github`, `gitlab` or `off` (wins over
/// `--git-pull-request`).
pub const GIT_PULL_REQUEST: &str = "ferry.dev/git-pull-request";
/// `ferry.dev/signed-by: NAME`: updates must carry a valid signature under the controller's
/// signature policy NAME (`--signature-policy NAME=FILE`).
pub const SIGNED_BY: &str = "ferry.dev/signed-by";
/// `ferry.dev/require-revision-on: BRANCH`: updates only to images built from a commit on
/// BRANCH of `ferry.dev/source-repo`.
pub const REQUIRE_REVISION_ON: &str = "ferry.dev/require-revision-on";
/// `ferry.dev/source-repo: URL`: the repository images are built from (the provenance gate;
/// a pull request lists the commits between the running and the new image's revision).
pub const SOURCE_REPO: &str = "ferry.dev/source-repo";
