//! The one HTTP server of `ferry-deploy run` (hyper, HTTP/1.1): the accept loop with a
//! connection limit, a header read timeout, and a graceful stop. The metrics/status listener
//! ([`crate::metrics::serve`]: `/metrics`, `/healthz`, `/readyz`, `/`, `/status.json`) and the
//! webhook receiver ([`crate::webhook::Receiver::serve`]) are two handlers on it.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// A whole response.
pub type Reply = Response<Full<Bytes>>;

/// Limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once (more wait to be accepted).
    pub max_connections: usize,
    /// A client must send its request headers within this time.
    pub header_timeout: Duration,
}

/// Serve `handler` on `listener` until `shutdown` resolves; connections still open then are
/// closed. `name` labels the listener in logs.
pub async fn serve<H, F>(
    name: &'static str,
    listener: TcpListener,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
    handler: H,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    let limit = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = limit.clone().acquire_owned() => p,
        };
        let Ok(permit) = permit else { break };
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => a,
        };
        while connections.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!("{name} listener: accept failed: {e}");
                continue;
            }
        };
        let handler = handler.clone();
        connections.spawn(async move {
            let _permit = permit;
            connection(name, stream, limits.header_timeout, handler).await;
        });
    }
    connections.shutdown().await;
}

async fn connection<H, F>(
    name: &'static str,
    stream: tokio::net::TcpStream,
    header_timeout: Duration,
    handler: H,
) where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let reply = handler(req);
        async move { Ok::<_, Infallible>(reply.await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    if let Err(e) = conn.await {
        tracing::debug!("{name} connection: {e}");
    }
}

/// A response with `status`, `content_type` and `body`.
pub fn reply(status: http::StatusCode, content_type: &'static str, body: String) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    r
}
