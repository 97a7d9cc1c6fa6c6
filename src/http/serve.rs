//! The accept loop: HTTP/1.1 with upgrades (the WebSocket), a cap on open connections, and a
//! deadline on reading each request's headers (which also bounds how long an idle keep-alive
//! connection is kept), so slowloris clients cannot hold the server's sockets. Streams (SSE,
//! upgraded sockets) are never cut by it: the deadline only runs while headers are awaited.
//!
//! Written out instead of `axum::serve` because that has neither knob.

use axum::{extract::ConnectInfo, Router};
use dashmap::DashMap;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::ServiceExt;

/// Bounds of the listener (`server.*` in Config).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Open HTTP connections; past it, new ones wait in the kernel's backlog. A connection that
    /// upgrades to a WebSocket leaves this count (sockets have `ws.max_connections`).
    pub max_connections: usize,
    /// Open HTTP connections per client address (an IPv6 /64); past it, a new one is closed at
    /// once. 0: no per-address cap (behind a load balancer every peer is the balancer).
    pub max_per_address: usize,
    /// Longest wait for a request's headers, from when the connection is ready to read one.
    pub header_read_timeout: Duration,
}

/// Serves `router` on `listener` until `shutdown`, then lets open connections finish their
/// current request (upgraded sockets and their own shutdown are tracked elsewhere).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_address: Arc<DashMap<IpAddr, usize>> = Arc::new(DashMap::new());
    let open = TaskTracker::new();
    let full = metrics::counter!("http_connection_cap_waits_total");
    loop {
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                full.increment(1);
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    p = slots.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                }
            }
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, most likely: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(held) = AddressSlot::take(&per_address, peer.ip(), limits.max_per_address) else {
            metrics::counter!("http_connections_refused_total", "reason" => "per_address")
                .increment(1);
            drop(stream);
            continue;
        };
        // A streamed chunk must not wait for the client's delayed ACK of the last one.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let app = router
            .clone()
            .map_request(move |req: hyper::Request<hyper::body::Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let stop = shutdown.clone();
        open.spawn(async move {
            let _permit = permit;
            let _held = held;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app))
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => log_end(r, peer),
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    log_end(conn.await, peer);
                }
            }
        });
    }
    open.close();
    open.wait().await;
    Ok(())
}

/// One connection counted against its address's cap; released on drop.
struct AddressSlot {
    key: IpAddr,
    counts: Arc<DashMap<IpAddr, usize>>,
}

impl AddressSlot {
    /// `None` when `ip`'s bucket has `max` open already (`max` 0: never).
    fn take(counts: &Arc<DashMap<IpAddr, usize>>, ip: IpAddr, max: usize) -> Option<Self> {
        let key = crate::domain::client_bucket(ip);
        let mut n = counts.entry(key).or_insert(0);
        if max > 0 && *n >= max {
            return None;
        }
        *n += 1;
        Some(Self {
            key,
            counts: counts.clone(),
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if let Some(mut n) = self.counts.get_mut(&self.key) {
            *n = n.saturating_sub(1);
        }
        self.counts.remove_if(&self.key, |_, n| *n == 0);
    }
}

fn log_end(r: Result<(), hyper::Error>, peer: SocketAddr) {
    if let Err(e) = r {
        // Timeouts, resets, garbage: the client's business, not an incident.
        tracing::debug!(error = %e, %peer, "connection ended");
    }
}
