//! Load for fault tests: a deployment of real instances (processes, so they can be killed),
//! writers pushing mutations with retries across instances, a user running chat turns, a
//! publisher heard on another instance; then, after the fault, the invariants: every
//! acknowledged mutation present exactly once, every replica equal to the server's state,
//! versions contiguous for every client, no client stuck.

pub mod driver;
pub use report::Report;
pub mod link;
mod report;
mod setup;
pub use setup::{account, server_snapshot, shared_session, Account};
pub mod writer;

use super::procs::{Instance, PgProc, RedisProc};
use driver::{Driver, Echo, Heard, Turns};
use std::{path::PathBuf, sync::atomic::Ordering, sync::Arc, time::Duration};
use tokio::{task::JoinHandle, time::Instant};
use writer::{Outcome, Phases, Status, Writer};

/// Where the deployment keeps its data, and its dependencies.
pub struct Deployment {
    pub dir: tempfile::TempDir,
    pub instances: Vec<Instance>,
    pub redis: Option<RedisProc>,
    pub pg: Option<PgProc>,
    pub database_url: String,
    pub redis_url: String,
    key_file: PathBuf,
    prefix: String,
}

/// Which dependencies the deployment gets to itself (to restart them) rather than sharing the
/// suite's (`TEST_DATABASE_URL`, `TEST_REDIS_URL`).
#[derive(Default, Clone, Copy)]
pub struct Own {
    pub redis: bool,
    pub postgres: bool,
}

impl Deployment {
    /// `n` instances sharing one database and one Redis.
    pub async fn start(n: usize, own: Own, extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let key_file = dir.path().join("key.pem");
        switchyard::auth::jwt::write_new_key(&key_file).expect("keygen");
        let redis = if own.redis {
            Some(RedisProc::start().await)
        } else {
            None
        };
        let redis_url = match &redis {
            Some(r) => r.url(),
            None => super::redis_url().expect("TEST_REDIS_URL"),
        };
        let pg = if own.postgres {
            Some(PgProc::start().await)
        } else {
            None
        };
        let database_url = match &pg {
            Some(p) => p.create_database("faults").await,
            None => super::fresh_pg_database(&super::pg_url().expect("TEST_DATABASE_URL")).await,
        };
        let mut d = Self {
            dir,
            instances: Vec::new(),
            redis,
            pg,
            database_url,
            redis_url,
            key_file,
            prefix: format!("f{}:", uuid::Uuid::new_v4().simple()),
        };
        // All at once, as an orchestrator starts them: each runs the migrations on the new
        // database, one after another behind the migration lock (a concurrent index build
        // once deadlocked there).
        let starts = (0..n).map(|i| {
            let name = format!("node{i}");
            let env = d.env(&name, extra);
            let dir = d.dir.path().to_owned();
            async move { Instance::start(&name, env, &dir).await }
        });
        d.instances = futures::future::join_all(starts).await;
        d
    }

    fn env(&self, name: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let data = self.dir.path().join(name);
        let mut env: Vec<(String, String)> = [
            ("SWITCHYARD_DATABASE_URL", self.database_url.as_str()),
            ("SWITCHYARD_REDIS_URL", self.redis_url.as_str()),
            ("SWITCHYARD_REDIS_KEY_PREFIX", self.prefix.as_str()),
            (
                "SWITCHYARD_AUTH_KEY_FILES",
                &self.key_file.to_string_lossy(),
            ),
            ("SWITCHYARD_SERVER_DATA_DIR", &data.to_string_lossy()),
            ("SWITCHYARD_AUTH_ARGON2_MEMORY_KIB", "4096"),
            ("SWITCHYARD_AUTH_ARGON2_ITERATIONS", "1"),
            ("SWITCHYARD_RATELIMIT_AUTH_REQUESTS", "100000"),
            ("SWITCHYARD_WS_MAX_CONNECTIONS_PER_USER", "200"),
            ("SWITCHYARD_LLM_ECHO_CHUNK_DELAY_MS", "60"),
            ("SWITCHYARD_LLM_REQUESTS_PER_MINUTE", "100000"),
            ("SWITCHYARD_LLM_TOKENS_PER_MINUTE", "100000000"),
            ("SWITCHYARD_SERVER_SHUTDOWN_GRACE_SECS", "8"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        // An empty value removes the variable.
        for (k, v) in extra {
            env.retain(|(key, _)| key != k);
            if !v.is_empty() {
                env.push((k.to_string(), v.to_string()));
            }
        }
        env
    }

    /// The Redis key prefix the instances share.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn bases(&self) -> Vec<String> {
        self.instances.iter().map(Instance::base).collect()
    }

    /// The logs' last lines of every instance, for a failure message.
    pub fn logs(&self) -> String {
        self.instances
            .iter()
            .map(|i| format!("--- {} ---\n{}", i.name, i.log_tail(40)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// What to run.
pub struct Spec {
    pub sessions: usize,
    pub writers_per_session: usize,
    pub pace: Duration,
    /// Where writers and the turn user connect (each starts at a different one).
    pub targets: Vec<String>,
    /// Where the publisher publishes and where its events are listened for.
    pub publish_on: Vec<String>,
    pub listen_on: Vec<String>,
}

pub struct Running {
    phases: Phases,
    sessions: Vec<(String, Account)>,
    writers: Vec<(Arc<Status>, JoinHandle<Outcome>)>,
    driver: JoinHandle<Turns>,
    echo: JoinHandle<Heard>,
}

/// Acknowledged counts at one moment, to tell progress after it.
pub struct Mark {
    pub at: Instant,
    acked: Vec<u64>,
}

fn rotated(v: &[String], by: usize) -> Vec<String> {
    let mut v = v.to_vec();
    let n = v.len();
    v.rotate_left(by % n);
    v
}

impl Running {
    pub async fn start(spec: Spec) -> Self {
        let base = spec.targets[0].clone();
        let phases = Phases::default();
        let mut sessions = Vec::new();
        let mut writers = Vec::new();
        for s in 0..spec.sessions {
            let (owner, editor) = (account(&base).await, account(&base).await);
            let id = shared_session(&base, &owner, &editor).await;
            for w in 0..spec.writers_per_session {
                let status = Arc::new(Status::default());
                let writer = Writer {
                    client_id: format!(
                        "s{s}w{w}-{}",
                        &uuid::Uuid::new_v4().simple().to_string()[..6]
                    ),
                    session_id: id.clone(),
                    token: if w % 2 == 0 { &owner } else { &editor }.token.clone(),
                    targets: rotated(&spec.targets, w + s),
                    pace: spec.pace,
                    status: status.clone(),
                };
                writers.push((status, tokio::spawn(writer.run(phases.clone()))));
            }
            sessions.push((id, owner));
        }
        let (turn_session, turn_owner) = sessions[0].clone();
        let driver = tokio::spawn(
            Driver {
                session_id: turn_session,
                token: turn_owner.token.clone(),
                targets: spec.targets.clone(),
                message: vec!["word"; 60].join(" "),
            }
            .run(phases.clone()),
        );
        let (echo_session, echo_owner) = sessions[sessions.len() - 1].clone();
        let echo = tokio::spawn(
            Echo {
                channel: format!("session:{echo_session}"),
                token: echo_owner.token,
                publish_on: spec.publish_on,
                listen_on: spec.listen_on,
            }
            .run(phases.clone()),
        );
        Self {
            phases,
            sessions,
            writers,
            driver,
            echo,
        }
    }

    /// The sessions under load (id, owner); the first has the chat turns.
    pub fn sessions(&self) -> &[(String, Account)] {
        &self.sessions
    }

    pub fn mark(&self) -> Mark {
        Mark {
            at: Instant::now(),
            acked: self.acked(),
        }
    }

    fn acked(&self) -> Vec<u64> {
        self.writers
            .iter()
            .map(|(s, _)| s.acked.load(Ordering::Relaxed))
            .collect()
    }

    /// Waits until every writer has had `n` more mutations acknowledged than at `mark`;
    /// returns how long after the mark that was.
    pub async fn progressed(&self, mark: &Mark, n: u64, within: Duration) -> Duration {
        let deadline = Instant::now() + within;
        loop {
            let now = self.acked();
            if now.iter().zip(&mark.acked).all(|(a, b)| *a >= b + n) {
                return mark.at.elapsed();
            }
            assert!(
                Instant::now() < deadline,
                "writers stuck: acknowledged {now:?}, at the mark {:?}",
                mark.acked
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the load and gathers what everyone saw, once every writer has its queue
    /// acknowledged and its replica at the server's version (asked of `check_on`).
    pub async fn finish(self, check_on: &str) -> Report {
        self.phases.stop_pushing.cancel();
        let turns = tokio::time::timeout(Duration::from_secs(60), self.driver)
            .await
            .expect("the turn user finishes its last turn within 60 s")
            .expect("driver");
        let deadline = Instant::now() + Duration::from_secs(45);
        let queued = || {
            self.writers
                .iter()
                .map(|(s, _)| s.queued.load(Ordering::Relaxed))
                .sum::<u64>()
        };
        while queued() > 0 {
            assert!(
                Instant::now() < deadline,
                "{} mutations never acknowledged",
                queued()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut finals = Vec::new();
        for (id, owner) in &self.sessions {
            finals.push(server_snapshot(check_on, &owner.token, id).await);
        }
        // Each writer's replica reaches its session's final version.
        loop {
            let behind: Vec<u64> = self
                .writers
                .iter()
                .map(|(s, _)| s.version.load(Ordering::Relaxed))
                .collect();
            let per_session = self.writers.len() / self.sessions.len();
            let caught_up = self.writers.iter().enumerate().all(|(w, (s, _))| {
                let want = finals[w / per_session]["version"].as_u64().unwrap_or(0);
                s.version.load(Ordering::Relaxed) >= want
            });
            if caught_up {
                break;
            }
            assert!(
                Instant::now() < deadline + Duration::from_secs(20),
                "replicas never caught up: at {behind:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.phases.finish.cancel();
        let mut outcomes = Vec::new();
        for (_, h) in self.writers {
            outcomes.push(
                tokio::time::timeout(Duration::from_secs(30), h)
                    .await
                    .expect("writer ends")
                    .expect("writer"),
            );
        }
        let heard = self.echo.await.expect("echo");
        let mut snapshots = Vec::new();
        for (id, owner) in &self.sessions {
            snapshots.push((
                id.clone(),
                server_snapshot(check_on, &owner.token, id).await,
            ));
        }
        Report {
            outcomes,
            turns,
            heard,
            snapshots,
            owners: self.sessions.iter().map(|(_, a)| a.token.clone()).collect(),
        }
    }
}
