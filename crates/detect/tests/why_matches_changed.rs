//! `why` gives the same answer as `changed`: over generated repositories (Dockerfiles with
//! COPY/ADD/mounts/`--from` stages/ONBUILD, ignore files with exceptions, targets, in-repo
//! bases, `extra_inputs`, a context at the root), for every image and every path — each file of
//! the repository, and each path a file could be added at — `why` says input exactly when a
//! commit changing that path alone makes `changed` rebuild the image, in both context modes.
//! And `inputs` agrees with `why` on the files of each context.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use ferry_detect::changed::{ChangedOptions, changed};
use ferry_detect::decide::ContextMode;
use ferry_detect::git::Repo;
use ferry_detect::project::Project;
use ferry_detect::revision::{Basis, Selection};
use ferry_detect::why::{Kind, why};
use git2::{Oid, Repository, Signature};
use proptest::prelude::*;

const DIRS: [&str; 3] = ["a", "b", "c"];
const FILES: [&str; 8] = [
    "README.md",
    "KEEP.md",
    "src/main.py",
    "src/gen/x.py",
    "lib/l.txt",
    "x.txt",
    "onb.txt",
    "a.tmp",
];
const ROOT_FILES: [&str; 4] = ["shared/p.txt", "shared/old/q.txt", "docs/d.md", "top.txt"];
const BASES: [&str; 5] = ["alpine:3", "acme/a:1", "acme/b", "scratch", "acme/c:2"];
const READS: [&str; 12] = [
    "COPY . /app",
    "COPY src /src",
    "COPY src/*.py /src/",
    "COPY *.md /docs/",
    "ADD x.txt /x",
    "ADD https://example.com/f /f",
    "RUN --mount=type=bind,source=lib,target=/l true",
    "RUN --mount=type=bind,target=/c true",
    "RUN --mount=type=cache,target=/cache true",
    "ONBUILD COPY onb.txt /o",
    "ONBUILD ADD lib /lib",
    "COPY top.txt a.tmp /t/",
];
const IGNORES: [&str; 7] = [
    "*.md",
    "!KEEP.md",
    "src/gen",
    "**/*.tmp",
    "lib",
    "!lib/l.txt",
    "*",
];
const EXTRA: [&str; 3] = ["shared/**", "!shared/old/**", "b/src/**"];

/// One generated image: the Dockerfile in `dir`, its ignore files and its ferry.toml entry.
#[derive(Debug, Clone)]
struct Spec {
    base0: usize,
    reads0: Vec<usize>,
    /// A second stage: its base (`None`: FROM s0) and reads; `copy_from`: COPY --from=s0.
    stage1: Option<(Option<usize>, Vec<usize>, bool)>,
    /// 0: `<Dockerfile>.dockerignore`, 1: `<context>/.dockerignore`, 2: both.
    ignore: Option<(u8, Vec<usize>)>,
    repository: bool,
    target_s0: bool,
    extra: Vec<usize>,
    root_context: bool,
    files: Vec<bool>,
}

fn spec() -> impl Strategy<Value = Spec> {
    let idx = |n: usize| 0..n;
    (
        idx(BASES.len()),
        prop::collection::vec(idx(READS.len()), 0..4),
        prop::option::of((
            prop::option::of(idx(BASES.len())),
            prop::collection::vec(idx(READS.len()), 0..3),
            any::<bool>(),
        )),
        prop::option::of((0u8..3, prop::collection::vec(idx(IGNORES.len()), 1..4))),
        (any::<bool>(), any::<bool>(), any::<bool>()),
        prop::collection::vec(idx(EXTRA.len()), 0..3),
        prop::collection::vec(any::<bool>(), FILES.len()),
    )
        .prop_map(
            |(
                base0,
                reads0,
                stage1,
                ignore,
                (repository, target_s0, root_context),
                extra,
                files,
            )| {
                Spec {
                    base0,
                    reads0,
                    stage1,
                    ignore,
                    repository,
                    target_s0,
                    extra,
                    root_context,
                    files,
                }
            },
        )
}

fn dockerfile(s: &Spec) -> String {
    let mut t = format!("FROM {} AS s0\n", BASES[s.base0]);
    for r in &s.reads0 {
        t.push_str(READS[*r]);
        t.push('\n');
    }
    if let Some((base, reads, copy_from)) = &s.stage1 {
        t.push_str(&format!("FROM {} AS s1\n", base.map_or("s0", |b| BASES[b])));
        if *copy_from {
            t.push_str("COPY --from=s0 /a /b\n");
        }
        for r in reads {
            t.push_str(READS[*r]);
            t.push('\n');
        }
    }
    t
}

/// The repository's files: path → content.
fn files_of(specs: &[Spec], root: &[bool]) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let mut toml = String::new();
    for (dir, s) in DIRS.iter().zip(specs) {
        files.insert(format!("{dir}/Dockerfile"), dockerfile(s));
        for (f, present) in FILES.iter().zip(&s.files) {
            if *present {
                files.insert(format!("{dir}/{f}"), format!("{dir}/{f}\n"));
            }
        }
        let context = if s.root_context { "" } else { dir };
        if let Some((which, pats)) = &s.ignore {
            let text: String = pats.iter().map(|p| format!("{}\n", IGNORES[*p])).collect();
            if *which != 1 {
                files.insert(format!("{dir}/Dockerfile.dockerignore"), text.clone());
            }
            if *which != 0 {
                let at = if context.is_empty() {
                    String::new()
                } else {
                    format!("{context}/")
                };
                files.insert(format!("{at}.dockerignore"), text);
            }
        }
        toml.push_str(&format!("[images.\"{dir}\"]\n"));
        if s.repository {
            toml.push_str(&format!("repository = \"acme/{dir}\"\n"));
        }
        if s.target_s0 && s.stage1.is_some() {
            toml.push_str("target = \"s0\"\n");
        }
        if s.root_context {
            toml.push_str("context = \".\"\n");
        }
        if !s.extra.is_empty() {
            let list: Vec<String> = s.extra.iter().map(|e| format!("{:?}", EXTRA[*e])).collect();
            toml.push_str(&format!("extra_inputs = [{}]\n", list.join(", ")));
        }
    }
    files.insert("ferry.toml".into(), toml);
    for (f, present) in ROOT_FILES.iter().zip(root) {
        if *present {
            files.insert(f.to_string(), format!("{f}\n"));
        }
    }
    files
}

/// Every path worth asking about: the files, and the paths a file could be added at.
fn universe(files: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut all: BTreeSet<String> = files.keys().cloned().collect();
    for dir in DIRS {
        for f in FILES {
            all.insert(format!("{dir}/{f}"));
        }
        all.insert(format!("{dir}/.dockerignore"));
        all.insert(format!("{dir}/Dockerfile.dockerignore"));
    }
    all.extend(ROOT_FILES.iter().map(|f| f.to_string()));
    all.insert(".dockerignore".into());
    all
}

fn commit(repo: &Repository, parent: Option<Oid>, files: &[(String, Vec<u8>)]) -> Oid {
    let base = parent.map(|p| repo.find_commit(p).unwrap().tree().unwrap());
    let tree = ferry_core::git::tree_with_files(repo, base.as_ref(), files).unwrap();
    let tree = repo.find_tree(tree).unwrap();
    let sig = Signature::now("t", "t@t").unwrap();
    let parents: Vec<git2::Commit<'_>> = parent
        .map(|p| repo.find_commit(p).unwrap())
        .into_iter()
        .collect();
    let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
    repo.commit(None, &sig, &sig, "c", &tree, &refs).unwrap()
}

/// A change to `path` alone: append a comment line (every file kind here reads `#` lines as
/// comments, so Dockerfiles, ignore files and ferry.toml keep their meaning), or add the file.
fn changed_content(files: &BTreeMap<String, String>, path: &str) -> Vec<u8> {
    match files.get(path) {
        Some(c) => format!("{c}# changed\n").into_bytes(),
        None => b"# added\n".to_vec(),
    }
}

fn check(specs: &[Spec], root: &[bool]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let raw = Repository::init(dir.path()).unwrap();
    let files = files_of(specs, root);
    let list: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    let c0 = commit(&raw, None, &list);
    let repo = Repo::open(dir.path()).unwrap();
    let project = Project::load(&repo, c0).unwrap();
    let images: Vec<String> = project.images.iter().map(|i| i.name.clone()).collect();
    prop_assert_eq!(images.len(), DIRS.len());
    for path in universe(&files) {
        let head = commit(
            &raw,
            Some(c0),
            &[(path.clone(), changed_content(&files, &path))],
        );
        for mode in [ContextMode::Precise, ContextMode::Full] {
            let selection = Selection {
                base: Some(c0),
                head,
                rebuild_all: None,
                how: Basis::Explicit {
                    base: "test".into(),
                },
            };
            let options = ChangedOptions {
                mode,
                ..Default::default()
            };
            let report = changed(&repo, &selection, &options);
            for image in &images {
                let answer = why(&project, image, &path, mode);
                match (&report, answer) {
                    (Ok(r), Ok(a)) => {
                        let rebuilt = r.images.iter().any(|i| &i.name == image);
                        prop_assert_eq!(
                            a.input,
                            rebuilt,
                            "{} {} {:?}: why says {:?}, changed says {:?}\n{:#?}",
                            image,
                            path,
                            mode,
                            a.because,
                            r.images
                                .iter()
                                .find(|i| &i.name == image)
                                .map(|i| &i.reasons),
                            files
                        );
                    }
                    (Err(e), Err(w)) => prop_assert_eq!(e.to_string(), w.to_string()),
                    (r, a) => prop_assert!(false, "{:?} vs {:?}", r.as_ref().err(), a.err()),
                }
            }
        }
    }
    inputs_agree(&project, &files)
}

/// `inputs` lists a context file ⇒ `why` says input; `why` says a reachable instruction
/// reads it ⇒ `inputs` lists it.
fn inputs_agree(
    project: &Project<'_>,
    files: &BTreeMap<String, String>,
) -> Result<(), TestCaseError> {
    for img in &project.images {
        let Ok(listed) = project.input_files(&img.name) else {
            continue;
        };
        let listed: BTreeSet<String> = listed.into_iter().collect();
        let prefix = img.context_prefix();
        for path in files.keys() {
            let Some(rel) = path.strip_prefix(&prefix) else {
                continue;
            };
            let Ok(a) = why(project, &img.name, path, ContextMode::Precise) else {
                continue;
            };
            if listed.contains(rel) {
                prop_assert!(a.input, "{} lists {} but why: {:?}", img.name, path, a);
            }
            if a.input && matches!(a.because.kind, Kind::Copy | Kind::Add | Kind::Mount) {
                prop_assert!(listed.contains(rel), "{} {}: {:?}", img.name, path, a);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn why_says_input_exactly_when_a_change_to_that_path_alone_rebuilds_the_image(
        specs in prop::collection::vec(spec(), DIRS.len()),
        root in prop::collection::vec(any::<bool>(), ROOT_FILES.len()),
    ) {
        check(&specs, &root)?;
    }
}
