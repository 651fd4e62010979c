//! ferry-detect (work in progress)
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod dockerfile;
pub mod expand;
pub mod ignore;
