//! Coalesced reads: callers asking for the same key while a read of it is in flight wait for
//! the next read, which answers all of them at once, so a storm of 10k subscribes to one
//! session costs a handful of queries instead of 10k (and never exhausts the pool).
//!
//! A read answers only callers that asked before it started, so nobody gets an answer older
//! than their own request: what makes this safe for access checks (a revoke committed before
//! a call is always seen by it) and for catch-up (a caller subscribed to live changes before
//! asking gets a state at least that new).

use futures::future::BoxFuture;
use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, Mutex},
};
use tokio::sync::oneshot;

type Read<K, R, V> = dyn Fn(K, Vec<R>) -> BoxFuture<'static, Vec<V>> + Send + Sync;
/// The requests gathered for a key's next read, each with where its answer goes.
type Waiting<R, V> = Vec<(R, oneshot::Sender<V>)>;

/// `K`: what is read (a session); `R`: what each caller asks of it (a user, or nothing);
/// `V`: one answer per request, in order.
pub struct Coalesce<K, R, V> {
    inner: Arc<Inner<K, R, V>>,
}

struct Inner<K, R, V> {
    /// Present while a reader runs for the key; the requests wait for its next read.
    waiting: Mutex<HashMap<K, Waiting<R, V>>>,
    read: Box<Read<K, R, V>>,
}

impl<K, R, V> Coalesce<K, R, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    R: Send + 'static,
    V: Send + 'static,
{
    /// `read` gets the key and every request gathered for one read, and answers each in order.
    pub fn new(
        read: impl Fn(K, Vec<R>) -> BoxFuture<'static, Vec<V>> + Send + Sync + 'static,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                waiting: Mutex::default(),
                read: Box::new(read),
            }),
        }
    }

    /// The answer to `request` from a read of `key` that starts after this call; `None` if the
    /// read failed to answer (it panicked).
    pub async fn get(&self, key: K, request: R) -> Option<V> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut waiting = self.inner.waiting.lock().unwrap_or_else(|p| p.into_inner());
            match waiting.get_mut(&key) {
                Some(list) => {
                    list.push((request, tx));
                    false
                }
                None => {
                    waiting.insert(key.clone(), vec![(request, tx)]);
                    true
                }
            }
        };
        if start {
            tokio::spawn(reader(self.inner.clone(), key));
        }
        rx.await.ok()
    }
}

impl<K, V> Coalesce<K, (), V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + 'static,
{
    /// A read that asks nothing per caller: everyone gathered for it gets the same answer.
    pub fn same_for_all<F>(read: impl Fn(K) -> F + Send + Sync + 'static) -> Self
    where
        F: std::future::Future<Output = V> + Send + 'static,
    {
        Self::new(move |key, asks: Vec<()>| {
            let answer = read(key);
            Box::pin(async move { vec![answer.await; asks.len()] })
        })
    }
}

/// Reads for `key` until nobody waits; then removes the key, so the next caller starts anew.
async fn reader<K, R, V>(inner: Arc<Inner<K, R, V>>, key: K)
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    R: Send + 'static,
    V: Send + 'static,
{
    // If a read panics, dropping the key drops the waiters' senders: they get `None`, not a
    // hang, and the next caller starts a fresh reader.
    let _guard = Forget {
        inner: &inner,
        key: &key,
    };
    loop {
        let batch = {
            let mut waiting = inner.waiting.lock().unwrap_or_else(|p| p.into_inner());
            let Some(list) = waiting.get_mut(&key) else {
                return;
            };
            if list.is_empty() {
                waiting.remove(&key);
                return;
            }
            std::mem::take(list)
        };
        let (requests, answer_to): (Vec<R>, Vec<_>) = batch.into_iter().unzip();
        let answers = (inner.read)(key.clone(), requests).await;
        for (tx, v) in answer_to.into_iter().zip(answers) {
            let _ = tx.send(v);
        }
    }
}

struct Forget<'a, K: Hash + Eq, R, V> {
    inner: &'a Inner<K, R, V>,
    key: &'a K,
}

impl<K: Hash + Eq, R, V> Drop for Forget<'_, K, R, V> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut waiting = self.inner.waiting.lock().unwrap_or_else(|p| p.into_inner());
            waiting.remove(self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn callers_during_a_read_share_the_next_one_and_each_gets_its_answer() {
        let reads = Arc::new(AtomicUsize::new(0));
        let counted = reads.clone();
        let c = Arc::new(Coalesce::new(move |key: u32, reqs: Vec<u32>| {
            let counted = counted.clone();
            Box::pin(async move {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                reqs.into_iter().map(|r| key * 1000 + r).collect()
            }) as BoxFuture<'static, Vec<u32>>
        }));
        let calls: Vec<_> = (0..100u32)
            .map(|r| {
                let c = c.clone();
                tokio::spawn(async move { c.get(7, r).await })
            })
            .collect();
        for (r, call) in calls.into_iter().enumerate() {
            assert_eq!(call.await.unwrap(), Some(7000 + r as u32));
        }
        // The first caller's read, then one read for everyone who came while it ran.
        assert!(reads.load(Ordering::SeqCst) <= 2, "{reads:?} reads");
        // Nothing left behind: a later caller starts a new read.
        assert_eq!(c.get(7, 1).await, Some(7001));
        assert!(c.inner.waiting.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_read_that_panics_answers_none_and_the_key_recovers() {
        let c = Coalesce::new(|_key: u8, reqs: Vec<bool>| {
            Box::pin(async move {
                assert!(!reqs[0], "asked to fail");
                reqs.into_iter().map(|_| 1u8).collect()
            }) as BoxFuture<'static, Vec<u8>>
        });
        assert_eq!(c.get(1, true).await, None);
        assert_eq!(c.get(1, false).await, Some(1));
    }
}
