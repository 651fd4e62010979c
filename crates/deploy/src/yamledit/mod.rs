//! Targeted edits of Kubernetes YAML that keep everything else byte for byte: comments, key
//! order, quoting, indentation, other documents. No load-and-dump: the file is scanned as lines
//! with their indentation (block-style YAML, which is what kustomize files and manifests are
//! written in), the one scalar is replaced in place, or a few lines are inserted in the style
//! around them. Layouts this cannot follow (flow style `{…}`/`[…]` at the edited spot) are an
//! error, never a silent rewrite.
//!
//! The replaced value keeps its style (plain, single- or double-quoted) when the new value can
//! be written in it; a plain value, or a new one, is written plain whenever YAML 1.1 (go-yaml,
//! as kustomize, Helm and Argo CD read) and YAML 1.2 both read it back as the same string
//! (`sha256:…`, `repo:tag@sha256:…`), and double-quoted otherwise (`"1.10"`, `"on"`).
//!
//! Two edits: [`set_kustomize_image`] (a kustomization's `images:`) and
//! [`set_container_image`] (a workload's container `image:`). The Helm values edit lives in
//! [`crate::helm`] and reads files through the small [`block`] API below.

use std::ops::Range;

/// Why an edit could not be made: [`crate::Error::Edit`] (the crate's one error type).
pub type EditError = crate::Error;

/// Why a manifest or kustomization cannot be edited safely at the spot ferry must change
/// ([`crate::Error::Edit`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditProblem {
    /// A kustomization's `images:` is a flow sequence.
    ImagesFlow,
    /// A kustomization's `images:` entry value cannot be replaced in place.
    ImagesValue {
        /// The entry's key (`newName`, `newTag`, `digest`).
        key: &'static str,
        /// The entry's `name:`.
        image: String,
        /// Why.
        cause: ScalarError,
    },
    /// A workload's `containers:`/`initContainers:` list is a flow sequence.
    ContainersFlow {
        /// The workload's kind.
        kind: String,
        /// Its name.
        name: String,
        /// `containers` or `initContainers`.
        list: String,
    },
    /// The container has no `image:` line.
    NoImageLine {
        /// The workload's kind.
        kind: String,
        /// Its name.
        name: String,
        /// The container.
        container: String,
    },
    /// The container's `image:` value cannot be replaced in place.
    ContainerImage {
        /// The workload's kind.
        kind: String,
        /// Its name.
        name: String,
        /// The container.
        container: String,
        /// Why.
        cause: ScalarError,
    },
    /// The workload has no container of that name.
    NoContainer {
        /// The workload's kind.
        kind: String,
        /// Its name.
        name: String,
        /// The container.
        container: String,
    },
}

impl std::fmt::Display for EditProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ImagesFlow => f.write_str(
                "`images:` is written in flow style ([...]); ferry edits block style only",
            ),
            Self::ImagesValue { key, image, cause } => {
                write!(f, "`{key}:` of image {image}: {cause}")
            }
            Self::ContainersFlow { kind, name, list } => {
                write!(f, "{kind}/{name}: `{list}` is in flow style")
            }
            Self::NoImageLine {
                kind,
                name,
                container,
            } => write!(f, "{kind}/{name}: container {container} has no image: line"),
            Self::ContainerImage {
                kind,
                name,
                container,
                cause,
            } => write!(f, "{kind}/{name}: container {container}'s image {cause}"),
            Self::NoContainer {
                kind,
                name,
                container,
            } => write!(f, "{kind}/{name} has no container named {container}"),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Line {
    /// Byte range of the line without its line break.
    pub(crate) range: Range<usize>,
    /// Column of the first non-blank character.
    pub(crate) indent: usize,
    /// Column where the mapping key starts (after any `- ` sequence markers).
    pub(crate) key_col: usize,
    /// Whether the line starts a sequence item.
    pub(crate) item: bool,
    /// The key, when the line is `key: …` (after `- `).
    pub(crate) key: Option<String>,
    /// Byte range of the scalar value after `key:`, without quotes and comments.
    pub(crate) value: Option<Range<usize>>,
    /// Blank or comment-only.
    pub(crate) blank: bool,
}

pub(crate) fn scan(text: &str, doc: Range<usize>) -> Vec<Line> {
    let mut out = Vec::new();
    let mut pos = doc.start;
    for raw in text[doc.clone()].split_inclusive('\n') {
        let start = pos;
        pos += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        let end = start + line.len();
        let indent = line.len() - line.trim_start_matches(' ').len();
        let rest = &line[indent..];
        if rest.is_empty() || rest.starts_with('#') {
            out.push(Line {
                range: start..end,
                indent,
                key_col: indent,
                item: false,
                key: None,
                value: None,
                blank: true,
            });
            continue;
        }
        let mut key_col = indent;
        let mut item = false;
        let mut body = rest;
        while body.starts_with("- ") || body == "-" {
            item = true;
            let after = body[1..].trim_start_matches(' ');
            key_col += body.len() - after.len();
            body = after;
        }
        let (key, value) = split_key(body, start + key_col);
        out.push(Line {
            range: start..end,
            indent,
            key_col,
            item,
            key,
            value,
            blank: false,
        });
    }
    out
}

/// `key: value  # c` → (key, range of value). Values in quotes give the range inside them.
fn split_key(body: &str, offset: usize) -> (Option<String>, Option<Range<usize>>) {
    let (key, rest_at) = if let Some(q) = body.chars().next().filter(|c| *c == '"' || *c == '\'') {
        match body[1..].find(q) {
            Some(i) if body[i + 2..].starts_with(':') => (body[1..i + 1].to_string(), i + 3),
            _ => return (None, None),
        }
    } else {
        match body
            .find(": ")
            .or_else(|| body.ends_with(':').then(|| body.len() - 1))
        {
            Some(i) if !body[..i].contains('#') => (body[..i].trim_end().to_string(), i + 1),
            _ => return (None, None),
        }
    };
    let rest = &body[rest_at.min(body.len())..];
    let lead = rest.len() - rest.trim_start().len();
    let v = &rest[lead..];
    let vstart = rest_at + lead;
    if v.is_empty() || v.starts_with('#') {
        return (Some(key), None);
    }
    let range = if let Some(q) = v.chars().next().filter(|c| *c == '"' || *c == '\'') {
        match v[1..].find(q) {
            Some(i) => vstart + 1..vstart + 1 + i,
            None => vstart..vstart + v.len(),
        }
    } else {
        let end = v.find(" #").unwrap_or(v.len());
        vstart..vstart + v[..end].trim_end().len()
    };
    (Some(key), Some(offset + range.start..offset + range.end))
}

/// Byte ranges of the YAML documents of `text` (split at `---` lines).
pub(crate) fn documents(text: &str) -> Vec<Range<usize>> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut pos = 0;
    for raw in text.split_inclusive('\n') {
        let line = raw.trim_end_matches(['\n', '\r']);
        if line == "---" || line.starts_with("--- ") || line.starts_with("---\t") {
            docs.push(start..pos);
            start = pos + raw.len();
        }
        pos += raw.len();
    }
    docs.push(start..text.len());
    docs
}

pub(crate) fn value<'t>(text: &'t str, l: &Line) -> Option<&'t str> {
    l.value.as_ref().map(|r| &text[r.clone()])
}

/// Index range of the lines belonging to the block that starts after line `i` (the children of
/// a `key:` line, or the rest of a sequence item).
pub(crate) fn children(lines: &[Line], i: usize, col: usize) -> Range<usize> {
    let mut end = i + 1;
    while end < lines.len()
        && (lines[end].blank
            || lines[end].key_col > col
            || (lines[end].item && lines[end].indent > col))
    {
        end += 1;
    }
    // Trailing blank lines belong to what follows.
    while end > i + 1 && lines[end - 1].blank {
        end -= 1;
    }
    i + 1..end
}

/// Find `key` among the direct children (at the first non-blank child's column) of lines `r`.
fn child<'l>(
    text: &str,
    lines: &'l [Line],
    r: Range<usize>,
    key: &str,
) -> Option<(usize, &'l Line)> {
    let col = lines[r.clone()].iter().find(|l| !l.blank)?.key_col;
    let _ = text;
    lines[r.clone()]
        .iter()
        .enumerate()
        .find(|(_, l)| !l.blank && l.key_col == col && l.key.as_deref() == Some(key))
        .map(|(j, l)| (r.start + j, l))
}

pub(crate) fn replace(text: &mut String, range: Range<usize>, new: &str) {
    text.replace_range(range, new);
}

/// A new value: plain when YAML 1.1 and 1.2 read it back as that string, else double-quoted.
fn scalar(new: &str) -> String {
    scalar::render(new, scalar::Style::Plain)
}

/// What to set on one `images:` entry.
struct ImageEdit<'a> {
    name: &'a str,
    new_tag: Option<&'a str>,
    digest: Option<&'a str>,
    eol: &'a str,
}

impl ImageEdit<'_> {
    /// `{pad}newTag: …` and `{pad}digest: …` lines for the values given.
    fn value_lines(&self, pad: &str) -> String {
        let mut out = String::new();
        for (key, val) in [("newTag", self.new_tag), ("digest", self.digest)] {
            if let Some(v) = val {
                out.push_str(&format!("{pad}{key}: {}{}", scalar(v), self.eol));
            }
        }
        out
    }
}

/// Set the `images:` entry of a kustomization for `name` (`newTag`, `digest`), adding the entry
/// or the whole `images:` list when missing. Returns whether the text changed.
pub fn set_kustomize_image(
    text: &mut String,
    name: &str,
    new_tag: Option<&str>,
    digest: Option<&str>,
) -> Result<bool, EditError> {
    let docs = documents(text);
    let doc = docs
        .into_iter()
        .find(|d| !text[d.clone()].trim().is_empty())
        .unwrap_or(0..text.len());
    let lines = scan(text, doc.clone());
    let top = 0..lines.len();
    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let edit = ImageEdit {
        name,
        new_tag,
        digest,
        eol,
    };
    let Some((images_i, images_l)) = child(text, &lines, top.clone(), "images") else {
        append_images_list(text, doc, &edit);
        return Ok(true);
    };
    if value(text, images_l).is_some_and(|v| v.starts_with('[')) {
        return Err(crate::Error::Edit(EditProblem::ImagesFlow));
    }
    let list = children(&lines, images_i, images_l.key_col);
    // Entries: sequence items directly under `images:`.
    let items: Vec<usize> = list
        .clone()
        .filter(|j| lines[*j].item && !lines[*j].blank)
        .collect();
    let item_indent = items.first().map(|j| lines[*j].indent);
    for (n, &j) in items.iter().enumerate() {
        if Some(lines[j].indent) != item_indent {
            continue;
        }
        let entry = j..items.get(n + 1).copied().unwrap_or(list.end);
        let names_it = child(text, &lines, entry.clone(), "name")
            .is_some_and(|(_, nl)| value(text, nl) == Some(name));
        if names_it {
            return edit_entry(text, &lines, entry, &edit);
        }
    }
    // No entry for this image: add one in the style of the others (or a fresh one).
    let (indent, key_off) = match items.first() {
        Some(&j) => (lines[j].indent, lines[j].key_col - lines[j].indent),
        None => (images_l.key_col, 2),
    };
    let last = if list.is_empty() {
        images_i
    } else {
        list.end - 1
    };
    append_entry(text, lines[last].range.end, indent, key_off, &edit);
    Ok(true)
}

/// No `images:` at all: append a list at the end of the document.
fn append_images_list(text: &mut String, doc: Range<usize>, edit: &ImageEdit<'_>) {
    let eol = edit.eol;
    let mut block = String::new();
    if !text[..doc.end].ends_with('\n') && doc.end > doc.start {
        block.push_str(eol);
    }
    block.push_str(&format!("images:{eol}- name: {}{eol}", scalar(edit.name)));
    block.push_str(&edit.value_lines("  "));
    text.insert_str(doc.end, &block);
}

/// A new entry after the line ending at `end`, indented like its siblings.
fn append_entry(
    text: &mut String,
    end: usize,
    indent: usize,
    key_off: usize,
    edit: &ImageEdit<'_>,
) {
    let eol = edit.eol;
    let pad = " ".repeat(indent);
    let kpad = " ".repeat(indent + key_off);
    let mut block = format!(
        "{pad}-{}name: {}{eol}",
        " ".repeat(key_off - 1),
        scalar(edit.name)
    );
    block.push_str(&edit.value_lines(&kpad));
    if text[end..].starts_with(eol) {
        text.insert_str(end + eol.len(), &block);
    } else {
        text.insert_str(end, &format!("{eol}{}", block.trim_end_matches(eol)));
    }
}

/// Set `newTag`/`digest` in the existing entry `entry` (line indices): values replaced in
/// place keeping their quoting, missing keys added after the entry's last line.
fn edit_entry(
    text: &mut String,
    lines: &[Line],
    entry: Range<usize>,
    edit: &ImageEdit<'_>,
) -> Result<bool, EditError> {
    let eol = edit.eol;
    let key_col = lines[entry.start].key_col;
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    let mut inserts: Vec<String> = Vec::new();
    for (key, val) in [("newTag", edit.new_tag), ("digest", edit.digest)] {
        let Some(val) = val else { continue };
        let Some((j, _)) = child(text, lines, entry.clone(), key) else {
            inserts.push(format!(
                "{}{key}: {}{eol}",
                " ".repeat(key_col),
                scalar(val)
            ));
            continue;
        };
        let edit = scalar::edit_value(text, lines, j, val).map_err(|cause| {
            crate::Error::Edit(EditProblem::ImagesValue {
                key,
                image: edit.name.to_string(),
                cause,
            })
        })?;
        edits.extend(edit);
    }
    let changed = !edits.is_empty() || !inserts.is_empty();
    if !inserts.is_empty() {
        // Insert after the last line of the entry.
        let last = entry
            .clone()
            .rev()
            .find(|k| !lines[*k].blank)
            .unwrap_or(entry.start);
        let end = lines[last].range.end;
        let at = if text[end..].starts_with(eol) {
            end + eol.len()
        } else {
            text.insert_str(end, eol);
            end + eol.len()
        };
        text.insert_str(at, &inserts.concat());
    }
    // Edit from the bottom up so earlier ranges stay valid (inserts come after all of them).
    edits.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
    for (r, v) in edits {
        replace(text, r, &v);
    }
    Ok(changed)
}

/// Set the `image:` of container `container` of the workload `kind`/`name` in a (multi-document)
/// manifest file: `Ok(Some(true))` changed, `Ok(Some(false))` already set, `Ok(None)` that
/// workload is not in this file.
pub fn set_container_image(
    text: &mut String,
    kind: &str,
    name: &str,
    container: &str,
    image: &str,
) -> Result<Option<bool>, EditError> {
    for doc in documents(text) {
        let lines = scan(text, doc.clone());
        let top = 0..lines.len();
        let Some((_, kl)) = child(text, &lines, top.clone(), "kind") else {
            continue;
        };
        if value(text, kl) != Some(kind) {
            continue;
        }
        let Some((mi, ml)) = child(text, &lines, top.clone(), "metadata") else {
            continue;
        };
        let meta = children(&lines, mi, ml.key_col);
        let Some((_, nl)) = child(text, &lines, meta, "name") else {
            continue;
        };
        if value(text, nl) != Some(name) {
            continue;
        }
        // A `containers:`/`initContainers:` list anywhere in this document, then the item
        // whose `name:` is the container.
        for (ci, cl) in lines.iter().enumerate() {
            if cl.blank || !matches!(cl.key.as_deref(), Some("containers" | "initContainers")) {
                continue;
            }
            if value(text, cl).is_some_and(|v| v.starts_with('[')) {
                return Err(crate::Error::Edit(EditProblem::ContainersFlow {
                    kind: kind.to_string(),
                    name: name.to_string(),
                    list: cl.key.clone().unwrap_or_default(),
                }));
            }
            let list = children(&lines, ci, cl.key_col);
            let items: Vec<usize> = list.clone().filter(|j| lines[*j].item).collect();
            for (n, &j) in items.iter().enumerate() {
                let end = items.get(n + 1).copied().unwrap_or(list.end);
                let entry = j..end;
                let Some((_, nml)) = child(text, &lines, entry.clone(), "name") else {
                    continue;
                };
                if value(text, nml) != Some(container) {
                    continue;
                }
                let Some((il, _)) = child(text, &lines, entry, "image") else {
                    return Err(crate::Error::Edit(EditProblem::NoImageLine {
                        kind: kind.to_string(),
                        name: name.to_string(),
                        container: container.to_string(),
                    }));
                };
                let edit = scalar::edit_value(text, &lines, il, image).map_err(|cause| {
                    crate::Error::Edit(EditProblem::ContainerImage {
                        kind: kind.to_string(),
                        name: name.to_string(),
                        container: container.to_string(),
                        cause,
                    })
                })?;
                let Some((r, new)) = edit else {
                    return Ok(Some(false));
                };
                replace(text, r, &new);
                return Ok(Some(true));
            }
        }
        return Err(crate::Error::Edit(EditProblem::NoContainer {
            kind: kind.to_string(),
            name: name.to_string(),
            container: container.to_string(),
        }));
    }
    Ok(None)
}

mod resolve;
mod scalar;

#[cfg(test)]
mod props;

pub use scalar::ScalarError;

/// The block reader other edits use (the Helm values edit, [`crate::helm`]): a document's
/// lines with their keys, columns and values; the child block of a key; one value replaced in
/// its style. Nothing else of this module is theirs.
pub(crate) mod block {
    pub(crate) use super::scalar::edit_value;
    pub(crate) use super::{Line, children, documents, replace, scan, value};
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kustomize_entry_updated_in_place() {
        let mut t = "# app\nresources:\n  - deployment.yaml # the app\nimages:\n  - name: ghcr.io/acme/sensor   # sensor\n    newTag: \"1.0\"\n  - name: redis\n    newTag: '7'\n".to_string();
        assert!(
            set_kustomize_image(
                &mut t,
                "ghcr.io/acme/sensor",
                Some("1.1"),
                Some("sha256:abc")
            )
            .unwrap()
        );
        assert_eq!(
            t,
            "# app\nresources:\n  - deployment.yaml # the app\nimages:\n  - name: ghcr.io/acme/sensor   # sensor\n    newTag: \"1.1\"\n    digest: sha256:abc\n  - name: redis\n    newTag: '7'\n"
        );
        assert!(
            !set_kustomize_image(
                &mut t,
                "ghcr.io/acme/sensor",
                Some("1.1"),
                Some("sha256:abc")
            )
            .unwrap(),
            "second pass changes nothing"
        );
    }

    #[test]
    fn kustomize_entry_or_list_added() {
        let mut t = "resources:\n- a.yaml\nimages:\n- name: redis\n  newTag: \"7\"\n".to_string();
        set_kustomize_image(&mut t, "acme/etl", Some("2"), None).unwrap();
        assert_eq!(
            t,
            "resources:\n- a.yaml\nimages:\n- name: redis\n  newTag: \"7\"\n- name: acme/etl\n  newTag: \"2\"\n"
        );
        let mut t = "resources:\n- a.yaml\n".to_string();
        set_kustomize_image(&mut t, "acme/etl", None, Some("sha256:1")).unwrap();
        assert_eq!(
            t,
            "resources:\n- a.yaml\nimages:\n- name: acme/etl\n  digest: sha256:1\n"
        );
        let mut t = "images: [{name: x}]\n".to_string();
        assert!(set_kustomize_image(&mut t, "x", Some("1"), None).is_err());
    }

    #[test]
    fn container_image_in_a_multi_document_file() {
        let doc = "apiVersion: v1\nkind: Service\nmetadata:\n  name: sensor\n---\n# the app\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: sensor\n  labels: {app: sensor}\nspec:\n  template:\n    spec:\n      initContainers:\n        - name: init\n          image: busybox:1\n      containers:\n        - name: app # main\n          image: \"ghcr.io/acme/sensor:1.0\" # pinned by ferry\n          ports:\n            - containerPort: 80\n        - image: envoy:1\n          name: proxy\n---\nkind: Deployment\nmetadata:\n  name: other\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: ghcr.io/acme/sensor:1.0\n";
        let mut t = doc.to_string();
        assert_eq!(
            set_container_image(
                &mut t,
                "Deployment",
                "sensor",
                "app",
                "ghcr.io/acme/sensor:1.1@sha256:ab"
            )
            .unwrap(),
            Some(true)
        );
        assert_eq!(
            t,
            doc.replace(
                "image: \"ghcr.io/acme/sensor:1.0\" # pinned",
                "image: \"ghcr.io/acme/sensor:1.1@sha256:ab\" # pinned"
            )
        );
        let mut t2 = t.clone();
        assert_eq!(
            set_container_image(&mut t2, "Deployment", "sensor", "proxy", "envoy:2").unwrap(),
            Some(true)
        );
        assert_eq!(
            set_container_image(&mut t2, "Deployment", "sensor", "proxy", "envoy:2").unwrap(),
            Some(false)
        );
        assert_eq!(t2, t.replace("image: envoy:1", "image: envoy:2"));
        let mut t3 = doc.to_string();
        assert_eq!(
            set_container_image(&mut t3, "Deployment", "other", "app", "x:2").unwrap(),
            Some(true)
        );
        assert!(t3.ends_with("        image: x:2\n"), "{t3}");
        assert!(
            t3.contains("image: \"ghcr.io/acme/sensor:1.0\" # pinned"),
            "the other Deployment is untouched"
        );
        let mut t4 = doc.to_string();
        assert_eq!(
            set_container_image(&mut t4, "StatefulSet", "sensor", "app", "x").unwrap(),
            None
        );
        assert!(set_container_image(&mut t4, "Deployment", "sensor", "nope", "x").is_err());
        let mut crlf = "kind: Deployment\r\nmetadata:\r\n  name: a\r\nspec:\r\n  template:\r\n    spec:\r\n      containers:\r\n      - name: c\r\n        image: old:1\r\n".to_string();
        assert_eq!(
            set_container_image(&mut crlf, "Deployment", "a", "c", "new:2").unwrap(),
            Some(true)
        );
        assert_eq!(
            crlf,
            "kind: Deployment\r\nmetadata:\r\n  name: a\r\nspec:\r\n  template:\r\n    spec:\r\n      containers:\r\n      - name: c\r\n        image: new:2\r\n"
        );
    }

    proptest! {
        #[test]
        fn edits_never_panic_and_touch_only_the_value(
            pad in "[ ]{6,9}", comment in "( # [a-z ]{0,8})?", quote in "(\"|'|)", other in "[a-z]{1,8}: [a-z0-9]{1,8}\n",
        ) {
            let original = format!("{other}kind: Deployment\nmetadata:\n  name: w\nspec:\n  template:\n    spec:\n      containers:\n{pad}- name: c\n{pad}  image: {quote}old:1{quote}{comment}\n");
            let mut t = original.clone();
            if set_container_image(&mut t, "Deployment", "w", "c", "new:2").unwrap() == Some(true) {
                let before: Vec<&str> = original.lines().collect();
                let after: Vec<&str> = t.lines().collect();
                prop_assert_eq!(before.len(), after.len());
                for (b, a) in before.iter().zip(&after) {
                    if b.contains("old:1") {
                        // Only the value changes; its style (plain or quoted) and the comment
                        // stay: `new:2` may be plain (`:` not followed by a space).
                        let want = b.replace("old:1", "new:2");
                        prop_assert_eq!(*a, want.as_str());
                    } else {
                        prop_assert_eq!(b, a);
                    }
                }
            }
        }

        #[test]
        fn arbitrary_text_never_panics(t in "\\PC{0,200}") {
            let mut a = t.clone();
            let _ = set_container_image(&mut a, "Deployment", "w", "c", "x:1");
            let mut b = t.clone();
            let _ = set_kustomize_image(&mut b, "x", Some("1"), Some("sha256:1"));
        }
    }
}
