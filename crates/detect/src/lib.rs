//! `ferry-detect`: which images a push must rebuild, derived the way BuildKit decides what to
//! send.
//!
//! * [`dockerfile::Dockerfile`] — stages, bases, context reads and image references with spans
//!   (BuildKit semantics on top of the `parse-dockerfile` syntax tree).
//! * [`ignore::IgnoreRules`] — `.dockerignore` with moby/patternmatcher's semantics.
//! * [`git::Repo`] — revisions, trees, blobs (partial clones too) and a tree diff that skips
//!   identical subtrees.
//! * [`project::Project`] — a repository at one commit: images (discovered + `ferry.toml`),
//!   their models and the graph of in-repo base images, with build waves.
//! * [`changed::changed`] — the images to rebuild between two commits, each with its reasons
//!   (and the tags and build args CI must use); [`revision`] picks the commits (explicitly,
//!   from a GitHub event, or from Jenkins' git variables the caller read);
//!   [`changed::changed_published`] compares each image with the revision its published tag was
//!   built from (the caller asks the registry and passes the answers in).
//! * [`why::why`] — the reverse question: whether one file is an input of one image, and the
//!   line that decides it; [`decide`] is the judgement it shares with [`changed`].
//!
//! ```no_run
//! # fn demo() -> ferry_detect::Result<()> {
//! use ferry_detect::{changed, git::Repo, revision};
//! let repo = Repo::open(std::path::Path::new("."))?;
//! let sel = revision::explicit(&repo, Some("HEAD~1"), None)?;
//! let report = changed::changed(&repo, &sel, &changed::ChangedOptions::default())?;
//! for img in &report.images {
//!     let reasons: Vec<String> = img.reasons.iter().map(ToString::to_string).collect();
//!     eprintln!("{}: {}", img.name, reasons.join("; "));
//! }
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod bump;
pub mod changed;
pub mod ci;
pub mod decide;
pub mod dockerfile;
mod error;
pub mod expand;
pub mod git;
pub mod ignore;
pub mod images;
pub mod project;
pub mod revision;
pub mod snapshot;
pub mod why;
pub mod worktree;

pub use error::{
    ConfigProblem, Error, EventProblem, GitProblem, ImageProblem, PathProblem, Result,
};
