//! The HTTP accept loop: what `axum::serve` does, plus the limits a public listener needs.
//!
//! - **Header read timeout** (`http.header_read_timeout_secs`): a new connection must send its
//!   first bytes in time (checked here: hyper's timer starts only after the protocol is sniffed)
//!   and then a complete request head, and an idle kept-alive connection is closed after the
//!   same time, so slow or silent clients (slowloris) cannot hold connections open. hyper
//!   enforces the head part once it has a timer, which `axum::serve` does not give it.
//! - **Connection cap** (`http.max_connections`): beyond it the loop stops accepting until a
//!   connection closes; new clients wait in the kernel's backlog instead of costing descriptors.
//! - **Peer address** as `ConnectInfo<SocketAddr>` on every request, for per-source budgets
//!   (never a forwarded header: those are the client's to write).
//! - **Graceful shutdown**: on the signal the loop stops accepting and open connections finish
//!   their requests, for at most `DRAIN` before the process goes on with its shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::extract::Request;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::config::HttpConfig;

/// How long open connections may take to finish after the shutdown signal.
const DRAIN: Duration = Duration::from_secs(10);
/// Pause after a failed accept (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until `shutdown` completes, then drains open connections.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    http: &HttpConfig,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(http.header_read_timeout_secs));
    builder
        .http2()
        .timer(TokioTimer::new())
        // A silent HTTP/2 connection is found by pings and closed.
        .keep_alive_interval(Duration::from_secs(http.header_read_timeout_secs))
        .keep_alive_timeout(Duration::from_secs(http.header_read_timeout_secs));
    let builder = Arc::new(builder);
    let header_timeout = Duration::from_secs(http.header_read_timeout_secs);
    let slots = Arc::new(Semaphore::new(http.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; trying again shortly");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = app
            .clone()
            .map_request(move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // The protocol is sniffed from the first bytes before hyper's own timer runs, so a
            // connection that never sends anything is timed out here.
            match tokio::time::timeout(header_timeout, stream.peek(&mut [0u8; 1])).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return drop(permit),
            }
            let connection = builder
                .serve_connection_with_upgrades(
                    TokioIo::new(stream),
                    TowerToHyperService::new(service),
                )
                .into_owned();
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("open connections did not finish within {DRAIN:?}; closing them");
    }
}

/// The peer of a request served by [`serve`] (None in tests that call the router directly).
pub fn peer(req: &axum::http::Extensions) -> Option<SocketAddr> {
    req.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}
