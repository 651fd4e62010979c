//! `docs/quickstart-cluster.md`, run as written.
//!
//! - The *on this machine* track: every block marked `<!-- quickstart:local -->` runs, in page
//!   order, in one `bash` with `set -euo pipefail` from the repository root (as a person types
//!   them into one shell), with the ferry binaries of this build on `PATH`. It starts its own
//!   control plane with the page's own `scripts/testenv.sh up` step and stops it with the page's
//!   last step (or, when a step fails, from an exit trap). What each step prints is checked: the
//!   plan's update line, the patch and its Event, the commit, the status page, the rollback
//!   and the quarantine.
//! - The *your cluster* track: every block marked `<!-- quickstart:cluster -->` (the Secrets,
//!   the overlay of your own and its `kubectl apply -k`) runs with `--dry-run=server` added to
//!   each `kubectl apply`/`create`, against the control plane of `$FERRY_TESTENV_DIR` (as the
//!   other real-cluster tests: it fails, never skips, without one), in a directory holding a
//!   copy of `deploy/` and stand-ins for the files the page makes on GitHub or with the network
//!   (a token, a deploy key, `known_hosts`, a registry password). Every overlay under `deploy/`
//!   applies with `--dry-run=server` too.
//!
//! A failed run prints everything the blocks printed; `QS_SHOW=1` prints it always.
// Test code: a failed unwrap is a failed test; the harness reads the environment; the output of
// a failed page run is printed whole.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, clippy::print_stderr)]

mod real;

use std::path::Path;
use std::process::{Command, Stdio};

use ferry_tests::bin;
use real::{Cluster, repo_root};

const PAGE: &str = "docs/quickstart-cluster.md";
const LOCAL: &str = "<!-- quickstart:local -->";
const CLUSTER: &str = "<!-- quickstart:cluster -->";

/// A marked command block of the page.
struct Block {
    /// 1-based line of its marker.
    line: usize,
    code: String,
}

/// The page's blocks marked `marker`, in order. Panics on a marker not followed by a ```sh
/// fence, an unterminated fence, or an unknown `quickstart:` marker (a typo would drop a step).
fn blocks(page: &str, marker: &str) -> Vec<Block> {
    let lines: Vec<&str> = page.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim();
        if !line.starts_with("<!-- quickstart:") {
            continue;
        }
        assert!(
            line == LOCAL || line == CLUSTER,
            "{PAGE}:{}: unknown marker {line}",
            i + 1
        );
        assert_eq!(
            lines.get(i + 1).map(|l| l.trim()),
            Some("```sh"),
            "{PAGE}:{}: a marker must be followed by a ```sh block",
            i + 1
        );
        if line != marker {
            continue;
        }
        let body: Vec<&str> = lines[i + 2..]
            .iter()
            .take_while(|l| l.trim() != "```")
            .copied()
            .collect();
        assert!(
            i + 2 + body.len() < lines.len(),
            "{PAGE}:{}: unterminated block",
            i + 1
        );
        found.push(Block {
            line: i + 1,
            code: body.join("\n"),
        });
    }
    found
}

fn page() -> String {
    std::fs::read_to_string(repo_root().join(PAGE)).unwrap()
}

/// What the blocks printed: (block, its output), split on the separators the script echoes.
struct Run<'a> {
    blocks: &'a [Block],
    outputs: Vec<String>,
    whole: String,
}

impl Run<'_> {
    /// The output of the one block whose code contains `needle`.
    fn of(&self, needle: &str) -> &str {
        let hits: Vec<usize> = (0..self.blocks.len())
            .filter(|&i| self.blocks[i].code.contains(needle))
            .collect();
        assert_eq!(
            hits.len(),
            1,
            "exactly one block of {PAGE} should contain {needle:?}"
        );
        let i = hits[0];
        self.outputs
            .get(i)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("the block at {PAGE}:{} did not run", self.blocks[i].line))
    }

    /// Assert that the block containing `needle` printed `expected`.
    fn expect(&self, needle: &str, expected: &str) {
        let out = self.of(needle);
        assert!(
            out.contains(expected),
            "the block with {needle:?} should print {expected:?}; it printed:\n{out}"
        );
    }
}

const SEPARATOR: &str = "@@quickstart-block@@";

/// Run `blocks` in one bash from `dir` after `prelude`; the exit code and what each printed.
fn run_blocks<'a>(
    blocks: &'a [Block],
    prelude: &str,
    dir: &Path,
    env: &[(&str, &std::ffi::OsStr)],
) -> (Option<i32>, Run<'a>) {
    let mut script = String::from("set -euo pipefail\nexec 2>&1\n");
    script.push_str(prelude);
    for b in blocks {
        script.push_str(&format!("\necho {SEPARATOR}\n# {PAGE}:{}\n", b.line));
        script.push_str(&b.code);
        script.push('\n');
    }
    let mut cmd = Command::new("timeout");
    // A bound for the whole page: the first pass of a rollback takes a minute here.
    cmd.args(["--kill-after=20", "900", "bash", "-c", &script])
        .current_dir(dir)
        .stdin(Stdio::null())
        .env_remove("KUBECONFIG")
        .env_remove("FERRY_TESTENV_DIR")
        .env_remove("GITHUB_ACTIONS")
        // The host's docker config (credential helpers) plays no part.
        .env("DOCKER_CONFIG", "/nonexistent-ferry-test");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let whole = String::from_utf8_lossy(&out.stdout).into_owned();
    let outputs = whole
        .split(&format!("{SEPARATOR}\n"))
        .skip(1)
        .map(str::to_string)
        .collect();
    (
        out.status.code(),
        Run {
            blocks,
            outputs,
            whole,
        },
    )
}

/// `sha256:… REF` as push-demo-image prints it: (digest, reference).
fn pushed(out: &str) -> (String, String) {
    let line = out
        .lines()
        .find(|l| l.starts_with("sha256:"))
        .unwrap_or_else(|| panic!("no pushed digest in:\n{out}"));
    let (digest, reference) = line.split_once(' ').unwrap();
    (digest.to_string(), reference.trim().to_string())
}

#[test]
fn the_page_marks_its_steps_and_every_marked_block_is_a_sh_block() {
    let page = page();
    let local = blocks(&page, LOCAL);
    let cluster = blocks(&page, CLUSTER);
    // Build, control plane, deploy/base, workload, opt-in, push, plan, once, Event, git (3),
    // controller, status page, bad image, rollback, clean up.
    assert!(local.len() >= 15, "{} local blocks", local.len());
    // Registry credentials, git (token; SSH), webhook secret, the overlay.
    assert!(cluster.len() >= 5, "{} cluster blocks", cluster.len());
    assert!(
        local.last().unwrap().code.contains("testenv.sh down"),
        "the local track must end by stopping the control plane"
    );
}

#[test]
fn the_local_track_redeploys_commits_and_rolls_back_as_the_page_says() {
    let page = page();
    let local = blocks(&page, LOCAL);
    // This build's binaries, built first (bin() builds the workspace's binaries once); the
    // page's own build step then finds them fresh and adds push-demo-image.
    let bin_dir = bin("ferry-deploy").parent().unwrap().to_path_buf();
    let target = bin_dir.parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // If a step fails, stop what the page started (the page's last step does it otherwise).
    let prelude = r#"
quickstart_cleanup() {
  if [ -n "${run_pid:-}" ]; then kill "$run_pid" 2>/dev/null || true; fi
  if [ -n "${REGISTRY_PID:-}" ]; then kill "$REGISTRY_PID" 2>/dev/null || true; fi
  if [ -n "${te:-}" ] && [ -d "$te" ]; then
    scripts/testenv.sh down "$te" >/dev/null 2>&1 || true
    rm -rf "$te"
  fi
}
trap quickstart_cleanup EXIT
trap 'exit 143' TERM INT
"#;
    let (code, run) = run_blocks(
        &local,
        prelude,
        &repo_root(),
        &[
            ("PATH", path.as_ref()),
            ("CARGO_TARGET_DIR", target.as_os_str()),
        ],
    );
    if std::env::var_os("QS_SHOW").is_some() || code != Some(0) || run.outputs.len() != local.len()
    {
        eprintln!("{}", run.whole);
    }
    assert_eq!(code, Some(0), "the local track failed (output above)");
    assert_eq!(run.outputs.len(), local.len(), "every block ran");

    run.expect("scripts/testenv.sh up", "testenv up in");
    run.expect(
        "scripts/testenv.sh up",
        "nodes: ferry-amd64(amd64) ferry-arm64(arm64)",
    );
    run.expect(
        "kubectl apply -k deploy/base",
        "deployment.apps/ferry-deploy",
    );
    // Opted in, and already at the digest its pods run: nothing to do.
    let (first, reference) = pushed(run.of("acme/sensor:latest\nkubectl create namespace iot"));
    run.expect(
        "ferry.dev/policy=digest",
        &format!("none   iot/Deployment/sensor sensor: (runs {first} already)"),
    );

    // A new build: the plan's update line, the patch, the Event.
    let (good, again) = pushed(run.of("--salt 2 \"$REGISTRY_ADDR\" acme/sensor:latest"));
    assert_eq!(again, reference);
    assert_ne!(good, first);
    let update = format!(
        "update iot/Deployment/sensor sensor: → {reference}@{good} (tag latest moved to {good})"
    );
    let plan_block = local
        .iter()
        .position(|b| b.code.trim() == "ferry plan -n iot")
        .expect("the plan step");
    assert!(
        run.outputs[plan_block].lines().any(|l| l == update),
        "the plan should print {update:?}; it printed:\n{}",
        run.outputs[plan_block]
    );
    run.expect("ferry once -n iot --wait", &update);
    run.expect(
        "ferry once -n iot --wait",
        "updated iot/Deployment/sensor\n",
    );
    let patched = run.of("reason=Redeployed");
    assert!(
        patched.lines().any(|l| l == format!("{reference}@{good}")),
        "the template should be pinned to {good}:\n{patched}"
    );
    assert!(
        patched.contains("Normal   Redeployed")
            && patched.contains(&format!("→ {reference}@{good}")),
        "the Redeployed Event:\n{patched}"
    );

    // Through git: routed to the repository, committed, pushed; Argo CD's part done by hand.
    let git = run.of("git -C \"$te/cluster-config\" show");
    let (meter_new, meter_ref) = pushed(git);
    for expected in [
        format!(
            "update iot/Deployment/meter meter: → {meter_ref}@{meter_new} (tag latest moved to {meter_new})"
        ),
        "cluster-config.git (main) iot/meter.yaml".to_string(),
        "committed to git: iot/Deployment/meter ".to_string(),
        "ferry: update 1 image(s)".to_string(),
        format!("- iot/Deployment/meter meter: {meter_ref} → {meter_ref}@{meter_new}"),
        "Written-by: ferry-deploy".to_string(),
        " iot/meter.yaml | 2 +-".to_string(),
    ] {
        assert!(git.contains(&expected), "expected {expected:?} in:\n{git}");
    }
    run.expect("reason=CommittedToGit", "Normal   CommittedToGit");
    run.expect("reason=CommittedToGit", &format!("{meter_ref}@{meter_new}"));

    // The controller and its status page.
    run.expect("127.0.0.1:19090/readyz", "ready");
    let status = run.of("[\"workloads\"]");
    assert!(
        status.contains("meter: none (already at the target)")
            && status.contains("sensor: none (already at the target)"),
        "status page:\n{status}"
    );

    // A bad build is rolled back by the controller, quarantined, and skipped from then on.
    let bad_out = run.of(">> \"$te/never-ready\"");
    let bad = bad_out
        .lines()
        .find_map(|l| l.strip_prefix("bad: "))
        .unwrap_or_else(|| panic!("no bad digest in:\n{bad_out}"))
        .to_string();
    assert!(bad.starts_with("sha256:") && bad != good, "{bad}");
    let rollback = run.of("reason=RolledBack -o name");
    for expected in [
        format!(
            "Warning   RolledBack   deployment/sensor   rollout failed: ProgressDeadlineExceeded; restored sensor={reference}@{good}"
        ),
        format!("\n{reference}@{good}\n"),
        format!("quarantine sensor: {bad} quarantined: rollout failed: ProgressDeadlineExceeded"),
        "rollback sensor: rollout failed: ProgressDeadlineExceeded".to_string(),
        format!(
            "skip   iot/Deployment/sensor sensor: → {reference}@{bad} ({bad} is quarantined after a failed rollout"
        ),
    ] {
        assert!(
            rollback.contains(&expected),
            "expected {expected:?} in:\n{rollback}"
        );
    }
}

#[test]
fn the_cluster_track_secrets_and_overlays_apply_with_server_side_dry_run() {
    let cluster = Cluster::connect();
    // The namespace `ferry` exists, as it does on a cluster after the page's first command.
    cluster.apply_deploy_base();
    let page = page();
    let marked = blocks(&page, CLUSTER);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // The clone as the page's commands see it: deploy/ beside the overlay the page writes.
    let o = Command::new("cp")
        .arg("-r")
        .arg(repo_root().join("deploy"))
        .arg(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Stand-ins for what the page makes on GitHub, with the network or in a registry's UI.
    for (file, content) in [
        ("registry-password", "stand-in-password\n"),
        ("git-token", "github_pat_stand-in\n"),
        (
            "ferry-deploy-key",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nstand-in\n-----END OPENSSH PRIVATE KEY-----\n",
        ),
        (
            "known_hosts",
            "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n",
        ),
    ] {
        std::fs::write(dir.join(file), content).unwrap();
    }
    // kubectl of the control plane, as its admin; every apply and create only a server-side
    // dry run.
    let prelude = r#"
kubectl() {
  case " $* " in
    *" apply "*|*" create "*) "$QS_KUBECTL" --kubeconfig "$QS_KUBECONFIG" "$@" --dry-run=server ;;
    *) "$QS_KUBECTL" --kubeconfig "$QS_KUBECONFIG" "$@" ;;
  esac
}
"#;
    let kubectl = kubectl_path(&cluster);
    let kubeconfig = cluster.dir.join("kubeconfig");
    let (code, run) = run_blocks(
        &marked,
        prelude,
        dir,
        &[
            ("QS_KUBECTL", kubectl.as_os_str()),
            ("QS_KUBECONFIG", kubeconfig.as_os_str()),
        ],
    );
    if code != Some(0) {
        eprintln!("{}", run.whole);
    }
    assert_eq!(
        code,
        Some(0),
        "the cluster track's blocks failed (output above)"
    );
    assert_eq!(run.outputs.len(), marked.len(), "every block ran");
    run.expect(
        "docker-registry ferry-registry-credentials",
        "secret/ferry-registry-credentials created (server dry run)",
    );
    run.expect(
        "--from-file=token=git-token",
        "secret/ferry-git created (server dry run)",
    );
    run.expect(
        "--from-file=ssh-privatekey=",
        "secret/ferry-git created (server dry run)",
    );
    run.expect(
        "ferry-webhook-secret",
        "secret/ferry-webhook-secret created (server dry run)",
    );
    let applied = run.of("kubectl apply -k my-ferry");
    for object in [
        "serviceaccount/ferry-deploy",
        "clusterrole.rbac.authorization.k8s.io/ferry-deploy",
        "service/ferry-deploy-webhooks",
        "deployment.apps/ferry-deploy",
    ] {
        assert!(
            applied
                .lines()
                .any(|l| l.starts_with(object) && l.ends_with("(server dry run)")),
            "{object} should be applied (server dry run):\n{applied}"
        );
    }

    // The overlay the page wrote: its image, webhooks, and what the git flags need mounted
    // where the flags and libgit2 look.
    let rendered = cluster.kubectl_ok(&["kustomize", dir.join("my-ferry").to_str().unwrap()]);
    for expected in [
        "image: registry.example.com/ops/ferry-deploy:0.1.0",
        "- --webhook-addr",
        "- --git-write-back",
        "- --git-token-file\n        - /etc/ferry/git/token",
        "- --git-ssh-key\n        - /etc/ferry/git/ssh-privatekey",
        "- name: HOME\n          value: /home/ferry",
        "- mountPath: /etc/ferry/git\n          name: git",
        "- mountPath: /home/ferry/.ssh\n          name: git-known-hosts",
        "fsGroup: 65532",
        "- key: known_hosts\n            path: known_hosts",
    ] {
        assert!(
            rendered.contains(expected),
            "expected {expected:?} in the rendered overlay:\n{rendered}"
        );
    }

    // Every overlay under deploy/ (components are parts of overlays, not applied alone).
    let mut overlays = Vec::new();
    collect_kustomizations(&repo_root().join("deploy"), &mut overlays);
    overlays.sort();
    assert!(overlays.len() >= 3, "{overlays:?}");
    for k in &overlays {
        let text = std::fs::read_to_string(k.join("kustomization.yaml")).unwrap();
        if text.contains("kind: Component") {
            continue;
        }
        let o = cluster.kubectl(&["apply", "--dry-run=server", "-k", k.to_str().unwrap()]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && out.contains("deployment.apps/ferry-deploy"),
            "{}: {out}{}",
            k.display(),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

fn collect_kustomizations(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_kustomizations(&path, found);
        } else if path.file_name().is_some_and(|n| n == "kustomization.yaml") {
            found.push(dir.to_path_buf());
        }
    }
}

/// The control plane's kubectl (`FERRY_TESTENV_BIN` of its env file).
fn kubectl_path(cluster: &Cluster) -> std::path::PathBuf {
    let env = std::fs::read_to_string(cluster.dir.join("env")).unwrap();
    let bin = env
        .lines()
        .find_map(|l| l.strip_prefix("export FERRY_TESTENV_BIN="))
        .map(|v| v.trim_matches('\''))
        .expect("FERRY_TESTENV_BIN in DIR/env");
    Path::new(bin).join("kubectl")
}
