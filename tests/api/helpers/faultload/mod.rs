//! Load for fault tests: a deployment of real instances (processes, so they can be killed),
//! writers pushing mutations with retries across instances, a user running chat turns, a
//! publisher heard on another instance; then, after the fault, the invariants: every
//! acknowledged mutation present exactly once, every replica equal to the server's state,
//! versions contiguous for every client, no client stuck.

pub mod driver;
pub mod link;
pub mod writer;

use super::procs::{Instance, PgProc, RedisProc};
use super::replica::{doc_from_snapshot, visible};
use driver::{Driver, Echo, Heard, Turns};
use serde_json::{json, Value};
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

/// A user made through the API.
#[derive(Clone)]
pub struct Account {
    pub token: String,
    pub email: String,
}

pub async fn account(base: &str) -> Account {
    let email = super::unique_email();
    let r: Value = reqwest::Client::new()
        .post(format!("{base}/v1/auth/register"))
        .json(&json!({"email": email, "password": super::PASSWORD}))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("register answer");
    Account {
        token: r["tokens"]["access_token"]
            .as_str()
            .expect("token")
            .to_owned(),
        email,
    }
}

/// A session of `owner`'s, shared with `editor`.
pub async fn shared_session(base: &str, owner: &Account, editor: &Account) -> String {
    let http = reqwest::Client::new();
    let r: Value = http
        .post(format!("{base}/v1/sessions"))
        .bearer_auth(&owner.token)
        .json(&json!({}))
        .send()
        .await
        .expect("create session")
        .json()
        .await
        .expect("session");
    let id = r["id"].as_str().expect("session id").to_owned();
    let s = http
        .post(format!("{base}/v1/sessions/{id}/members"))
        .bearer_auth(&owner.token)
        .json(&json!({"email": editor.email, "role": "editor"}))
        .send()
        .await
        .expect("share")
        .status();
    assert_eq!(s, 204);
    id
}

/// A session's state as the server has it now.
pub async fn server_snapshot(base: &str, token: &str, session: &str) -> Value {
    let r = reqwest::Client::new()
        .get(format!("{base}/v1/sessions/{session}"))
        .bearer_auth(token)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("snapshot");
    assert_eq!(r.status(), 200, "snapshot of {session}");
    r.json().await.expect("snapshot JSON")
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

pub struct Report {
    pub outcomes: Vec<Outcome>,
    pub turns: Turns,
    pub heard: Heard,
    /// Each session's final state, read from the server.
    pub snapshots: Vec<(String, Value)>,
    /// Each session's owner's token (same order).
    pub owners: Vec<String>,
}

impl Report {
    /// The promises: every acknowledged mutation there exactly once and in its client's order,
    /// every replica equal to the server, no gap or duplicate any client noticed, every turn
    /// ended (none left streaming).
    pub fn check(&self) {
        for o in &self.outcomes {
            assert!(
                o.anomalies.is_empty(),
                "{} saw: {:?}",
                o.client_id,
                o.anomalies
            );
            let (_, snap) = self
                .snapshots
                .iter()
                .find(|(id, _)| *id == o.session_id)
                .expect("its session");
            let n = o.acked.len() as u64;
            assert!(n > 0, "{} had nothing acknowledged", o.client_id);
            assert_eq!(
                o.acked.keys().copied().collect::<Vec<_>>(),
                (1..=n).collect::<Vec<_>>(),
                "{}: every mutation it made was acknowledged",
                o.client_id
            );
            let versions: Vec<u64> = o.acked.values().copied().collect();
            assert!(
                versions.windows(2).all(|w| w[0] < w[1]),
                "{}: a client's mutations are committed in its order: {versions:?}",
                o.client_id
            );
            let mine: Vec<u64> = snap["messages"]
                .as_array()
                .expect("messages")
                .iter()
                .filter_map(|m| m["id"].as_str()?.strip_prefix(&format!("{}-", o.client_id)))
                .map(|mid| mid.parse().expect("mid"))
                .collect();
            assert_eq!(
                mine,
                (1..=n).collect::<Vec<_>>(),
                "{}: each acknowledged message once, in order",
                o.client_id
            );
            assert_eq!(snap["context"][&o.client_id], json!(n), "{}", o.client_id);
            assert_eq!(
                o.version,
                snap["version"].as_u64().unwrap(),
                "{}",
                o.client_id
            );
            assert!(
                visible(&o.replica) == visible(&doc_from_snapshot(snap)),
                "{}: its replica differs from the server's state",
                o.client_id
            );
        }
        assert!(
            self.turns.anomalies.is_empty(),
            "turns: {:?}",
            self.turns.anomalies
        );
        let (_, first) = &self.snapshots[0];
        for m in first["messages"].as_array().expect("messages") {
            assert_eq!(m["streaming"], false, "no message left streaming: {m}");
        }
        for (turn, (message, _)) in &self.turns.started {
            let m = first["messages"]
                .as_array()
                .expect("messages")
                .iter()
                .find(|m| m["id"] == message.as_str())
                .unwrap_or_else(|| panic!("turn {turn}'s message {message} is stored"));
            let status = m["metadata"]["status"].as_str().unwrap_or("");
            assert!(
                ["complete", "failed", "cancelled"].contains(&status),
                "turn {turn} ended: {m}"
            );
        }
    }

    /// How the turns the user started ended: their messages' final status, by status.
    pub fn turn_statuses(&self) -> Vec<(String, String)> {
        let (_, first) = &self.snapshots[0];
        self.turns
            .started
            .iter()
            .map(|(turn, (message, _))| {
                let m = first["messages"]
                    .as_array()
                    .expect("messages")
                    .iter()
                    .find(|m| m["id"] == message.as_str())
                    .cloned()
                    .unwrap_or_default();
                let why = m["metadata"]["error"]["code"]
                    .as_str()
                    .or(m["metadata"]["status"].as_str())
                    .unwrap_or("")
                    .to_owned();
                (turn.clone(), why)
            })
            .collect()
    }

    /// Counted failures (closes, refusals, error codes) over every writer, and the chat delta
    /// gaps they noticed (`delta gap`).
    pub fn failures(&self) -> std::collections::BTreeMap<String, u64> {
        let mut all = std::collections::BTreeMap::new();
        for o in &self.outcomes {
            for (k, v) in &o.failures {
                *all.entry(k.clone()).or_default() += v;
            }
            if o.delta_gaps > 0 {
                *all.entry("delta gap".to_owned()).or_default() += o.delta_gaps;
            }
        }
        all
    }
}
