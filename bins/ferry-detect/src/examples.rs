//! The examples of every `--help` (tests/tests/help.rs runs the ones that need no registry).

/// `ferry-detect --help`.
pub const ROOT: &str = "\
Examples:
  # The images the last commit must rebuild
  ferry-detect changed
  # Build waves of every image, as a Mermaid diagram
  ferry-detect graph --format mermaid

Exit codes: 0 success (whether or not anything changed), 1 bad input (unparseable Dockerfile, ignore file or ferry.toml; unknown image or revision; dependency cycle), 2 usage error, 3 operational error (git).";

/// `ferry-detect changed --help`.
pub const CHANGED: &str = "\
Examples:
  # The images the last commit must rebuild (HEAD's first parent to HEAD), with reasons
  ferry-detect changed
  # Everything that changed since three commits ago, as JSON
  ferry-detect changed --base HEAD~3 --json
  # Only the images whose :latest was built from an older revision (asks the registry)
  ferry-detect changed --base published --published-tag latest";

/// `ferry-detect graph --help`.
pub const GRAPH: &str = "\
Examples:
  # Every image, its bases and build waves, as JSON
  ferry-detect graph
  # The same one commit ago, as a Graphviz graph
  ferry-detect graph --rev HEAD~1 --format dot";

/// `ferry-detect context --help`.
pub const CONTEXT: &str = "\
Examples:
  # The files docker build would send for the image of app/Dockerfile
  ferry-detect context app
  # The same as a JSON array
  ferry-detect context app --json";

/// `ferry-detect inputs --help`.
pub const INPUTS: &str = "\
Examples:
  # The files whose change rebuilds the image of app/Dockerfile
  ferry-detect inputs app
  # The same one commit ago
  ferry-detect inputs app --rev HEAD~1";

/// `ferry-detect why --help`.
pub const WHY: &str = "\
Examples:
  # Whether app/main.py is an input of the image app, and the line that decides it
  ferry-detect why app app/main.py
  # The same when every file of the context counts
  ferry-detect why app app/README.md --context-mode full";
