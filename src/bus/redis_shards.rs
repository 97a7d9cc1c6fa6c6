//! The subscribe side of the Redis bus on a cluster. Sharded pub/sub (`SSUBSCRIBE`, Redis 7)
//! delivers a channel's messages only on the shard that owns its slot, so fan-out grows with
//! the shards instead of every message crossing every node. This instance keeps one RESP3
//! connection per master that owns a channel someone here listens to, and follows the hub's
//! channel set as the single-Redis subscriber does. Messages are handed to the hub from the
//! connection's push callback (no queue between). The slot map comes from `CLUSTER SLOTS`;
//! a `MOVED` answer, a connection dropping, or a `sunsubscribe` the server sent by itself (the
//! slot moved) reads it again and subscribes again where the channels now live.

use super::redis::{Inner, OP_TIMEOUT};
use super::BusState;
use redis::{aio::MultiplexedConnection, AsyncConnectionConfig, PushInfo, PushKind, Value};
use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;

/// Shard channels per SSUBSCRIBE pipeline.
const CHUNK: usize = 256;

/// One master's subscriber connection and what it is subscribed to.
struct Node {
    conn: MultiplexedConnection,
    subscribed: HashSet<String>,
    down: Arc<AtomicBool>,
}

/// Which master serves which slots: `(first, last, "host:port")`.
#[derive(Default)]
struct SlotMap(Vec<(u16, u16, String)>);

impl SlotMap {
    fn owner(&self, slot: u16) -> Option<&str> {
        self.0
            .iter()
            .find(|(a, b, _)| (*a..=*b).contains(&slot))
            .map(|(_, _, n)| n.as_str())
    }
}

/// What the push callbacks tell the loop: a connection went away, or the server dropped a
/// subscription by itself.
#[derive(Default)]
struct Trouble {
    notify: Notify,
    unsubscribed: Mutex<Vec<String>>,
}

struct Shards {
    inner: Arc<Inner>,
    map: Option<SlotMap>,
    nodes: HashMap<String, Node>,
    trouble: Arc<Trouble>,
    /// A subscription was lost since the last sync (a connection, a moved slot): messages
    /// published meanwhile never came, and the change log is asked for them.
    lost: bool,
}

pub(super) async fn subscriber(
    inner: Arc<Inner>,
    mut watch_rx: mpsc::Receiver<oneshot::Sender<()>>,
    shutdown: CancellationToken,
) {
    let mut s = Shards {
        inner,
        map: None,
        nodes: HashMap::new(),
        trouble: Arc::default(),
        lost: false,
    };
    let mut connected = false;
    let mut backoff = Duration::from_millis(100);
    let mut resync = tokio::time::interval(Duration::from_secs(5));
    loop {
        let ok = s.sync().await;
        s.inner.set_state(if ok {
            BusState::Connected
        } else {
            BusState::Disconnected
        });
        if ok && (!connected || s.lost) {
            metrics::counter!("bus_connects_total").increment(1);
            // Whatever was published while a subscription was away is in the change log.
            s.lost = false;
            let hub = s.inner.hub.clone();
            tokio::spawn(async move { hub.report_tails().await });
        }
        connected = ok;
        if ok {
            backoff = Duration::from_millis(100);
        } else {
            // Waiters must not hang while a shard is away.
            while let Ok(w) = watch_rx.try_recv() {
                let _ = w.send(());
            }
        }
        let retry = async {
            if ok {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(backoff).await;
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = s.inner.hub.changed() => {}
            w = watch_rx.recv() => {
                let ok = s.sync().await;
                if let Some(w) = w { let _ = w.send(()); }
                if !ok { s.inner.set_state(BusState::Disconnected); }
            }
            _ = s.trouble.notify.notified() => {}
            _ = resync.tick() => {}
            _ = retry => backoff = (backoff * 2).min(Duration::from_secs(5)),
        }
    }
}

impl Shards {
    /// Makes every wanted channel subscribed on its owner; false if some could not be.
    async fn sync(&mut self) -> bool {
        let before = self.nodes.len();
        self.nodes.retain(|addr, n| {
            let up = !n.down.load(Ordering::Relaxed);
            if !up {
                tracing::warn!(node = %addr, "redis shard subscriber connection lost");
            }
            up
        });
        self.lost |= self.nodes.len() < before;
        let dropped = std::mem::take(
            &mut *self
                .trouble
                .unsubscribed
                .lock()
                .expect("lock is never held across a panic"),
        );
        for ch in dropped {
            // Ours to drop: already forgotten. Still held: the server moved its slot.
            for n in self.nodes.values_mut() {
                if n.subscribed.remove(&ch) {
                    self.map = None;
                    self.lost = true;
                }
            }
        }
        if self.map.is_none() {
            match self.slot_map().await {
                Ok(m) => self.map = Some(m),
                Err(e) => {
                    tracing::warn!(error = %e, "redis cluster slots unreadable");
                    return false;
                }
            }
        }
        let mut want: HashMap<String, Vec<String>> = HashMap::new();
        let names = self.inner.hub.channel_names();
        let keys = (names.iter())
            .map(|c| self.inner.channel_key(c))
            .chain([self.inner.control.clone()]);
        for key in keys {
            let map = self.map.as_ref().expect("read above");
            let Some(owner) = map.owner(super::slot::slot(key.as_bytes())) else {
                self.map = None; // a slot nobody serves: the map is old (or the cluster broken)
                return false;
            };
            want.entry(owner.to_owned()).or_default().push(key);
        }
        self.nodes.retain(|addr, _| want.contains_key(addr));
        let mut ok = true;
        for (addr, keys) in want {
            if !self.nodes.contains_key(&addr) {
                match self.connect(&addr).await {
                    Ok(n) => {
                        self.nodes.insert(addr.clone(), n);
                    }
                    Err(e) => {
                        tracing::warn!(node = %addr, error = %e, "redis shard unreachable");
                        ok = false;
                        continue;
                    }
                }
            }
            let node = self.nodes.get_mut(&addr).expect("inserted above");
            if let Err(e) = follow(node, keys).await {
                self.lost = true;
                if matches!(e.kind(), redis::ErrorKind::Moved | redis::ErrorKind::Ask) {
                    self.map = None;
                } else {
                    self.nodes.remove(&addr);
                }
                tracing::warn!(node = %addr, error = %e, "redis shard subscription failed");
                ok = false;
            }
        }
        ok
    }

    /// Opens a RESP3 connection to `addr` whose pushes go straight to the hub.
    async fn connect(&self, addr: &str) -> redis::RedisResult<Node> {
        let client = redis::Client::open(node_url(&self.inner.conn.seeds()[0], addr)?)?;
        let down = Arc::new(AtomicBool::new(false));
        let (inner, trouble, flag) = (self.inner.clone(), self.trouble.clone(), down.clone());
        let on_push = move |p: PushInfo| -> Result<(), std::convert::Infallible> {
            match (p.kind, p.data.as_slice()) {
                (PushKind::SMessage, [Value::BulkString(name), Value::BulkString(payload)]) => {
                    inner.on_message(name, payload);
                }
                (PushKind::SUnsubscribe, [Value::BulkString(name), ..]) => {
                    if let Ok(name) = String::from_utf8(name.clone()) {
                        (trouble.unsubscribed.lock())
                            .expect("lock is never held across a panic")
                            .push(name);
                        trouble.notify.notify_one();
                    }
                }
                (PushKind::Disconnection, _) => {
                    flag.store(true, Ordering::Relaxed);
                    trouble.notify.notify_one();
                }
                _ => {}
            }
            Ok(())
        };
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(OP_TIMEOUT)
            .set_response_timeout(OP_TIMEOUT)
            .set_push_sender(on_push);
        let conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        Ok(Node {
            conn,
            subscribed: HashSet::new(),
            down,
        })
    }

    async fn slot_map(&self) -> redis::RedisResult<SlotMap> {
        let raw: Value = self
            .inner
            .conn
            .run(redis::cmd("CLUSTER").arg("SLOTS"))
            .await?;
        parse_slots(&raw).ok_or_else(|| {
            redis::RedisError::from((redis::ErrorKind::ParseError, "unexpected CLUSTER SLOTS"))
        })
    }
}

/// Subscribes `node` to exactly `keys`: one channel per command (in RESP3 each channel's
/// confirmation is one reply), pipelined.
async fn follow(node: &mut Node, keys: Vec<String>) -> redis::RedisResult<()> {
    let want: HashSet<String> = keys.into_iter().collect();
    let add: Vec<&String> = want.difference(&node.subscribed).collect();
    let drop: Vec<String> = node.subscribed.difference(&want).cloned().collect();
    for (verb, names) in [("SSUBSCRIBE", add), ("SUNSUBSCRIBE", drop.iter().collect())] {
        for chunk in names.chunks(CHUNK) {
            let mut pipe = redis::pipe();
            for name in chunk {
                pipe.cmd(verb).arg(*name).ignore();
            }
            tokio::time::timeout(OP_TIMEOUT, pipe.query_async::<()>(&mut node.conn))
                .await
                .map_err(|_| redis::RedisError::from((redis::ErrorKind::IoError, "timed out")))??;
        }
    }
    node.subscribed = want;
    Ok(())
}

/// A node's URL: the first seed's scheme, credentials and options, at `addr`, in RESP3 (the
/// protocol that carries pushes on a multiplexed connection).
fn node_url(seed: &str, addr: &str) -> redis::RedisResult<String> {
    let bad = |_| redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "bad node URL"));
    let mut url = url::Url::parse(seed).map_err(bad)?;
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| {
        redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "bad node address"))
    })?;
    url.set_host(Some(host)).map_err(bad)?;
    let port: u16 = port.parse().map_err(|_| {
        redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "bad port"))
    })?;
    url.set_port(Some(port)).map_err(|()| {
        redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "bad port"))
    })?;
    url.set_query(Some("protocol=3"));
    Ok(url.to_string())
}

/// `CLUSTER SLOTS`: `[[first, last, [host, port, id, ...], replicas...], ...]`.
fn parse_slots(v: &Value) -> Option<SlotMap> {
    let Value::Array(ranges) = v else { return None };
    let mut out = Vec::new();
    for r in ranges {
        let Value::Array(r) = r else { return None };
        let (Some(Value::Int(a)), Some(Value::Int(b)), Some(Value::Array(master))) =
            (r.first(), r.get(1), r.get(2))
        else {
            return None;
        };
        let host = match master.first() {
            Some(Value::BulkString(h)) if !h.is_empty() => String::from_utf8(h.clone()).ok()?,
            Some(Value::SimpleString(h)) if !h.is_empty() => h.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        let Some(Value::Int(port)) = master.get(1) else {
            return None;
        };
        out.push((
            u16::try_from(*a).ok()?,
            u16::try_from(*b).ok()?,
            format!("{host}:{port}"),
        ));
    }
    Some(SlotMap(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn reads_cluster_slots_and_finds_owners() {
        let raw = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                Value::Array(vec![bulk("127.0.0.1"), Value::Int(7000), bulk("id1")]),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(16383),
                Value::Array(vec![bulk(""), Value::Int(7001), bulk("id2")]),
                Value::Array(vec![bulk("127.0.0.1"), Value::Int(7004), bulk("id3")]),
            ]),
        ]);
        let m = parse_slots(&raw).expect("parses");
        assert_eq!(m.owner(0), Some("127.0.0.1:7000"));
        assert_eq!(m.owner(5461), Some("127.0.0.1:7001"));
        assert_eq!(m.owner(16383), Some("127.0.0.1:7001"));
        assert!(parse_slots(&bulk("nope")).is_none());
    }

    #[test]
    fn node_urls_keep_the_seeds_credentials() {
        assert_eq!(
            node_url("redis://:pw@10.0.0.1:7000/", "10.0.0.2:7001").unwrap(),
            "redis://:pw@10.0.0.2:7001/?protocol=3"
        );
    }
}
