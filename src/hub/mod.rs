//! This instance's channel -> subscribers map, and delivery into connections' bounded queues.
//!
//! Each channel keeps its subscribers by connection id (O(1) to join or leave, so a storm of
//! 10k subscribes is O(n), not O(n^2)) and an immutable `Arc<[Outbox]>` built from them on the
//! first delivery after a change, so a delivery clones one `Arc` under a shard read lock and
//! then walks the slice with no lock held. A frame
//! is serialized once by the publisher; every subscriber gets a refcounted clone of the same
//! bytes. A full queue closes that connection as a slow consumer; nobody else waits for it.

mod outbox;
pub mod sequence;

pub use outbox::{Floor, Outbox};
use sequence::{Offer, Sequence};

use axum::extract::ws::Utf8Bytes;
use dashmap::DashMap;
use metrics::Counter;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// This instance's channels and their version order, nothing else. Owned by `AppState`
/// (shared with the bus, which delivers into it); lives as long as the server.
pub struct Hub {
    channels: DashMap<Arc<str>, Subscribers>,
    /// Woken when the set of channels with local subscribers changes (the Redis bus follows it).
    changed: Notify,
    delivered: Counter,
    /// Where gaps in a channel's versions are reported (the sync healer).
    gaps: tokio::sync::mpsc::Sender<Gap>,
}

/// One channel's local subscribers.
#[derive(Default)]
struct Subscribers {
    by_id: std::collections::HashMap<u64, Arc<Outbox>>,
    /// What deliveries walk; `None` after a change until the next delivery rebuilds it.
    list: Option<Arc<[Arc<Outbox>]>>,
    /// The channel's version order: born and dropped with the channel's entry, so a
    /// subscriber's catch-up always lands on the order its later frames go through. Behind its
    /// own lock, held while its frames are pushed: two deliveries on one channel (a local
    /// commit's and another instance's) reach every queue in version order, and other channels
    /// never wait for it.
    sequence: Arc<Mutex<Sequence>>,
}

/// Versions `from..to` of `channel` never arrived on this instance.
#[derive(Debug, Clone)]
pub struct Gap {
    pub channel: Arc<str>,
    pub from: u64,
    pub to: u64,
}

impl Hub {
    /// `gaps` receives the versions that never arrived here (the sync healer takes them).
    pub fn new(gaps: tokio::sync::mpsc::Sender<Gap>) -> Self {
        Self {
            channels: DashMap::new(),
            changed: Notify::new(),
            delivered: metrics::counter!("hub_deliveries_total"),
            gaps,
        }
    }

    /// The channel's subscribers as deliveries walk them (rebuilt here after a change).
    fn subscribers(&self, channel: &str) -> Option<Arc<[Arc<Outbox>]>> {
        if let Some(list) = self.channels.get(channel)?.list.clone() {
            return Some(list);
        }
        let mut subs = self.channels.get_mut(channel)?;
        let subs = &mut *subs;
        Some(
            subs.list
                .get_or_insert_with(|| subs.by_id.values().cloned().collect())
                .clone(),
        )
    }

    /// Delivers a versioned frame in version order (see `sequence`).
    pub fn deliver_versioned(&self, channel: &str, version: u64, frame: Utf8Bytes) {
        let Some(seq) = self.sequence(channel) else {
            return;
        };
        let mut seq = seq
            .lock()
            .expect("sequence lock is never held across a panic");
        let offer = seq.offer(version, frame);
        self.settle(channel, offer);
    }

    /// The channel's version order, while it has local subscribers.
    fn sequence(&self, channel: &str) -> Option<Arc<Mutex<Sequence>>> {
        self.channels.get(channel).map(|s| s.sequence.clone())
    }

    fn settle(&self, channel: &str, offer: Offer) {
        match offer {
            Offer::Release(frames) => self.release(channel, frames),
            Offer::Gap { from, to } => {
                metrics::counter!("hub_version_gaps_total").increment(1);
                let _ = self.gaps.try_send(Gap {
                    channel: Arc::from(channel),
                    from,
                    to,
                });
            }
            Offer::Duplicate => {}
        }
    }

    fn release(&self, channel: &str, frames: Vec<(u64, Utf8Bytes)>) {
        let Some(subs) = self.subscribers(channel) else {
            return;
        };
        for (v, f) in frames {
            let n = subs
                .iter()
                .filter(|s| s.push_versioned(channel, v, f.clone()))
                .count();
            self.delivered.increment(n as u64);
        }
    }

    /// Versions of `channel` up to `version` will not be delivered here (its subscribers were
    /// told to resync); what arrived past them is released now.
    pub fn skip_to(&self, channel: &str, version: u64) {
        let Some(seq) = self.sequence(channel) else {
            return;
        };
        let mut seq = seq
            .lock()
            .expect("sequence lock is never held across a panic");
        let frames = seq.skip_to(version);
        self.release(channel, frames);
    }

    /// Removes every connection of `user` from `channel` (membership revoked) and tells each
    /// with `frame`.
    pub fn evict(&self, channel: &str, user: &str, frame: &Utf8Bytes) -> usize {
        let Some(subs) = self.subscribers(channel) else {
            return 0;
        };
        let mut n = 0;
        for s in subs.iter().filter(|s| s.user() == Some(user)) {
            self.unsubscribe(channel, s.id());
            s.mark_evicted(channel);
            s.push(frame.clone());
            n += 1;
        }
        n
    }

    /// Closes every connection of `user` that authenticated with API key `key` (revoked),
    /// telling each with `frame` first.
    pub fn close_key(&self, user: &str, key: uuid::Uuid, frame: &Utf8Bytes) -> usize {
        self.close_where(user, frame, |s| s.api_key() == Some(key))
    }

    /// Closes `user`'s connections: those signed in through one of `sessions`, or all of them
    /// (API keys included) when `None`; each hears `frame` first.
    pub fn close_user(
        &self,
        user: &str,
        sessions: Option<&[uuid::Uuid]>,
        frame: &Utf8Bytes,
    ) -> usize {
        self.close_where(user, frame, |s| match sessions {
            None => true,
            Some(list) => s.session().is_some_and(|id| list.contains(&id)),
        })
    }

    /// Closes (4001) the connections of `user` that `which` picks, each told `frame` first.
    /// Every connection is on its `user:` channel.
    fn close_where(&self, user: &str, frame: &Utf8Bytes, which: impl Fn(&Outbox) -> bool) -> usize {
        let Some(subs) = self.subscribers(&format!("user:{user}")) else {
            return 0;
        };
        let mut n = 0;
        for s in subs.iter().filter(|s| which(s)) {
            s.push(frame.clone());
            s.close(crate::protocol::CloseCode::AuthFailed);
            n += 1;
        }
        n
    }

    /// Channels with a subscriber here.
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Every connection here, each once, with its `user:` channel (every authenticated
    /// connection is on exactly one).
    pub fn every_connection(&self) -> Vec<(Arc<str>, Arc<Outbox>)> {
        let mut out = Vec::new();
        for entry in self
            .channels
            .iter()
            .filter(|e| e.key().starts_with("user:"))
        {
            for o in entry.value().by_id.values() {
                out.push((entry.key().clone(), o.clone()));
            }
        }
        out
    }

    /// A subscriber caught up on `channel` to `version`; versions up to it need no release.
    pub fn caught_up(&self, channel: &str, version: u64) {
        let Some(seq) = self.sequence(channel) else {
            return;
        };
        let mut seq = seq
            .lock()
            .expect("sequence lock is never held across a panic");
        let (released, gap) = seq.caught_up(version);
        self.release(channel, released);
        if let Some((from, to)) = gap {
            self.settle(channel, Offer::Gap { from, to });
        }
    }

    /// After the bus was away (and is back): any versioned channel may have missed its last
    /// changes, with nothing later to reveal the gap. Each is reported as a gap open at the
    /// end (`to` is `u64::MAX`), so the healer reads what the change log has past it.
    pub async fn report_tails(&self) {
        // The map's shard locks are let go before any sequence is locked: delivery takes a
        // sequence, then a shard (to rebuild a subscriber list).
        let sequences: Vec<(Arc<str>, Arc<Mutex<Sequence>>)> = (self.channels.iter())
            .map(|s| (s.key().clone(), s.value().sequence.clone()))
            .collect();
        let tails: Vec<Gap> = sequences
            .into_iter()
            .filter_map(|(channel, seq)| {
                let next = seq.lock().ok()?.next()?;
                Some(Gap {
                    channel,
                    from: next,
                    to: u64::MAX,
                })
            })
            .collect();
        for gap in tails {
            if self.gaps.send(gap).await.is_err() {
                return;
            }
        }
    }

    /// The next version this instance will release on `channel`.
    pub fn next_version(&self, channel: &str) -> Option<u64> {
        let seq = self.sequence(channel)?;
        let next = seq.lock().ok()?.next();
        next
    }

    /// Adds `outbox` to `channel`; true when it is the channel's first local subscriber.
    pub fn subscribe(&self, channel: &str, outbox: Arc<Outbox>) -> bool {
        let mut subs = self.channels.entry(Arc::from(channel)).or_default();
        let first = subs.by_id.is_empty();
        if subs.by_id.insert(outbox.id(), outbox).is_none() {
            subs.list = None;
        }
        drop(subs);
        if first {
            self.changed.notify_one();
            metrics::gauge!("hub_channels").increment(1.0);
        }
        first
    }

    /// Removes connection `conn_id` from `channel`; true when the channel has no local
    /// subscribers left.
    pub fn unsubscribe(&self, channel: &str, conn_id: u64) -> bool {
        let emptied = match self.channels.get_mut(channel) {
            Some(mut subs) => {
                if subs.by_id.remove(&conn_id).is_some() {
                    subs.list = None;
                }
                subs.by_id.is_empty()
            }
            None => false,
        };
        if emptied
            && self
                .channels
                .remove_if(channel, |_, subs| subs.by_id.is_empty())
                .is_some()
        {
            self.changed.notify_one();
            metrics::gauge!("hub_channels").decrement(1.0);
            return true;
        }
        false
    }

    /// Like `deliver`, except that a subscriber still catching up on `channel` gets `frame`
    /// after its subscribe reply (a `sync.resync` must not overtake the reply it concerns).
    pub fn deliver_after_catch_up(&self, channel: &str, frame: &Utf8Bytes) {
        if let Some(subs) = self.subscribers(channel) {
            for s in subs.iter() {
                s.push_gated(channel, frame.clone());
            }
        }
    }

    /// Pushes `frame` into every local subscriber's queue; returns how many took it.
    pub fn deliver(&self, channel: &str, frame: &Utf8Bytes) -> usize {
        self.deliver_except(channel, frame, None)
    }

    /// Like `deliver`, leaving out connection `except` (a publisher that asked for no echo).
    pub fn deliver_except(&self, channel: &str, frame: &Utf8Bytes, except: Option<u64>) -> usize {
        let Some(subs) = self.subscribers(channel) else {
            return 0;
        };
        let n = subs
            .iter()
            .filter(|s| Some(s.id()) != except && s.push(frame.clone()))
            .count();
        self.delivered.increment(n as u64);
        n
    }

    /// Like `deliver`, for a chat delta: subscribers catching up hold it, and those whose
    /// catch-up already covered `index` drop it.
    pub fn deliver_delta(
        &self,
        channel: &str,
        turn: uuid::Uuid,
        index: u64,
        frame: &Utf8Bytes,
    ) -> usize {
        let Some(subs) = self.subscribers(channel) else {
            return 0;
        };
        let n = subs
            .iter()
            .filter(|s| s.push_delta(channel, turn, index, frame.clone()))
            .count();
        self.delivered.increment(n as u64);
        n
    }

    pub fn subscriber_count(&self, channel: &str) -> usize {
        self.channels.get(channel).map_or(0, |s| s.by_id.len())
    }

    /// The channels that have at least one local subscriber.
    pub fn channel_names(&self) -> Vec<Arc<str>> {
        self.channels.iter().map(|e| e.key().clone()).collect()
    }

    /// Resolves when the channel set may have changed since the last call.
    pub async fn changed(&self) {
        self.changed.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    #[tokio::test]
    async fn slow_subscriber_is_closed_and_others_still_receive() {
        let hub = Hub::new(mpsc::channel(1).0);
        let (fast_tx, mut fast_rx) = mpsc::channel(16);
        let (slow_tx, _slow_rx) = mpsc::channel(2);
        let fast = Arc::new(Outbox::new(1, fast_tx));
        let slow = Arc::new(Outbox::new(2, slow_tx));
        assert!(hub.subscribe("c", fast.clone()));
        assert!(!hub.subscribe("c", slow.clone()));
        for i in 0..5 {
            hub.deliver("c", &Utf8Bytes::from(format!("{i}")));
            assert_eq!(fast_rx.recv().await.unwrap().as_str(), i.to_string());
        }
        assert!(slow.closed_with().is_some(), "slow consumer closed");
        assert!(fast.closed_with().is_none());
        assert!(!hub.unsubscribe("c", 2));
        assert!(hub.unsubscribe("c", 1));
        assert!(hub.channel_names().is_empty());
    }
}
