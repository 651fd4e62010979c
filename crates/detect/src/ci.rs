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
        ("reason", report.reason.to_string().replace('\n', " ")),
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
            json!({"stage": "wave-1", "image": "alpine:3", "script": [format!("echo {}", shell_quote(&report.reason.to_string()))]}),
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
/// `FERRY_TAGS` and `latest` (what `--base published` compares with), a `--build-arg` per line of `FERRY_BUILD_ARGS` and the revision as label and
/// annotation (what `--base published` reads back).
///
/// An image without a repository in `ferry.toml` goes to the project's own registry,
/// `$CI_REGISTRY_IMAGE/NAME` (GitLab's convention); when the project has no registry either
/// (`CI_REGISTRY_IMAGE` unset) it is built without pushing, with a warning in the job log —
/// never tagged `:SHA` with an empty repository.
fn build_template() -> Value {
    json!({
        "image": "docker:27-cli",
        "services": ["docker:27-dind"],
        "variables": {"DOCKER_TLS_CERTDIR": "/certs"},
        "before_script": [
            "docker run --privileged --rm tonistiigi/binfmt --install all",
            "if [ -n \"${FERRY_REGISTRY_USER:-$CI_REGISTRY_USER}\" ]; then printf '%s' \"${FERRY_REGISTRY_PASSWORD:-$CI_REGISTRY_PASSWORD}\" | docker login --username \"${FERRY_REGISTRY_USER:-$CI_REGISTRY_USER}\" --password-stdin \"${FERRY_REGISTRY:-$CI_REGISTRY}\"; fi",
            "docker buildx create --use",
        ],
        "script": [
            "repository=\"${FERRY_REPOSITORY:-${CI_REGISTRY_IMAGE:+$CI_REGISTRY_IMAGE/$FERRY_IMAGE}}\"",
            "tags=\"$CI_COMMIT_SHA $FERRY_TAGS\"; case \" $FERRY_TAGS \" in *' latest '*) ;; *) tags=\"$tags latest\" ;; esac",
            "set -- --label \"org.opencontainers.image.revision=$CI_COMMIT_SHA\" --annotation \"index,manifest:org.opencontainers.image.revision=$CI_COMMIT_SHA\"",
            "if [ -n \"$repository\" ]; then for t in $tags; do set -- \"$@\" --tag \"$repository:$t\"; done; set -- \"$@\" --push; else echo \"WARNING: image $FERRY_IMAGE has no repository in ferry.toml and this project has no container registry (CI_REGISTRY_IMAGE is not set): built, not pushed\" >&2; fi",
            "build_args=\"$(mktemp)\"; printf '%s\\n' \"$FERRY_BUILD_ARGS\" > \"$build_args\"",
            "while IFS= read -r a; do if [ -n \"$a\" ]; then set -- \"$@\" --build-arg \"$a\"; fi; done < \"$build_args\"; rm -f \"$build_args\"",
            "docker buildx build --file \"$FERRY_DOCKERFILE\" ${FERRY_TARGET:+--target \"$FERRY_TARGET\"} --platform \"${FERRY_PLATFORMS:-linux/amd64,linux/arm64}\" \"$@\" \"$FERRY_CONTEXT\"",
        ],
    })
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::process::Command;

    use super::*;

    fn image(name: &str, repository: Option<&str>) -> ChangedImage {
        ChangedImage {
            name: name.into(),
            dockerfile: format!("{name}/Dockerfile"),
            context: name.into(),
            repository: repository.map(str::to_string),
            target: None,
            platforms: vec![],
            reasons: vec![crate::changed::RebuildReason::NewImage],
            build_args: BTreeMap::new(),
            tags: vec!["latest".into()],
            base: None,
            rebuilt_bases: vec![],
        }
    }

    fn pipeline(images: Vec<ChangedImage>) -> Value {
        let waves = vec![images.iter().map(|i| i.name.clone()).collect()];
        gitlab_pipeline(&ChangedReport {
            base: Some("b".into()),
            head: "h".into(),
            rebuild_all: false,
            reason: crate::changed::Summary::RebuildAll(crate::revision::RebuildAll::NoBase),
            images,
            waves,
            changed_paths: 1,
            warnings: vec![],
        })
    }

    /// Runs `.ferry-build` for `job` in `sh -e` (as GitLab runs a script) with `docker` a shell
    /// function that records its arguments: every docker call, and what the job printed on stderr.
    fn run_build(p: &Value, job: &str, env: &[(&str, &str)]) -> (Vec<Vec<String>>, String) {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("docker.log");
        let template = &p[".ferry-build"];
        let mut script = vec![
            r#"docker() { { echo CALL; for a in "$@"; do printf '%s\n' "$a"; done; } >> "$DOCKER_LOG"; }"#,
        ];
        for part in ["before_script", "script"] {
            script.extend(
                template[part]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l.as_str().unwrap()),
            );
        }
        let mut c = Command::new("sh");
        c.arg("-ec")
            .arg(script.join("\n"))
            .env_clear()
            .env("PATH", "/usr/bin:/bin");
        for (k, v) in p[job]["variables"].as_object().unwrap() {
            c.env(k, v.as_str().unwrap());
        }
        let o = c
            .envs(env.iter().copied())
            .env("DOCKER_LOG", &log)
            .env("CI_COMMIT_SHA", "c0ffee")
            .env("CI_PROJECT_DIR", dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{job}: {stderr}");
        let calls = std::fs::read_to_string(&log).unwrap_or_default();
        let calls = calls.split("CALL\n").filter(|c| !c.is_empty());
        let calls = calls
            .map(|c| c.lines().map(str::to_string).collect())
            .collect();
        (calls, stderr)
    }

    fn flag_values<'a>(call: &'a [String], flag: &str) -> Vec<&'a str> {
        call.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn an_image_without_repository_goes_to_the_projects_gitlab_registry() {
        let mut web = image("web", Some("r.example/web"));
        web.tags = vec!["1".into()];
        let p = pipeline(vec![image("app", None), web]);
        let env = [("CI_REGISTRY_IMAGE", "registry.gitlab.example/acme/shop")];
        let (calls, _) = run_build(&p, "build app", &env);
        let build = calls.last().unwrap();
        assert_eq!(
            flag_values(build, "--tag"),
            [
                "registry.gitlab.example/acme/shop/app:c0ffee",
                "registry.gitlab.example/acme/shop/app:latest"
            ]
        );
        assert!(build.contains(&"--push".to_string()), "{build:?}");
        // A configured repository wins over the convention; `latest` is pushed once, always.
        let (calls, _) = run_build(&p, "build web", &env);
        let tags = flag_values(calls.last().unwrap(), "--tag");
        let want = [
            "r.example/web:c0ffee",
            "r.example/web:1",
            "r.example/web:latest",
        ];
        assert_eq!(tags, want);
    }

    #[test]
    fn an_image_without_any_registry_is_built_without_pushing_with_a_warning() {
        let p = pipeline(vec![image("app", None)]);
        let (calls, stderr) = run_build(&p, "build app", &[]);
        let build = calls.last().unwrap();
        assert_eq!(build[..2], ["buildx", "build"]);
        assert!(
            !build.iter().any(|a| a == "--tag" || a == "--push"),
            "{build:?}"
        );
        assert!(!build.iter().any(|a| a.starts_with(':')), "{build:?}");
        assert!(!calls.iter().any(|c| c[0] == "login"), "{calls:?}");
        assert!(
            stderr.contains("WARNING: image app has no repository in ferry.toml and this project has no container registry (CI_REGISTRY_IMAGE is not set): built, not pushed"),
            "{stderr}"
        );
    }
}
