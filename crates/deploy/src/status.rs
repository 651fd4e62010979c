//! What ferry is doing, for people: the data of `GET /status.json` and the page of `GET /`.
//!
//! [`Status`] is plain data the controller fills after each pass: the time of the last pass,
//! each opted-in workload and container with its policy, current image, last decision and
//! reason, soak time left, the approval it awaits and its quarantined digests, and the recent
//! updates and rollbacks ([`History`], a ring of the last [`RECENT_LIMIT`] [`Notification`]s —
//! the same values the [`crate::notify::Notifier`] sends).
//!
//! [`render_json`] serializes it; [`render_html`] renders a self-contained page: no external
//! assets, no JavaScript, a viewport meta tag and cards that reflow on a phone, every value
//! HTML-escaped. Nothing secret is part of the model (no webhook secret, no URLs of notification
//! receivers, no registry credentials), so nothing secret can be shown.
//!
//! ```
//! use std::time::SystemTime;
//! use ferry_deploy::status::{render_html, ContainerStatus, Status, WorkloadStatus};
//! let mut status = Status::new(SystemTime::now());
//! status.workloads.push(WorkloadStatus {
//!     namespace: "shop".into(), kind: "Deployment".into(), name: "web".into(),
//!     containers: vec![ContainerStatus { name: "app".into(), policy: "digest".into(),
//!         image: "ghcr.io/o/web:v1".into(), ..Default::default() }],
//!     credentials: vec![],
//! });
//! assert!(render_html(&status).contains("shop/Deployment/web"));
//! ```

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::notify::Notification;

/// How many recent updates and rollbacks a [`History`] keeps.
pub const RECENT_LIMIT: usize = 50;

/// Everything the status page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// When this snapshot was taken (RFC 3339).
    #[serde(serialize_with = "rfc3339")]
    pub generated: SystemTime,
    /// When the last pass finished (RFC 3339), `null` before the first.
    #[serde(serialize_with = "opt_rfc3339")]
    pub last_pass: Option<SystemTime>,
    /// Opted-in workloads.
    pub workloads: Vec<WorkloadStatus>,
    /// Recent updates and rollbacks, newest first.
    pub recent: Vec<Notification>,
    /// Pull/merge requests ferry opened that wait for a person.
    pub pull_requests: Vec<OpenRequest>,
}

/// A pull/merge request carrying an update, waiting to be merged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenRequest {
    /// `namespace/Kind/name`.
    pub workload: String,
    /// `github` or `gitlab`.
    pub forge: String,
    /// Its branch.
    pub branch: String,
    /// Its web page (`None` until a pass of this process opened or updated it).
    pub url: Option<String>,
}

impl Status {
    /// An empty status generated at `now`.
    pub fn new(now: SystemTime) -> Status {
        Status {
            generated: now,
            last_pass: None,
            workloads: Vec::new(),
            recent: Vec::new(),
            pull_requests: Vec::new(),
        }
    }
}

/// One opted-in workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct WorkloadStatus {
    /// Namespace.
    pub namespace: String,
    /// Kind (`Deployment`, `StatefulSet`, `DaemonSet`, `CronJob`).
    pub kind: String,
    /// Name.
    pub name: String,
    /// Its watched containers.
    pub containers: Vec<ContainerStatus>,
    /// Where the credential for each registry its images come from was found in the last pass
    /// (a pull secret by name, ferry's config file, a cloud login, or anonymous). No secret.
    pub credentials: Vec<RegistryCredential>,
}

/// The credential source used for one registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct RegistryCredential {
    /// The registry (`ghcr.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// Where its credential came from (`secret shop/regcred (imagePullSecrets of
    /// ServiceAccount shop/puller) (auths key "ghcr.io")`, `anonymous`, …).
    pub source: String,
}

/// One watched container of a workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct ContainerStatus {
    /// Container name.
    pub name: String,
    /// The policy as written (`digest`, `semver:^1.2`…).
    pub policy: String,
    /// The image the pod template runs now.
    pub image: String,
    /// The last decision, `None` before the first pass that saw it.
    pub last_decision: Option<LastDecision>,
    /// Seconds the candidate still has to soak.
    pub soak_remaining_seconds: Option<u64>,
    /// The digest whose approval (`ferry.dev/approved`) is awaited.
    pub awaiting_approval: Option<String>,
    /// Digests quarantined for this container.
    pub quarantined: Vec<String>,
}

/// What the last pass decided for a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct LastDecision {
    /// `update`, `skip`, `none` or `rollback`.
    pub action: String,
    /// Why.
    pub reason: String,
    /// The image it would move (or moved) to.
    pub target: Option<String>,
}

/// A ring of the last `capacity` updates and rollbacks.
#[derive(Debug, Clone)]
pub struct History {
    capacity: usize,
    entries: VecDeque<Notification>,
}

impl Default for History {
    fn default() -> Self {
        History::new(RECENT_LIMIT)
    }
}

impl History {
    /// An empty ring keeping at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> History {
        History {
            capacity: capacity.max(1),
            entries: VecDeque::new(),
        }
    }

    /// Add an entry; the oldest goes when the ring is full.
    pub fn push(&mut self, entry: Notification) {
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    /// The entries, newest first (for [`Status::recent`]).
    pub fn newest_first(&self) -> Vec<Notification> {
        self.entries.iter().rev().cloned().collect()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The latest [`Status`] and the [`History`], shared by the controller (which publishes after
/// each pass) and the HTTP server (which renders snapshots). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Board {
    inner: std::sync::Arc<std::sync::Mutex<(Option<Status>, History)>>,
}

impl Board {
    /// Publish a pass's status. A pass limited to some workloads (a webhook) replaces only
    /// those (`scope`: their `namespace/Kind/name`); the others keep their last state.
    pub fn publish(&self, mut status: Status, scope: Option<&std::collections::BTreeSet<String>>) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let id = |w: &WorkloadStatus| format!("{}/{}/{}", w.namespace, w.kind, w.name);
        let old = inner.0.take();
        // A request still waiting keeps the link an earlier pass learned.
        for r in status.pull_requests.iter_mut().filter(|r| r.url.is_none()) {
            r.url = old
                .iter()
                .flat_map(|o| &o.pull_requests)
                .find(|o| o.workload == r.workload && o.branch == r.branch)
                .and_then(|o| o.url.clone());
        }
        let merged = match (scope, old) {
            (Some(scope), Some(mut old)) => {
                old.workloads.retain(|w| !scope.contains(&id(w)));
                old.workloads.extend(status.workloads);
                old.workloads.sort_by_key(id);
                old.pull_requests.retain(|r| !scope.contains(&r.workload));
                old.pull_requests.extend(status.pull_requests);
                old.last_pass = status.last_pass;
                old
            }
            _ => status,
        };
        inner.0 = Some(merged);
    }

    /// Remember an update, rollback, quarantine or failure.
    pub fn record(&self, n: Notification) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .push(n);
    }

    /// The status now, with the recent history.
    pub fn snapshot(&self, now: SystemTime) -> Status {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut status = inner.0.clone().unwrap_or_else(|| Status::new(now));
        status.generated = now;
        status.recent = inner.1.newest_first();
        status
    }
}

fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_seconds(*t))
}

fn opt_rfc3339<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339(t, s),
        None => s.serialize_none(),
    }
}

/// `GET /status.json`: the status as pretty JSON.
pub fn render_json(status: &Status) -> String {
    serde_json::to_string_pretty(status).unwrap_or_else(|_| "{}".into())
}

/// Escape text for HTML element content and (double- or single-quoted) attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `3m ago`, relative to `now` (`just now` within a second; future times say `in …`).
fn ago(t: SystemTime, now: SystemTime) -> String {
    match now.duration_since(t) {
        Ok(d) if d < Duration::from_secs(1) => "just now".into(),
        Ok(d) => format!("{} ago", ferry_core::duration::human(d.as_secs())),
        Err(e) => format!("in {}", ferry_core::duration::human(e.duration().as_secs())),
    }
}

const STYLE: &str = "\
:root{color-scheme:light dark;--b:#8884;--m:#888}\
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;padding:12px;max-width:72rem}\
h1{font-size:1.3rem;margin:.2rem 0}h2{font-size:1.1rem;margin:1.2rem 0 .4rem}\
.summary{color:var(--m);margin:0 0 .6rem}\
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,26rem),1fr));gap:10px}\
.card{border:1px solid var(--b);border-radius:8px;padding:8px 10px;overflow-wrap:anywhere}\
.card h3{font-size:1rem;margin:0 0 .3rem}\
.container{border-top:1px solid var(--b);padding-top:.3rem;margin-top:.3rem}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 10px;margin:.2rem 0}\
dt{color:var(--m)}dd{margin:0}code{font-size:.85em}\
.tag{display:inline-block;border-radius:4px;padding:0 5px;font-size:.8rem;border:1px solid var(--b)}\
.update{background:#2a73}.skip{background:#d903}.rollback,.quarantine,.failure{background:#d223}\
ol{padding-left:1.2rem}li{margin:.2rem 0;overflow-wrap:anywhere}";

/// `GET /`: the status page (complete HTML document).
pub fn render_html(status: &Status) -> String {
    let mut h = String::with_capacity(4096);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    h.push_str("<meta http-equiv=\"refresh\" content=\"30\">");
    h.push_str("<title>ferry status</title><style>");
    h.push_str(STYLE);
    h.push_str("</style></head><body>\n<h1>ferry</h1>\n");
    summary(&mut h, status);
    h.push_str("<h2>Workloads</h2>\n");
    if status.workloads.is_empty() {
        h.push_str("<p class=\"empty\">No workload has opted in (annotation <code>ferry.dev/policy</code>).</p>\n");
    } else {
        h.push_str("<div class=\"cards\">\n");
        for w in &status.workloads {
            workload(&mut h, w);
        }
        h.push_str("</div>\n");
    }
    requests(&mut h, status);
    recent(&mut h, status);
    h.push_str("<p class=\"summary\">Also as JSON: <a href=\"status.json\">status.json</a>. This page reloads every 30 s.</p>\n</body></html>\n");
    h
}

fn summary(h: &mut String, s: &Status) {
    let containers = || s.workloads.iter().flat_map(|w| &w.containers);
    let approvals = containers()
        .filter(|c| c.awaiting_approval.is_some())
        .count();
    let soaking = containers()
        .filter(|c| c.soak_remaining_seconds.is_some())
        .count();
    let quarantined: usize = containers().map(|c| c.quarantined.len()).sum();
    let pass = match s.last_pass {
        Some(t) => format!(
            "last pass <time datetime=\"{0}\">{0}</time> ({1})",
            time(t),
            ago(t, s.generated)
        ),
        None => "no pass yet".into(),
    };
    let _ = writeln!(
        h,
        "<p class=\"summary\" id=\"summary\">{pass} · {} workloads, {} containers · {approvals} awaiting approval · {soaking} soaking · {quarantined} quarantined digests</p>",
        s.workloads.len(),
        containers().count()
    );
}

fn workload(h: &mut String, w: &WorkloadStatus) {
    let id = escape_html(&format!("{}/{}/{}", w.namespace, w.kind, w.name));
    let _ = writeln!(
        h,
        "<section class=\"card workload\" data-workload=\"{id}\"><h3>{id}</h3>"
    );
    for c in &w.containers {
        container(h, c);
    }
    if !w.credentials.is_empty() {
        h.push_str("<dl class=\"credentials\">");
        for c in &w.credentials {
            let _ = write!(
                h,
                "<dt>credentials for <code>{}</code></dt><dd>{}</dd>",
                escape_html(&c.registry),
                escape_html(&c.source)
            );
        }
        h.push_str("</dl>");
    }
    h.push_str("</section>\n");
}

fn container(h: &mut String, c: &ContainerStatus) {
    let e = escape_html;
    let _ = write!(
        h,
        "<div class=\"container\" data-container=\"{}\"><dl><dt>container</dt><dd><b>{}</b></dd><dt>policy</dt><dd>{}</dd><dt>image</dt><dd><code>{}</code></dd>",
        e(&c.name),
        e(&c.name),
        e(&c.policy),
        e(&c.image)
    );
    match &c.last_decision {
        Some(d) => {
            let _ = write!(
                h,
                "<dt>decision</dt><dd><span class=\"tag {0}\">{0}</span> {1}</dd>",
                e(&d.action),
                e(&d.reason)
            );
            if let Some(t) = &d.target {
                let _ = write!(h, "<dt>target</dt><dd><code>{}</code></dd>", e(t));
            }
        }
        None => h.push_str("<dt>decision</dt><dd>not decided yet</dd>"),
    }
    if let Some(s) = c.soak_remaining_seconds {
        let _ = write!(
            h,
            "<dt>soak left</dt><dd>{}</dd>",
            ferry_core::duration::human(s)
        );
    }
    if let Some(d) = &c.awaiting_approval {
        let _ = write!(
            h,
            "<dt>approval</dt><dd>awaiting <code>{}</code></dd>",
            e(d)
        );
    }
    if !c.quarantined.is_empty() {
        let list: Vec<String> = c
            .quarantined
            .iter()
            .map(|d| format!("<code>{}</code>", e(d)))
            .collect();
        let _ = write!(h, "<dt>quarantined</dt><dd>{}</dd>", list.join("<br>"));
    }
    h.push_str("</dl></div>\n");
}

fn requests(h: &mut String, s: &Status) {
    if s.pull_requests.is_empty() {
        return;
    }
    h.push_str("<h2>Open pull requests</h2>\n<ol class=\"requests\">\n");
    let e = escape_html;
    for r in &s.pull_requests {
        let link = match &r.url {
            Some(u) => format!("<a href=\"{}\">{}</a>", e(u), e(u)),
            None => "(opened before this process started)".into(),
        };
        let _ = writeln!(
            h,
            "<li>{} — {} branch <code>{}</code>: {link}</li>",
            e(&r.workload),
            e(&r.forge),
            e(&r.branch)
        );
    }
    h.push_str("</ol>\n");
}

fn recent(h: &mut String, s: &Status) {
    h.push_str("<h2>Recent updates and rollbacks</h2>\n");
    if s.recent.is_empty() {
        h.push_str("<p class=\"empty\">None yet.</p>\n");
        return;
    }
    h.push_str("<ol class=\"recent\">\n");
    let e = escape_html;
    for n in &s.recent {
        let event = n.event.as_str();
        let _ = writeln!(
            h,
            "<li><time datetime=\"{t}\">{t}</time> <span class=\"tag {event}\">{event}</span> {}/{}/{} <b>{}</b>: <code>{}</code> → <code>{}</code> — {}</li>",
            e(&n.namespace),
            e(&n.kind),
            e(&n.name),
            e(&n.container),
            e(&n.from),
            e(&n.to),
            e(&n.reason),
            t = time(n.time),
        );
    }
    h.push_str("</ol>\n");
}

#[cfg(test)]
mod tests;
