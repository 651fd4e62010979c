//! A Docker config file that is read again when it changes: a mounted Kubernetes Secret is
//! updated by swapping its `..data` symlink, and a file read once at start goes stale.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ferry_core::Digest;

use crate::credentials::{Credential, CredentialStore, DockerConfig};
use crate::error::{CredentialProblem, Error, Result};
use crate::source::{DEFAULT_CREDENTIAL_TTL, SourcedCredential};
use ferry_core::sync::Lock;

/// What tells one version of a file from another without reading it: the file the path leads
/// to (symlinks followed: a `..data` swap leads to another inode), its size and its mtime.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    device: u64,
    inode: u64,
    len: u64,
    modified: Option<SystemTime>,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        let (device, inode) = {
            use std::os::unix::fs::MetadataExt;
            (meta.dev(), meta.ino())
        };
        #[cfg(not(unix))]
        let (device, inode) = (0, 0);
        Stamp {
            device,
            inode,
            len: meta.len(),
            modified: meta.modified().ok(),
        }
    }
}

/// The configuration last read and what it was read from.
struct Loaded {
    stamp: Option<Stamp>,
    content: Option<Digest>,
    config: DockerConfig,
}

/// `DIR/config.json`, read again whenever the file it leads to changes (checked on every
/// lookup by one `stat`; read and hashed only when the stamp moved, parsed only when the
/// content did). A missing file is anonymous access until it appears.
pub struct DockerConfigFile {
    path: PathBuf,
    helper_dir: Option<PathBuf>,
    helper_ttl: Duration,
    loaded: Lock<Option<Loaded>>,
}

impl std::fmt::Debug for DockerConfigFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerConfigFile")
            .field("path", &self.path)
            .field("helper_ttl", &self.helper_ttl)
            .finish()
    }
}

impl DockerConfigFile {
    /// Watch `dir/config.json`; it is read (and a malformed one reported) at once.
    pub fn new(dir: &Path, helper_ttl: Duration) -> Result<Self> {
        let file = DockerConfigFile {
            path: dir.join("config.json"),
            helper_dir: None,
            helper_ttl,
            loaded: Lock::default(),
        };
        file.current()?;
        Ok(file)
    }

    /// Watch `dir/config.json` with the default helper TTL.
    pub fn in_dir(dir: &Path) -> Result<Self> {
        Self::new(dir, DEFAULT_CREDENTIAL_TTL)
    }

    /// Look for `docker-credential-*` helpers in `dir` instead of `$PATH`.
    pub fn with_helper_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.helper_dir = Some(dir.into());
        *self.loaded.lock() = None;
        self
    }

    /// The file watched.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The configuration as the file is now.
    fn current(&self) -> Result<DockerConfig> {
        let stamp = match std::fs::metadata(&self.path) {
            Ok(meta) => Some(Stamp::of(&meta)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(self.read_error(source)),
        };
        if let Some(l) = self.loaded.lock().as_ref()
            && l.stamp == stamp
        {
            return Ok(l.config.clone());
        }
        let bytes = match stamp {
            None => None,
            Some(_) => match std::fs::read(&self.path) {
                Ok(b) => Some(b),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(source) => return Err(self.read_error(source)),
            },
        };
        let content = bytes.as_deref().map(Digest::sha256_of);
        let mut loaded = self.loaded.lock();
        if let Some(l) = loaded.as_mut()
            && l.content == content
        {
            // Touched or swapped for the same bytes: keep the helpers' answers too.
            l.stamp = stamp;
            return Ok(l.config.clone());
        }
        let config = match &bytes {
            None => DockerConfig::default(),
            Some(b) => DockerConfig::from_json(b)
                .map_err(|e| self.with_path(e))?
                .with_origin(self.path.display().to_string()),
        };
        let mut config = config.with_helper_ttl(self.helper_ttl);
        if let Some(d) = &self.helper_dir {
            config = config.with_helper_dir(d);
        }
        tracing::debug!(path = %self.path.display(), present = bytes.is_some(), "read Docker config");
        *loaded = Some(Loaded {
            stamp,
            content,
            config: config.clone(),
        });
        Ok(config)
    }

    fn read_error(&self, source: std::io::Error) -> Error {
        Error::Credentials {
            registry: "*".into(),
            problem: CredentialProblem::Read {
                path: self.path.clone(),
                source,
            },
        }
    }

    /// A parse error of the content, said with the file's name.
    fn with_path(&self, e: Error) -> Error {
        match e {
            Error::Credentials {
                registry,
                problem: CredentialProblem::Parse { path: None, source },
            } => Error::Credentials {
                registry,
                problem: CredentialProblem::Parse {
                    path: Some(self.path.clone()),
                    source,
                },
            },
            other => other,
        }
    }
}

impl CredentialStore for DockerConfigFile {
    fn get(&self, registry: &str) -> Result<Option<Credential>> {
        self.current()?.get(registry)
    }

    fn lookup(&self, registry: &str) -> Result<Option<SourcedCredential>> {
        self.current()?.lookup(registry)
    }

    fn refused(&self, registry: &str) -> bool {
        self.loaded
            .lock()
            .as_ref()
            .is_some_and(|l| l.config.refused(registry))
    }

    fn searched(&self) -> Option<String> {
        Some(self.path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn config(user: &str, pass: &str) -> String {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        format!(r#"{{"auths":{{"r.io":{{"auth":"{auth}"}}}}}}"#)
    }

    fn user(file: &DockerConfigFile) -> Option<String> {
        match file.get("r.io").unwrap() {
            Some(Credential::Basic { username, .. }) => Some(username),
            _ => None,
        }
    }

    #[test]
    fn a_rewritten_file_is_read_again_and_a_new_file_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let file = DockerConfigFile::in_dir(dir.path()).unwrap();
        assert_eq!(user(&file), None);
        std::fs::write(dir.path().join("config.json"), config("first", "1")).unwrap();
        assert_eq!(user(&file).as_deref(), Some("first"));
        // Same length, rewritten in place: a new mtime (and content) is noticed.
        std::fs::write(dir.path().join("config.json"), config("secnd", "2")).unwrap();
        assert_eq!(user(&file).as_deref(), Some("secnd"));
        let source = file.lookup("r.io").unwrap().unwrap().source;
        assert!(source.to_string().contains("config.json"), "{source}");
        std::fs::remove_file(dir.path().join("config.json")).unwrap();
        assert_eq!(user(&file), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_mounted_secret_swapped_by_its_data_symlink_is_read_again() {
        use std::os::unix::fs::symlink;
        // What the kubelet does: DIR/config.json -> ..data/config.json, ..data -> ..TIMESTAMP;
        // an update writes a new timestamped directory and renames a new ..data link over it.
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("..2026_01")).unwrap();
        std::fs::write(d.join("..2026_01/config.json"), config("old", "1")).unwrap();
        symlink("..2026_01", d.join("..data")).unwrap();
        symlink("..data/config.json", d.join("config.json")).unwrap();
        let file = DockerConfigFile::in_dir(d).unwrap();
        assert_eq!(user(&file).as_deref(), Some("old"));
        std::fs::create_dir(d.join("..2026_02")).unwrap();
        std::fs::write(d.join("..2026_02/config.json"), config("new", "2")).unwrap();
        symlink("..2026_02", d.join("..data_tmp")).unwrap();
        std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
        std::fs::remove_dir_all(d.join("..2026_01")).unwrap();
        assert_eq!(user(&file).as_deref(), Some("new"));
    }

    #[test]
    fn a_malformed_rewrite_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), config("a", "1")).unwrap();
        let file = DockerConfigFile::in_dir(dir.path()).unwrap();
        std::fs::write(dir.path().join("config.json"), "{broken").unwrap();
        let e = file.get("r.io").unwrap_err().to_string();
        assert!(e.contains("config.json"), "{e}");
        assert!(DockerConfigFile::in_dir(dir.path()).is_err());
    }
}
