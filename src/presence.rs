//! Presence: who is on a channel. A join or leave is recorded in the bus's presence store at
//! once (so a `subscribe` reply or a `presence` answer on any instance sees it) and announced
//! as one `presence.diff` per channel per `ws.presence_interval_ms`: a storm of n joins costs
//! each member one event per interval instead of n, and a diff past `ws.presence_diff_max`
//! carries counts only, and a channel past `ws.presence_busy_members` gets its diffs less
//! often in proportion, so a 10k-member channel fills in O(n) frames of bounded size.

use crate::{
    bus::{Bus, Present},
    config::WsConfig,
    protocol::{event_frame, Member, PresenceDiff, ServerEvent},
};
use dashmap::DashMap;
use futures::StreamExt;
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use tokio_util::sync::CancellationToken;

/// Channels whose diffs are sent at once by one flush (each may read a count from Redis).
const FLUSH_CONCURRENCY: usize = 16;

/// Owned by `AppState`; its flush task runs until shutdown has let every member here leave.
pub struct Presence {
    bus: Arc<dyn Bus>,
    /// channel -> conn id -> what changed since the last flush.
    pending: DashMap<String, HashMap<String, Change>>,
    /// Members this instance holds on all channels (shutdown waits for their leaves).
    held: AtomicUsize,
    /// Big channels whose next diff waits until then (`ws.presence_busy_members`).
    busy: DashMap<String, Instant>,
    interval: Duration,
    diff_max: usize,
    busy_members: usize,
    list_max: usize,
}

/// Where a connection ended up over the interval. It is announced by that alone, even when it
/// joined and left again: a member may have read a list in between (a subscribe reply) and
/// seen it, and a leave of someone never seen is harmless.
struct Change {
    present: bool,
    member: Member,
}

impl Presence {
    pub fn new(bus: Arc<dyn Bus>, cfg: &WsConfig) -> Self {
        Self {
            bus,
            pending: DashMap::new(),
            held: AtomicUsize::new(0),
            busy: DashMap::new(),
            interval: Duration::from_millis(cfg.presence_interval_ms),
            diff_max: cfg.presence_diff_max,
            busy_members: cfg.presence_busy_members.max(1),
            list_max: cfg.presence_list_max,
        }
    }

    pub async fn join(&self, channel: &str, member: Member) {
        self.bus.presence_join(channel, &member).await;
        self.held.fetch_add(1, Ordering::Relaxed);
        self.note(channel, member, true);
    }

    pub async fn leave(&self, channel: &str, member: Member) {
        self.bus.presence_leave(channel, &member.conn_id).await;
        let _ = self
            .held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |h| {
                Some(h.saturating_sub(1))
            });
        self.note(channel, member, false);
    }

    /// The channel's members if at most `ws.presence_list_max` (else none), and its count.
    pub async fn list(&self, channel: &str) -> Present {
        self.bus.presence(channel, self.list_max).await
    }

    fn note(&self, channel: &str, member: Member, joined: bool) {
        let change = Change {
            present: joined,
            member,
        };
        let mut changes = self.pending.entry(channel.to_owned()).or_default();
        changes.insert(change.member.conn_id.clone(), change);
    }

    /// Sends each channel's diff every interval; after shutdown begins, goes on until the
    /// members held here have left (connections close one by one), so other instances hear it.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.flush().await,
                _ = shutdown.cancelled() => break,
            }
        }
        while self.held.load(Ordering::Relaxed) > 0 {
            tokio::time::sleep(self.interval).await;
            self.flush().await;
        }
        self.flush().await;
    }

    async fn flush(&self) {
        let now = Instant::now();
        let channels: Vec<String> = self
            .pending
            .iter()
            .map(|e| e.key().clone())
            .filter(|c| self.busy.get(c).is_none_or(|due| *due <= now))
            .collect();
        // A busy channel whose members here all left is announced by other instances; its
        // entry goes once due.
        self.busy
            .retain(|c, due| *due > now || self.pending.contains_key(c));
        futures::stream::iter(channels)
            .for_each_concurrent(FLUSH_CONCURRENCY, |channel| async move {
                if let Some((channel, changes)) = self.pending.remove(&channel) {
                    self.announce(&channel, changes).await;
                }
            })
            .await;
    }

    async fn announce(&self, channel: &str, changes: HashMap<String, Change>) {
        let (mut joins, mut leaves) = (Vec::new(), Vec::new());
        for c in changes.into_values() {
            match c.present {
                true => joins.push(c.member),
                false => leaves.push(c.member),
            }
        }
        let count = self.bus.presence(channel, 0).await.count;
        let diff = PresenceDiff::new(joins, leaves, count, self.diff_max);
        if diff.count > self.busy_members {
            let wait = self
                .interval
                .mul_f64(diff.count as f64 / self.busy_members as f64);
            self.busy.insert(channel.to_owned(), Instant::now() + wait);
        } else {
            self.busy.remove(channel);
        }
        let frame = event_frame(channel, &ServerEvent::PresenceDiff(&diff));
        self.bus.publish(channel, frame).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{bus::local::LocalBus, bus::Inbox, hub::Hub, hub::Outbox};

    fn member(conn: &str) -> Member {
        Member {
            user_id: "u".into(),
            conn_id: conn.into(),
            device: None,
            connected_since: 1,
        }
    }

    fn listed(frame: &serde_json::Value, side: &str) -> Vec<String> {
        let mut l: Vec<String> = frame["data"][side]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["conn_id"].as_str().unwrap().to_owned())
            .collect();
        l.sort_unstable();
        l
    }

    #[tokio::test]
    async fn one_diff_per_interval_lists_each_connection_once_by_where_it_ended() {
        let hub = Arc::new(Hub::new(tokio::sync::mpsc::channel(1).0));
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new(hub.clone(), Inbox::new().0));
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        hub.subscribe("c", Arc::new(Outbox::new(1, tx)));
        let p = Presence::new(bus, &WsConfig::default());
        let next = |rx: &mut tokio::sync::mpsc::Receiver<_>| -> serde_json::Value {
            let frame: axum::extract::ws::Utf8Bytes = rx.try_recv().expect("a diff");
            serde_json::from_str(frame.as_str()).unwrap()
        };

        p.flush().await;
        assert!(rx.try_recv().is_err(), "no change, no diff");

        // a: joined and left (someone may have listed it meanwhile: it is announced as left);
        // b: left and joined again; c: joined.
        p.join("c", member("b")).await;
        p.flush().await;
        next(&mut rx);
        p.join("c", member("a")).await;
        p.leave("c", member("a")).await;
        p.leave("c", member("b")).await;
        p.join("c", member("b")).await;
        p.join("c", member("c")).await;
        p.flush().await;
        let d = next(&mut rx);
        assert_eq!(listed(&d, "joins"), ["b", "c"], "{d}");
        assert_eq!(listed(&d, "leaves"), ["a"], "{d}");
        assert_eq!(
            (&d["data"]["count"], &d["data"]["truncated"]),
            (&2.into(), &false.into())
        );
        assert!(rx.try_recv().is_err(), "one diff for the interval");
    }
}
