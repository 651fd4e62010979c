//! `ferry-detect why IMAGE PATH`: the argument checks and the text rendering of
//! [`ferry_detect::why`]'s answer.

use std::path::Path;

use ferry_cli::Failure;
use ferry_detect::decide::ContextMode;
use ferry_detect::git::Repo;
use ferry_detect::project::Project;
use ferry_detect::why::{self, Answer, Kind};

/// PATH as the library takes it: repository-relative. An absolute path inside the work tree is
/// made relative; anything outside the repository is a usage error naming it.
pub fn repo_relative(repo: &Repo, path: &str) -> Result<String, Failure> {
    let p = Path::new(path);
    let rel = if p.is_absolute() {
        let canonical = |q: &Path| std::fs::canonicalize(q).unwrap_or_else(|_| q.to_path_buf());
        let root = canonical(repo.path());
        let inside = canonical(p)
            .strip_prefix(&root)
            .ok()
            .and_then(|r| r.to_str().map(str::to_string));
        match inside {
            Some(r) => r,
            None => {
                return Err(Failure::usage(format!(
                    "path {path:?} is outside the repository {}",
                    root.display()
                )));
            }
        }
    } else {
        path.to_string()
    };
    why::repo_path(&rel).map_err(|e| Failure::usage(e.to_string()))
}

/// The answer as text: one line saying input or not and why, then the deciding place
/// (`FILE:LINE: text`, or `FILE` when no line decides); for a base image, the base's answer
/// indented below.
pub fn render(out: &mut String, project: &Project<'_>, a: &Answer, mode: ContextMode) {
    render_at(out, project, a, mode, "");
}

fn render_at(out: &mut String, project: &Project<'_>, a: &Answer, mode: ContextMode, indent: &str) {
    let verdict = if a.input {
        "is an input of"
    } else {
        "is not an input of"
    };
    out.push_str(&format!(
        "{indent}{} {verdict} {}: {}\n",
        a.path,
        a.image,
        sentence(project, a, mode)
    ));
    match (&a.because.file, a.because.line) {
        (Some(file), Some(line)) => out.push_str(&format!(
            "{indent}{file}:{line}: {}\n",
            a.because.text.as_deref().unwrap_or("")
        )),
        (Some(file), None) => out.push_str(&format!("{indent}{file}\n")),
        (None, _) => {}
    }
    if let Some(via) = &a.via {
        render_at(out, project, via, mode, &format!("{indent}  "));
    }
}

/// What decides, in words.
fn sentence(project: &Project<'_>, a: &Answer, mode: ContextMode) -> String {
    let full = mode == ContextMode::Full;
    match a.because.kind {
        Kind::Dockerfile => "it is the image's Dockerfile".into(),
        Kind::IgnoreFile => {
            "it is one of the image's ignore files (adding, changing or removing it changes what the context sends)".into()
        }
        Kind::Copy => read_by(project, "COPY", a),
        Kind::Add => read_by(project, "ADD", a),
        Kind::Mount => read_by(project, "RUN --mount", a),
        Kind::Config => "its ferry.toml entry lists it in extra_inputs".into(),
        Kind::BaseImage => format!(
            "it is an input of the in-repo base image {}, which this image builds on",
            a.via.as_ref().map_or("?", |v| v.image.as_str())
        ),
        Kind::Ignored => "the ignore file excludes it from the build context".into(),
        Kind::UnreachableStage if full => {
            "full context mode counts every file the context sends (only a stage the target never reaches reads it)".into()
        }
        Kind::UnreachableStage => "only a stage the target never reaches reads it".into(),
        Kind::NotCopied if full => {
            "full context mode counts every file the context sends (nothing reads it)".into()
        }
        Kind::NotCopied => "it is in the build context, but nothing reads it".into(),
        Kind::OutsideContext => {
            let context = project.image(&a.image).map_or("?", |i| i.context.as_str());
            format!("it is outside the image's build context ({context})")
        }
    }
}

/// An instruction of the image's own Dockerfile, or an in-repo base's ONBUILD trigger (its
/// line is in the base's Dockerfile).
fn read_by(project: &Project<'_>, instruction: &str, a: &Answer) -> String {
    let own = project
        .image(&a.image)
        .is_ok_and(|i| a.because.file.as_deref() == Some(i.dockerfile.as_str()));
    if own {
        format!("{instruction} in a stage the target reaches reads it")
    } else {
        format!("an ONBUILD {instruction} of the in-repo base image it is built FROM reads it")
    }
}
