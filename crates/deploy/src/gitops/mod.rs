//! Git write-back: change the manifests in git (kustomize `images:` or the workload's container
//! `image:`), commit once per repository per pass, push without ever forcing, and when the push
//! is rejected because the branch moved, fetch, re-apply the edit on the new tip and push again.
//! Everything here is blocking (libgit2); async callers use `spawn_blocking`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use git2::{Cred, FetchOptions, Oid, PushOptions, RemoteCallbacks, Repository, Signature, Tree};

use crate::lease::Fence;
use crate::policy::Image;
use crate::yamledit;

mod branch;
mod edits;
mod log;
mod problem;
mod revert;

pub use crate::helm::{HelmChange, plan_helm_edits, write_back_helm, write_back_helm_fenced};
pub use branch::*;
pub use edits::plan_edits;
pub use log::{CommitLine, commits_between};
pub use problem::{GitProblem, PushRefused, Unplaced, Unrevertable};
pub use revert::{revert, reverted};

pub use ferry_policy::GitTarget;

/// Credentials for git remotes. `Debug` never prints secrets.
#[derive(Clone, Default)]
pub struct GitAuth {
    /// User name for token authentication over http(s) (default `x-access-token`).
    pub user: Option<String>,
    /// Token (password) for http(s).
    pub token: Option<String>,
    /// Where each push and fetch gets its token instead (a GitHub App's installation tokens,
    /// renewed before they expire); `token` is then unused.
    pub tokens: Option<std::sync::Arc<dyn crate::forge::TokenSource>>,
    /// Private key file for ssh.
    pub ssh_key: Option<PathBuf>,
}

impl std::fmt::Debug for GitAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitAuth")
            .field("user", &self.user)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("tokens", &self.tokens.is_some())
            .field("ssh_key", &self.ssh_key)
            .finish()
    }
}

/// How ferry writes to git.
#[derive(Debug, Clone)]
pub struct WriteBackConfig {
    /// Local clone cache (one bare repository per remote URL).
    pub cache_dir: PathBuf,
    /// Credentials.
    pub auth: GitAuth,
    /// Commit author name.
    pub author_name: String,
    /// Commit author e-mail.
    pub author_email: String,
    /// Subject line of commits (`{count}` is replaced by the number of changes).
    pub subject: String,
    /// Push attempts before giving up (each after a fetch and re-apply).
    pub max_attempts: u32,
}

impl Default for WriteBackConfig {
    fn default() -> Self {
        WriteBackConfig {
            cache_dir: std::env::temp_dir().join("ferry-git-cache"),
            auth: GitAuth::default(),
            author_name: "ferry".into(),
            author_email: "ferry@localhost".into(),
            subject: "ferry: update {count} image(s)".into(),
            max_attempts: 5,
        }
    }
}

/// One image change to write.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageChange {
    /// `namespace/Kind/name`.
    pub workload: String,
    /// Workload kind (`Deployment`…).
    pub kind: String,
    /// Workload name.
    pub name: String,
    /// Container name.
    pub container: String,
    /// The image as written now (parsed when the workload was read).
    pub old_image: Image,
    /// The new image (`repository:tag@digest`), the decision's target.
    pub new_image: Image,
    /// Directory or file of this workload's manifests, when it differs from the target's
    /// (several Applications in one repository: still one commit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// What a write-back did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WriteBack {
    /// The commit pushed (`None` when nothing changed).
    pub commit: Option<String>,
    /// Files changed.
    pub files: Vec<String>,
    /// Push attempts made.
    pub attempts: u32,
    /// Changes that could not be placed (workload not found under the path, unsupported YAML).
    pub problems: Vec<Unplaced>,
}

/// A failed write-back: [`crate::Error::Git`] (the crate's one error type).
pub type GitError = crate::Error;

/// [`crate::Error::Git`] for a step on `target`.
pub(crate) fn git_error(target: &GitTarget, problem: GitProblem) -> crate::Error {
    crate::Error::Git {
        repo: target.repo.clone(),
        branch: target.branch.clone(),
        problem,
    }
}

/// Marker line in ferry's commit messages (used to recognise its commits).
pub const COMMIT_MARKER: &str = "Written-by: ferry-deploy";

fn cache_path(config: &WriteBackConfig, url: &str) -> PathBuf {
    let safe: String = url
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    config.cache_dir.join(format!("{safe}.git"))
}

impl GitAuth {
    /// The token for `url` now: the fixed one, or one from `tokens` (blocking on the runtime
    /// this thread belongs to: callers run git in `spawn_blocking`). `previous` was refused.
    fn current_token(
        &self,
        url: &str,
        previous: Option<&str>,
    ) -> Result<Option<String>, git2::Error> {
        let Some(tokens) = &self.tokens else {
            return Ok(self.token.clone());
        };
        if let Some(p) = previous {
            tokens.refused(p);
        }
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| git2::Error::from_str("a token source needs a tokio runtime"))?;
        let repo = crate::forge::repo_path(url);
        handle
            .block_on(tokens.token(repo.as_deref()))
            .map_err(|e| git2::Error::from_str(&e.to_string()))
    }
}

pub(crate) fn callbacks(auth: &GitAuth) -> RemoteCallbacks<'_> {
    let mut cb = RemoteCallbacks::new();
    let mut tried = 0;
    let mut sent: Option<String> = None;
    cb.credentials(move |url, user_from_url, allowed| {
        tried += 1;
        if tried > 3 {
            return Err(git2::Error::from_str("credentials were rejected"));
        }
        if allowed.contains(git2::CredentialType::SSH_KEY)
            && let Some(key) = &auth.ssh_key
        {
            return Cred::ssh_key(user_from_url.unwrap_or("git"), None, key, None);
        }
        if allowed.contains(git2::CredentialType::USER_PASS_PLAINTEXT)
            && let Some(token) = auth.current_token(url, sent.as_deref())?
        {
            let cred =
                Cred::userpass_plaintext(auth.user.as_deref().unwrap_or("x-access-token"), &token);
            sent = Some(token);
            return cred;
        }
        Err(git2::Error::from_str(
            "the remote asks for credentials and none are configured",
        ))
    });
    cb
}

/// `target` with `HEAD` (or an empty revision, Argo CD's default) replaced by the remote's
/// default branch.
pub fn resolve_branch(config: &WriteBackConfig, target: &GitTarget) -> Result<GitTarget, GitError> {
    if !(target.branch.is_empty() || target.branch == "HEAD") {
        return Ok(target.clone());
    }
    let err = |problem| git_error(target, problem);
    let mut remote =
        git2::Remote::create_detached(target.repo.as_str()).map_err(|e| err(GitProblem::Git(e)))?;
    let conn = remote
        .connect_auth(git2::Direction::Fetch, Some(callbacks(&config.auth)), None)
        .map_err(|e| err(GitProblem::Unreachable(e)))?;
    let head = conn
        .default_branch()
        .map_err(|e| err(GitProblem::NoDefaultBranch(Some(e))))?;
    let name = head
        .as_str()
        .unwrap_or("")
        .trim_start_matches("refs/heads/")
        .to_string();
    if name.is_empty() {
        return Err(err(GitProblem::NoDefaultBranch(None)));
    }
    Ok(GitTarget {
        branch: name,
        ..target.clone()
    })
}

/// The cached bare clone of `target.repo`, fetched: returns it and the branch tip.
pub fn fetch(config: &WriteBackConfig, target: &GitTarget) -> Result<(Repository, Oid), GitError> {
    let err = |problem| git_error(target, problem);
    if looks_like_commit(&target.branch) || target.branch.starts_with("refs/tags/") {
        return Err(err(GitProblem::FixedRevision {
            revision: target.branch.clone(),
        }));
    }
    let git = |e| err(GitProblem::Git(e));
    let dir = cache_path(config, &target.repo);
    let repo = match Repository::open_bare(&dir) {
        Ok(r) => r,
        Err(_) => {
            std::fs::create_dir_all(&dir).map_err(|source| {
                err(GitProblem::CacheDir {
                    dir: dir.clone(),
                    source,
                })
            })?;
            let r = Repository::init_bare(&dir).map_err(git)?;
            r.remote("origin", &target.repo).map_err(git)?;
            r
        }
    };
    {
        let mut remote = repo.find_remote("origin").map_err(git)?;
        if remote.url().ok() != Some(target.repo.as_str()) {
            repo.remote_set_url("origin", &target.repo).map_err(git)?;
            remote = repo.find_remote("origin").map_err(git)?;
        }
        let mut fo = FetchOptions::new();
        fo.remote_callbacks(callbacks(&config.auth));
        let spec = format!("+refs/heads/{0}:refs/remotes/origin/{0}", target.branch);
        remote
            .fetch(&[spec.as_str()], Some(&mut fo), None)
            .map_err(|e| err(GitProblem::Fetch(e)))?;
    }
    let tip = repo
        .refname_to_id(&format!("refs/remotes/origin/{}", target.branch))
        .map_err(|_| {
            err(GitProblem::NoSuchBranch {
                branch: target.branch.clone(),
            })
        })?;
    Ok((repo, tip))
}

fn looks_like_commit(rev: &str) -> bool {
    rev.len() >= 7 && rev.len() <= 64 && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

pub(crate) fn read(repo: &Repository, tree: &Tree<'_>, path: &str) -> Option<String> {
    let e = tree.get_path(Path::new(path)).ok()?;
    let blob = repo.find_blob(e.id()).ok()?;
    String::from_utf8(blob.content().to_vec()).ok()
}

pub(crate) fn norm(path: &str) -> String {
    path.trim_matches('/')
        .trim_start_matches("./")
        .trim_end_matches('/')
        .replace("//", "/")
        .trim_start_matches('.')
        .trim_start_matches('/')
        .to_string()
}

/// Edit, commit (one commit for all `changes`) and push to `target.branch`; on a rejected
/// push fetch, re-apply on the new tip and try again (never forcing).
pub fn write_back(
    config: &WriteBackConfig,
    target: &GitTarget,
    changes: &[ImageChange],
) -> Result<WriteBack, GitError> {
    write_back_fenced(config, target, changes, &Fence::unfenced())
}

/// [`write_back`], pushing only while `fence` allows writes (checked before every push).
pub fn write_back_fenced(
    config: &WriteBackConfig,
    target: &GitTarget,
    changes: &[ImageChange],
    fence: &Fence,
) -> Result<WriteBack, GitError> {
    let lines: Vec<String> = changes
        .iter()
        .map(|c| {
            format!(
                "- {} {}: {} → {}",
                c.workload, c.container, c.old_image, c.new_image
            )
        })
        .collect();
    let message = commit_message(config, &lines);
    commit_and_push(config, target, &message, fence, |repo, tree| {
        plan_edits(repo, tree, target, changes)
    })
}

fn push(
    config: &WriteBackConfig,
    repo: &Repository,
    target: &GitTarget,
    commit: Oid,
) -> Result<(), PushRefused> {
    let mut remote = repo.find_remote("origin").map_err(PushRefused::Git)?;
    let rejected = std::cell::RefCell::new(None::<String>);
    {
        let mut cb = callbacks(&config.auth);
        cb.push_update_reference(|_refname, status| {
            if let Some(s) = status {
                *rejected.borrow_mut() = Some(s.to_string());
            }
            Ok(())
        });
        let mut po = PushOptions::new();
        po.remote_callbacks(cb);
        // No leading '+': never a force-push.
        let spec = format!("{commit}:refs/heads/{}", target.branch);
        remote
            .push(&[spec.as_str()], Some(&mut po))
            .map_err(PushRefused::Git)?;
    }
    match rejected.into_inner() {
        Some(r) => Err(PushRefused::Rejected(r)),
        None => Ok(()),
    }
}

/// ferry's commit message: the subject (`{count}` replaced), one line per change, the marker.
pub(crate) fn commit_message(config: &WriteBackConfig, lines: &[String]) -> String {
    let mut message = config.subject.replace("{count}", &lines.len().to_string());
    message.push_str("\n\n");
    for l in lines {
        message.push_str(l);
        message.push('\n');
    }
    message.push('\n');
    message.push_str(COMMIT_MARKER);
    message.push('\n');
    message
}

/// The one commit-and-push loop: fetch the branch, let `plan` compute the edited files on its
/// tip, commit them with `message`, push without forcing; when the push is rejected because the
/// branch moved, start again on the new tip (with backoff), at most `config.max_attempts` times.
pub(crate) fn commit_and_push(
    config: &WriteBackConfig,
    target: &GitTarget,
    message: &str,
    fence: &Fence,
    plan: impl Fn(&Repository, &Tree<'_>) -> (BTreeMap<String, String>, Vec<Unplaced>),
) -> Result<WriteBack, GitError> {
    let target = &resolve_branch(config, target)?;
    let err = |problem| git_error(target, problem);
    let git = |e| err(GitProblem::Git(e));
    let mut result = WriteBack::default();
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=config.max_attempts.max(1) {
        result.attempts = attempt;
        let (repo, tip) = fetch(config, target)?;
        let tip_commit = repo.find_commit(tip).map_err(git)?;
        let tree = tip_commit.tree().map_err(git)?;
        let (files, problems) = plan(&repo, &tree);
        result.problems = problems;
        if files.is_empty() {
            result.commit = None;
            result.files.clear();
            return Ok(result);
        }
        let contents: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(path, text)| (path.clone(), text.as_bytes().to_vec()))
            .collect();
        let new_tree =
            ferry_core::git::tree_with_files(&repo, Some(&tree), &contents).map_err(git)?;
        let new_tree = repo.find_tree(new_tree).map_err(git)?;
        let sig = Signature::now(&config.author_name, &config.author_email).map_err(git)?;
        let commit = repo
            .commit(None, &sig, &sig, message, &new_tree, &[&tip_commit])
            .map_err(git)?;
        fence.check()?;
        match push(config, &repo, target, commit) {
            Ok(()) => {
                result.commit = Some(commit.to_string());
                result.files = files.keys().cloned().collect();
                return Ok(result);
            }
            Err(rejection) => {
                let (_, new_tip) = fetch(config, target)?;
                if new_tip == tip {
                    return Err(err(GitProblem::PushRejected(rejection)));
                }
                tracing::info!(repo = %target.repo, branch = %target.branch, attempt, "branch moved during the push; re-applying on the new tip");
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
    Err(err(GitProblem::KeptMoving {
        attempts: config.max_attempts,
        reverting: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_debug_is_redacted() {
        let a = GitAuth {
            user: Some("bot".into()),
            token: Some("ghp_secret".into()),
            tokens: None,
            ssh_key: None,
        };
        let d = format!("{a:?}");
        assert!(!d.contains("ghp_secret") && d.contains("<redacted>"), "{d}");
    }

    /// Hands out `t1`, `t2`, … and remembers which it was told were refused.
    #[derive(Default)]
    struct Counting {
        asked: std::sync::Mutex<Vec<Option<String>>>,
        refused: std::sync::Mutex<Vec<String>>,
    }

    impl crate::forge::TokenSource for Counting {
        fn token<'a>(
            &'a self,
            repo: Option<&'a str>,
        ) -> futures::future::BoxFuture<'a, crate::Result<Option<String>>> {
            let mut asked = self.asked.lock().unwrap();
            asked.push(repo.map(String::from));
            let n = asked.len();
            Box::pin(async move { Ok(Some(format!("t{n}"))) })
        }
        fn refused(&self, token: &str) -> bool {
            self.refused.lock().unwrap().push(token.into());
            true
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn each_push_asks_the_token_source_and_reports_a_refused_token() {
        let source = std::sync::Arc::new(Counting::default());
        let auth = GitAuth {
            token: Some("unused".into()),
            tokens: Some(source.clone()),
            ..Default::default()
        };
        let got = tokio::task::spawn_blocking(move || {
            let url = "https://github.example/o/r.git";
            let first = auth.current_token(url, None).unwrap();
            let second = auth.current_token(url, first.as_deref()).unwrap();
            (first, second)
        })
        .await
        .unwrap();
        assert_eq!(got, (Some("t1".into()), Some("t2".into())));
        let asked = source.asked.lock().unwrap().clone();
        assert_eq!(asked, [Some("o/r".to_string()), Some("o/r".to_string())]);
        assert_eq!(*source.refused.lock().unwrap(), ["t1"]);
    }

    #[test]
    fn fixed_revisions_are_refused() {
        let cfg = WriteBackConfig {
            cache_dir: std::env::temp_dir().join("ferry-test-never"),
            ..Default::default()
        };
        for rev in ["0123abcd", "refs/tags/v1"] {
            let t = GitTarget {
                repo: "git://127.0.0.1:1/x.git".into(),
                branch: rev.into(),
                path: ".".into(),
            };
            let Err(e) = fetch(&cfg, &t) else {
                panic!("{rev} accepted")
            };
            assert!(e.to_string().contains("only writes to branches"), "{e}");
        }
    }

    #[test]
    fn spelled_names() {
        let f = |s: &str| crate::policy::Image::new(s).spelled_name();
        assert_eq!(
            f(
                "ghcr.io/acme/sensor:1@sha256:1111111111111111111111111111111111111111111111111111111111111111"
            ),
            "ghcr.io/acme/sensor"
        );
        assert_eq!(f("redis"), "redis");
        assert_eq!(f("localhost:5000/a:b"), "localhost:5000/a");
    }
}
