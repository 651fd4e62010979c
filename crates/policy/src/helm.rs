//! Where a Helm application's values file lives in git (pure: no IO).
//!
//! Given an Argo CD Application's `spec` and the workload's `ferry.dev/helm-image` annotation
//! (the dotted key of the image mapping, default `image`), [`values_file`] says which file of
//! which repository and branch ferry edits with
//! `ferry_deploy::helm::set_helm_image`:
//!
//! * a chart in git (`spec.source.path` with `spec.source.helm`): the source's repository and
//!   `targetRevision`, file = the first of `helm.valueFiles` resolved against the chart path
//!   (a leading `/` means the repository root, as in Argo CD), default `values.yaml`;
//! * several sources (`spec.sources`) whose chart source names `$REF/…` first in
//!   `helm.valueFiles`: the file in the repository and revision of the source with `ref: REF`
//!   (the chart itself may come from a Helm repository);
//! * a chart from a Helm repository (`spec.source.chart`) and nothing in git: refused
//!   ([`Refusal::ChartFromHelmRepository`]), as are values files outside git (URLs), paths
//!   that leave the repository, build variables, and image keys that `helm.parameters`,
//!   `helm.valuesObject` or `helm.values` set inline (they take precedence over values files).
//!
//! `Ok(None)` means the Application is not a Helm application: edit kustomize or manifests.
//!
//! ```
//! use ferry_policy::helm::{may_set_image, values_file};
//! use serde_json::json;
//!
//! let spec = json!({
//!     "sources": [
//!         {"repoURL": "https://charts.example.com", "chart": "sensor", "targetRevision": "1.4.0",
//!          "helm": {"valueFiles": ["$values/envs/prod/sensor.yaml"]}},
//!         {"repoURL": "https://git.example.com/ops/config.git", "targetRevision": "main",
//!          "ref": "values"}
//!     ]
//! });
//! let v = values_file(&spec, Some("sensor.image"), may_set_image).unwrap().unwrap();
//! assert_eq!(v.target.repo, "https://git.example.com/ops/config.git");
//! assert_eq!(v.target.branch, "main");
//! assert_eq!(v.target.path, "envs/prod/sensor.yaml");
//! assert_eq!(v.key, "sensor.image");
//! ```

use serde_json::Value;

use crate::GitTarget;

/// Workload annotation: the dotted key of the image mapping in the values file.
pub use crate::keys::HELM_IMAGE;
/// The key used when [`HELM_IMAGE`] is absent.
pub const DEFAULT_KEY: &str = "image";
/// The values file of a chart when `helm.valueFiles` names none.
pub const DEFAULT_VALUES: &str = "values.yaml";

/// The values file ferry edits for a Helm application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValuesFile {
    /// Repository, branch (`targetRevision`; `HEAD` when empty) and the file's path in it.
    pub target: GitTarget,
    /// Dotted key of the image mapping (`image`, `sensor.image`).
    pub key: String,
    /// Where the chart comes from.
    pub chart: Chart,
    /// The values files Helm applies after this one, as written; they override it, so a caller
    /// may check that they do not set the key.
    pub later_files: Vec<String>,
    /// Those of [`ValuesFile::later_files`] that are in git, located (repository, revision,
    /// path); files in a chart package or behind a URL are left out.
    pub later_targets: Vec<GitTarget>,
}

/// Where a chart comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chart {
    /// A chart directory in git.
    Git {
        /// Clone URL.
        repo: String,
        /// Chart directory in the repository.
        path: String,
    },
    /// A chart from a Helm (or OCI) repository.
    HelmRepository {
        /// Repository URL.
        repo: String,
        /// Chart name.
        chart: String,
    },
}

/// Why ferry cannot write a Helm application's image to git. Not an error of ferry: a reason to
/// skip the workload (render it in the Event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The [`HELM_IMAGE`] annotation is not a dotted key.
    BadKey {
        /// The annotation value.
        value: String,
    },
    /// Single source, chart from a Helm repository.
    ChartFromHelmRepository {
        /// Helm repository URL.
        repo: String,
        /// Chart name.
        chart: String,
    },
    /// The first values file is inside a chart package from a Helm repository.
    ValuesInChartPackage {
        /// Helm repository URL.
        repo: String,
        /// Chart name.
        chart: String,
        /// The values file as written.
        file: String,
    },
    /// The values file is a URL.
    NotInGit {
        /// As written.
        file: String,
    },
    /// `$REF/…` names no source with `ref: REF`.
    UnknownRef {
        /// As written.
        file: String,
        /// The missing ref name.
        reference: String,
    },
    /// The values file path leaves the repository or uses build variables.
    UnusablePath {
        /// As written.
        file: String,
        /// Why.
        why: &'static str,
    },
    /// The image key is set inline in the Application, which overrides values files.
    SetInline {
        /// The dotted key.
        key: String,
        /// `helm.parameters`, `helm.valuesObject` or `helm.values`.
        place: &'static str,
    },
    /// Several sources are Helm charts: which one runs the workload is not known.
    SeveralCharts {
        /// How many.
        count: usize,
    },
    /// A field ferry needs is missing or not a string.
    Malformed {
        /// The field (`spec.source.repoURL`).
        field: String,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::BadKey { value } => write!(
                f,
                "annotation {HELM_IMAGE}: {value:?} is not a dotted key like image or sensor.image"
            ),
            Refusal::ChartFromHelmRepository { repo, chart } => write!(
                f,
                "the chart {chart} comes from the Helm repository {repo}: nothing in git to edit (add a git source with `ref` and list `$ref/…` in helm.valueFiles)"
            ),
            Refusal::ValuesInChartPackage { repo, chart, file } => write!(
                f,
                "values file {file} is inside the chart {chart} from the Helm repository {repo}, not in git"
            ),
            Refusal::NotInGit { file } => write!(f, "values file {file} is not in git"),
            Refusal::UnknownRef { file, reference } => write!(
                f,
                "values file {file} names ${reference}, but no source has ref: {reference}"
            ),
            Refusal::UnusablePath { file, why } => write!(f, "values file {file}: {why}"),
            Refusal::SetInline { key, place } => write!(
                f,
                "{key} is set in {place} of the Application, which overrides the values file: ferry does not edit Applications"
            ),
            Refusal::SeveralCharts { count } => write!(
                f,
                "{count} sources are Helm charts; ferry cannot tell which one runs the workload"
            ),
            Refusal::Malformed { field } => write!(f, "the Application has no usable {field}"),
        }
    }
}

/// A YAML reader, given by the caller (the policy core parses no YAML): whether the values text
/// sets the image mapping at the dotted key (`repository`, `tag` or `digest` under it, or the key
/// itself as a scalar). `ferry_deploy` passes its format-preserving editor's reader.
pub type SetsImage = fn(text: &str, key: &str) -> bool;

/// A [`SetsImage`] for callers without a YAML reader: any non-blank inline values text may set
/// the image (refused rather than guessed).
pub fn may_set_image(text: &str, _key: &str) -> bool {
    !text.trim().is_empty()
}

/// Where the values file of the Application with `spec` lives; `helm_image` is the workload's
/// [`HELM_IMAGE`] annotation; `sets_image` reads inline `helm.values` text. `Ok(None)`: not a
/// Helm application.
pub fn values_file(
    spec: &Value,
    helm_image: Option<&str>,
    sets_image: SetsImage,
) -> Result<Option<ValuesFile>, Refusal> {
    let key = parse_key(helm_image)?;
    let (sources, single) = match spec.get("sources").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => (list.iter().collect::<Vec<_>>(), false),
        _ => match spec.get("source") {
            Some(s) => (vec![s], true),
            None => return Ok(None),
        },
    };
    let charts: Vec<(usize, &Value)> = sources
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, s)| {
            s.get("chart").is_some() || (s.get("path").is_some() && s.get("helm").is_some())
        })
        .collect();
    let (index, chart_source) = match charts.as_slice() {
        [] => return Ok(None),
        [one] => *one,
        many => return Err(Refusal::SeveralCharts { count: many.len() }),
    };
    let field = |name: &str| {
        if single {
            format!("spec.source.{name}")
        } else {
            format!("spec.sources[{index}].{name}")
        }
    };
    let chart = chart_of(chart_source, &field)?;
    let helm = chart_source.get("helm").unwrap_or(&Value::Null);
    check_inline(helm, &key, sets_image)?;
    let files: Vec<String> = helm
        .get("valueFiles")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let (first, later_files) = match files.split_first() {
        Some((f, rest)) => (Some(f.clone()), rest.to_vec()),
        None => (None, Vec::new()),
    };
    let target = locate(chart_source, &chart, first.as_deref(), &sources)?;
    let later_targets = later_files
        .iter()
        .filter_map(|f| locate(chart_source, &chart, Some(f), &sources).ok())
        .collect();
    Ok(Some(ValuesFile {
        target,
        key,
        chart,
        later_files,
        later_targets,
    }))
}

/// The [`HELM_IMAGE`] key path, validated: segments of `[A-Za-z0-9_-]` joined by `.`.
pub fn parse_key(value: Option<&str>) -> Result<String, Refusal> {
    let v = value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .unwrap_or(DEFAULT_KEY);
    let ok = v.split('.').all(|seg| {
        !seg.is_empty()
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    });
    if ok {
        Ok(v.to_string())
    } else {
        Err(Refusal::BadKey {
            value: v.to_string(),
        })
    }
}

fn string<'v>(
    source: &'v Value,
    name: &str,
    field: &impl Fn(&str) -> String,
) -> Result<&'v str, Refusal> {
    source
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| Refusal::Malformed { field: field(name) })
}

fn chart_of(source: &Value, field: &impl Fn(&str) -> String) -> Result<Chart, Refusal> {
    let repo = string(source, "repoURL", field)?.to_string();
    match source.get("chart") {
        Some(c) => Ok(Chart::HelmRepository {
            repo,
            chart: c
                .as_str()
                .ok_or_else(|| Refusal::Malformed {
                    field: field("chart"),
                })?
                .to_string(),
        }),
        None => Ok(Chart::Git {
            repo,
            path: string(source, "path", field)?.to_string(),
        }),
    }
}

/// The values file's repository, revision and path.
fn locate(
    chart_source: &Value,
    chart: &Chart,
    first: Option<&str>,
    sources: &[&Value],
) -> Result<GitTarget, Refusal> {
    let file = first.unwrap_or(DEFAULT_VALUES);
    if file.contains("://") {
        return Err(Refusal::NotInGit { file: file.into() });
    }
    if let Some(rest) = file.strip_prefix('$') {
        let (reference, path) = rest.split_once('/').unwrap_or((rest, ""));
        let source = sources
            .iter()
            .find(|s| s.get("ref").and_then(Value::as_str) == Some(reference))
            .ok_or_else(|| Refusal::UnknownRef {
                file: file.into(),
                reference: reference.into(),
            })?;
        if source.get("chart").is_some() {
            return Err(Refusal::NotInGit { file: file.into() });
        }
        let repo = source
            .get("repoURL")
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| Refusal::Malformed {
                field: format!("repoURL of the source with ref: {reference}"),
            })?;
        return Ok(GitTarget {
            repo: repo.to_string(),
            branch: revision(source),
            path: inside("", path, file)?,
        });
    }
    match chart {
        Chart::HelmRepository { repo, chart } => Err(match first {
            None => Refusal::ChartFromHelmRepository {
                repo: repo.clone(),
                chart: chart.clone(),
            },
            Some(f) => Refusal::ValuesInChartPackage {
                repo: repo.clone(),
                chart: chart.clone(),
                file: f.to_string(),
            },
        }),
        Chart::Git { repo, path } => {
            let resolved = match file.strip_prefix('/') {
                Some(from_root) => inside("", from_root, file)?,
                None => inside(path, file, file)?,
            };
            Ok(GitTarget {
                repo: repo.clone(),
                branch: revision(chart_source),
                path: resolved,
            })
        }
    }
}

fn revision(source: &Value) -> String {
    source
        .get("targetRevision")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .unwrap_or("HEAD")
        .to_string()
}

/// `rel` joined to `base` with `.` and `..` resolved, refusing to leave the repository root and
/// build variables (`$ARGOCD_APP_NAME`).
fn inside(base: &str, rel: &str, as_written: &str) -> Result<String, Refusal> {
    if rel.contains('$') {
        return Err(Refusal::UnusablePath {
            file: as_written.into(),
            why: "it uses build variables ferry cannot resolve",
        });
    }
    let mut parts: Vec<&str> = Vec::new();
    for seg in base.split('/').chain(rel.split('/')) {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(Refusal::UnusablePath {
                        file: as_written.into(),
                        why: "it leaves the repository",
                    });
                }
            }
            s => parts.push(s),
        }
    }
    if parts.is_empty() {
        return Err(Refusal::UnusablePath {
            file: as_written.into(),
            why: "it names no file",
        });
    }
    Ok(parts.join("/"))
}

/// Inline values take precedence over values files (parameters > valuesObject > values >
/// valueFiles): an image key set there would undo ferry's edit.
fn check_inline(helm: &Value, key: &str, sets_image: SetsImage) -> Result<(), Refusal> {
    let overlaps = |name: &str| {
        name == key || name.starts_with(&format!("{key}.")) || key.starts_with(&format!("{name}."))
    };
    let set_inline = |place| {
        Err(Refusal::SetInline {
            key: key.to_string(),
            place,
        })
    };
    if let Some(params) = helm.get("parameters").and_then(Value::as_array)
        && params
            .iter()
            .filter_map(|p| p.get("name").and_then(Value::as_str))
            .any(overlaps)
    {
        return set_inline("helm.parameters");
    }
    if let Some(obj) = helm.get("valuesObject")
        && json_sets_image(obj, key)
    {
        return set_inline("helm.valuesObject");
    }
    if let Some(text) = helm.get("values").and_then(Value::as_str)
        && sets_image(text, key)
    {
        return set_inline("helm.values");
    }
    Ok(())
}

fn json_sets_image(obj: &Value, key: &str) -> bool {
    let mut at = obj;
    for seg in key.split('.') {
        match at {
            Value::Object(map) => match map.get(seg) {
                Some(v) => at = v,
                None => return false,
            },
            _ => return true,
        }
    }
    match at {
        Value::Object(map) => ["repository", "tag", "digest"]
            .iter()
            .any(|k| map.contains_key(*k)),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// A small YAML reader for these tests (block mappings, two-space indents): the image
    /// mapping at `key` exists and names `repository`, `tag` or `digest`, or is a scalar.
    fn sets(text: &str, key: &str) -> bool {
        let segs: Vec<&str> = key.split('.').collect();
        let mut depth = 0;
        for line in text.lines() {
            let indent = line.len() - line.trim_start().len();
            let Some((k, v)) = line.trim().split_once(':') else {
                continue;
            };
            if indent / 2 != depth {
                continue;
            }
            if depth < segs.len() && k == segs[depth] {
                if !v.trim().is_empty() {
                    return true;
                }
                depth += 1;
            } else if depth == segs.len() && ["repository", "tag", "digest"].contains(&k) {
                return true;
            }
        }
        false
    }

    fn target(repo: &str, branch: &str, path: &str) -> GitTarget {
        GitTarget {
            repo: repo.into(),
            branch: branch.into(),
            path: path.into(),
        }
    }

    #[test]
    fn chart_in_git_uses_the_first_values_file_relative_to_the_chart() {
        let app = json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "sensor", "namespace": "argocd"},
            "spec": {
                "project": "default",
                "source": {
                    "repoURL": "https://git.example.com/ops/apps.git",
                    "targetRevision": "main",
                    "path": "charts/sensor",
                    "helm": {
                        "releaseName": "sensor",
                        "valueFiles": ["values-prod.yaml", "../common/values.yaml"],
                        "parameters": [{"name": "replicaCount", "value": "2"}]
                    }
                },
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "iot"},
                "syncPolicy": {"automated": {"selfHeal": true}}
            }
        });
        let v = values_file(&app["spec"], None, sets).unwrap().unwrap();
        assert_eq!(
            v,
            ValuesFile {
                target: target(
                    "https://git.example.com/ops/apps.git",
                    "main",
                    "charts/sensor/values-prod.yaml"
                ),
                key: "image".into(),
                chart: Chart::Git {
                    repo: "https://git.example.com/ops/apps.git".into(),
                    path: "charts/sensor".into()
                },
                later_files: vec!["../common/values.yaml".into()],
                later_targets: vec![target(
                    "https://git.example.com/ops/apps.git",
                    "main",
                    "charts/common/values.yaml"
                )],
            }
        );
    }

    #[test]
    fn chart_in_git_defaults_to_values_yaml_and_head() {
        let app = json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "web"},
            "spec": {
                "source": {"repoURL": "git://127.0.0.1/config.git", "path": "./charts/web/", "helm": {}},
                "destination": {"namespace": "web"}
            }
        });
        let v = values_file(&app["spec"], Some("web.image"), sets)
            .unwrap()
            .unwrap();
        assert_eq!(
            v.target,
            target(
                "git://127.0.0.1/config.git",
                "HEAD",
                "charts/web/values.yaml"
            )
        );
        assert_eq!(v.key, "web.image");
        // `..` inside the repository and a leading `/` (the repository root) resolve; leaving it
        // is refused.
        for (file, want) in [
            (
                "../shared/prod.yaml",
                Ok("charts/shared/prod.yaml".to_string()),
            ),
            ("/envs/prod/web.yaml", Ok("envs/prod/web.yaml".to_string())),
            ("../../../x.yaml", Err("it leaves the repository")),
            (
                "values-$ARGOCD_APP_NAME.yaml",
                Err("it uses build variables ferry cannot resolve"),
            ),
        ] {
            let mut spec = app["spec"].clone();
            spec["source"]["helm"]["valueFiles"] = json!([file]);
            let got = values_file(&spec, None, sets).map(|v| v.unwrap().target.path);
            match want {
                Ok(p) => assert_eq!(got, Ok(p), "{file}"),
                Err(why) => assert_eq!(
                    got,
                    Err(Refusal::UnusablePath {
                        file: file.into(),
                        why
                    }),
                    "{file}"
                ),
            }
        }
    }

    #[test]
    fn multi_source_values_come_from_the_ref_source() {
        let app = json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "prometheus", "namespace": "argocd"},
            "spec": {
                "project": "default",
                "sources": [
                    {
                        "repoURL": "https://prometheus-community.github.io/helm-charts",
                        "chart": "prometheus",
                        "targetRevision": "25.8.0",
                        "helm": {"valueFiles": ["$values/charts/prometheus/values.yaml", "$values/envs/prod.yaml"]}
                    },
                    {"repoURL": "https://git.example.com/org/value-files.git", "targetRevision": "dev", "ref": "values"}
                ],
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "monitoring"}
            }
        });
        let v = values_file(&app["spec"], Some("server.image"), sets)
            .unwrap()
            .unwrap();
        assert_eq!(
            v.target,
            target(
                "https://git.example.com/org/value-files.git",
                "dev",
                "charts/prometheus/values.yaml"
            )
        );
        assert_eq!(
            v.chart,
            Chart::HelmRepository {
                repo: "https://prometheus-community.github.io/helm-charts".into(),
                chart: "prometheus".into()
            }
        );
        assert_eq!(v.later_files, ["$values/envs/prod.yaml"]);
        // A git chart in another source of the same Application works the same way.
        let mut spec = app["spec"].clone();
        spec["sources"][0] = json!({
            "repoURL": "https://git.example.com/org/charts.git", "path": "prometheus", "targetRevision": "main",
            "helm": {"valueFiles": ["$values/prometheus.yaml"]}
        });
        let v = values_file(&spec, None, sets).unwrap().unwrap();
        assert_eq!(
            v.target,
            target(
                "https://git.example.com/org/value-files.git",
                "dev",
                "prometheus.yaml"
            )
        );
        // An unknown ref and a values file inside the chart package are refused.
        spec["sources"][0]["helm"]["valueFiles"] = json!(["$other/x.yaml"]);
        assert_eq!(
            values_file(&spec, None, sets),
            Err(Refusal::UnknownRef {
                file: "$other/x.yaml".into(),
                reference: "other".into()
            })
        );
        let mut spec = app["spec"].clone();
        spec["sources"][0]["helm"]["valueFiles"] = json!(["values-prod.yaml"]);
        let e = values_file(&spec, None, sets).unwrap_err();
        assert!(matches!(e, Refusal::ValuesInChartPackage { .. }), "{e}");
    }

    #[test]
    fn single_source_chart_from_a_helm_repository_is_refused_with_the_reason() {
        let app = json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "sealed-secrets", "namespace": "argocd"},
            "spec": {
                "project": "default",
                "source": {
                    "chart": "sealed-secrets",
                    "repoURL": "https://bitnami-labs.github.io/sealed-secrets",
                    "targetRevision": "1.16.1",
                    "helm": {"releaseName": "sealed-secrets"}
                },
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "kubeseal"}
            }
        });
        let e = values_file(&app["spec"], None, sets).unwrap_err();
        assert_eq!(
            e,
            Refusal::ChartFromHelmRepository {
                repo: "https://bitnami-labs.github.io/sealed-secrets".into(),
                chart: "sealed-secrets".into()
            }
        );
        assert!(e.to_string().contains("nothing in git to edit"), "{e}");
    }

    #[test]
    fn non_helm_applications_are_left_to_the_caller() {
        for spec in [
            json!({"source": {"repoURL": "https://git.example.com/a.git", "path": "apps/web", "targetRevision": "main"}}),
            json!({"source": {"repoURL": "https://git.example.com/a.git", "path": "apps/web", "kustomize": {}}}),
            json!({"sources": [{"repoURL": "https://git.example.com/a.git", "path": "apps/web"}]}),
            json!({}),
        ] {
            assert_eq!(values_file(&spec, None, sets), Ok(None), "{spec}");
        }
    }

    #[test]
    fn inline_values_that_set_the_image_are_refused() {
        let base = json!({"source": {"repoURL": "https://g/a.git", "path": "c", "helm": {}}});
        for (helm, place) in [
            (
                json!({"parameters": [{"name": "image.tag", "value": "1.0"}]}),
                Some("helm.parameters"),
            ),
            (
                json!({"parameters": [{"name": "image", "value": "x:1"}]}),
                Some("helm.parameters"),
            ),
            (
                json!({"parameters": [{"name": "imagePullSecrets", "value": "x"}]}),
                None,
            ),
            (
                json!({"valuesObject": {"image": {"tag": "1.0"}}}),
                Some("helm.valuesObject"),
            ),
            (
                json!({"valuesObject": {"image": {"pullPolicy": "Always"}}}),
                None,
            ),
            (
                json!({"valuesObject": {"image": "x:1"}}),
                Some("helm.valuesObject"),
            ),
            (
                json!({"values": "image:\n  repository: x\n"}),
                Some("helm.values"),
            ),
            (
                json!({"values": "image:\n  pullPolicy: Always\nreplicas: 2\n"}),
                None,
            ),
            (json!({"values": "other:\n  image:\n    tag: x\n"}), None),
        ] {
            let mut spec = base.clone();
            spec["source"]["helm"] = helm.clone();
            let got = values_file(&spec, None, sets);
            match place {
                Some(place) => assert_eq!(
                    got,
                    Err(Refusal::SetInline {
                        key: "image".into(),
                        place
                    }),
                    "{helm}"
                ),
                None => assert!(got.is_ok(), "{helm}: {got:?}"),
            }
        }
    }

    #[test]
    fn odd_specs_are_refused_with_the_field_named() {
        let e = values_file(&json!({"source": {"path": "c", "helm": {}}}), None, sets).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the Application has no usable spec.source.repoURL"
        );
        let two = json!({"sources": [
            {"repoURL": "https://a", "chart": "x"}, {"repoURL": "https://b", "chart": "y"}
        ]});
        assert_eq!(
            values_file(&two, None, sets),
            Err(Refusal::SeveralCharts { count: 2 })
        );
        let url = json!({"source": {"repoURL": "https://g/a.git", "path": "c", "helm": {"valueFiles": ["https://x/v.yaml"]}}});
        assert_eq!(
            values_file(&url, None, sets),
            Err(Refusal::NotInGit {
                file: "https://x/v.yaml".into()
            })
        );
        for bad in [
            "",
            " ",
            "image.",
            ".image",
            "a..b",
            "image tag",
            "image/tag",
        ] {
            let got = parse_key(Some(bad));
            if bad.trim().is_empty() {
                assert_eq!(got, Ok("image".into()));
            } else {
                assert_eq!(
                    got,
                    Err(Refusal::BadKey {
                        value: bad.trim().into()
                    }),
                    "{bad:?}"
                );
            }
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            "[a-z$/.:]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("source".to_string()),
                        Just("sources".to_string()),
                        Just("repoURL".to_string()),
                        Just("path".to_string()),
                        Just("chart".to_string()),
                        Just("helm".to_string()),
                        Just("valueFiles".to_string()),
                        Just("ref".to_string()),
                        Just("targetRevision".to_string()),
                        Just("parameters".to_string()),
                        Just("valuesObject".to_string()),
                        Just("values".to_string()),
                        Just("name".to_string()),
                        Just("image".to_string()),
                    ],
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_spec_gives_an_answer_never_a_panic_and_paths_stay_inside(spec in json_value(), key in proptest::option::of("[a-z.]{0,10}")) {
            if let Ok(Some(v)) = values_file(&spec, key.as_deref(), sets) {
                prop_assert!(!v.target.path.is_empty());
                prop_assert!(!v.target.path.starts_with('/'));
                prop_assert!(v.target.path.split('/').all(|s| !s.is_empty() && s != ".." && s != "."));
                prop_assert!(!v.target.repo.trim().is_empty());
            }
        }
    }
}
