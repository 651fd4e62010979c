//! Editing a Helm values file: set `<key>.repository`, `<key>.tag` and `<key>.digest`,
//! changing only those scalars. Reads the file with `yamledit`'s small block reader
//! ([`crate::yamledit::block`]); never with its internals.

use std::ops::Range;

use ferry_core::Reference;

use crate::yamledit::ScalarError;
use crate::yamledit::block::{Line, children, documents, edit_value, replace, scan, value};

/// What is wrong with a Helm values file at one key (the key and file are in
/// [`crate::Error::HelmValues`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelmProblem {
    /// The key path has an empty segment (`image..tag`).
    EmptySegment,
    /// The key path is empty.
    EmptyPath,
    /// The new `repository`, `tag` or `digest` (`what`) holds characters no image reference has.
    NotAnImage {
        /// `repository`, `tag` or `digest`.
        what: &'static str,
        /// The value refused.
        value: String,
    },
    /// The key is absent.
    Missing,
    /// The key holds a list, not a mapping.
    List,
    /// The key appears twice in the same mapping.
    Duplicate {
        /// The key.
        key: String,
    },
    /// The entry uses flow style, an anchor, an alias, a tag or a block scalar.
    NotBlockStyle {
        /// The key.
        key: String,
        /// Its value as written.
        value: String,
    },
    /// The key holds a scalar where a mapping with repository and tag belongs.
    Scalar {
        /// The scalar as written.
        value: String,
    },
    /// The new repository is not on the registry the values file names in `<key>.registry`.
    OtherRegistry {
        /// The new repository.
        repository: String,
        /// The registry written in the values file.
        registry: String,
    },
    /// The scalar cannot be replaced in place.
    Value(ScalarError),
}

impl std::fmt::Display for HelmProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::EmptySegment => f.write_str("empty key segment in the key path"),
            Self::EmptyPath => f.write_str("empty key path"),
            Self::NotAnImage { what, value } => {
                write!(f, "{what} {value:?} is not an image {what}")
            }
            Self::Missing => f.write_str("missing"),
            Self::List => f.write_str("is a list, not a mapping"),
            Self::Duplicate { key } => write!(f, "`{key}` appears twice in the same mapping"),
            Self::NotBlockStyle { key, value } => write!(
                f,
                "`{key}: {value}` uses flow style, an anchor, an alias, a tag or a block scalar; ferry edits plain block-style values only"
            ),
            Self::Scalar { value } => {
                write!(
                    f,
                    "is the scalar {value:?}, not a mapping with repository and tag"
                )
            }
            Self::OtherRegistry {
                repository,
                registry,
            } => write!(
                f,
                "the new repository {repository} is not on the registry {registry} the values file names"
            ),
            Self::Value(e) => write!(f, "{e}"),
        }
    }
}

/// Characters a repository, tag or digest written into a values file may hold: enough for every
/// image reference, and none that needs escaping inside quotes.
fn helm_safe(value: &str) -> bool {
    !value.is_empty()
        && value.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/' | b':' | b'@' | b'+')
        })
}

/// The mapping entry `key` directly under the block `block` (a range of `lines`); `Ok(None)`
/// when absent. Sequences, flow style, anchors and duplicate keys are errors.
fn helm_child(
    text: &str,
    lines: &[Line],
    block: Range<usize>,
    key: &str,
) -> Result<Option<usize>, HelmProblem> {
    let Some(first) = lines[block.clone()].iter().find(|l| !l.blank) else {
        return Ok(None);
    };
    if first.item {
        return Err(HelmProblem::List);
    }
    let col = first.key_col;
    let mut found = None;
    for j in block {
        let l = &lines[j];
        if l.blank || l.key_col != col || l.item || l.key.as_deref() != Some(key) {
            continue;
        }
        if found.is_some() {
            return Err(HelmProblem::Duplicate {
                key: key.to_string(),
            });
        }
        found = Some(j);
    }
    if let Some(j) = found
        && let Some(v) = value(text, &lines[j])
        && v.starts_with(['{', '[', '&', '*', '!', '|', '>'])
    {
        return Err(HelmProblem::NotBlockStyle {
            key: key.to_string(),
            value: v.to_string(),
        });
    }
    Ok(found)
}

/// Set the image of a Helm values file at `key_path` (`image`, `sensor.image`):
/// `<key>.repository` and `<key>.tag`; when `<key>.digest` exists it gets `digest` and `tag`
/// keeps the bare tag, otherwise `tag` becomes `TAG@DIGEST`. Returns the new text (equal to
/// `text` when nothing changes).
///
/// Only those scalars change: comments, key order and indentation stay byte for byte, and each
/// value keeps the style it had (plain, single- or double-quoted). A plain value stays plain
/// when YAML 1.1 and 1.2 both read the new one back as that string (`sha256:…`, `1.1@sha256:…`);
/// one they would read as a number, a date, a boolean or null (`tag: 1.10`) is written
/// double-quoted, since Helm would otherwise render another string. `repository` keeps its spelling when it names the same repository as written
/// (`nginx` and `docker.io/library/nginx`); with a `<key>.registry` entry, `repository` is
/// written without that registry. Missing keys, lists, flow style (`image: {…}`), anchors,
/// block scalars and multi-line values are errors naming `file` and the key: ferry never
/// guesses at a chart's layout.
///
/// ```
/// let values = "# app\nimage:\n  repository: ghcr.io/acme/app # where\n  tag: \"1.0\"\n";
/// let out = ferry_deploy::helm::set_helm_image(
///     "charts/app/values.yaml", values, "image", "ghcr.io/acme/app", "1.1", "sha256:ab",
/// ).unwrap();
/// assert_eq!(out, "# app\nimage:\n  repository: ghcr.io/acme/app # where\n  tag: \"1.1@sha256:ab\"\n");
/// ```
pub fn set_helm_image(
    file: &str,
    text: &str,
    key_path: &str,
    repository: &str,
    tag: &str,
    digest: &str,
) -> Result<String, crate::Error> {
    let name = Reference::parse(repository).ok().map(|r| r.name());
    edit(file, text, key_path, (repository, name), tag, digest)
}

/// [`set_helm_image`] for a decision's target, already a [`Reference`] (parsed once, never
/// again here): its name, tag and digest. `None` when it has no tag or no digest.
pub fn set_helm_target(
    file: &str,
    text: &str,
    key_path: &str,
    target: &Reference,
) -> Option<Result<String, crate::Error>> {
    let (tag, digest) = (target.tag()?, target.digest()?.to_string());
    let name = target.name();
    Some(edit(
        file,
        text,
        key_path,
        (&name, Some(name.clone())),
        tag,
        &digest,
    ))
}

/// The edit: `repository` is the new repository as given, with its canonical name when it is
/// one.
fn edit(
    file: &str,
    text: &str,
    key_path: &str,
    (repository, canonical): (&str, Option<String>),
    tag: &str,
    digest: &str,
) -> Result<String, crate::Error> {
    let err = |key: &str, problem: HelmProblem| crate::Error::HelmValues {
        file: file.to_string(),
        key: key.to_string(),
        problem,
    };
    if key_path.split('.').any(str::is_empty) {
        return Err(err(key_path, HelmProblem::EmptySegment));
    }
    for (what, v) in [("repository", repository), ("tag", tag), ("digest", digest)] {
        if !helm_safe(v) {
            let value = v.to_string();
            return Err(err(key_path, HelmProblem::NotAnImage { what, value }));
        }
    }
    let doc = documents(text)
        .into_iter()
        .find(|d| !text[d.clone()].trim().is_empty())
        .unwrap_or(0..text.len());
    let lines = scan(text, doc);
    let image = helm_find(text, &lines, key_path).map_err(|(k, m)| err(&k, m))?;
    let block = children(&lines, image, lines[image].key_col);
    if lines[block.clone()]
        .iter()
        .find(|l| !l.blank)
        .is_some_and(|l| l.item)
    {
        return Err(err(key_path, HelmProblem::List));
    }
    let entry = |name: &str| {
        let key = format!("{key_path}.{name}");
        helm_child(text, &lines, block.clone(), name).map_err(|m| err(&key, m))
    };
    let missing = |name: &str| err(&format!("{key_path}.{name}"), HelmProblem::Missing);
    let repo_line = entry("repository")?.ok_or_else(|| missing("repository"))?;
    let tag_line = entry("tag")?.ok_or_else(|| missing("tag"))?;
    let digest_line = entry("digest")?;
    let registry = entry("registry")?.map(|j| value(text, &lines[j]).unwrap_or(""));
    let repo_value = helm_repository(
        value(text, &lines[repo_line]).unwrap_or(""),
        registry,
        (repository, canonical.as_deref()),
    )
    .map_err(|m| err(&format!("{key_path}.repository"), m))?;
    let tag_value = match digest_line {
        Some(_) => tag.to_string(),
        None => format!("{tag}@{digest}"),
    };
    let mut edits = Vec::new();
    let mut plan = vec![
        ("repository", repo_line, repo_value.as_str()),
        ("tag", tag_line, tag_value.as_str()),
    ];
    if let Some(j) = digest_line {
        plan.push(("digest", j, digest));
    }
    for (name, j, new) in plan {
        let key = format!("{key_path}.{name}");
        let edit =
            edit_value(text, &lines, j, new).map_err(|e| err(&key, HelmProblem::Value(e)))?;
        if let Some(e) = edit {
            edits.push(e);
        }
    }
    edits.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
    let mut out = text.to_string();
    for (r, v) in edits {
        replace(&mut out, r, &v);
    }
    Ok(out)
}

/// Whether Helm values `text` set anything of the image at `key_path` (its `repository`, `tag`
/// or `digest`, or the key itself as a scalar or in a layout ferry cannot read): used to see
/// whether inline values (`helm.values` of an Argo CD Application) would override a values file.
pub fn helm_sets_image(text: &str, key_path: &str) -> bool {
    let doc = documents(text)
        .into_iter()
        .find(|d| !text[d.clone()].trim().is_empty())
        .unwrap_or(0..text.len());
    let lines = scan(text, doc);
    match helm_find(text, &lines, key_path) {
        Err((_, problem)) => problem != HelmProblem::Missing,
        Ok(image) => {
            let block = children(&lines, image, lines[image].key_col);
            ["repository", "tag", "digest"]
                .iter()
                .any(|k| helm_child(text, &lines, block.clone(), k).map_or(true, |j| j.is_some()))
        }
    }
}

/// The line of the mapping at `key_path`; errors carry the dotted key that failed.
fn helm_find(text: &str, lines: &[Line], key_path: &str) -> Result<usize, (String, HelmProblem)> {
    let mut block = 0..lines.len();
    let mut at = None;
    let mut walked = String::new();
    for seg in key_path.split('.') {
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(seg);
        let j = helm_child(text, lines, block.clone(), seg)
            .map_err(|m| (parent_of(&walked), m))?
            .ok_or_else(|| (walked.clone(), HelmProblem::Missing))?;
        if let Some(v) = value(text, &lines[j]) {
            let value = v.to_string();
            return Err((walked, HelmProblem::Scalar { value }));
        }
        block = children(lines, j, lines[j].key_col);
        at = Some(j);
    }
    at.ok_or_else(|| (key_path.to_string(), HelmProblem::EmptyPath))
}

fn parent_of(dotted: &str) -> String {
    match dotted.rsplit_once('.') {
        Some((parent, _)) => parent.to_string(),
        None => dotted.to_string(),
    }
}

/// What `<key>.repository` should read: the written spelling when it already names `new`
/// (whose canonical name, when it is a reference, is `new_name`).
fn helm_repository(
    written: &str,
    registry: Option<&str>,
    (new, new_name): (&str, Option<&str>),
) -> Result<String, HelmProblem> {
    let full = match registry {
        Some(r) if !r.is_empty() => format!("{}/{written}", r.trim_end_matches('/')),
        _ => written.to_string(),
    };
    let name = |s: &str| ferry_core::Reference::parse(s).ok().map(|r| r.name());
    // The file's text is parsed (another input); the new repository's name is given.
    if !written.is_empty() && name(&full).is_some() && name(&full).as_deref() == new_name {
        return Ok(written.to_string());
    }
    match registry.filter(|r| !r.is_empty()) {
        None => Ok(new.to_string()),
        Some(r) => new
            .strip_prefix(&format!("{}/", r.trim_end_matches('/')))
            .map(str::to_string)
            .ok_or_else(|| HelmProblem::OtherRegistry {
                repository: new.to_string(),
                registry: r.to_string(),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Fields of the edited mapping and how they are written.
    #[derive(Debug, Clone)]
    struct Layout {
        width: usize,
        depth: usize,
        quotes: [usize; 3],
        comment: Option<String>,
        with_digest: bool,
        siblings: Vec<usize>,
        eol: &'static str,
    }

    fn quoted(style: usize, v: &str) -> String {
        match style {
            0 => v.to_string(),
            1 => format!("'{v}'"),
            _ => format!("\"{v}\""),
        }
    }

    /// Lines that must never change: comments, blanks, other keys, another `image:` mapping.
    fn sibling(kind: usize, pad: &str, w: usize, eol: &str) -> String {
        let inner = " ".repeat(pad.len() + w);
        let inner2 = " ".repeat(pad.len() + 2 * w);
        match kind % 4 {
            0 => format!("{pad}# a comment: tag: v9{eol}"),
            1 => eol.to_string(),
            2 => format!("{pad}other: 'x' # note{eol}"),
            _ => format!(
                "{pad}decoy:{eol}{inner}image:{eol}{inner2}repository: x/decoy{eol}{inner2}tag: v0{eol}"
            ),
        }
    }

    fn values(l: &Layout, repo: &str, tag: &str, digest: &str) -> String {
        let mut out = String::new();
        let mut sib = l.siblings.iter().copied().cycle();
        for level in 0..l.depth {
            let pad = " ".repeat(level * l.width);
            out.push_str(&sibling(sib.next().unwrap_or(0), &pad, l.width, l.eol));
            let key = if level + 1 == l.depth {
                "image".to_string()
            } else {
                format!("k{level}")
            };
            out.push_str(&format!("{pad}{key}:{}", l.eol));
        }
        let pad = " ".repeat(l.depth * l.width);
        let c = l
            .comment
            .as_deref()
            .map(|c| format!("   #{c}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "{pad}repository: {}{c}{}",
            quoted(l.quotes[0], repo),
            l.eol
        ));
        out.push_str(&sibling(sib.next().unwrap_or(0), &pad, l.width, l.eol));
        out.push_str(&format!(
            "{pad}tag: {}{c}{}",
            quoted(l.quotes[1], tag),
            l.eol
        ));
        if l.with_digest {
            out.push_str(&format!(
                "{pad}digest: {}{}",
                quoted(l.quotes[2], digest),
                l.eol
            ));
        }
        for level in (0..l.depth).rev() {
            let pad = " ".repeat(level * l.width);
            out.push_str(&sibling(sib.next().unwrap_or(0), &pad, l.width, l.eol));
        }
        out
    }

    fn layout() -> impl Strategy<Value = Layout> {
        (
            2usize..5,
            1usize..4,
            [0usize..3, 0usize..3, 0usize..3],
            proptest::option::of("[a-z :]{0,8}"),
            any::<bool>(),
            prop::collection::vec(0usize..4, 1..6),
            prop_oneof![Just("\n"), Just("\r\n")],
        )
            .prop_map(
                |(width, depth, quotes, comment, with_digest, siblings, eol)| Layout {
                    width,
                    depth,
                    quotes,
                    comment,
                    with_digest,
                    siblings,
                    eol,
                },
            )
    }

    proptest! {
        #[test]
        fn helm_edit_changes_only_the_image_scalars(
            l in layout(), old_tag in "v[0-9]\\.[0-9]{1,2}", new_tag in "v[0-9]\\.[0-9]{1,2}-[a-z]{1,3}",
            new_repo in "ghcr\\.io/[a-z]{1,6}/new",
        ) {
            let (old_d, new_d) = (format!("sha256:{}", "a".repeat(64)), format!("sha256:{}", "c".repeat(64)));
            let text = values(&l, "ghcr.io/acme/old", &old_tag, &old_d);
            let key = (0..l.depth - 1).map(|i| format!("k{i}.")).collect::<String>() + "image";
            let got = set_helm_image("values.yaml", &text, &key, &new_repo, &new_tag, &new_d).unwrap();
            let want_tag = if l.with_digest { new_tag.clone() } else { format!("{new_tag}@{new_d}") };
            let want = values(&l, &new_repo, &want_tag, &old_d.replace(&old_d, &new_d));
            prop_assert_eq!(got, want);
        }

        #[test]
        fn helm_edit_of_arbitrary_text_never_panics(t in "\\PC{0,300}") {
            let _ = set_helm_image("v.yaml", &t, "image", "a/b", "1", "sha256:1");
            let _ = set_helm_image("v.yaml", &t, "a.image", "a/b", "1", "sha256:1");
        }

        #[test]
        fn helm_edit_of_yaml_like_text_never_panics(
            parts in prop::collection::vec(prop_oneof![
                Just("image:"), Just("  repository: x"), Just("  tag: \"1"), Just("  tag: '1'"), Just("  tag:"),
                Just("  - a"), Just("  tag: |"), Just("    x"), Just("  digest: {a: b}"), Just("#"), Just(""),
                Just("  \"tag\": 1"), Just("  'digest':"), Just("a:"), Just("  image:"), Just("---"), Just("\t tag: x"),
                Just("  tag: 'a''b'"), Just("  tag: \"a\\\"b\""), Just("  registry: r"), Just("-"), Just(":"),
            ], 0..16),
            eol in prop_oneof![Just("\n"), Just("\r\n"), Just("")],
        ) {
            let t = parts.join(eol);
            for key in ["image", "a.image", "image.tag"] {
                if let Ok(out) = set_helm_image("v.yaml", &t, key, "x", "2", "sha256:2") {
                    // Whatever it accepted, it edited in place: line count unchanged.
                    prop_assert_eq!(out.lines().count(), t.lines().count());
                }
            }
        }
    }
}
