//! Help that teaches: every help text of every binary and subcommand groups its options under
//! the same headings in the same order, says no default twice, and shows two or three examples
//! of the subcommand — each of which is run here (against a fixture repository) unless it needs
//! a registry or a cluster, and then at least parsed. `-v`/`-q` work in all four binaries.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::path::Path;
use std::process::{Command, Output};

use ferry_tests::{GitRepo, bin};

/// The headings, in the order every binary shows them (bins/common/src/help.rs).
const HEADINGS: [&str; 5] = [
    "What to watch",
    "Registry access",
    "Git write-back",
    "Controller",
    "Output",
];

/// Each binary, its subcommands, and the headings its help texts show (Controller: only where
/// a subcommand has controller options).
const BINARIES: [(&str, &[&str], &[&str]); 4] = [
    (
        "ferry-registry",
        &[
            "parse",
            "digest",
            "inspect",
            "verify",
            "tags",
            "tag",
            "promote",
            "verify-signature",
            "wait",
            "auth",
        ],
        &["Registry access", "Output"],
    ),
    (
        "ferry-detect",
        &["changed", "graph", "context", "inputs", "why"],
        &["What to watch", "Registry access", "Output"],
    ),
    (
        "ferry-bump",
        &["set", "list", "check", "refresh"],
        &[
            "What to watch",
            "Registry access",
            "Git write-back",
            "Output",
        ],
    ),
    (
        "ferry-deploy",
        &["plan", "once", "run"],
        &[
            "What to watch",
            "Registry access",
            "Git write-back",
            "Output",
        ],
    ),
];

fn run(dir: &Path, tool: &str, args: &[&str]) -> Output {
    Command::new(bin(tool))
        .current_dir(dir)
        .args(args)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_EVENT_PATH")
        .env_remove("JENKINS_URL")
        .env_remove("FERRY_LOG")
        .env_remove("KUBECONFIG")
        .env("DOCKER_CONFIG", dir.join("no-docker-config"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn help(tool: &str, path: &[&str], flag: &str) -> String {
    let args: Vec<&str> = path.iter().copied().chain([flag]).collect();
    let o = run(Path::new("."), tool, &args);
    assert_eq!(o.status.code(), Some(0), "{tool} {args:?}");
    String::from_utf8(o.stdout).unwrap()
}

/// The section headings of a help text, in order (`Options:`, `Output:`, `Examples:` …).
fn sections(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| !l.starts_with(' ') && l.ends_with(':'))
        .map(|l| l.trim_end_matches(':'))
        .collect()
}

/// The example command lines under `Examples:`, split into words.
fn examples(text: &str) -> Vec<Vec<String>> {
    let Some(at) = text.find("\nExamples:\n") else {
        return Vec::new();
    };
    text[at + 11..]
        .lines()
        .take_while(|l| l.starts_with("  "))
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[test]
fn every_help_groups_options_in_one_order_and_says_each_default_once() {
    for (tool, subcommands, groups) in BINARIES {
        let root = help(tool, &[], "--help");
        let listed: Vec<&str> = root
            .split("\nCommands:\n")
            .nth(1)
            .unwrap()
            .lines()
            .take_while(|l| l.starts_with("  "))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|c| *c != "help")
            .collect();
        assert_eq!(listed, subcommands, "{tool}: every subcommand is checked");
        for path in std::iter::once(vec![]).chain(subcommands.iter().map(|s| vec![*s])) {
            for flag in ["-h", "--help"] {
                let text = help(tool, &path, flag);
                let shown: Vec<&str> = sections(&text)
                    .into_iter()
                    .filter(|s| HEADINGS.contains(s))
                    .collect();
                let mut want: Vec<&str> = groups.to_vec();
                if tool == "ferry-deploy" && matches!(path.as_slice(), ["once"] | ["run"]) {
                    want.insert(3, "Controller");
                }
                assert_eq!(shown, want, "{tool} {path:?} {flag}:\n{text}");
                for opt in ["-v, --verbose", "-q, --quiet"] {
                    let output = text.split("\nOutput:\n").nth(1).unwrap();
                    assert!(output.contains(opt), "{tool} {path:?}: {opt} under Output");
                }
                if flag == "-h" {
                    for line in text.lines().filter(|l| l.contains("[default: ")) {
                        let prose = line.split("[default: ").next().unwrap();
                        assert!(
                            !prose.to_lowercase().contains("default"),
                            "{tool} {path:?}: a default said twice: {line}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn every_subcommand_help_has_two_or_three_examples_of_itself() {
    for (tool, subcommands, _) in BINARIES {
        assert!(!examples(&help(tool, &[], "--help")).is_empty(), "{tool}");
        for sub in subcommands {
            for flag in ["-h", "--help"] {
                let text = help(tool, &[sub], flag);
                let found = examples(&text);
                assert!(
                    (2..=3).contains(&found.len()),
                    "{tool} {sub} {flag}: {found:?}\n{text}"
                );
                for e in found {
                    assert_eq!((e[0].as_str(), e[1].as_str()), (tool, *sub), "{e:?}");
                }
            }
        }
    }
}

/// What the examples of ferry-detect and ferry-bump expect: an image `app` built from
/// `python:3.11-slim`, four commits (HEAD~3 exists).
fn fixture() -> GitRepo {
    let r = GitRepo::new();
    r.write(
        "app/Dockerfile",
        "FROM python:3.11-slim\nCOPY main.py .\nCMD [\"python\", \"main.py\"]\n",
    );
    r.write("app/main.py", "print('hello')\n");
    r.write("app/README.md", "# app\n");
    r.commit("first");
    for i in 2..=4 {
        r.write("app/main.py", &format!("print('hello {i}')\n"));
        r.commit(&format!("change {i}"));
    }
    r
}

/// Examples that need a registry or a cluster: only parsed here.
fn needs_network(tool: &str, args: &[String]) -> bool {
    let sub = args[0].as_str();
    let any = |w: &str| args.iter().any(|a| a == w);
    match tool {
        "ferry-deploy" => true,
        "ferry-registry" => sub != "parse",
        "ferry-bump" => matches!(sub, "check" | "refresh") || any("--pin"),
        _ => any("published"),
    }
}

#[test]
fn every_example_runs_or_at_least_parses() {
    let mut ran = 0;
    for (tool, subcommands, _) in BINARIES {
        let mut all = examples(&help(tool, &[], "--help"));
        for sub in subcommands {
            all.extend(examples(&help(tool, &[sub], "--help")));
        }
        for e in all {
            let args: Vec<&str> = e[1..].iter().map(String::as_str).collect();
            let r = fixture();
            if needs_network(tool, &e[1..]) {
                let mut parse_only = args.clone();
                parse_only.push("--help");
                let o = run(r.path(), tool, &parse_only);
                assert_eq!(o.status.code(), Some(0), "{e:?} parses");
            } else {
                let o = run(r.path(), tool, &args);
                let err = String::from_utf8_lossy(&o.stderr);
                assert_eq!(o.status.code(), Some(0), "{e:?}: {err}");
                assert!(!o.stdout.is_empty(), "{e:?} prints its answer");
                assert!(err.is_empty(), "{e:?}: {err}");
                ran += 1;
            }
        }
    }
    assert!(ran >= 20, "only {ran} examples ran offline");
}

#[test]
fn quiet_and_verbose_are_accepted_by_every_binary_and_exclude_each_other() {
    let r = fixture();
    for (tool, args) in [
        ("ferry-registry", vec!["parse", "nginx"]),
        ("ferry-detect", vec!["graph"]),
        ("ferry-bump", vec!["list"]),
    ] {
        for flag in ["-q", "--quiet", "-v", "-vv", "--verbose"] {
            let mut a = args.clone();
            a.push(flag);
            let o = run(r.path(), tool, &a);
            assert_eq!(o.status.code(), Some(0), "{tool} {a:?}");
        }
        let mut a = args.clone();
        a.extend(["-q", "-v"]);
        let o = run(r.path(), tool, &a);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{tool} {a:?}: -q and -v exclude each other"
        );
    }
    let o = run(r.path(), "ferry-deploy", &["-q", "-v", "plan"]);
    assert_eq!(o.status.code(), Some(2), "ferry-deploy -q -v");
}

#[test]
fn quiet_leaves_out_warnings_but_not_the_answer() {
    let r = fixture();
    r.write("broken/Dockerfile", "FROM\n");
    r.commit("a broken Dockerfile");
    let o = run(r.path(), "ferry-detect", &["graph"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("ferry-detect: warning: "), "{err}");
    let quiet = run(r.path(), "ferry-detect", &["graph", "-q"]);
    assert_eq!(quiet.status.code(), o.status.code());
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "");
    assert_eq!(quiet.stdout, o.stdout);
}

/// A kubeconfig whose API server refuses connections.
fn refused_kubeconfig(dir: &Path) -> std::path::PathBuf {
    let port = ferry_tests::free_port();
    let kc = dir.join("kubeconfig");
    std::fs::write(&kc, format!("apiVersion: v1\nkind: Config\nclusters:\n- name: f\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: f\n  context:\n    cluster: f\n    user: f\ncurrent-context: f\nusers:\n- name: f\n  user: {{}}\n")).unwrap();
    kc
}

#[test]
fn ferry_deploy_dash_v_shows_debug_logs_dash_vv_trace_and_ferry_log_wins() {
    let dir = tempfile::tempdir().unwrap();
    let kc = refused_kubeconfig(dir.path());
    let kc = kc.to_str().unwrap();
    let stderr = |args: &[&str], ferry_log: Option<&str>| {
        let mut c = Command::new(bin("ferry-deploy"));
        c.args(["--kubeconfig", kc, "plan"])
            .args(args)
            .env_remove("FERRY_LOG")
            .env("NO_COLOR", "1");
        if let Some(f) = ferry_log {
            c.env("FERRY_LOG", f);
        }
        let o = c.output().unwrap();
        assert_eq!(o.status.code(), Some(3), "{args:?}");
        String::from_utf8(o.stderr).unwrap()
    };
    let plain = stderr(&[], None);
    assert!(
        !plain.contains("DEBUG") && !plain.contains("TRACE"),
        "{plain}"
    );
    let v = stderr(&["-v"], None);
    assert!(v.contains("DEBUG") && !v.contains("TRACE"), "{v}");
    let vv = stderr(&["-vv"], None);
    assert!(vv.contains("TRACE"), "{vv}");
    let ruled = stderr(&["-vv"], Some("error"));
    assert!(
        !ruled.contains("DEBUG") && !ruled.contains("TRACE"),
        "{ruled}"
    );
    let q = stderr(&["-q"], None);
    assert!(q.starts_with("ferry-deploy: Kubernetes API at "), "{q}");
}
