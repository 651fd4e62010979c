//! Helm, in one place: where an Application's values file lives (decided by the policy core,
//! [`ferry_policy::helm`], re-exported here), how its image mapping is edited ([`values`]:
//! [`set_helm_image`], [`helm_sets_image`]) and how ferry writes it ([`write`]: one commit, a
//! push that never forces).
//!
//! ```
//! use ferry_deploy::helm::values_file;
//! use serde_json::json;
//!
//! let spec = json!({"source": {"repoURL": "https://git.example.com/ops/charts.git",
//!     "path": "sensor", "targetRevision": "main", "helm": {"valueFiles": ["prod.yaml"]}}});
//! let v = values_file(&spec, Some("sensor.image")).unwrap().unwrap();
//! assert_eq!(v.target.path, "sensor/prod.yaml");
//! ```

pub mod values;
pub mod write;

pub use ferry_policy::helm::{
    Chart, DEFAULT_KEY, DEFAULT_VALUES, HELM_IMAGE, Refusal, SetsImage, ValuesFile, parse_key,
};
pub use values::{HelmProblem, helm_sets_image, set_helm_image, set_helm_target};
pub use write::{HelmChange, plan_helm_edits, write_back_helm, write_back_helm_fenced};

/// The YAML reader the policy core is given: whether a values text sets the image at a key.
pub const SETS_IMAGE: SetsImage = values::helm_sets_image;

/// [`ferry_policy::helm::values_file`] with ferry's YAML reader for inline `helm.values`.
pub fn values_file(
    spec: &serde_json::Value,
    helm_image: Option<&str>,
) -> Result<Option<ValuesFile>, Refusal> {
    ferry_policy::helm::values_file(spec, helm_image, SETS_IMAGE)
}
