//! One Redis command connection per instance (multiplexed, so shared by every task), dropped on
//! the first transport error and re-opened by the next command. A Redis restart heals on the
//! next use instead of on some library's backoff schedule; every call has a deadline.
//!
//! The same calls work on one Redis and on a Redis Cluster (`Target::Cluster`): there the
//! cluster client routes each command by its key's slot, and a pipeline whose commands live on
//! several slots runs one command at a time (a transaction must stay on one slot: its keys
//! share a hash tag).

use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use std::time::Duration;

/// Deadline for connecting and for any one command.
pub const OP_TIMEOUT: Duration = Duration::from_secs(2);

/// Where Redis is.
#[derive(Debug, Clone)]
pub enum Target {
    Single(String),
    /// Seed nodes; the rest of the cluster is discovered from them.
    Cluster(Vec<String>),
}

enum Client {
    Single(redis::Client),
    Cluster(redis::cluster::ClusterClient),
}

#[derive(Clone)]
enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// Owned by `AppState` (behind an `Arc`); lives as long as the server.
pub struct RedisConn {
    client: Client,
    seeds: Vec<String>,
    conn: std::sync::Mutex<Option<Conn>>,
}

fn timed_out(what: &'static str) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::IoError, what))
}

impl RedisConn {
    pub fn new(target: &Target) -> redis::RedisResult<Self> {
        let (client, seeds) = match target {
            Target::Single(url) => (
                Client::Single(redis::Client::open(url.as_str())?),
                vec![url.clone()],
            ),
            Target::Cluster(seeds) => (
                Client::Cluster(
                    redis::cluster::ClusterClient::builder(seeds.clone())
                        .connection_timeout(OP_TIMEOUT)
                        .response_timeout(OP_TIMEOUT)
                        .retries(2)
                        .min_retry_wait(50)
                        .max_retry_wait(500)
                        .build()?,
                ),
                seeds.clone(),
            ),
        };
        Ok(Self {
            client,
            seeds,
            conn: std::sync::Mutex::new(None),
        })
    }

    /// The client of a single Redis (its pub/sub connection is opened from it).
    pub fn single(&self) -> Option<&redis::Client> {
        match &self.client {
            Client::Single(c) => Some(c),
            Client::Cluster(_) => None,
        }
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self.client, Client::Cluster(_))
    }

    /// The URLs configured (one server, or a cluster's seeds).
    pub fn seeds(&self) -> &[String] {
        &self.seeds
    }

    async fn get(&self) -> redis::RedisResult<Conn> {
        if let Some(c) = self
            .conn
            .lock()
            .expect("lock is never held across a panic")
            .clone()
        {
            return Ok(c);
        }
        let c = match &self.client {
            Client::Single(client) => Conn::Single(
                tokio::time::timeout(OP_TIMEOUT, client.get_multiplexed_async_connection())
                    .await
                    .map_err(|_| timed_out("redis connect timed out"))??,
            ),
            Client::Cluster(client) => Conn::Cluster(
                tokio::time::timeout(OP_TIMEOUT, client.get_async_connection())
                    .await
                    .map_err(|_| timed_out("redis cluster connect timed out"))??,
            ),
        };
        *self.conn.lock().expect("lock is never held across a panic") = Some(c.clone());
        Ok(c)
    }

    fn settle<T>(
        &self,
        r: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> redis::RedisResult<T> {
        let r = r.unwrap_or_else(|_| Err(timed_out("redis timed out")));
        // The cluster client reconnects to nodes by itself; a single connection is re-opened.
        if !self.is_cluster()
            && r.as_ref().is_err_and(|e| {
                e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_timeout()
                    || e.is_connection_refusal()
            })
        {
            *self.conn.lock().expect("lock is never held across a panic") = None;
        }
        r
    }

    pub async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> redis::RedisResult<T> {
        let r = match self.get().await? {
            Conn::Single(mut c) => {
                tokio::time::timeout(OP_TIMEOUT, cmd.query_async::<T>(&mut c)).await
            }
            Conn::Cluster(mut c) => {
                tokio::time::timeout(OP_TIMEOUT, cmd.query_async::<T>(&mut c)).await
            }
        };
        self.settle(r)
    }

    pub async fn run_pipe(&self, pipe: &redis::Pipeline) -> redis::RedisResult<()> {
        match self.get().await? {
            Conn::Single(mut c) => {
                let r = tokio::time::timeout(OP_TIMEOUT, pipe.query_async::<()>(&mut c)).await;
                self.settle(r)
            }
            Conn::Cluster(mut c) if pipe.is_transaction() || one_slot(pipe) => {
                let r = tokio::time::timeout(OP_TIMEOUT, pipe.query_async::<()>(&mut c)).await;
                self.settle(r)
            }
            Conn::Cluster(_) => {
                for cmd in pipe.cmd_iter() {
                    self.run::<redis::Value>(cmd).await?;
                }
                Ok(())
            }
        }
    }

    /// Connects once, so start-up fails loudly on a wrong URL or a Redis that is not there.
    pub async fn check(&self) -> redis::RedisResult<()> {
        self.run::<String>(&redis::cmd("PING")).await.map(|_| ())
    }
}

/// Whether every command of `pipe` names a key on the same slot.
fn one_slot(pipe: &redis::Pipeline) -> bool {
    let mut slots = pipe.cmd_iter().map(|c| match c.args_iter().nth(1) {
        Some(redis::Arg::Simple(key)) => Some(super::slot::slot(key)),
        _ => None,
    });
    let Some(first) = slots.next() else {
        return true;
    };
    first.is_some() && slots.all(|s| s == first)
}
