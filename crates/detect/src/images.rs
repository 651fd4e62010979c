//! Images of a repository: discovered from Dockerfiles, adjusted by `ferry.toml`.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{ConfigProblem, Error, ImageProblem, Result};

use ferry_core::{Platform, Reference};

/// The optional configuration file at the repository root.
pub const CONFIG_FILE: &str = "ferry.toml";

/// One image the repository builds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Image {
    /// Its name: the Dockerfile's directory (`.` at the root) for `Dockerfile`/`Containerfile`,
    /// else the Dockerfile's path; or the `ferry.toml` key.
    pub name: String,
    /// Repository-relative path of the Dockerfile.
    pub dockerfile: String,
    /// Repository-relative build context directory (`.` for the root).
    pub context: String,
    /// The registry repository it is pushed to (`docker.io/acme/python-base`), when configured.
    pub repository: Option<String>,
    /// Build target stage.
    pub target: Option<String>,
    /// Platforms to build for.
    pub platforms: Vec<String>,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// Extra globs (repository-relative, .dockerignore syntax) whose changes rebuild the image.
    pub extra_inputs: Vec<String>,
}

impl Image {
    /// The context as a path prefix: `""` for the root, else `dir/`.
    pub fn context_prefix(&self) -> String {
        if self.context == "." || self.context.is_empty() {
            String::new()
        } else {
            format!("{}/", self.context)
        }
    }

    /// `repository` normalized for comparisons (`docker.io/library/python`), if set.
    pub fn repository_name(&self) -> Option<String> {
        self.repository
            .as_deref()
            .and_then(|r| Reference::parse(r).ok())
            .map(|r| r.name())
    }

    /// The two places an ignore file can be: `<Dockerfile>.dockerignore` (wins) and
    /// `<context>/.dockerignore`.
    pub fn ignore_candidates(&self) -> [String; 2] {
        [
            format!("{}.dockerignore", self.dockerfile),
            format!("{}.dockerignore", self.context_prefix()),
        ]
    }
}

/// Where image discovery reads files: a commit ([`Snapshot`](crate::snapshot::Snapshot)) or a
/// work tree ([`WorkTree`](crate::worktree::WorkTree)).
pub trait FileSource {
    /// Every file named like a Dockerfile ([`is_dockerfile_name`]), repository-relative, sorted.
    fn dockerfiles(&self) -> Result<Vec<String>>;
    /// Whether a file exists at `path`.
    fn exists(&self, path: &str) -> bool;
    /// The content of the file at `path`, or `None`.
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>>;
}

/// Whether a file name is a Dockerfile by ferry's discovery rules.
pub fn is_dockerfile_name(name: &str) -> bool {
    if name.ends_with(".dockerignore") {
        return false;
    }
    name == "Dockerfile"
        || name == "Containerfile"
        || (name.ends_with(".Dockerfile") && name.len() > ".Dockerfile".len())
        || (name.starts_with("Dockerfile.") && name.len() > "Dockerfile.".len())
}

#[derive(Debug, Default, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    images: BTreeMap<String, ImageConfig>,
    /// Repository-relative patterns (.dockerignore syntax) of paths discovery skips.
    #[serde(default)]
    exclude: Vec<String>,
}

#[derive(Debug, Default, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageConfig {
    dockerfile: Option<String>,
    context: Option<String>,
    repository: Option<String>,
    target: Option<String>,
    platforms: Option<Vec<String>>,
    build_args: Option<BTreeMap<String, String>>,
    extra_inputs: Option<Vec<String>>,
}

fn parent_dir(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

fn norm_dir(d: &str) -> String {
    let c = crate::ignore::clean_path(d.trim_start_matches("./"));
    if c.is_empty() { ".".into() } else { c }
}

/// The images of a repository and which of them `ferry.toml` names.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// The images, sorted by name.
    pub images: Vec<Image>,
    /// Names of the images `ferry.toml` names (their Dockerfiles must parse); the others were
    /// found by their file name only.
    pub configured: BTreeSet<String>,
}

/// Discover the images in a snapshot: every Dockerfile, then `ferry.toml`'s overrides and
/// additions.
pub fn discover(snap: &dyn FileSource) -> Result<Vec<Image>> {
    discover_all(snap).map(|d| d.images)
}

/// [`discover`], also telling which images `ferry.toml` names. Files matching `ferry.toml`'s
/// top-level `exclude` patterns are not discovered (an image `ferry.toml` names explicitly is
/// kept).
pub fn discover_all(snap: &dyn FileSource) -> Result<Discovery> {
    let cfg = read_config(snap)?;
    let exclude = match &cfg {
        Some(c) => {
            crate::ignore::IgnoreRules::from_patterns(&c.exclude).map_err(|e| Error::Config {
                file: CONFIG_FILE.into(),
                problem: ConfigProblem::Exclude(e),
            })?
        }
        None => crate::ignore::IgnoreRules::empty(),
    };
    let mut images = found_by_name(snap, &exclude)?;
    let configured: BTreeSet<String> = cfg
        .as_ref()
        .map(|c| c.images.keys().cloned().collect())
        .unwrap_or_default();
    if let Some(cfg) = cfg {
        rename_configured(&mut images, &cfg);
        for (name, c) in cfg.images {
            apply_config(snap, &mut images, name, c)?;
        }
    }
    Ok(Discovery {
        images: images.into_values().collect(),
        configured,
    })
}

/// Every file named like a Dockerfile that `exclude` does not exclude, as an image.
fn found_by_name(
    snap: &dyn FileSource,
    exclude: &crate::ignore::IgnoreRules,
) -> Result<BTreeMap<String, Image>> {
    let mut images: BTreeMap<String, Image> = BTreeMap::new();
    for f in snap.dockerfiles()? {
        if exclude.is_excluded(&f) {
            continue;
        }
        let dir = parent_dir(&f);
        let base = &f[dir.len() + usize::from(!dir.is_empty())..];
        let mut name = if base == "Dockerfile" || base == "Containerfile" {
            if dir.is_empty() {
                ".".to_string()
            } else {
                dir.to_string()
            }
        } else {
            f.clone()
        };
        if images.contains_key(&name) {
            // `Dockerfile` and `Containerfile` side by side: the second goes by its path.
            name = f.clone();
        }
        images.insert(
            name.clone(),
            Image {
                name,
                dockerfile: f.clone(),
                context: if dir.is_empty() {
                    ".".into()
                } else {
                    dir.to_string()
                },
                repository: None,
                target: None,
                platforms: Vec::new(),
                build_args: BTreeMap::new(),
                extra_inputs: Vec::new(),
            },
        );
    }
    Ok(images)
}

/// A new name whose `dockerfile` was discovered under another (unconfigured) name renames that
/// image instead of building it twice.
fn rename_configured(images: &mut BTreeMap<String, Image>, cfg: &ConfigFile) {
    for (name, c) in &cfg.images {
        if images.contains_key(name) {
            continue;
        }
        if let Some(df) = c.dockerfile.as_deref().map(norm_dir) {
            let discovered: Vec<String> = images
                .values()
                .filter(|i| i.dockerfile == df && !cfg.images.contains_key(&i.name))
                .map(|i| i.name.clone())
                .collect();
            for old in discovered {
                if let Some(mut img) = images.remove(&old) {
                    img.name = name.clone();
                    images.insert(name.clone(), img);
                }
            }
        }
    }
}

/// Apply one `[images."name"]` entry: override a discovered image or add a new one.
fn apply_config(
    snap: &dyn FileSource,
    images: &mut BTreeMap<String, Image>,
    name: String,
    c: ImageConfig,
) -> Result<()> {
    let err = |problem: ImageProblem| Error::Config {
        file: CONFIG_FILE.into(),
        problem: ConfigProblem::Image {
            name: name.clone(),
            problem,
        },
    };
    let img = match images.entry(name.clone()) {
        std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
        std::collections::btree_map::Entry::Vacant(v) => {
            let df = c
                .dockerfile
                .clone()
                .ok_or_else(|| err(ImageProblem::DockerfileRequired))?;
            let df = norm_dir(&df);
            v.insert(Image {
                name: name.clone(),
                context: norm_dir(parent_dir(&df)),
                dockerfile: df,
                repository: None,
                target: None,
                platforms: Vec::new(),
                build_args: BTreeMap::new(),
                extra_inputs: Vec::new(),
            })
        }
    };
    if let Some(d) = c.dockerfile {
        img.dockerfile = norm_dir(&d);
    }
    if let Some(ctx) = c.context {
        img.context = norm_dir(&ctx);
    }
    if img.context.starts_with("..") || img.dockerfile.starts_with("..") {
        return Err(err(ImageProblem::OutsideRepository));
    }
    if let Some(r) = c.repository {
        Reference::parse(&r).map_err(|e| err(ImageProblem::Repository(Box::new(e))))?;
        img.repository = Some(r);
    }
    img.target = c.target.or(img.target.take());
    if let Some(p) = c.platforms {
        for x in &p {
            Platform::parse(x).map_err(|e| err(ImageProblem::Platform(Box::new(e))))?;
        }
        img.platforms = p;
    }
    if let Some(b) = c.build_args {
        img.build_args = b;
    }
    if let Some(x) = c.extra_inputs {
        crate::ignore::IgnoreRules::from_patterns(&x)
            .map_err(|e| err(ImageProblem::ExtraInputs(e)))?;
        img.extra_inputs = x;
    }
    if !snap.exists(&img.dockerfile) {
        return Err(err(ImageProblem::NoDockerfile {
            dockerfile: img.dockerfile.clone(),
        }));
    }
    Ok(())
}

/// The 1-based lines of `ferry.toml` (its text) where `[images."image"]`'s `extra_inputs`
/// patterns are written, in order; empty when the text does not parse or names none.
pub fn extra_input_lines(toml_text: &str, image: &str) -> Vec<usize> {
    #[derive(serde::Deserialize)]
    struct Spans {
        #[serde(default)]
        images: BTreeMap<String, ImageSpans>,
    }
    #[derive(serde::Deserialize)]
    struct ImageSpans {
        #[serde(default)]
        extra_inputs: Vec<toml::Spanned<String>>,
    }
    let Ok(spans) = toml::from_str::<Spans>(toml_text) else {
        return Vec::new();
    };
    spans
        .images
        .get(image)
        .map(|i| {
            i.extra_inputs
                .iter()
                .map(|p| toml_text[..p.span().start].matches('\n').count() + 1)
                .collect()
        })
        .unwrap_or_default()
}

fn read_config(snap: &dyn FileSource) -> Result<Option<ConfigFile>> {
    let Some(bytes) = snap.read(CONFIG_FILE)? else {
        return Ok(None);
    };
    let text = String::from_utf8(bytes).map_err(|_| Error::Config {
        file: CONFIG_FILE.into(),
        problem: ConfigProblem::NotUtf8,
    })?;
    toml::from_str(&text).map(Some).map_err(|e| Error::Config {
        file: CONFIG_FILE.into(),
        problem: ConfigProblem::Toml(Box::new(e)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    struct Mem(BTreeMap<String, String>);

    impl FileSource for Mem {
        fn dockerfiles(&self) -> Result<Vec<String>> {
            Ok(self
                .0
                .keys()
                .filter(|k| is_dockerfile_name(k.rsplit('/').next().unwrap_or(k)))
                .cloned()
                .collect())
        }
        fn exists(&self, path: &str) -> bool {
            self.0.contains_key(path)
        }
        fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
            Ok(self.0.get(path).map(|s| s.as_bytes().to_vec()))
        }
    }

    #[test]
    fn config_errors_name_the_file_and_image() {
        let src = Mem(BTreeMap::from([
            ("a/Dockerfile".to_string(), "FROM x\n".to_string()),
            (
                CONFIG_FILE.to_string(),
                "[images.\"a\"]\nrepository = \"Not A Ref\"\n".to_string(),
            ),
        ]));
        let e = discover(&src).unwrap_err().to_string();
        assert!(
            e.contains("ferry.toml") && e.contains("\"a\"") && e.contains("repository"),
            "{e}"
        );
        let src = Mem(BTreeMap::from([(
            CONFIG_FILE.to_string(),
            "[images.x]\nplatforms = [\"linux\"]\ndockerfile = \"x/Dockerfile\"\n".to_string(),
        )]));
        assert!(
            discover(&src)
                .unwrap_err()
                .to_string()
                .contains("platforms")
        );
    }

    proptest! {
        #[test]
        fn any_ferry_toml_is_an_answer_or_an_error_never_a_panic(toml in "(\\[images\\.\"[a-z/]{1,6}\"\\]\n|dockerfile = \"[a-z/]{0,8}\"\n|context = \"[a-z./]{0,8}\"\n|repository = \"[a-z:./]{0,10}\"\n|platforms = \\[\"[a-z/0-9]{0,10}\"\\]\n|extra_inputs = \\[\"[a-z*!\\[/]{0,6}\"\\]\n|target = \"x\"\n|[a-z =\"\\[\\]]{0,10}\n){0,8}") {
            let src = Mem(BTreeMap::from([
                ("a/Dockerfile".to_string(), "FROM x\n".to_string()),
                (CONFIG_FILE.to_string(), toml),
            ]));
            let _ = discover(&src);
        }
    }

    #[test]
    fn dockerfile_names() {
        for n in [
            "Dockerfile",
            "Containerfile",
            "api.Dockerfile",
            "Dockerfile.dev",
        ] {
            assert!(is_dockerfile_name(n), "{n}");
        }
        for n in [
            "Dockerfile.dockerignore",
            "api.Dockerfile.dockerignore",
            "dockerfile",
            "Dockerfile.",
            ".Dockerfile",
            "README.md",
        ] {
            assert!(!is_dockerfile_name(n), "{n}");
        }
    }
}
