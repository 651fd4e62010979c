//! CI renderings of a [`ChangedReport`]: GitHub Actions outputs and a GitLab child pipeline.

use serde_json::{Value, json};

use crate::changed::{ChangedImage, ChangedReport};

fn matrix_entry(i: &ChangedImage) -> Value {
    json!({
        "name": i.name,
        "dockerfile": i.dockerfile,
        "context": i.context,
        "repository": i.repository.clone().unwrap_or_default(),
        "target": i.target.clone().unwrap_or_default(),
        "platforms": i.platforms.join(","),
        "build_args": i.build_args,
        "tags": i.tags,
        "base": i.base,
    })
}

/// Build args as `KEY=value` lines (what `--build-arg` takes, one per line).
fn build_arg_lines(i: &ChangedImage) -> String {
    i.build_args
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `$GITHUB_OUTPUT` values: `any`, `matrix` (`{"include":[…]}` of every image to rebuild),
/// `waves` (an array of such matrices in build order), `rebuild_all` and `reason`.
pub fn github_outputs(report: &ChangedReport) -> Vec<(&'static str, String)> {
    let include: Vec<Value> = report.images.iter().map(matrix_entry).collect();
    let waves: Vec<Value> = report
        .waves
        .iter()
        .map(|w| {
            let inc: Vec<Value> = w
                .iter()
                .filter_map(|n| report.images.iter().find(|i| &i.name == n))
                .map(matrix_entry)
                .collect();
            json!({ "include": inc })
        })
        .collect();
    vec![
        ("any", (!report.images.is_empty()).to_string()),
        ("matrix", json!({ "include": include }).to_string()),
        ("waves", Value::Array(waves).to_string()),
        ("rebuild_all", report.rebuild_all.to_string()),
        ("reason", report.reason.replace('\n', " ")),
    ]
}

/// A GitLab child pipeline: one build job per image, a stage per wave, `needs:` naming the
/// in-repo bases that are rebuilt too. Emitted as JSON, which is valid YAML for GitLab.
/// Jobs extend `.ferry-build`, defined here with docker buildx; override it by including your
/// own definition after this file.
pub fn gitlab_pipeline(report: &ChangedReport) -> Value {
    let job = |n: &str| format!("build {n}");
    let mut doc = serde_json::Map::new();
    let stages: Vec<String> = (1..=report.waves.len().max(1))
        .map(|i| format!("wave-{i}"))
        .collect();
    doc.insert("stages".into(), json!(stages));
    doc.insert(".ferry-build".into(), build_template());
    if report.images.is_empty() {
        // GitLab rejects an empty pipeline: one job that says why nothing is built.
        doc.insert(
            "nothing to rebuild".into(),
            json!({"stage": "wave-1", "image": "alpine:3", "script": [format!("echo {}", shell_quote(&report.reason))]}),
        );
        return Value::Object(doc);
    }
    for (w, wave) in report.waves.iter().enumerate() {
        for n in wave {
            let Some(i) = report.images.iter().find(|i| &i.name == n) else {
                continue;
            };
            let needs: Vec<String> = i.rebuilt_bases.iter().map(|d| job(d)).collect();
            doc.insert(
                job(n),
                json!({
                    "extends": ".ferry-build",
                    "stage": format!("wave-{}", w + 1),
                    "needs": needs,
                    "variables": {
                        "FERRY_IMAGE": i.name,
                        "FERRY_DOCKERFILE": i.dockerfile,
                        "FERRY_CONTEXT": i.context,
                        "FERRY_REPOSITORY": i.repository.clone().unwrap_or_default(),
                        "FERRY_TARGET": i.target.clone().unwrap_or_default(),
                        "FERRY_PLATFORMS": i.platforms.join(","),
                        "FERRY_TAGS": i.tags.join(" "),
                        "FERRY_BUILD_ARGS": build_arg_lines(i),
                    },
                }),
            );
        }
    }
    Value::Object(doc)
}

/// `.ferry-build`: QEMU/binfmt for the foreign platform, a registry login
/// (`FERRY_REGISTRY_USER`/`FERRY_REGISTRY_PASSWORD`/`FERRY_REGISTRY`, else GitLab's own registry
/// credentials), then one `docker buildx build --push` with the commit tag, every tag in
/// `FERRY_TAGS`, a `--build-arg` per line of `FERRY_BUILD_ARGS` and the revision as label and
/// annotation (what `--base published` reads back).
fn build_template() -> Value {
    json!({
        "image": "docker:27-cli",
        "services": ["docker:27-dind"],
        "variables": {"DOCKER_TLS_CERTDIR": "/certs"},
        "before_script": [
            "docker run --privileged --rm tonistiigi/binfmt --install all",
            "printf '%s' \"${FERRY_REGISTRY_PASSWORD:-$CI_REGISTRY_PASSWORD}\" | docker login --username \"${FERRY_REGISTRY_USER:-$CI_REGISTRY_USER}\" --password-stdin \"${FERRY_REGISTRY:-$CI_REGISTRY}\"",
            "docker buildx create --use",
        ],
        "script": [
            "set -- --tag \"$FERRY_REPOSITORY:$CI_COMMIT_SHA\" --label \"org.opencontainers.image.revision=$CI_COMMIT_SHA\" --annotation \"index,manifest:org.opencontainers.image.revision=$CI_COMMIT_SHA\"",
            "for t in $FERRY_TAGS; do set -- \"$@\" --tag \"$FERRY_REPOSITORY:$t\"; done",
            "printf '%s\\n' \"$FERRY_BUILD_ARGS\" > \"$CI_PROJECT_DIR/.ferry-build-args\"",
            "while IFS= read -r a; do if [ -n \"$a\" ]; then set -- \"$@\" --build-arg \"$a\"; fi; done < \"$CI_PROJECT_DIR/.ferry-build-args\"",
            "docker buildx build --file \"$FERRY_DOCKERFILE\" ${FERRY_TARGET:+--target \"$FERRY_TARGET\"} --platform \"${FERRY_PLATFORMS:-linux/amd64,linux/arm64}\" \"$@\" --push \"$FERRY_CONTEXT\"",
        ],
    })
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
