//! The examples of every `--help` (tests/tests/help.rs runs the ones that need no registry).

/// `ferry-bump --help`.
pub const ROOT: &str = "\
Examples:
  # Every image reference in every Dockerfile
  ferry-bump list
  # Move every python base to 3.12-slim, showing the diff only
  ferry-bump set python:3.12-slim --dry-run

Exit codes: 0 success; 1 something was skipped (an unparseable Dockerfile), stale pins (check), a refused commit, an invalid or unknown reference; 2 usage error; 3 registry or git error.";

/// `ferry-bump set --help`.
pub const SET: &str = "\
Examples:
  # Show the edits that move every python base image to 3.12-slim; change nothing
  ferry-bump set python:3.12-slim --dry-run
  # Make them and commit, subject chosen
  ferry-bump set python:3.12-slim --commit --message bump-python
  # Pin the digest the registry serves for the tag too (asks the registry)
  ferry-bump set python:3.12-slim --pin --commit";

/// `ferry-bump list --help`.
pub const LIST: &str = "\
Examples:
  # Every image reference in every Dockerfile, with file and line
  ferry-bump list
  # The same as JSON
  ferry-bump list --json";

/// `ferry-bump check --help`.
pub const CHECK: &str = "\
Examples:
  # Exit 1 when a pinned digest is no longer what its tag serves (asks the registry)
  ferry-bump check
  # The same as JSON, with the current digest of each pin
  ferry-bump check --json";

/// `ferry-bump refresh --help`.
pub const REFRESH: &str = "\
Examples:
  # Show which stale pins would move, as a diff (asks the registry)
  ferry-bump refresh --dry-run
  # Re-pin them in one commit
  ferry-bump refresh --commit";
