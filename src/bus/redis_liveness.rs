//! Instance liveness for the Redis bus: each instance refreshes an expiring key; survivors reap
//! the presence entries of an instance whose key expired, telling subscribers it left.

use super::redis::{Inner, ALIVE_MS};
use std::{sync::Arc, time::Duration};
use tokio_util::sync::CancellationToken;

/// Heartbeats this instance and reaps the presence of instances that stopped heartbeating.
/// On shutdown the last heartbeat covers `drain` (the grace in which turns here may still
/// finish) and then lapses by itself: until then no survivor takes this instance's turns for
/// dead ones, and if the process ends early its leftovers are reaped soon after.
pub(super) async fn liveness(inner: Arc<Inner>, shutdown: CancellationToken, drain: Duration) {
    let me = inner.instance.to_string();
    let instances_key = format!("{}instances", inner.prefix);
    let mut tick = tokio::time::interval(Duration::from_millis(ALIVE_MS / 3));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(inner.alive_key(&me))
            .arg(1)
            .arg("PX")
            .arg(ALIVE_MS)
            .ignore();
        pipe.cmd("SADD").arg(&instances_key).arg(&me).ignore();
        if inner.run_pipe(&pipe).await.is_err() {
            continue;
        }
        let mut members = redis::cmd("SMEMBERS");
        members.arg(&instances_key);
        let others: Vec<String> = inner.run(&members).await.unwrap_or_default();
        for other in others.into_iter().filter(|o| *o != me) {
            let mut exists = redis::cmd("EXISTS");
            exists.arg(inner.alive_key(&other));
            if inner.run::<i64>(&exists).await.unwrap_or(1) == 1 {
                continue;
            }
            reap(&inner, &other, &instances_key).await;
        }
    }
    let mut last = redis::cmd("SET");
    last.arg(inner.alive_key(&me))
        .arg(1)
        .arg("PX")
        .arg(drain.as_millis() as u64 + ALIVE_MS);
    let _ = inner.run::<()>(&last).await;
}

async fn reap(inner: &Inner, dead: &str, instances_key: &str) {
    let mut lock = redis::cmd("SET");
    lock.arg(format!("{}inst:{dead}:reaper", inner.prefix))
        .arg(1)
        .arg("NX")
        .arg("PX")
        .arg(30_000);
    if inner
        .run::<Option<String>>(&lock)
        .await
        .ok()
        .flatten()
        .is_none()
    {
        return; // another instance is reaping it
    }
    let mut smembers = redis::cmd("SMEMBERS");
    smembers.arg(inner.owned_key(dead));
    let entries: Vec<String> = inner.run(&smembers).await.unwrap_or_default();
    let mut leaves: std::collections::HashMap<&str, Vec<crate::protocol::Member>> =
        Default::default();
    for entry in &entries {
        let Some((channel, conn_id)) = entry.split_once('\t') else {
            continue;
        };
        let mut hget = redis::cmd("HGET");
        hget.arg(inner.presence_key(channel)).arg(conn_id);
        let raw: Option<String> = inner.run(&hget).await.ok().flatten();
        let mut hdel = redis::cmd("HDEL");
        hdel.arg(inner.presence_key(channel)).arg(conn_id);
        // Two survivors may reap the same instance at once: only the one whose HDEL removed
        // the entry reports the leave, so members hear it once.
        if inner.run::<i64>(&hdel).await.unwrap_or(0) == 0 {
            continue;
        }
        let member = raw
            .and_then(|r| serde_json::from_str::<serde_json::Value>(&r).ok())
            .and_then(|v| serde_json::from_value(v["member"].clone()).ok());
        if let Some(m) = member {
            leaves.entry(channel).or_default().push(m);
        }
    }
    // One diff per channel for all of the dead instance's leaves, as the presence service
    // would have sent had the instance left cleanly.
    for (channel, left) in leaves {
        let mut count = redis::cmd("HLEN");
        count.arg(inner.presence_key(channel));
        let count = inner.run(&count).await.unwrap_or(0);
        let diff =
            crate::protocol::PresenceDiff::new(Vec::new(), left, count, inner.presence_diff_max);
        let frame = crate::protocol::event_frame(
            channel,
            &crate::protocol::ServerEvent::PresenceDiff(&diff),
        );
        inner.hub.deliver(channel, &frame);
        inner.publish_remote(channel, 0, &frame).await;
    }
    let mut pipe = redis::pipe();
    pipe.cmd("DEL").arg(inner.owned_key(dead)).ignore();
    pipe.cmd("SREM").arg(instances_key).arg(dead).ignore();
    let _ = inner.run_pipe(&pipe).await;
    tracing::info!(instance = dead, "reaped presence of a dead instance");
}
