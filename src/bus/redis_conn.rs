//! One Redis command connection per instance (multiplexed, so shared by every task), dropped on
//! the first transport error and re-opened by the next command. A Redis restart heals on the
//! next use instead of on some library's backoff schedule; every call has a deadline.

use redis::aio::MultiplexedConnection;
use std::time::Duration;

/// Deadline for connecting and for any one command.
pub const OP_TIMEOUT: Duration = Duration::from_secs(2);

/// Owned by `AppState` (behind an `Arc`); lives as long as the server.
pub struct RedisConn {
    client: redis::Client,
    conn: std::sync::Mutex<Option<MultiplexedConnection>>,
}

fn timed_out(what: &'static str) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::IoError, what))
}

impl RedisConn {
    pub fn new(url: &str) -> redis::RedisResult<Self> {
        Ok(Self {
            client: redis::Client::open(url)?,
            conn: std::sync::Mutex::new(None),
        })
    }

    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    async fn get(&self) -> redis::RedisResult<MultiplexedConnection> {
        if let Some(c) = self
            .conn
            .lock()
            .expect("lock is never held across a panic")
            .clone()
        {
            return Ok(c);
        }
        let c = tokio::time::timeout(OP_TIMEOUT, self.client.get_multiplexed_async_connection())
            .await
            .map_err(|_| timed_out("redis connect timed out"))??;
        *self.conn.lock().expect("lock is never held across a panic") = Some(c.clone());
        Ok(c)
    }

    fn settle<T>(
        &self,
        r: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> redis::RedisResult<T> {
        let r = r.unwrap_or_else(|_| Err(timed_out("redis timed out")));
        if r.as_ref().is_err_and(|e| {
            e.is_io_error()
                || e.is_connection_dropped()
                || e.is_timeout()
                || e.is_connection_refusal()
        }) {
            *self.conn.lock().expect("lock is never held across a panic") = None;
        }
        r
    }

    pub async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> redis::RedisResult<T> {
        let mut conn = self.get().await?;
        self.settle(tokio::time::timeout(OP_TIMEOUT, cmd.query_async::<T>(&mut conn)).await)
    }

    pub async fn run_pipe(&self, pipe: &redis::Pipeline) -> redis::RedisResult<()> {
        let mut conn = self.get().await?;
        self.settle(tokio::time::timeout(OP_TIMEOUT, pipe.query_async::<()>(&mut conn)).await)
    }

    /// Connects once, so start-up fails loudly on a wrong URL or a Redis that is not there.
    pub async fn check(&self) -> redis::RedisResult<()> {
        self.run::<String>(&redis::cmd("PING")).await.map(|_| ())
    }
}
