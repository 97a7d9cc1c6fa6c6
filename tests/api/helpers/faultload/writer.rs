//! A sync client as a real app runs one: its own client id, contiguous mutation ids, a queue of
//! unacknowledged mutations resent in order after every reconnect (alternating instances), and a
//! replica built only from the wire (snapshot, catch-up, live `sync.change`). Everything the
//! server promises and this client could notice breaking is written down as an anomaly.

use super::link::{Down, Link};
use crate::helpers::replica::doc_from_snapshot;
use serde_json::{json, Value};
use std::{
    collections::{BTreeMap, VecDeque},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};
use switchyard::sync::{
    merge::{Doc, Limits},
    ops::Mutation,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What the orchestrator reads while the client runs.
#[derive(Default)]
pub struct Status {
    pub version: AtomicU64,
    pub queued: AtomicU64,
    pub acked: AtomicU64,
    pub connected: AtomicBool,
}

/// The orchestrator's two signals: stop making new mutations (drain the queue), then stop.
#[derive(Clone, Default)]
pub struct Phases {
    pub stop_pushing: CancellationToken,
    pub finish: CancellationToken,
}

pub struct Writer {
    pub client_id: String,
    pub session_id: String,
    pub token: String,
    /// Instances (or a balancer) to connect to, one after the other on each reconnect.
    pub targets: Vec<String>,
    pub pace: Duration,
    pub status: Arc<Status>,
}

/// What a writer saw, for the invariants.
#[derive(Debug)]
pub struct Outcome {
    pub client_id: String,
    pub session_id: String,
    /// Mutation id -> the version it was acknowledged at.
    pub acked: BTreeMap<u64, u64>,
    pub replica: Doc,
    pub version: u64,
    pub anomalies: Vec<String>,
    /// Why pushes or links failed, counted (codes of `error` replies, link ends).
    pub failures: BTreeMap<String, u64>,
    pub reconnects: u64,
    /// Chat deltas whose index skipped ahead (deltas published while Redis was away never
    /// reach other instances; a client notices by the index and refetches the message).
    pub delta_gaps: u64,
}

struct State {
    replica: Option<Doc>,
    version: u64,
    queue: VecDeque<(u64, Value)>,
    next_mid: u64,
    clock: (u64, u64),
    /// The turn being streamed and the last delta index seen of it.
    deltas: Option<(String, u64)>,
    out: Outcome,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

fn jitter(d: Duration) -> Duration {
    d.mul_f64(0.5 + rand::random::<f64>())
}

impl State {
    fn tick(&mut self, server_hlc: Option<&str>) {
        let seen = server_hlc
            .and_then(|h| h.split(':').next())
            .and_then(|ms| ms.parse::<u64>().ok())
            .unwrap_or(0);
        self.clock.0 = self.clock.0.max(seen);
    }

    fn hlc(&mut self) -> String {
        let now = now_ms();
        if now > self.clock.0 {
            self.clock = (now, 0);
        } else {
            self.clock.1 += 1;
        }
        format!("{}:{}", self.clock.0, self.clock.1)
    }

    fn new_mutation(&mut self, cid: &str) {
        let mid = self.next_mid;
        self.next_mid += 1;
        let hlc = self.hlc();
        self.queue.push_back((
            mid,
            json!({"client_id": cid, "mutation_id": mid, "hlc": hlc, "ops": [
                {"op": "append_message", "message_id": format!("{cid}-{mid}"), "role": "user",
                 "content": format!("{cid} says {mid}"), "metadata": {}},
                {"op": "set_context", "key": cid, "value": mid}]}),
        ));
    }

    fn anomaly(&mut self, what: String) {
        eprintln!("[{}] anomaly: {what}", self.out.client_id);
        self.out.anomalies.push(what);
    }

    fn failed(&mut self, why: impl Into<String>) {
        *self.out.failures.entry(why.into()).or_default() += 1;
    }

    /// One change, live or from a catch-up: exactly the next version, applied as a replica does.
    fn apply(&mut self, change: &Value, live: bool) -> bool {
        let v = change["version"].as_u64().unwrap_or(0);
        if v != self.version + 1 {
            let kind = if v <= self.version {
                "duplicate"
            } else {
                "gap"
            };
            let from = if live { "live" } else { "catch-up" };
            self.anomaly(format!("{from} {kind}: version {v} after {}", self.version));
            return v <= self.version;
        }
        let m: Mutation = match serde_json::from_value(change.clone()) {
            Ok(m) => m,
            Err(e) => {
                self.anomaly(format!("unreadable change {v}: {e}"));
                return false;
            }
        };
        let doc = self.replica.as_mut().expect("subscribed first");
        if let Err(e) = doc.apply(&m, v, &Limits::NONE) {
            self.anomaly(format!("replica refused change {v}: {e:?}"));
        }
        self.version = v;
        true
    }

    /// A subscribe reply: the changes since our version, or a snapshot to start from.
    fn absorb(&mut self, r: &Value) {
        if let Some(changes) = r["changes"].as_array() {
            for c in changes {
                self.apply(c, false);
            }
            let v = r["version"].as_u64().unwrap_or(0);
            if v != self.version {
                self.anomaly(format!("catch-up ended at {} but says {v}", self.version));
            }
            return;
        }
        let snap = &r["snapshot"];
        let reason = r["reason"].as_str().unwrap_or("");
        if self.replica.is_some() && reason != "compacted" && reason != "too_far_behind" {
            // `ahead` means the server lost versions this client saw acknowledged.
            self.anomaly(format!("snapshot instead of catch-up: {reason}"));
        }
        self.replica = Some(doc_from_snapshot(snap));
        self.version = snap["version"].as_u64().unwrap_or(0);
    }

    /// A `chat.delta`: indexes rise by one; a jump is a gap (counted), going back a duplicate.
    fn delta(&mut self, data: &Value) {
        let turn = data["turn_id"].as_str().unwrap_or("").to_owned();
        let index = data["index"].as_u64().unwrap_or(0);
        let last = match &self.deltas {
            Some((t, i)) if *t == turn => *i,
            _ => 0,
        };
        if index <= last {
            self.anomaly(format!("delta {index} of turn {turn} again after {last}"));
        } else if index > last + 1 {
            self.out.delta_gaps += 1;
        }
        self.deltas = Some((turn, index.max(last)));
    }

    fn acknowledged(&mut self, mids: &[u64], reply: &Value) {
        let results = reply["result"]["results"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if results.len() != mids.len() {
            self.anomaly(format!(
                "{} results for {} mutations",
                results.len(),
                mids.len()
            ));
        }
        self.tick(reply["result"]["server_hlc"].as_str());
        for (mid, r) in mids.iter().zip(results) {
            if r["status"] != "applied" {
                self.anomaly(format!("mutation {mid}: {r}"));
                continue;
            }
            let v = r["version"].as_u64().unwrap_or(0);
            if let Some(before) = self.out.acked.insert(*mid, v) {
                if before != v {
                    self.anomaly(format!("mutation {mid} acked at {before}, then at {v}"));
                }
            }
            if self.queue.front().is_some_and(|(m, _)| m == mid) {
                self.queue.pop_front();
            }
        }
    }
}

impl Writer {
    pub async fn run(self, phases: Phases) -> Outcome {
        let mut st = State {
            replica: None,
            version: 0,
            queue: VecDeque::new(),
            next_mid: 1,
            clock: (0, 0),
            deltas: None,
            out: Outcome {
                client_id: self.client_id.clone(),
                session_id: self.session_id.clone(),
                acked: BTreeMap::new(),
                replica: Doc::default(),
                version: 0,
                anomalies: Vec::new(),
                failures: BTreeMap::new(),
                reconnects: 0,
                delta_gaps: 0,
            },
        };
        let mut attempt = 0usize;
        while !(phases.finish.is_cancelled() && st.queue.is_empty()) {
            let base = &self.targets[attempt % self.targets.len()];
            attempt += 1;
            let down = match Link::open(base, &self.token).await {
                Ok(link) => {
                    if attempt > 1 {
                        st.out.reconnects += 1;
                    }
                    match self.serve(link, &mut st, &phases).await {
                        Ok(()) => break,
                        Err(d) => d,
                    }
                }
                Err(d) => d,
            };
            self.status.connected.store(false, Ordering::Relaxed);
            st.failed(match down {
                Down::Closed(code) => format!("closed {code}"),
                Down::Dropped(_) => "dropped".into(),
                Down::Refused(_) => "refused".into(),
            });
            tokio::time::sleep(jitter(Duration::from_millis(100))).await;
        }
        st.out.version = st.version;
        st.out.replica = st.replica.unwrap_or_default();
        st.out
    }

    fn publish_status(&self, st: &State) {
        self.status.version.store(st.version, Ordering::Relaxed);
        self.status
            .queued
            .store(st.queue.len() as u64, Ordering::Relaxed);
        self.status
            .acked
            .store(st.out.acked.len() as u64, Ordering::Relaxed);
    }

    /// One connection's life: subscribe (catching up), resend the queue, push at the pace,
    /// follow the channel. `Ok` once finished with nothing queued.
    async fn serve(&self, mut link: Link, st: &mut State, phases: &Phases) -> Result<(), Down> {
        let channel = format!("session:{}", self.session_id);
        let mut sub = json!({"channel": channel});
        if st.replica.is_some() {
            sub["since"] = json!(st.version);
        }
        let id = link.request("subscribe", sub).await?;
        let r = link.reply(&id, Duration::from_secs(15), |_| {}).await?;
        if r["type"] != "ok" {
            st.failed(format!("subscribe {}", r["code"].as_str().unwrap_or("?")));
            tokio::time::sleep(jitter(Duration::from_millis(300))).await;
            return Err(Down::Dropped("subscribe refused".into()));
        }
        st.absorb(&r["result"]);
        // Joining mid-turn: the reply carries the turn up to its index.
        st.deltas = r["result"]["turn"]["turn_id"].as_str().map(|t| {
            let index = r["result"]["turn"]["index"].as_u64().unwrap_or(0);
            (t.to_owned(), index)
        });
        self.status.connected.store(true, Ordering::Relaxed);
        self.publish_status(st);

        let mut inflight: Option<(String, Vec<u64>, Instant)> = None;
        let mut next_push = Instant::now();
        loop {
            let now = Instant::now();
            if inflight.is_none() && now >= next_push {
                if st.queue.is_empty() && !phases.stop_pushing.is_cancelled() {
                    st.new_mutation(&self.client_id);
                }
                if !st.queue.is_empty() {
                    let batch: Vec<&(u64, Value)> = st.queue.iter().take(100).collect();
                    let mids = batch.iter().map(|(m, _)| *m).collect();
                    let muts: Vec<Value> = batch.iter().map(|(_, v)| v.clone()).collect();
                    let id = link
                        .request(
                            "session.push",
                            json!({"session_id": self.session_id, "mutations": muts}),
                        )
                        .await?;
                    inflight = Some((id, mids, now + Duration::from_secs(15)));
                }
            }
            if phases.finish.is_cancelled() && st.queue.is_empty() && inflight.is_none() {
                link.close().await;
                return Ok(());
            }
            let wake = match &inflight {
                Some((_, _, deadline)) => *deadline,
                None => next_push.max(now + Duration::from_millis(5)),
            }
            .min(now + Duration::from_millis(200));
            let frame = tokio::select! {
                f = link.next() => f?,
                _ = tokio::time::sleep_until(wake) => {
                    if inflight.as_ref().is_some_and(|(_, _, d)| Instant::now() >= *d) {
                        st.failed("push timed out");
                        return Err(Down::Dropped("push timed out".into()));
                    }
                    continue;
                }
            };
            let reply_to = inflight.as_ref().map(|(id, ..)| id.clone());
            if reply_to.is_some() && frame["id"] == json!(reply_to) {
                let (_, mids, _) = inflight.take().expect("in flight");
                if frame["type"] == "ok" {
                    st.acknowledged(&mids, &frame);
                    next_push = Instant::now() + jitter(self.pace);
                } else {
                    st.failed(format!("push {}", frame["code"].as_str().unwrap_or("?")));
                    next_push = Instant::now() + jitter(Duration::from_millis(300));
                }
                self.publish_status(st);
                continue;
            }
            if frame["type"] == "event" && frame["channel"] == channel.as_str() {
                match frame["event"].as_str() {
                    Some("sync.change") => {
                        if !st.apply(&frame["data"], true) {
                            return Err(Down::Dropped("gap: resubscribing".into()));
                        }
                        self.publish_status(st);
                    }
                    Some("chat.delta") => st.delta(&frame["data"]),
                    Some("sync.resync") => {
                        st.failed("resync");
                        return Err(Down::Dropped("asked to resync".into()));
                    }
                    Some("session.revoked") => {
                        st.anomaly("evicted from the session".into());
                        return Err(Down::Dropped("evicted".into()));
                    }
                    _ => {}
                }
            }
        }
    }
}
