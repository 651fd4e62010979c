//! Counters of the controller and the routes of its metrics listener: Prometheus (`/metrics`),
//! probes (`/healthz`, `/readyz`) and the status page (`/`, `/status.json`), served by the one
//! HTTP server ([`crate::server`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::net::TcpListener;

use crate::status::{self, Board};

/// Controller counters (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    passes: AtomicU64,
    pass_errors: AtomicU64,
    updates: AtomicU64,
    skips: AtomicU64,
    rollbacks: AtomicU64,
    registry_requests: AtomicU64,
    last_pass_unix: AtomicU64,
    ready: AtomicBool,
    leader: AtomicBool,
    leadership_lost: AtomicU64,
    unsynced: AtomicU64,
    failures: std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>>,
    webhooks: std::sync::Mutex<Option<crate::webhook::WebhookCounters>>,
    notifications: std::sync::Mutex<Option<crate::notify::NotifyCounters>>,
}

impl Metrics {
    /// Record a finished pass.
    pub fn pass(&self, updates: u64, skips: u64, rollbacks: u64, registry_requests: u64) {
        let i = &self.inner;
        i.passes.fetch_add(1, Ordering::Relaxed);
        i.updates.fetch_add(updates, Ordering::Relaxed);
        i.skips.fetch_add(skips, Ordering::Relaxed);
        i.rollbacks.fetch_add(rollbacks, Ordering::Relaxed);
        i.registry_requests
            .fetch_add(registry_requests, Ordering::Relaxed);
        let now = ferry_core::duration::unix_now();
        i.last_pass_unix.store(now, Ordering::Relaxed);
        i.ready.store(true, Ordering::Relaxed);
    }

    /// Record a failed pass.
    pub fn pass_error(&self) {
        self.inner.pass_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether this replica leads.
    pub fn set_leader(&self, leader: bool) {
        self.inner.leader.store(leader, Ordering::Relaxed);
        if !leader {
            // A follower is ready as soon as it runs: it serves probes and waits.
            self.inner.ready.store(true, Ordering::Relaxed);
        }
    }

    /// Count a lost Lease (`ferry_leadership_lost_total`).
    pub fn leadership_lost(&self) {
        self.inner.leadership_lost.fetch_add(1, Ordering::Relaxed);
    }

    /// Count a failure at `stage` (`ferry_failures_total{stage}`).
    pub fn failure(&self, stage: &'static str) {
        let mut f = self
            .inner
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *f.entry(stage).or_default() += 1;
    }

    /// Count a git update Argo CD did not sync in time (`ferry_writeback_unsynced_total`).
    pub fn unsynced(&self) {
        self.inner.unsynced.fetch_add(1, Ordering::Relaxed);
    }

    /// Render the webhook receiver's counters (`ferry_webhooks_total`) with the others.
    pub fn attach_webhooks(&self, counters: crate::webhook::WebhookCounters) {
        *self
            .inner
            .webhooks
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(counters);
    }

    /// Render the notifier's counters (`ferry_notifications_total`) with the others.
    pub fn attach_notifications(&self, counters: crate::notify::NotifyCounters) {
        *self
            .inner
            .notifications
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(counters);
    }

    /// Whether a pass has completed (or this replica follows).
    pub fn ready(&self) -> bool {
        self.inner.ready.load(Ordering::Relaxed)
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for (name, help, kind, v) in self.values() {
            s.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
            ));
        }
        self.render_failures(&mut s);
        let i = &self.inner;
        if let Some(w) = i
            .webhooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            w.render_prometheus(&mut s);
        }
        if let Some(n) = i
            .notifications
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            n.render_prometheus(&mut s);
        }
        s
    }

    /// (name, help, type, value) of every plain metric.
    fn values(&self) -> [(&'static str, &'static str, &'static str, u64); 10] {
        let i = &self.inner;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let counter = "counter";
        [
            (
                "ferry_passes_total",
                "Completed controller passes.",
                counter,
                g(&i.passes),
            ),
            (
                "ferry_pass_errors_total",
                "Passes that failed.",
                counter,
                g(&i.pass_errors),
            ),
            (
                "ferry_updates_total",
                "Containers updated.",
                counter,
                g(&i.updates),
            ),
            (
                "ferry_skips_total",
                "Update candidates skipped (platforms, Argo CD, quarantine, registry).",
                counter,
                g(&i.skips),
            ),
            (
                "ferry_rollbacks_total",
                "Rollouts rolled back.",
                counter,
                g(&i.rollbacks),
            ),
            (
                "ferry_registry_requests_total",
                "Registry requests made by passes.",
                counter,
                g(&i.registry_requests),
            ),
            (
                "ferry_last_pass_timestamp_seconds",
                "Unix time of the last completed pass.",
                "gauge",
                g(&i.last_pass_unix),
            ),
            (
                "ferry_leader",
                "1 when this replica holds the lease.",
                "gauge",
                u64::from(i.leader.load(Ordering::Relaxed)),
            ),
            (
                "ferry_leadership_lost_total",
                "Times this replica lost the Lease (and stopped writing).",
                counter,
                g(&i.leadership_lost),
            ),
            (
                "ferry_writeback_unsynced_total",
                "Git updates Argo CD did not sync within the rollout timeout.",
                counter,
                g(&i.unsynced),
            ),
        ]
    }

    fn render_failures(&self, s: &mut String) {
        s.push_str("# HELP ferry_failures_total Failed writes by stage (patch, rollback, git_write, git_revert).\n# TYPE ferry_failures_total counter\n");
        let failures = self
            .inner
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for stage in ["patch", "rollback", "git_write", "git_revert"] {
            let n = failures.get(stage).copied().unwrap_or(0);
            s.push_str(&format!("ferry_failures_total{{stage=\"{stage}\"}} {n}\n"));
        }
    }
}

/// Serve `/metrics`, `/healthz`, `/readyz`, the status page `/` and `/status.json` (from
/// `board`) on `listener` until `shutdown` resolves, on [`crate::server::serve`].
pub async fn serve(
    listener: TcpListener,
    metrics: Metrics,
    board: Board,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let limits = crate::server::Limits {
        max_connections: 64,
        header_timeout: std::time::Duration::from_secs(5),
    };
    crate::server::serve("metrics", listener, limits, shutdown, move |req| {
        let reply = route(req.uri().path(), &metrics, &board);
        async move { reply }
    })
    .await;
}

/// The answer to a GET of `path`. Each answer closes its connection (probes and scrapers
/// open one per request).
fn route(path: &str, metrics: &Metrics, board: &Board) -> crate::server::Reply {
    use http::StatusCode;
    let now = std::time::SystemTime::now();
    let (status, body, ctype) = match path {
        "/" => (
            StatusCode::OK,
            status::render_html(&board.snapshot(now)),
            "text/html; charset=utf-8",
        ),
        "/status.json" => (
            StatusCode::OK,
            status::render_json(&board.snapshot(now)),
            "application/json",
        ),
        "/metrics" => (
            StatusCode::OK,
            metrics.render(),
            "text/plain; version=0.0.4",
        ),
        "/healthz" => (StatusCode::OK, "ok\n".to_string(), "text/plain"),
        "/readyz" if metrics.ready() => (StatusCode::OK, "ready\n".to_string(), "text/plain"),
        "/readyz" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no pass completed yet\n".to_string(),
            "text/plain",
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "not found\n".to_string(),
            "text/plain",
        ),
    };
    let mut r = crate::server::reply(status, ctype, body);
    r.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        assert!(!m.ready());
        m.pass(2, 1, 0, 200);
        m.pass(0, 0, 1, 200);
        let t = m.render();
        assert!(t.contains("ferry_passes_total 2\n"));
        assert!(t.contains("ferry_updates_total 2\n"));
        assert!(t.contains("ferry_rollbacks_total 1\n"));
        assert!(t.contains("ferry_registry_requests_total 400\n"));
        assert!(t.contains("# TYPE ferry_leader gauge\n"));
        assert!(m.ready());
    }
}
