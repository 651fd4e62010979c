//! Tag-choosing policies as pure code (no IO): which listed tag a workload moves to.
//!
//! `ferry.dev/policy` values handled here ([`TagStrategy::parse`]):
//!
//! | value                 | candidate tags                       | ranks by                                 |
//! |-----------------------|--------------------------------------|------------------------------------------|
//! | `semver:RANGE`        | versions (`1.2.3`, `v1.2.3`) in RANGE | semantic version                          |
//! | `newest-build:REGEX`  | tags matching REGEX                  | the image's created time (strictly later) |
//! | `numerical:REGEX`     | tags matching REGEX (one group)      | the group as an integer of any length     |
//! | `alphabetical:REGEX`  | tags matching REGEX                  | byte order                                |
//!
//! `ferry.dev/tag-ignore: REGEX` ([`parse_ignore`]) removes matching tags from the candidates of
//! every strategy. Regexes use the syntax of the `regex` crate, are unanchored (write `^…$` to
//! match the whole tag), compile with size and nesting limits (a hostile pattern is an
//! [`Error::TagPattern`], never a panic or a blow-up) and match in linear time.
//!
//! The rule above all others: never a downgrade. [`TagStrategy::choose`] returns a tag only when
//! it ranks strictly above the current tag under the same strategy; otherwise a typed
//! [`NoCandidate`] says why. Listed tags that are not valid tags (registries sometimes list
//! digests or `null`) are never candidates.
//!
//! `newest-build` needs each candidate's created time. Reading it costs registry requests, so
//! [`to_inspect`] selects which tags to read in one pass: only tags the caller has not seen
//! before, the current tag first, then the newest-looking ones (natural order, descending), at
//! most `max_inspect` ([`DEFAULT_MAX_INSPECT`]) per repository per pass.
//!
//! ```
//! use ferry_policy::tags::{NoCandidate, TagStrategy, parse_ignore};
//!
//! let s = TagStrategy::parse(r"numerical:^build-(\d+)$").unwrap().unwrap();
//! let ignore = parse_ignore(Some(r"-rc$")).unwrap();
//! let tags: Vec<String> = ["build-99", "build-100", "build-101-rc", "latest"]
//!     .map(String::from)
//!     .to_vec();
//! let c = s.choose("build-99", &tags, ignore.as_ref(), |_| None).unwrap();
//! assert_eq!(c.tag, "build-100");
//! // Already on the best tag: nothing to do, and the reason is typed.
//! let e = s.choose("build-100", &tags, ignore.as_ref(), |_| None).unwrap_err();
//! assert!(matches!(e, NoCandidate::UpToDate { .. }));
//!
//! // newest-build: created times (seconds since the epoch) come from the caller.
//! let s = TagStrategy::parse("newest-build:^main-[0-9a-f]{7}$").unwrap().unwrap();
//! let tags: Vec<String> = ["main-3f2a9c1", "main-0b1c2d3"].map(String::from).to_vec();
//! let created = |t: &str| match t {
//!     "main-3f2a9c1" => Some(100),
//!     "main-0b1c2d3" => Some(200),
//!     _ => None,
//! };
//! assert_eq!(s.choose("main-3f2a9c1", &tags, None, created).unwrap().tag, "main-0b1c2d3");
//! ```

use std::cmp::{Ordering, Reverse};
use std::fmt;

use regex::{Regex, RegexBuilder};
use semver::{Version, VersionReq};

pub use crate::keys::TAG_IGNORE;
use crate::{Error, PatternProblem, Result};

/// How many created times `newest-build` reads per repository per pass by default.
pub const DEFAULT_MAX_INSPECT: usize = 100;

/// Longest pattern accepted (annotation values are small; a longer one is a mistake or abuse).
const MAX_PATTERN_LEN: usize = 1024;
/// Compiled program size limit (the crate's default is 10 MiB; tag patterns need far less).
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Lazy DFA cache limit.
const REGEX_DFA_LIMIT: usize = 1 << 20;
/// Nesting depth limit (parentheses, repetitions).
const REGEX_NEST_LIMIT: u32 = 32;
/// Longest tag the distribution grammar allows.
const TAG_MAX_LEN: usize = 128;

/// A compiled, size-limited tag regex. Equality is the pattern text.
#[derive(Clone)]
pub struct TagPattern {
    regex: Regex,
}

impl TagPattern {
    /// Compile `pattern`; errors name `annotation` and the pattern.
    pub fn new(annotation: &str, pattern: &str) -> Result<TagPattern> {
        let err = |problem| Error::TagPattern {
            annotation: annotation.to_string(),
            pattern: pattern.to_string(),
            problem,
        };
        if pattern.is_empty() {
            return Err(err(PatternProblem::Empty));
        }
        if pattern.len() > MAX_PATTERN_LEN {
            return Err(err(PatternProblem::TooLong {
                len: pattern.len(),
                max: MAX_PATTERN_LEN,
            }));
        }
        let regex = RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_DFA_LIMIT)
            .nest_limit(REGEX_NEST_LIMIT)
            .build()
            .map_err(|e| err(PatternProblem::Regex(e)))?;
        Ok(TagPattern { regex })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        self.regex.as_str()
    }

    /// Whether the pattern matches anywhere in `tag` (unanchored, like Go's `regexp.MatchString`).
    pub fn is_match(&self, tag: &str) -> bool {
        self.regex.is_match(tag)
    }

    /// Number of capture groups, not counting the whole match.
    pub fn groups(&self) -> usize {
        self.regex.captures_len() - 1
    }
}

impl fmt::Debug for TagPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TagPattern").field(&self.as_str()).finish()
    }
}

impl fmt::Display for TagPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for TagPattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for TagPattern {}

/// Parse `ferry.dev/tag-ignore`: absent or blank → `None`.
pub fn parse_ignore(value: Option<&str>) -> Result<Option<TagPattern>> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(p) => TagPattern::new(TAG_IGNORE, p).map(Some),
    }
}

/// A policy that chooses among listed tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagStrategy {
    /// `semver:RANGE`: the highest version in RANGE (a leading `v` is allowed).
    Semver(VersionReq),
    /// `newest-build:REGEX`: the matching tag whose image was created last.
    NewestBuild(TagPattern),
    /// `numerical:REGEX`: the matching tag whose one capture group is the largest integer.
    Numerical(TagPattern),
    /// `alphabetical:REGEX`: the matching tag that sorts last in byte order.
    Alphabetical(TagPattern),
}

impl TagStrategy {
    /// Parse a `ferry.dev/policy` value. `Ok(None)` when it names no tag strategy (`digest`,
    /// `off`, …: the caller handles those); an error (naming the annotation and the pattern) when
    /// it names one with an unusable argument.
    pub fn parse(value: &str) -> Result<Option<TagStrategy>> {
        let value = value.trim();
        let Some((kind, arg)) = value.split_once(':') else {
            return Ok(None);
        };
        let arg = arg.trim();
        let pattern = || TagPattern::new(crate::POLICY, arg);
        let strategy = match kind.trim() {
            "semver" => VersionReq::parse(arg)
                .map(TagStrategy::Semver)
                .map_err(|e| Error::TagPattern {
                    annotation: crate::POLICY.into(),
                    pattern: arg.into(),
                    problem: PatternProblem::Semver(ferry_core::Shared::new(e)),
                })?,
            "newest-build" => TagStrategy::NewestBuild(pattern()?),
            "alphabetical" => TagStrategy::Alphabetical(pattern()?),
            "numerical" => {
                let p = pattern()?;
                if p.groups() != 1 {
                    return Err(Error::TagPattern {
                        annotation: crate::POLICY.into(),
                        pattern: arg.into(),
                        problem: PatternProblem::Groups { found: p.groups() },
                    });
                }
                TagStrategy::Numerical(p)
            }
            _ => return Ok(None),
        };
        Ok(Some(strategy))
    }

    /// The strategy's name (`semver`, `newest-build`, `numerical`, `alphabetical`).
    pub fn kind(&self) -> &'static str {
        match self {
            TagStrategy::Semver(_) => "semver",
            TagStrategy::NewestBuild(_) => "newest-build",
            TagStrategy::Numerical(_) => "numerical",
            TagStrategy::Alphabetical(_) => "alphabetical",
        }
    }

    /// Whether ranking needs created times (only `newest-build`).
    pub fn needs_created(&self) -> bool {
        matches!(self, TagStrategy::NewestBuild(_))
    }

    /// Whether `tag` is a candidate: a valid tag, not ignored, and matching the strategy (in the
    /// range, matching the regex, with a group of ASCII digits for `numerical`).
    pub fn admits(&self, tag: &str, ignore: Option<&TagPattern>) -> bool {
        is_valid_tag(tag)
            && !ignore.is_some_and(|i| i.is_match(tag))
            && match self {
                TagStrategy::Semver(req) => semver_version(tag).is_some_and(|v| req.matches(&v)),
                TagStrategy::NewestBuild(p) | TagStrategy::Alphabetical(p) => p.is_match(tag),
                TagStrategy::Numerical(p) => captured_number(p, tag).is_some(),
            }
    }

    /// The rank of `tag` (candidate or current) under this strategy; `None` when it has none.
    fn rank<'t>(&self, tag: &'t str, created: &impl Fn(&str) -> Option<u64>) -> Option<Rank<'t>> {
        match self {
            TagStrategy::Semver(_) => semver_version(tag).map(Rank::Version),
            TagStrategy::NewestBuild(_) => created(tag).map(Rank::Created),
            TagStrategy::Numerical(p) => captured_number(p, tag).map(Rank::Number),
            TagStrategy::Alphabetical(p) => p.is_match(tag).then_some(Rank::Bytes(tag.as_bytes())),
        }
    }

    /// Why the current tag has no rank.
    fn unranked(&self) -> Unranked {
        match self {
            TagStrategy::Semver(_) => Unranked::NotAVersion,
            TagStrategy::NewestBuild(_) => Unranked::CreatedUnknown,
            TagStrategy::Numerical(_) | TagStrategy::Alphabetical(_) => Unranked::NoMatch,
        }
    }

    /// The best candidate among `tags` that ranks strictly above `current`, or why there is none.
    ///
    /// `created` gives the created time (seconds since the epoch) of a tag's image, for
    /// `newest-build` (pass `|_| None` for the other strategies); it is asked for `current` too.
    /// Candidates whose created time is unknown are left out and counted in
    /// [`Candidate::uninspected`]. Among candidates of equal rank the shorter tag wins, then
    /// the later in byte order, so the choice never depends on listing order.
    pub fn choose(
        &self,
        current: &str,
        tags: &[String],
        ignore: Option<&TagPattern>,
        created: impl Fn(&str) -> Option<u64>,
    ) -> Result<Candidate, NoCandidate> {
        let mut best: Option<(Rank<'_>, &str)> = None;
        let mut uninspected = 0;
        for tag in tags.iter().map(String::as_str) {
            if !self.admits(tag, ignore) {
                continue;
            }
            let Some(rank) = self.rank(tag, &created) else {
                uninspected += 1;
                continue;
            };
            let better = best
                .as_ref()
                .is_none_or(|(r, t)| (&rank, Reverse(tag.len()), tag) > (r, Reverse(t.len()), *t));
            if better {
                best = Some((rank, tag));
            }
        }
        let Some((best_rank, best_tag)) = best else {
            return Err(if uninspected > 0 {
                NoCandidate::NotInspected {
                    pending: uninspected,
                }
            } else {
                NoCandidate::NoMatch {
                    strategy: self.to_string(),
                    ignore: ignore.map(ToString::to_string),
                }
            });
        };
        let Some(current_rank) = self.rank(current, &created) else {
            return Err(NoCandidate::CurrentUnranked {
                current: current.to_string(),
                strategy: self.to_string(),
                why: self.unranked(),
            });
        };
        match best_rank.cmp(&current_rank) {
            Ordering::Greater => Ok(Candidate {
                tag: best_tag.to_string(),
                uninspected,
            }),
            Ordering::Equal => Err(NoCandidate::UpToDate {
                current: current.to_string(),
                best: best_tag.to_string(),
            }),
            Ordering::Less => Err(NoCandidate::NotNewer {
                current: current.to_string(),
                best: best_tag.to_string(),
            }),
        }
    }
}

impl fmt::Display for TagStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TagStrategy::Semver(r) => write!(f, "semver:{r}"),
            TagStrategy::NewestBuild(p)
            | TagStrategy::Numerical(p)
            | TagStrategy::Alphabetical(p) => {
                write!(f, "{}:{p}", self.kind())
            }
        }
    }
}

/// The tag to move to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The chosen tag (ranks strictly above the current one).
    pub tag: String,
    /// `newest-build`: matching tags left out because their created time is not known yet
    /// (beyond this pass's inspection budget); always 0 for the other strategies.
    pub uninspected: usize,
}

/// Why the current tag cannot be ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unranked {
    /// `numerical`/`alphabetical`: it does not match the regex (or the group holds no digits).
    NoMatch,
    /// `semver`: it is not a semantic version.
    NotAVersion,
    /// `newest-build`: its image's created time is not known.
    CreatedUnknown,
}

/// Why a strategy chose no tag. Not an error of ferry: a reason to skip the workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoCandidate {
    /// No listed tag is a candidate.
    NoMatch {
        /// The strategy, as written (`numerical:^build-(\d+)$`).
        strategy: String,
        /// The tag-ignore regex, when one is set.
        ignore: Option<String>,
    },
    /// `newest-build`: tags match, but none has a known created time yet.
    NotInspected {
        /// Matching tags whose created time is unknown.
        pending: usize,
    },
    /// The current tag has no rank under this strategy, so no move can be proven an upgrade.
    CurrentUnranked {
        /// The current tag.
        current: String,
        /// The strategy, as written.
        strategy: String,
        /// Why.
        why: Unranked,
    },
    /// The best candidate ranks equal to the current tag (usually: it is the current tag).
    UpToDate {
        /// The current tag.
        current: String,
        /// The best candidate.
        best: String,
    },
    /// The best candidate ranks below the current tag.
    NotNewer {
        /// The current tag.
        current: String,
        /// The best candidate.
        best: String,
    },
}

impl std::fmt::Display for NoCandidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoCandidate::NoMatch { strategy, ignore } => {
                write!(f, "no tag matches {strategy}")?;
                if let Some(i) = ignore {
                    write!(f, " (ignoring {i})")?;
                }
                Ok(())
            }
            NoCandidate::NotInspected { pending } => write!(
                f,
                "{pending} matching tag(s) wait for their created time to be read"
            ),
            NoCandidate::CurrentUnranked {
                current,
                strategy,
                why,
            } => {
                let why = match why {
                    Unranked::NoMatch => "it does not match the regex",
                    Unranked::NotAVersion => "it is not a semantic version",
                    Unranked::CreatedUnknown => "its image's created time is unknown",
                };
                write!(
                    f,
                    "the current tag {current:?} cannot be ranked under {strategy} ({why}): never a guess"
                )
            }
            NoCandidate::UpToDate { current, best } => {
                write!(f, "{current} is the newest tag ({best} ranks the same)")
            }
            NoCandidate::NotNewer { current, best } => write!(
                f,
                "the best tag {best} ranks below the running {current}: never a downgrade"
            ),
        }
    }
}

/// A rank under one strategy; ranks of different strategies are never compared.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Rank<'t> {
    Version(Version),
    Created(u64),
    Number(Digits<'t>),
    Bytes(&'t [u8]),
}

/// A run of ASCII digits compared as an integer of any length (leading zeros ignored).
#[derive(Debug, Clone, Copy)]
pub struct Digits<'t>(&'t str);

impl<'t> Digits<'t> {
    /// `s` when it is a non-empty run of ASCII digits.
    pub fn new(s: &'t str) -> Option<Digits<'t>> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then_some(Digits(s))
    }

    fn significant(&self) -> &'t str {
        let s = self.0.trim_start_matches('0');
        if s.is_empty() { "0" } else { s }
    }
}

impl Ord for Digits<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.significant(), other.significant());
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    }
}

impl PartialOrd for Digits<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Digits<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Digits<'_> {}

/// The number captured by `p`'s one group in `tag`, when it matched and holds ASCII digits only
/// (`\d` in the regex crate also matches other scripts' digits: those are not numbers here).
fn captured_number<'t>(p: &TagPattern, tag: &'t str) -> Option<Digits<'t>> {
    let caps = p.regex.captures(tag)?;
    Digits::new(caps.get(1)?.as_str())
}

/// A tag read as a semantic version, allowing a leading `v` (as `semver:` always has).
pub fn semver_version(tag: &str) -> Option<Version> {
    Version::parse(tag.strip_prefix('v').unwrap_or(tag)).ok()
}

/// Whether `tag` is a valid tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= TAG_MAX_LEN
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// One workload's use of a repository's tags, for [`to_inspect`].
#[derive(Debug, Clone, Copy)]
pub struct InspectRequest<'a> {
    /// The workload's strategy (only `newest-build` needs inspection).
    pub strategy: &'a TagStrategy,
    /// Its `ferry.dev/tag-ignore`.
    pub ignore: Option<&'a TagPattern>,
    /// Its current tag (its created time is needed to compare).
    pub current: &'a str,
}

/// Which listed tags of one repository to read the created time of in this pass.
///
/// `requests` are the workloads using the repository; `known(tag)` says whether the caller
/// already has the tag's created time (its cache is keyed by digest; a tag seen before is not
/// read again). Returns at most `max_inspect` distinct listed tags: first the current tags of
/// `newest-build` requests, then their candidates, newest-looking first (natural order,
/// descending: digit runs compare as numbers, so `2026-11-29` before `2026-02-01`, `build-100`
/// before `build-99`).
pub fn to_inspect<'t>(
    requests: &[InspectRequest<'_>],
    tags: &'t [String],
    known: impl Fn(&str) -> bool,
    max_inspect: usize,
) -> Vec<&'t str> {
    let newest: Vec<&InspectRequest<'_>> = requests
        .iter()
        .filter(|r| r.strategy.needs_created())
        .collect();
    let mut out: Vec<&'t str> = Vec::new();
    let push = |t: &'t str, out: &mut Vec<&'t str>| {
        if out.len() < max_inspect && !known(t) && !out.contains(&t) {
            out.push(t);
        }
    };
    for r in &newest {
        if let Some(t) = tags.iter().find(|t| t.as_str() == r.current) {
            push(t, &mut out);
        }
    }
    let mut candidates: Vec<&'t str> = tags
        .iter()
        .map(String::as_str)
        .filter(|t| newest.iter().any(|r| r.strategy.admits(t, r.ignore)))
        .collect();
    candidates.sort_by(|a, b| natural_cmp(b, a));
    candidates.dedup();
    for t in candidates {
        push(t, &mut out);
    }
    out
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Segment<'t> {
    Number(Digits<'t>),
    Text(&'t [u8]),
}

fn segments(tag: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    let mut rest = tag;
    while !rest.is_empty() {
        let digit = rest.as_bytes()[0].is_ascii_digit();
        let end = rest
            .bytes()
            .position(|b| b.is_ascii_digit() != digit)
            .unwrap_or(rest.len());
        let (run, tail) = rest.split_at(end);
        out.push(match Digits::new(run) {
            Some(d) => Segment::Number(d),
            None => Segment::Text(run.as_bytes()),
        });
        rest = tail;
    }
    out
}

/// Natural order: digit runs compare as numbers, other runs as bytes, ties by bytes. A total
/// order (safe for sorting).
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    segments(a).cmp(&segments(b)).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn strategy(v: &str) -> TagStrategy {
        TagStrategy::parse(v).unwrap().unwrap()
    }

    fn list(tags: &[&str]) -> Vec<String> {
        tags.iter().map(ToString::to_string).collect()
    }

    fn none(_: &str) -> Option<u64> {
        None
    }

    #[test]
    fn parse_names_each_strategy_and_leaves_the_rest_to_the_caller() {
        assert!(matches!(strategy("semver:^1.2"), TagStrategy::Semver(_)));
        assert!(
            matches!(strategy(" newest-build: ^main- "), TagStrategy::NewestBuild(p) if p.as_str() == "^main-")
        );
        assert!(matches!(
            strategy(r"numerical:^build-(\d+)$"),
            TagStrategy::Numerical(_)
        ));
        assert!(matches!(
            strategy(r"alphabetical:^\d{4}-\d\d-\d\d$"),
            TagStrategy::Alphabetical(_)
        ));
        for other in ["digest", "off", "", "unknown:x", "latest"] {
            assert_eq!(TagStrategy::parse(other).unwrap(), None, "{other}");
        }
        assert_eq!(
            strategy(r"numerical:^build-(\d+)$").to_string(),
            r"numerical:^build-(\d+)$"
        );
    }

    #[test]
    fn bad_regexes_are_errors_naming_the_annotation_and_the_pattern() {
        for (value, needle) in [
            ("newest-build:(", "newest-build"),
            ("alphabetical:", "empty regex"),
            (r"numerical:^build-\d+$", "exactly one capture group"),
            (r"numerical:^(a)-(\d+)$", "this regex has 2"),
            ("semver:not a range", "invalid semver range"),
        ] {
            let e = TagStrategy::parse(value).unwrap_err().to_string();
            assert!(e.starts_with("annotation ferry.dev/policy: regex "), "{e}");
            if !needle.starts_with("newest") {
                assert!(e.contains(needle), "{value}: {e}");
            }
            assert!(!e.contains('\n'), "one line: {e}");
        }
        let e = parse_ignore(Some("[z-a]")).unwrap_err().to_string();
        assert!(
            e.starts_with("annotation ferry.dev/tag-ignore: regex \"[z-a]\""),
            "{e}"
        );
        assert_eq!(parse_ignore(Some("  ")).unwrap(), None);
        assert_eq!(parse_ignore(None).unwrap(), None);
        // Non-capturing groups do not count.
        assert!(TagStrategy::parse(r"numerical:^(?:v|r)(\d+)$").is_ok());
    }

    #[test]
    fn hostile_patterns_are_refused_not_compiled() {
        for p in [
            "(((a{100}){100}){100})".to_string(),
            "a".repeat(MAX_PATTERN_LEN + 1),
            format!("{}a{}", "(".repeat(200), ")".repeat(200)),
            r"\w{1000}\w{1000}\w{1000}".to_string(),
        ] {
            let e = TagPattern::new(TAG_IGNORE, &p).unwrap_err();
            assert!(matches!(e, Error::TagPattern { .. }), "{e}");
        }
    }

    #[test]
    fn numerical_compares_numbers_across_digit_counts() {
        let s = strategy(r"numerical:^build-(\d+)$");
        let tags = list(&[
            "build-99",
            "build-100",
            "build-9",
            "latest",
            "build-x",
            "sha256:00",
        ]);
        assert_eq!(
            s.choose("build-99", &tags, None, none).unwrap().tag,
            "build-100"
        );
        let big = list(&[
            "build-18446744073709551615",
            "build-18446744073709551616",
            "build-99999999999999999999999999999999999999999",
        ]);
        assert_eq!(
            s.choose("build-18446744073709551615", &big, None, none)
                .unwrap()
                .tag,
            "build-99999999999999999999999999999999999999999"
        );
        assert_eq!(
            s.choose("build-100", &tags, None, none),
            Err(NoCandidate::UpToDate {
                current: "build-100".into(),
                best: "build-100".into()
            })
        );
        // Leading zeros: same number, not an upgrade.
        assert!(matches!(
            s.choose("build-0100", &tags, None, none),
            Err(NoCandidate::UpToDate { .. })
        ));
        assert_eq!(
            s.choose("build-101", &tags, None, none),
            Err(NoCandidate::NotNewer {
                current: "build-101".into(),
                best: "build-100".into()
            })
        );
        // Digits of other scripts match \d but are not numbers.
        let arabic = list(&["build-\u{661}\u{662}"]);
        assert!(matches!(
            s.choose("build-1", &arabic, None, none),
            Err(NoCandidate::NoMatch { .. })
        ));
    }

    #[test]
    fn alphabetical_is_byte_order_among_matches() {
        let s = strategy(r"alphabetical:^\d{4}-\d\d-\d\d$");
        let tags = list(&[
            "2026-11-29",
            "2026-02-01",
            "2027-01-01-rc",
            "latest",
            "2025-12-31",
        ]);
        assert_eq!(
            s.choose("2026-02-01", &tags, None, none).unwrap().tag,
            "2026-11-29"
        );
        let e = s.choose("latest", &tags, None, none).unwrap_err();
        assert_eq!(
            e,
            NoCandidate::CurrentUnranked {
                current: "latest".into(),
                strategy: r"alphabetical:^\d{4}-\d\d-\d\d$".into(),
                why: Unranked::NoMatch
            }
        );
        assert!(e.to_string().contains("does not match the regex"), "{e}");
    }

    #[test]
    fn newest_build_needs_a_strictly_later_created_time() {
        let s = strategy("newest-build:^main-");
        let tags = list(&["main-aaaaaaa", "main-bbbbbbb", "main-ccccccc", "pr-1"]);
        let created: BTreeMap<&str, u64> = [
            ("main-aaaaaaa", 10),
            ("main-bbbbbbb", 30),
            ("main-ccccccc", 20),
            ("pr-1", 99),
        ]
        .into();
        let c = |t: &str| created.get(t).copied();
        assert_eq!(
            s.choose("main-aaaaaaa", &tags, None, c).unwrap(),
            Candidate {
                tag: "main-bbbbbbb".into(),
                uninspected: 0
            }
        );
        assert!(matches!(
            s.choose("main-bbbbbbb", &tags, None, c),
            Err(NoCandidate::UpToDate { .. })
        ));
        // Same created time is not newer.
        let same: BTreeMap<&str, u64> = [("main-aaaaaaa", 10), ("main-bbbbbbb", 10)].into();
        let e = s
            .choose(
                "main-aaaaaaa",
                &list(&["main-aaaaaaa", "main-bbbbbbb"]),
                None,
                |t| same.get(t).copied(),
            )
            .unwrap_err();
        assert!(matches!(e, NoCandidate::UpToDate { .. }), "{e:?}");
        // Unknown created times: left out and counted; none known at all → NotInspected.
        let partial: BTreeMap<&str, u64> = [("main-aaaaaaa", 10), ("main-ccccccc", 20)].into();
        assert_eq!(
            s.choose("main-aaaaaaa", &tags, None, |t| partial.get(t).copied())
                .unwrap(),
            Candidate {
                tag: "main-ccccccc".into(),
                uninspected: 1
            }
        );
        assert_eq!(
            s.choose("main-aaaaaaa", &tags, None, none),
            Err(NoCandidate::NotInspected { pending: 3 })
        );
        let only_candidates: BTreeMap<&str, u64> = [("main-bbbbbbb", 30)].into();
        assert!(matches!(
            s.choose("main-aaaaaaa", &tags, None, |t| only_candidates
                .get(t)
                .copied()),
            Err(NoCandidate::CurrentUnranked {
                why: Unranked::CreatedUnknown,
                ..
            })
        ));
    }

    #[test]
    fn ignore_applies_to_every_strategy_semver_too() {
        let ignore = parse_ignore(Some("-rc|1\\.3\\.")).unwrap();
        let s = strategy("semver:^1");
        let tags = list(&["1.2.0", "1.3.0", "v1.3.1", "1.4.0-rc", "1.2.5"]);
        assert_eq!(
            s.choose("1.2.0", &tags, ignore.as_ref(), none).unwrap().tag,
            "1.2.5"
        );
        assert_eq!(s.choose("1.2.0", &tags, None, none).unwrap().tag, "v1.3.1");
        let e = strategy("alphabetical:^x")
            .choose("x1", &list(&["x1-rc", "x2-rc"]), ignore.as_ref(), none)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "no tag matches alphabetical:^x (ignoring -rc|1\\.3\\.)"
        );
    }

    #[test]
    fn semver_prefers_the_shorter_spelling_of_an_equal_version() {
        let s = strategy("semver:>=1");
        let tags = list(&["v2.0.0", "2.0.0", "1.0.0"]);
        assert_eq!(s.choose("1.0.0", &tags, None, none).unwrap().tag, "2.0.0");
        let tags = list(&["2.0.0", "v2.0.0", "1.0.0"]);
        assert_eq!(s.choose("1.0.0", &tags, None, none).unwrap().tag, "2.0.0");
        assert!(matches!(
            s.choose("banana", &tags, None, none),
            Err(NoCandidate::CurrentUnranked {
                why: Unranked::NotAVersion,
                ..
            })
        ));
    }

    #[test]
    fn invalid_listed_tags_are_never_candidates() {
        let s = strategy("alphabetical:.");
        let tags = list(&[
            "a",
            "zz z",
            "-x",
            ".y",
            "null\n",
            &"z".repeat(129),
            "sha256:ff",
        ]);
        assert_eq!(s.choose("_", &tags, None, none).unwrap().tag, "a");
        assert!(is_valid_tag(&"z".repeat(128)) && is_valid_tag("_x.y-z") && !is_valid_tag(""));
    }

    #[test]
    fn inspection_reads_unknown_tags_current_first_newest_looking_first_within_budget() {
        let nb = strategy("newest-build:^\\d{4}-\\d\\d-\\d\\d");
        let alpha = strategy("alphabetical:.");
        let ignore = parse_ignore(Some("-skip$")).unwrap();
        let tags = list(&[
            "2026-01-05",
            "2026-11-29",
            "2025-12-31",
            "2026-11-29-skip",
            "2026-02-10",
            "latest",
            "2026-11-03",
        ]);
        let requests = [
            InspectRequest {
                strategy: &nb,
                ignore: ignore.as_ref(),
                current: "2025-12-31",
            },
            InspectRequest {
                strategy: &alpha,
                ignore: None,
                current: "latest",
            },
        ];
        let known = |t: &str| t == "2026-11-03";
        assert_eq!(
            to_inspect(&requests, &tags, known, 100),
            ["2025-12-31", "2026-11-29", "2026-02-10", "2026-01-05"]
        );
        assert_eq!(
            to_inspect(&requests, &tags, known, 2),
            ["2025-12-31", "2026-11-29"]
        );
        assert!(to_inspect(&requests, &tags, known, 0).is_empty());
        // Only alphabetical: nothing to read.
        assert!(to_inspect(&requests[1..], &tags, |_| false, 100).is_empty());
        // The current tag is read only when listed and not known.
        let gone = [InspectRequest {
            strategy: &nb,
            ignore: None,
            current: "2020-01-01",
        }];
        assert_eq!(
            to_inspect(&gone, &tags, |t| t != "2026-11-29", 100),
            ["2026-11-29"]
        );
    }

    #[test]
    fn natural_order_compares_digit_runs_as_numbers() {
        let mut v = vec![
            "build-99",
            "build-100",
            "build-9",
            "a",
            "build-0100",
            "build-x",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            [
                "a",
                "build-9",
                "build-99",
                "build-0100",
                "build-100",
                "build-x"
            ]
        );
    }

    /// A rank oracle written independently of `Rank`: numbers via u128 (inputs stay below 38
    /// digits), versions via semver, bytes via str, created via the map.
    fn oracle(
        s: &TagStrategy,
        tag: &str,
        created: &BTreeMap<String, u64>,
    ) -> Option<(u128, Option<Version>, Vec<u8>)> {
        match s {
            TagStrategy::Semver(_) => semver_version(tag).map(|v| (0, Some(v), vec![])),
            TagStrategy::NewestBuild(_) => created.get(tag).map(|c| (*c as u128, None, vec![])),
            TagStrategy::Numerical(p) => {
                let caps = p.regex.captures(tag)?;
                caps.get(1)?
                    .as_str()
                    .parse::<u128>()
                    .ok()
                    .map(|n| (n, None, vec![]))
            }
            TagStrategy::Alphabetical(p) => {
                p.is_match(tag).then(|| (0, None, tag.as_bytes().to_vec()))
            }
        }
    }

    fn any_strategy() -> impl Strategy<Value = TagStrategy> {
        prop_oneof![
            Just(strategy(r"numerical:^b-(\d+)$")),
            Just(strategy(r"numerical:(\d+)")),
            Just(strategy("alphabetical:^[a-c]")),
            Just(strategy("newest-build:^[a-c]")),
            Just(strategy("semver:>=0.0.0")),
            Just(strategy("semver:^1")),
        ]
    }

    fn any_tag() -> impl Strategy<Value = String> {
        prop_oneof![
            "b-[0-9]{1,25}",
            "[a-d][a-z0-9.-]{0,6}",
            "v?[0-2]\\.[0-9]{1,2}\\.[0-9]{1,2}(-rc\\.[0-9])?",
            "\\PC{0,8}",
        ]
    }

    fn any_ignore() -> impl Strategy<Value = Option<TagPattern>> {
        prop_oneof![
            Just(None),
            Just(parse_ignore(Some("9$")).unwrap()),
            Just(parse_ignore(Some("^[ab]")).unwrap()),
            Just(parse_ignore(Some("rc")).unwrap()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        #[test]
        fn never_a_downgrade_and_ignore_always_respected(
            s in any_strategy(),
            ignore in any_ignore(),
            current in any_tag(),
            tags in prop::collection::vec(any_tag(), 0..12),
            times in prop::collection::vec(0u64..5, 0..13),
        ) {
            let mut all = tags.clone();
            all.push(current.clone());
            let created: BTreeMap<String, u64> = all.iter().cloned().zip(times).collect();
            let by = |t: &str| created.get(t).copied();
            if let Ok(c) = s.choose(&current, &tags, ignore.as_ref(), by) {
                prop_assert!(tags.contains(&c.tag));
                prop_assert!(!ignore.as_ref().is_some_and(|i| i.is_match(&c.tag)), "ignored tag chosen: {}", c.tag);
                prop_assert!(is_valid_tag(&c.tag));
                let (new, cur) = (oracle(&s, &c.tag, &created), oracle(&s, &current, &created));
                prop_assert!(new.is_some() && cur.is_some());
                prop_assert!(new > cur, "{} does not rank above {}", c.tag, current);
                // Idempotent: from the chosen tag, the same listing offers no move.
                let again = s.choose(&c.tag, &tags, ignore.as_ref(), by);
                prop_assert!(matches!(again, Err(NoCandidate::UpToDate { .. })), "{again:?}");
                // And the choice is the best: no admitted tag ranks above it.
                for t in &tags {
                    let rankable = s.admits(t, ignore.as_ref()) && (!s.needs_created() || by(t).is_some());
                    if rankable {
                        prop_assert!(oracle(&s, t, &created) <= new, "{t} ranks above the choice {}", c.tag);
                    }
                }
            }
        }

        #[test]
        fn numerical_order_is_integer_order_across_digit_counts(a in 0u128..u128::MAX / 10, b in 0u128..u128::MAX / 10, za in 0usize..3, zb in 0usize..3) {
            let (sa, sb) = (format!("{}{a}", "0".repeat(za)), format!("{}{b}", "0".repeat(zb)));
            prop_assert_eq!(Digits::new(&sa).unwrap().cmp(&Digits::new(&sb).unwrap()), a.cmp(&b));
            let s = strategy(r"numerical:^build-(\d+)$");
            let tags = vec![format!("build-{sb}")];
            let moved = s.choose(&format!("build-{sa}"), &tags, None, none).is_ok();
            prop_assert_eq!(moved, b > a);
        }

        #[test]
        fn parsing_any_policy_or_ignore_never_panics(v in "\\PC{0,60}", w in "(newest-build|numerical|alphabetical|semver):[()\\\\d+*?{}\\[\\]^$a-z0-9|,.]{0,30}") {
            let _ = TagStrategy::parse(&v);
            let _ = parse_ignore(Some(&v));
            if let Ok(Some(TagStrategy::Numerical(p))) = TagStrategy::parse(&w) {
                prop_assert_eq!(p.groups(), 1);
            }
        }

        #[test]
        fn natural_order_is_antisymmetric_and_consistent(a in "[a-c0-9.-]{0,8}", b in "[a-c0-9.-]{0,8}") {
            prop_assert_eq!(natural_cmp(&a, &b), natural_cmp(&b, &a).reverse());
            prop_assert_eq!(natural_cmp(&a, &b) == Ordering::Equal, a == b);
        }

        #[test]
        fn inspection_never_exceeds_the_budget_nor_reads_known_tags(
            tags in prop::collection::vec("[a-c][0-9]{0,3}", 0..30), max in 0usize..10,
        ) {
            let s = strategy("newest-build:^[ab]");
            let r = [InspectRequest { strategy: &s, ignore: None, current: "a1" }];
            let known = |t: &str| t.ends_with('7');
            let out = to_inspect(&r, &tags, known, max);
            prop_assert!(out.len() <= max);
            let mut seen = std::collections::BTreeSet::new();
            for t in &out {
                prop_assert!(!known(t) && seen.insert(*t) && tags.iter().any(|x| x == t));
            }
        }
    }
}
