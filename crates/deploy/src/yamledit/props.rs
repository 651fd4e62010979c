//! Property tests of the three edits on generated documents and values: the edited document
//! reads as the same data with only the edited values changed — under a YAML 1.2 parser
//! (yaml-rust2, with its own resolution of plain scalars) and under YAML 1.1 resolution
//! ([`yaml11`]) — and each value keeps the style it had when it can be written in it.

use super::resolve::{plain_char, plain_ok, yaml11};
use super::scalar::{Style, render};
use super::*;
use crate::helm::set_helm_image;
use proptest::prelude::*;
use std::collections::BTreeMap;
use yaml_rust2::parser::Parser;
use yaml_rust2::scanner::TScalarStyle;
use yaml_rust2::{Event, Yaml};

#[derive(Debug, Clone, Copy)]
enum Version {
    V11,
    V12,
}

/// A document as data: scalars typed as a YAML version reads them (`str:x`, `Int:0x1F`, …),
/// with the style they are written in.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Scalar(String, TScalarStyle),
    Seq(Vec<Node>),
    Map(BTreeMap<String, Node>),
}

fn typed(v: &str, style: TScalarStyle, version: Version) -> String {
    if style != TScalarStyle::Plain {
        return format!("str:{v}");
    }
    match version {
        Version::V11 => yaml11(v).map_or_else(|| format!("str:{v}"), |k| format!("{k:?}:{v}")),
        Version::V12 => match Yaml::from_str(v) {
            Yaml::String(s) => format!("str:{s}"),
            other => format!("{other:?}"),
        },
    }
}

fn node(p: &mut Parser<std::str::Chars<'_>>, ev: Event, version: Version) -> Node {
    let next = |p: &mut Parser<std::str::Chars<'_>>| p.next_token().expect("valid YAML").0;
    match ev {
        Event::Scalar(s, style, _, None) => Node::Scalar(typed(&s, style, version), style),
        Event::SequenceStart(_, None) => {
            let mut items = Vec::new();
            loop {
                match next(p) {
                    Event::SequenceEnd => return Node::Seq(items),
                    e => items.push(node(p, e, version)),
                }
            }
        }
        Event::MappingStart(_, None) => {
            let mut map = BTreeMap::new();
            loop {
                let k = match next(p) {
                    Event::MappingEnd => return Node::Map(map),
                    e => match node(p, e, version) {
                        Node::Scalar(k, _) => k,
                        other => panic!("complex key {other:?}"),
                    },
                };
                let e = next(p);
                let v = node(p, e, version);
                assert!(map.insert(k.clone(), v).is_none(), "duplicate key {k}");
            }
        }
        other => panic!("unexpected event {other:?}"),
    }
}

/// The documents of `text` (a sequence of them) as `version` reads them.
fn load(text: &str, version: Version) -> Node {
    let mut p = Parser::new_from_str(text);
    let mut docs = Vec::new();
    loop {
        match p.next_token().expect("valid YAML").0 {
            Event::StreamEnd => return Node::Seq(docs),
            Event::DocumentStart => {
                let e = p.next_token().expect("valid YAML").0;
                docs.push(node(&mut p, e, version));
            }
            _ => {}
        }
    }
}

/// The same data without styles.
fn data(n: &Node) -> Node {
    match n {
        Node::Scalar(v, _) => Node::Scalar(v.clone(), TScalarStyle::Plain),
        Node::Seq(items) => Node::Seq(items.iter().map(data).collect()),
        Node::Map(m) => Node::Map(m.iter().map(|(k, v)| (k.clone(), data(v))).collect()),
    }
}

/// One step of a path: a mapping key or a sequence index (one past the end: a new item).
enum Step<'a> {
    Key(&'a str),
    At(usize),
}

/// The node at `path`; missing keys and items are added (a mapping, or a sequence when the next
/// step is an index).
fn at<'n>(n: &'n mut Node, path: &[Step<'_>]) -> &'n mut Node {
    let Some((step, rest)) = path.split_first() else {
        return n;
    };
    let fresh = || match rest.first() {
        Some(Step::At(_)) => Node::Seq(Vec::new()),
        _ => Node::Map(BTreeMap::new()),
    };
    let child = match (n, step) {
        (Node::Map(m), Step::Key(k)) => m.entry(format!("str:{k}")).or_insert_with(fresh),
        (Node::Seq(items), Step::At(i)) => {
            if *i == items.len() {
                items.push(fresh());
            }
            &mut items[*i]
        }
        (n, _) => panic!("path does not fit {n:?}"),
    };
    at(child, rest)
}

/// The style a value written in `old` style (`None`: a new key) must have.
fn want_style(old: Option<TScalarStyle>, new: &str) -> TScalarStyle {
    match old {
        Some(TScalarStyle::SingleQuoted) if new.chars().all(plain_char) => {
            TScalarStyle::SingleQuoted
        }
        Some(TScalarStyle::Plain) | None if plain_ok(new) => TScalarStyle::Plain,
        _ => TScalarStyle::DoubleQuoted,
    }
}

fn style_of(n: &Node) -> TScalarStyle {
    match n {
        Node::Scalar(_, s) => *s,
        other => panic!("not a scalar: {other:?}"),
    }
}

fn written(v: &str, style: usize) -> String {
    render(v, [Style::Plain, Style::Single, Style::Double][style % 3])
}

/// Check `edited` against `original` with the `changes` (path from the document index, new
/// value) applied, under both versions, and the style of every changed value.
fn check(
    original: &str,
    edited: &str,
    changes: &[(Vec<Step<'_>>, &str)],
) -> Result<(), TestCaseError> {
    for version in [Version::V11, Version::V12] {
        let mut want = load(original, version);
        for (path, v) in changes {
            *at(&mut want, path) = Node::Scalar(format!("str:{v}"), TScalarStyle::Plain);
        }
        prop_assert_eq!(
            data(&want),
            data(&load(edited, version)),
            "{:?}\n--- original\n{}\n--- edited\n{}",
            version,
            original,
            edited
        );
    }
    let mut before = load(original, Version::V12);
    let mut after = load(edited, Version::V12);
    for (path, v) in changes {
        let old = match at(&mut before, path) {
            Node::Scalar(_, s) => Some(*s),
            _ => None,
        };
        let got = style_of(at(&mut after, path));
        prop_assert_eq!(got, want_style(old, v), "{:?}\n{}", v, edited);
    }
    Ok(())
}

/// Values that YAML 1.1 or 1.2 would read as something else, or that need quotes.
const TRICKY: &[&str] = &[
    "on",
    "Off",
    "yes",
    "Y",
    "n",
    "NO",
    "true",
    "False",
    "null",
    "~",
    "",
    "0x1F",
    "0o17",
    "017",
    "1_000",
    "1.10",
    "2",
    "-1",
    "+1",
    "1e5",
    ".5",
    ".inf",
    "-.Inf",
    ".NaN",
    "2001-12-14",
    "2001-12-14 21:59:43.10",
    "190:20:30",
    "1:20",
    "<<",
    "=",
    "-a",
    "?a",
    ":a",
    ",a",
    "[a]",
    "]a",
    "{a}",
    "}a",
    "#a",
    "&a",
    "*a",
    "!a",
    "|a",
    ">a",
    "'a",
    "\"a",
    "%a",
    "@a",
    "`a",
    " a",
    "a ",
    "a #b",
    "a: b",
    "a:",
    "a\tb",
    "a\nb",
    "it's",
    "a\"b",
    "a\\b",
    "é",
    "a\u{85}b",
    "a\u{2028}b",
    "\u{FEFF}a",
    "x\u{7f}",
    "1.2.3",
    "a:b",
    "a@b",
    "a#b",
    "sha256:ab",
    "inf",
    "-",
    "0x",
    "_1",
    "a,b",
    "a[0]",
];

/// Values an edit may write: image-like ones (mostly plain) and tricky ones.
fn any_value() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => "[a-z0-9]{1,6}(\\.[a-z]{2,3})?(/[a-z0-9]{1,6}){0,2}(:[a-z0-9.-]{1,6})?(@sha256:[0-9a-f]{8})?",
        2 => "v?[0-9]{1,2}(\\.[0-9]{1,2}){0,2}(-[a-z0-9]{1,4})?",
        4 => prop::sample::select(TRICKY).prop_map(str::to_string),
        1 => "\\PC{0,10}",
        1 => "[ -~\t\n]{0,8}",
    ]
}

/// Values a Helm values file may get (`helm_safe` characters).
fn helm_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "v?[0-9]{1,2}(\\.[0-9]{1,2}){0,2}(-[a-z0-9]{1,4})?",
        "[a-z0-9]{1,6}(:[a-z0-9.-]{1,6})?(@sha256:[0-9a-f]{8})?",
        prop::sample::select(TRICKY)
            .prop_filter("helm-safe", |v| {
                !v.is_empty()
                    && v.bytes().all(|b| {
                        b.is_ascii_alphanumeric()
                            || matches!(b, b'.' | b'_' | b'-' | b'/' | b':' | b'@' | b'+')
                    })
            })
            .prop_map(str::to_string),
    ]
}

/// An old value as found in files, and the style it is written in.
fn old_value() -> impl Strategy<Value = (String, usize)> {
    (
        prop_oneof![
            "v?[0-9]{1,2}(\\.[0-9]{1,2}){0,2}",
            "sha256:[0-9a-f]{8}",
            "[a-z]{1,6}(/[a-z]{1,6})?:[0-9.]{1,4}",
        ],
        0usize..3,
    )
}

/// One `images:` entry of a kustomization.
#[derive(Debug, Clone)]
struct Entry {
    name: (String, usize),
    tag: Option<(String, usize)>,
    digest: Option<(String, usize)>,
    comment: bool,
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        ("[a-z]{1,5}/[a-z]{1,5}", 0usize..3),
        prop::option::of(old_value()),
        prop::option::of(old_value()),
        any::<bool>(),
    )
        .prop_map(|(name, tag, digest, comment)| Entry {
            name,
            tag,
            digest,
            comment,
        })
}

fn kustomization(entries: &[Entry], indent: usize, eol: &str) -> String {
    let pad = " ".repeat(indent);
    let mut out = format!(
        "# the app{eol}apiVersion: kustomize.config.k8s.io/v1beta1{eol}resources:{eol}{pad}- app.yaml # x: y{eol}"
    );
    if !entries.is_empty() {
        out.push_str(&format!("images:{eol}"));
    }
    for e in entries {
        let c = if e.comment { "  # pinned: yes" } else { "" };
        out.push_str(&format!(
            "{pad}- name: {}{c}{eol}",
            written(&e.name.0, e.name.1)
        ));
        for (key, v) in [("newTag", &e.tag), ("digest", &e.digest)] {
            if let Some((v, style)) = v {
                out.push_str(&format!("{pad}  {key}: {}{c}{eol}", written(v, *style)));
            }
        }
    }
    out
}

fn container(name: &str, image: &(String, usize), pad: &str, eol: &str) -> String {
    format!(
        "{pad}- name: {name}{eol}{pad}  image: {} # pinned{eol}{pad}  ports:{eol}{pad}    - containerPort: 80{eol}",
        written(&image.0, image.1)
    )
}

fn values(depth: usize, fields: &[(&str, &(String, usize))], eol: &str) -> String {
    let mut out = format!("# chart{eol}replicaCount: 2{eol}");
    for level in 0..depth {
        let key = if level + 1 == depth { "image" } else { "sub" };
        out.push_str(&format!("{}{key}:{eol}", "  ".repeat(level)));
    }
    for (key, (v, style)) in fields {
        let pad = "  ".repeat(depth);
        out.push_str(&format!("{pad}{key}: {} # {key}{eol}", written(v, *style)));
    }
    out.push_str(&format!("other: 'x'{eol}"));
    out
}

fn kustomize_case(
    entries: &[Entry],
    pick: usize,
    indent: usize,
    crlf: bool,
    new_tag: Option<&str>,
    digest: Option<&str>,
) -> Result<(), TestCaseError> {
    let eol = if crlf { "\r\n" } else { "\n" };
    let original = kustomization(entries, indent, eol);
    let pick = pick.min(entries.len());
    let name = entries.get(pick).map_or("new/app", |e| e.name.0.as_str());
    let mut edited = original.clone();
    set_kustomize_image(&mut edited, name, new_tag, digest).unwrap();
    let item = |key| {
        vec![
            Step::At(0),
            Step::Key("images"),
            Step::At(pick),
            Step::Key(key),
        ]
    };
    let mut changes = Vec::new();
    if pick == entries.len() {
        changes.push((item("name"), name));
    }
    for (key, v) in [("newTag", new_tag), ("digest", digest)] {
        if let Some(v) = v {
            changes.push((item(key), v));
        }
    }
    check(&original, &edited, &changes)
}

fn container_case(
    images: &[(String, usize)],
    pick: usize,
    crlf: bool,
    new: &str,
) -> Result<(), TestCaseError> {
    let eol = if crlf { "\r\n" } else { "\n" };
    let pick = pick % images.len();
    let mut original = format!(
        "apiVersion: v1{eol}kind: Service{eol}metadata:{eol}  name: app{eol}---{eol}kind: Deployment{eol}metadata:{eol}  name: app{eol}spec:{eol}  template:{eol}    spec:{eol}      containers:{eol}"
    );
    for (i, image) in images.iter().enumerate() {
        original.push_str(&container(&format!("c{i}"), image, "        ", eol));
    }
    let mut edited = original.clone();
    let name = format!("c{pick}");
    set_container_image(&mut edited, "Deployment", "app", &name, new).unwrap();
    let path = vec![
        Step::At(1),
        Step::Key("spec"),
        Step::Key("template"),
        Step::Key("spec"),
        Step::Key("containers"),
        Step::At(pick),
        Step::Key("image"),
    ];
    check(&original, &edited, &[(path, new)])
}

/// Written plain as `k: v`, does a YAML 1.2 parser read the string `v` back, and YAML 1.1?
fn reads_back_plain(v: &str) -> bool {
    let doc = format!("k: {v}\n");
    let parsed = std::panic::catch_unwind(|| load(&doc, Version::V12)).ok();
    let want = Node::Seq(vec![Node::Map(BTreeMap::from([(
        "str:k".to_string(),
        Node::Scalar(format!("str:{v}"), TScalarStyle::Plain),
    )]))]);
    parsed == Some(want) && yaml11(v).is_none()
}

#[test]
fn every_tricky_value_is_written_so_that_it_reads_back() {
    let old = |style| ("1.0".to_string(), style);
    for v in TRICKY {
        assert!(
            !plain_ok(v) || reads_back_plain(v),
            "{v:?} was judged plain-safe"
        );
        for style in 0..3 {
            let entry = Entry {
                name: ("acme/app".into(), style),
                tag: Some(old(style)),
                digest: None,
                comment: style == 1,
            };
            kustomize_case(std::slice::from_ref(&entry), 0, 2, false, Some(v), Some(v)).unwrap();
            kustomize_case(&[entry], 1, 0, true, Some(v), Some(v)).unwrap();
            container_case(&[old(style), old(2 - style)], 0, style == 2, v).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn kustomize_edit_changes_only_its_values_under_yaml_1_1_and_1_2(
        entries in prop::collection::vec(entry(), 0..4),
        pick in 0usize..5, indent in 0usize..3, crlf in any::<bool>(),
        new_tag in prop::option::of(any_value()), digest in prop::option::of(any_value()),
    ) {
        kustomize_case(&entries, pick, indent, crlf, new_tag.as_deref(), digest.as_deref())?;
    }

    #[test]
    fn container_edit_changes_only_the_image_under_yaml_1_1_and_1_2(
        images in prop::collection::vec(old_value(), 1..4), pick in 0usize..4,
        crlf in any::<bool>(), new in any_value(),
    ) {
        container_case(&images, pick, crlf, &new)?;
    }

    #[test]
    fn helm_edit_changes_only_the_image_under_yaml_1_1_and_1_2(
        depth in 1usize..4, repo in old_value(), tag in old_value(),
        old_digest in prop::option::of(old_value()), crlf in any::<bool>(),
        new_repo in "[a-z]{1,5}(\\.io)?/[a-z]{1,6}", new_tag in helm_value(),
        new_digest in "sha256:[0-9a-f]{8}",
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let repo = (format!("old.io/{}", repo.0.replace(':', "-")), repo.1);
        let mut fields = vec![("repository", &repo), ("tag", &tag)];
        if let Some(d) = &old_digest {
            fields.push(("digest", d));
        }
        let original = values(depth, &fields, eol);
        let key = "sub.".repeat(depth - 1) + "image";
        let edited = set_helm_image("values.yaml", &original, &key, &new_repo, &new_tag, &new_digest).unwrap();
        let path = |field| {
            let mut p = vec![Step::At(0)];
            p.extend((1..depth).map(|_| Step::Key("sub")));
            p.extend([Step::Key("image"), Step::Key(field)]);
            p
        };
        let tag_value = if old_digest.is_some() { new_tag.clone() } else { format!("{new_tag}@{new_digest}") };
        let mut changes = vec![(path("repository"), new_repo.as_str()), (path("tag"), tag_value.as_str())];
        if old_digest.is_some() {
            changes.push((path("digest"), new_digest.as_str()));
        }
        check(&original, &edited, &changes)?;
    }

    #[test]
    fn plain_is_chosen_whenever_both_versions_read_the_same_string(v in any_value()) {
        let reads_back = reads_back_plain(&v);
        if plain_ok(&v) {
            prop_assert!(reads_back, "{:?} was judged plain-safe", v);
        }
        // Quoted only when it must be: by YAML's rules, or a leading indicator, an outer space or
        // a character YAML 1.1 treats differently (non-ASCII line breaks, BOM, controls).
        let must = v.starts_with(['-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`', ' '])
            || v.ends_with(' ')
            || !v.chars().all(plain_char);
        if reads_back && !must {
            prop_assert!(plain_ok(&v), "{:?} was quoted though it need not be", v);
        }
    }
}
