//! A container's image as written in its pod template, parsed once — where the Kubernetes object
//! becomes ferry's data — and carried parsed from there to the decision, the edit and the report.

use std::fmt;

use ferry_core::Reference;

/// An image string as written (kept byte-exact for git edits and reports) together with what it
/// parses to: the [`Reference`], or the typed parse error a [`crate::Reason::BadImage`] skip
/// carries. Parsed once in [`Image::new`]; later stages read [`Image::reference`] and never
/// parse the string again.
#[derive(Clone)]
pub struct Image {
    written: String,
    parsed: Result<Reference, ferry_core::Error>,
}

impl Image {
    /// Parse `written` (the only parse of it in a pass).
    pub fn new(written: impl Into<String>) -> Self {
        let written = written.into();
        let parsed = Reference::parse(&written);
        Image { written, parsed }
    }

    /// The image exactly as written.
    pub fn as_str(&self) -> &str {
        &self.written
    }

    /// The parsed reference, or why the text is not one.
    pub fn reference(&self) -> Result<&Reference, &ferry_core::Error> {
        self.parsed.as_ref()
    }

    /// The parsed reference, when the text is one.
    pub fn parsed(&self) -> Option<&Reference> {
        self.parsed.as_ref().ok()
    }

    /// The repository part as written (`ghcr.io/acme/sensor` of `ghcr.io/acme/sensor:1@…`):
    /// what kustomize's `images[].name` matches against. Empty when the text is no reference.
    pub fn spelled_name(&self) -> String {
        let Some(r) = self.parsed() else {
            return String::new();
        };
        let written = self.written.as_str();
        let no_digest = written.split('@').next().unwrap_or(written);
        match r.tag() {
            Some(t) => no_digest
                .strip_suffix(&format!(":{t}"))
                .unwrap_or(no_digest)
                .to_string(),
            None => no_digest.to_string(),
        }
    }
}

impl Default for Image {
    /// No image (a row about the whole workload): the empty text, which is no reference.
    fn default() -> Self {
        Image::new("")
    }
}

impl PartialEq for Image {
    fn eq(&self, other: &Self) -> bool {
        // The parse is a function of the text.
        self.written == other.written
    }
}

impl Eq for Image {}

impl fmt::Debug for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Image({:?})", self.written)
    }
}

impl fmt::Display for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

impl From<&str> for Image {
    fn from(s: &str) -> Self {
        Image::new(s)
    }
}

impl From<String> for Image {
    fn from(s: String) -> Self {
        Image::new(s)
    }
}

impl From<Reference> for Image {
    /// A reference ferry chose (a decision's target), written as a manifest holds it
    /// ([`Reference::familiar`]); nothing is parsed.
    fn from(r: Reference) -> Self {
        Image {
            written: r.familiar(),
            parsed: Ok(r),
        }
    }
}

impl serde::Serialize for Image {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.written)
    }
}

#[cfg(test)]
mod tests {
    use super::Image;

    #[test]
    fn keeps_the_text_and_its_parse() {
        let i = Image::new("ghcr.io/acme/web:1@sha256:".to_string() + &"a".repeat(64));
        assert_eq!(i.reference().unwrap().tag(), Some("1"));
        assert_eq!(i.spelled_name(), "ghcr.io/acme/web");
        assert!(i.as_str().ends_with(&"a".repeat(64)));
        let bad = Image::new("Acme/App:1");
        assert_eq!(
            bad.reference().unwrap_err().to_string(),
            r#"invalid reference "Acme/App:1": repository name (App) must be lowercase"#
        );
        assert_eq!(bad.spelled_name(), "");
        assert_eq!(
            Image::new("localhost:5000/web").spelled_name(),
            "localhost:5000/web"
        );
        assert_eq!(serde_json::to_string(&bad).unwrap(), r#""Acme/App:1""#);
        let chosen = Image::from(i.reference().unwrap().clone());
        assert!(chosen.as_str().starts_with("ghcr.io/acme/web:1@sha256:"));
        assert_eq!(chosen.parsed(), i.parsed());
    }
}
