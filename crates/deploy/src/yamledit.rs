//! Targeted edits of Kubernetes YAML that keep everything else byte for byte: comments, key
//! order, quoting, indentation, other documents. No load-and-dump: the file is scanned as lines
//! with their indentation (block-style YAML, which is what kustomize files and manifests are
//! written in), the one scalar is replaced in place, or a few lines are inserted in the style
//! around them. Layouts this cannot follow (flow style `{…}`/`[…]` at the edited spot) are an
//! error, never a silent rewrite.
//!
//! Three edits: [`set_kustomize_image`] (a kustomization's `images:`), [`set_container_image`]
//! (a workload's container `image:`) and [`set_helm_image`] (a Helm values file's
//! `<key>.repository`, `<key>.tag` and `<key>.digest`).

use std::ops::Range;

/// Why an edit could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditError(pub String);

impl std::fmt::Display for EditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone)]
struct Line {
    /// Byte range of the line without its line break.
    range: Range<usize>,
    /// Column of the first non-blank character.
    indent: usize,
    /// Column where the mapping key starts (after any `- ` sequence markers).
    key_col: usize,
    /// Whether the line starts a sequence item.
    item: bool,
    /// The key, when the line is `key: …` (after `- `).
    key: Option<String>,
    /// Byte range of the scalar value after `key:`, without quotes and comments.
    value: Option<Range<usize>>,
    /// Blank or comment-only.
    blank: bool,
}

fn scan(text: &str, doc: Range<usize>) -> Vec<Line> {
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
fn documents(text: &str) -> Vec<Range<usize>> {
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

fn value<'t>(text: &'t str, l: &Line) -> Option<&'t str> {
    l.value.as_ref().map(|r| &text[r.clone()])
}

/// Index range of the lines belonging to the block that starts after line `i` (the children of
/// a `key:` line, or the rest of a sequence item).
fn children(lines: &[Line], i: usize, col: usize) -> Range<usize> {
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

fn replace(text: &mut String, range: Range<usize>, new: &str) {
    text.replace_range(range, new);
}

/// Quote a scalar like the value it replaces (or plainly when it needs no quotes).
fn scalar(new: &str) -> String {
    let plain_ok = !new.is_empty()
        && !new.contains([':', '#', '{', '}', '[', ']', ',', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`'])
        && !new.starts_with(['-', '?', ' '])
        && !matches!(new.to_ascii_lowercase().as_str(), "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "~")
        // Numbers would be read back as numbers (a tag "2" must stay a string).
        && new.parse::<f64>().is_err()
        && !new.starts_with(['.', '+']);
    if plain_ok {
        new.to_string()
    } else {
        format!("\"{new}\"")
    }
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
        return Err(EditError(
            "`images:` is written in flow style ([...]); ferry edits block style only".into(),
        ));
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
        let Some((_, kl)) = child(text, lines, entry.clone(), key) else {
            inserts.push(format!(
                "{}{key}: {}{eol}",
                " ".repeat(key_col),
                scalar(val)
            ));
            continue;
        };
        match &kl.value {
            Some(r) if &text[r.clone()] == val => {}
            Some(r) => {
                let quoted = r.start > 0 && matches!(text.as_bytes()[r.start - 1], b'"' | b'\'');
                edits.push((
                    r.clone(),
                    if quoted { val.to_string() } else { scalar(val) },
                ));
            }
            None => {
                return Err(EditError(format!(
                    "`{key}:` of image {} has no scalar value",
                    edit.name
                )));
            }
        }
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
                return Err(EditError(format!(
                    "{kind}/{name}: `{}` is in flow style",
                    cl.key.as_deref().unwrap_or("")
                )));
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
                let Some((_, il)) = child(text, &lines, entry, "image") else {
                    return Err(EditError(format!(
                        "{kind}/{name}: container {container} has no image: line"
                    )));
                };
                let Some(r) = il.value.clone() else {
                    return Err(EditError(format!(
                        "{kind}/{name}: container {container}'s image is not a scalar"
                    )));
                };
                if &text[r.clone()] == image {
                    return Ok(Some(false));
                }
                let quoted = r.start > 0 && matches!(text.as_bytes()[r.start - 1], b'"' | b'\'');
                let new = if quoted {
                    image.to_string()
                } else {
                    scalar(image)
                };
                replace(text, r, &new);
                return Ok(Some(true));
            }
        }
        return Err(EditError(format!(
            "{kind}/{name} has no container named {container}"
        )));
    }
    Ok(None)
}

/// Characters a repository, tag or digest written into a values file may hold: enough for every
/// image reference, and none that needs escaping inside quotes.
fn helm_safe(value: &str) -> bool {
    !value.is_empty()
        && value.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/' | b':' | b'@' | b'+')
        })
}

/// Plain scalars YAML (1.1 as Helm's go-yaml reads it, and 1.2) would read as something other
/// than a string: numbers (also `0x1f`, `1_000`, sexagesimal `1:20`), dates, booleans, null.
static NOT_A_STRING: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(concat!(
        r"^(?:",
        r"[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?",
        r"|[-+]?0(?:x[0-9a-fA-F_]+|o?[0-7_]+|b[01_]+)",
        r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?",
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
        r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt ].*)?",
        r"|(?i:y|n|yes|no|true|false|on|off|null)|~",
        r")$"
    ))
    .expect("static regex")
});

/// `new` as a plain scalar when YAML reads that back as the same string, else double-quoted.
fn helm_plain_or_quoted(new: &str) -> String {
    let plain = !new.starts_with(['-', ':', '@', '.', '+', '?'])
        && !new.ends_with(':')
        && !NOT_A_STRING.is_match(new);
    if plain {
        new.to_string()
    } else {
        format!("\"{new}\"")
    }
}

/// The mapping entry `key` directly under the block `block` (a range of `lines`); `Ok(None)`
/// when absent. Sequences, flow style, anchors and duplicate keys are errors (`Err(message)`).
fn helm_child(
    text: &str,
    lines: &[Line],
    block: Range<usize>,
    key: &str,
) -> Result<Option<usize>, String> {
    let Some(first) = lines[block.clone()].iter().find(|l| !l.blank) else {
        return Ok(None);
    };
    if first.item {
        return Err("is a list, not a mapping".into());
    }
    let col = first.key_col;
    let mut found = None;
    for j in block {
        let l = &lines[j];
        if l.blank || l.key_col != col || l.item || l.key.as_deref() != Some(key) {
            continue;
        }
        if found.is_some() {
            return Err(format!("`{key}` appears twice in the same mapping"));
        }
        found = Some(j);
    }
    if let Some(j) = found
        && let Some(v) = value(text, &lines[j])
        && v.starts_with(['{', '[', '&', '*', '!', '|', '>'])
    {
        return Err(format!(
            "`{key}: {v}` uses flow style, an anchor, an alias, a tag or a block scalar; ferry edits plain block-style values only"
        ));
    }
    Ok(found)
}

/// Byte offset just after the `:` of a `key:` line.
fn helm_colon_end(text: &str, l: &Line) -> Option<usize> {
    let body = &text[l.range.start + l.key_col..l.range.end];
    let at = match body.as_bytes().first() {
        Some(q @ (b'"' | b'\'')) => body[1..].find(*q as char).map(|i| i + 2)?,
        _ => body.find(": ").unwrap_or(body.len().checked_sub(1)?),
    };
    (body.as_bytes().get(at) == Some(&b':')).then_some(l.range.start + l.key_col + at + 1)
}

/// The edit that makes the scalar of `lines[j]` read `new`: `None` when it already does.
fn helm_scalar_edit(
    text: &str,
    lines: &[Line],
    j: usize,
    new: &str,
) -> Result<Option<(Range<usize>, String)>, String> {
    let l = &lines[j];
    let nested = children(lines, j, l.key_col);
    if lines[nested].iter().any(|c| !c.blank) {
        return Err("is not a scalar (it has lines below it)".into());
    }
    let Some(r) = l.value.clone() else {
        // `tag:` (null): the value goes right after the colon.
        let at = helm_colon_end(text, l).ok_or("has no `key:` form ferry can read")?;
        return Ok(Some((at..at, format!(" {}", helm_plain_or_quoted(new)))));
    };
    if text[r.clone()].starts_with(['"', '\'']) {
        // split_key found no closing quote on this line.
        return Err("is a quoted value spanning several lines".into());
    }
    let bytes = text.as_bytes();
    let quote = r
        .start
        .checked_sub(1)
        .map(|i| bytes[i])
        .filter(|q| matches!(q, b'"' | b'\''));
    let quoted = match quote {
        Some(q)
            if bytes.get(r.end + 1) == Some(&q)
                || (q == b'"' && text[r.clone()].contains('\\')) =>
        {
            return Err("is a quoted value with escapes; ferry does not rewrite those".into());
        }
        Some(q) if bytes.get(r.end) == Some(&q) => true,
        Some(_) => return Err("is a quoted value spanning several lines".into()),
        None => false,
    };
    if &text[r.clone()] == new {
        return Ok(None);
    }
    // Inside quotes the new value needs no escaping (see `helm_safe`); a plain value stays
    // plain unless YAML would read it as a number, date or boolean.
    let written = if quoted {
        new.to_string()
    } else {
        helm_plain_or_quoted(new)
    };
    Ok(Some((r, written)))
}

/// Set the image of a Helm values file at `key_path` (`image`, `sensor.image`):
/// `<key>.repository` and `<key>.tag`; when `<key>.digest` exists it gets `digest` and `tag`
/// keeps the bare tag, otherwise `tag` becomes `TAG@DIGEST`. Returns the new text (equal to
/// `text` when nothing changes).
///
/// Only those scalars change: comments, key order, quoting (plain, single, double) and
/// indentation stay byte for byte. A plain value that YAML would read as a number, a date or a
/// boolean (`tag: 1.10`) is written double-quoted, since Helm would otherwise render another
/// string. `repository` keeps its spelling when it names the same repository as written
/// (`nginx` and `docker.io/library/nginx`); with a `<key>.registry` entry, `repository` is
/// written without that registry. Missing keys, lists, flow style (`image: {…}`), anchors,
/// block scalars and multi-line values are errors naming `file` and the key: ferry never
/// guesses at a chart's layout.
///
/// ```
/// let values = "# app\nimage:\n  repository: ghcr.io/acme/app # where\n  tag: \"1.0\"\n";
/// let out = ferry_deploy::yamledit::set_helm_image(
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
    let err = |key: &str, message: String| crate::Error::HelmValues {
        file: file.to_string(),
        key: key.to_string(),
        message,
    };
    if key_path.split('.').any(str::is_empty) {
        return Err(err(key_path, "empty key segment in the key path".into()));
    }
    for (what, v) in [("repository", repository), ("tag", tag), ("digest", digest)] {
        if !helm_safe(v) {
            return Err(err(
                key_path,
                format!("{what} {v:?} is not an image {what}"),
            ));
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
        return Err(err(key_path, "is a list, not a mapping".into()));
    }
    let entry = |name: &str| {
        let key = format!("{key_path}.{name}");
        helm_child(text, &lines, block.clone(), name).map_err(|m| err(&key, m))
    };
    let missing = |name: &str| err(&format!("{key_path}.{name}"), "missing".into());
    let repo_line = entry("repository")?.ok_or_else(|| missing("repository"))?;
    let tag_line = entry("tag")?.ok_or_else(|| missing("tag"))?;
    let digest_line = entry("digest")?;
    let registry = entry("registry")?.map(|j| value(text, &lines[j]).unwrap_or(""));
    let repo_value = helm_repository(
        value(text, &lines[repo_line]).unwrap_or(""),
        registry,
        repository,
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
        if let Some(e) = helm_scalar_edit(text, &lines, j, new).map_err(|m| err(&key, m))? {
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
        Err((_, message)) => message != "missing",
        Ok(image) => {
            let block = children(&lines, image, lines[image].key_col);
            ["repository", "tag", "digest"]
                .iter()
                .any(|k| helm_child(text, &lines, block.clone(), k).map_or(true, |j| j.is_some()))
        }
    }
}

/// The line of the mapping at `key_path`; errors carry the dotted key that failed.
fn helm_find(text: &str, lines: &[Line], key_path: &str) -> Result<usize, (String, String)> {
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
            .ok_or_else(|| (walked.clone(), "missing".to_string()))?;
        if let Some(v) = value(text, &lines[j]) {
            return Err((
                walked,
                format!("is the scalar {v:?}, not a mapping with repository and tag"),
            ));
        }
        block = children(lines, j, lines[j].key_col);
        at = Some(j);
    }
    at.ok_or_else(|| (key_path.to_string(), "empty key path".to_string()))
}

fn parent_of(dotted: &str) -> String {
    match dotted.rsplit_once('.') {
        Some((parent, _)) => parent.to_string(),
        None => dotted.to_string(),
    }
}

/// What `<key>.repository` should read: the written spelling when it already names `new`.
fn helm_repository(written: &str, registry: Option<&str>, new: &str) -> Result<String, String> {
    let full = match registry {
        Some(r) if !r.is_empty() => format!("{}/{written}", r.trim_end_matches('/')),
        _ => written.to_string(),
    };
    let name = |s: &str| ferry_core::Reference::parse(s).ok().map(|r| r.name());
    if !written.is_empty() && name(&full).is_some() && name(&full) == name(new) {
        return Ok(written.to_string());
    }
    match registry.filter(|r| !r.is_empty()) {
        None => Ok(new.to_string()),
        Some(r) => new
            .strip_prefix(&format!("{}/", r.trim_end_matches('/')))
            .map(str::to_string)
            .ok_or_else(|| {
                format!("the new repository {new} is not on the registry {r} the values file names")
            }),
    }
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
            "# app\nresources:\n  - deployment.yaml # the app\nimages:\n  - name: ghcr.io/acme/sensor   # sensor\n    newTag: \"1.1\"\n    digest: \"sha256:abc\"\n  - name: redis\n    newTag: '7'\n"
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
            "resources:\n- a.yaml\nimages:\n- name: acme/etl\n  digest: \"sha256:1\"\n"
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
        assert_eq!(t2, t.replace("image: envoy:1", "image: \"envoy:2\""));
        let mut t3 = doc.to_string();
        assert_eq!(
            set_container_image(&mut t3, "Deployment", "other", "app", "x:2").unwrap(),
            Some(true)
        );
        assert!(t3.ends_with("        image: \"x:2\"\n"), "{t3}");
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
            "kind: Deployment\r\nmetadata:\r\n  name: a\r\nspec:\r\n  template:\r\n    spec:\r\n      containers:\r\n      - name: c\r\n        image: \"new:2\"\r\n"
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
                        // Only the value changes; quoting is kept, a plain value gets quotes
                        // because the new one holds a ':'; the comment stays.
                        let want = if quote.is_empty() { b.replace("old:1", "\"new:2\"") } else { b.replace("old:1", "new:2") };
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

#[cfg(test)]
mod helm_tests {
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
