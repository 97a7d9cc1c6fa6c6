//! The writer half: owns the sink, drains the bounded queue in batches (one flush per batch, not
//! per frame), pings on a timer, and sends the close frame when the connection is told to close.

use crate::{hub::Outbox, protocol::CloseCode};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::{stream::SplitSink, SinkExt};
use std::{sync::Arc, time::Duration};
use tokio::sync::mpsc;

/// Frames written before one flush.
const BATCH: usize = 64;

pub(super) async fn run(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Utf8Bytes>,
    outbox: Arc<Outbox>,
    heartbeat: Duration,
    write_timeout: Duration,
) {
    let frames_out = metrics::counter!("ws_frames_out_total");
    let bytes_out = metrics::counter!("ws_bytes_out_total");
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    loop {
        tokio::select! {
            biased;
            _ = outbox.closing() => break,
            frame = rx.recv() => {
                let Some(frame) = frame else { break };
                let (mut n, mut bytes) = (1u64, frame.len() as u64);
                // A write stuck on a full socket must not delay a close decision, so every
                // write also watches `closing`. One timer for the whole batch, not one per
                // frame: at 1M frames/s the per-frame timers were a visible share of the
                // profile.
                let batch = async {
                    let mut ok = sink.feed(Message::Text(frame)).await.is_ok();
                    while ok && (n as usize) < BATCH {
                        match rx.try_recv() {
                            Ok(f) => {
                                n += 1;
                                bytes += f.len() as u64;
                                ok = sink.feed(Message::Text(f)).await.is_ok();
                            }
                            Err(_) => break,
                        }
                    }
                    ok && sink.flush().await.is_ok()
                };
                let batch = async {
                    matches!(tokio::time::timeout(write_timeout, batch).await, Ok(true))
                };
                let ok = tokio::select! {
                    biased;
                    _ = outbox.closing() => None,
                    ok = batch => Some(ok),
                };
                frames_out.increment(n);
                bytes_out.increment(bytes);
                match ok {
                    Some(true) => {}
                    Some(false) => {
                        outbox.close(CloseCode::Normal);
                        return;
                    }
                    None => break,
                }
            }
            _ = ping.tick() => {
                if !matches!(tokio::time::timeout(write_timeout, sink.send(Message::Ping(Default::default()))).await, Ok(Ok(()))) {
                    outbox.close(CloseCode::Normal);
                    return;
                }
            }
        }
    }
    let code = outbox.closed_with().unwrap_or(CloseCode::Normal);
    // Replies queued before the close (an auth error, say) go out first, except to a slow
    // consumer: its backlog is the problem.
    if code != CloseCode::SlowConsumer {
        while let Ok(f) = rx.try_recv() {
            if !feed(&mut sink, f, write_timeout).await {
                return;
            }
        }
    }
    let close = Message::Close(Some(CloseFrame {
        code: code.code(),
        reason: code.reason().into(),
    }));
    let _ = tokio::time::timeout(write_timeout, async {
        let _ = sink.send(close).await;
        let _ = sink.close().await;
    })
    .await;
}

async fn feed(sink: &mut SplitSink<WebSocket, Message>, frame: Utf8Bytes, t: Duration) -> bool {
    matches!(
        tokio::time::timeout(t, sink.feed(Message::Text(frame))).await,
        Ok(Ok(()))
    )
}
