//! Real processes a fault test can kill: switchyard instances (the built binary), and private
//! Redis and PostgreSQL servers on their own ports, so restarting one never touches the services
//! the rest of the suite shares.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};
use tokio::process::{Child, Command};

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

pub(super) fn signal(child: &Child, sig: &str) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &pid.to_string()])
            .status();
    }
}

/// Waits until something accepts TCP connections on `port`.
pub async fn wait_listening(port: u16, within: Duration) {
    let start = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            start.elapsed() < within,
            "nothing listened on {port} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One `switchyard serve` process on a fixed port: killed, stopped and started again there.
pub struct Instance {
    pub port: u16,
    pub name: String,
    env: Vec<(String, String)>,
    child: Option<Child>,
    log: PathBuf,
}

impl Instance {
    /// Starts it and waits until `/health/live` answers. `env` is its configuration
    /// (`SWITCHYARD_*`); the bind address is added here.
    pub async fn start(name: &str, env: Vec<(String, String)>, log_dir: &Path) -> Self {
        let mut me = Self {
            port: free_port(),
            name: name.to_owned(),
            env,
            child: None,
            // FAULT_LOG_DIR keeps the logs past the test (with FAULT_LOG=debug, say).
            log: match std::env::var_os("FAULT_LOG_DIR") {
                Some(d) => std::path::PathBuf::from(d).join(format!("{name}-{}.log", free_port())),
                None => log_dir.join(format!("{name}.log")),
            },
        };
        me.spawn().await;
        me
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// (Re)starts the process on its port and waits for it to serve.
    pub async fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("instance log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("SWITCHYARD_SERVER_BIND", format!("127.0.0.1:{}", self.port))
            .env("SWITCHYARD_LOG_FORMAT", "json")
            .env(
                "RUST_LOG",
                std::env::var("FAULT_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .kill_on_drop(true);
        self.child = Some(cmd.spawn().expect("spawn switchyard"));
        let http = reqwest::Client::new();
        let start = Instant::now();
        loop {
            let up = http
                .get(format!("{}/health/live", self.base()))
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if up {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "{} exited at start ({status}); see {}",
                    self.name,
                    self.log.display()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{} did not serve within 30 s; see {}",
                self.name,
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: nothing is flushed, nothing says goodbye.
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(&c, "KILL");
            let _ = c.wait().await;
        }
    }

    /// SIGTERM, then waits for the process to exit (within `grace`); true if it exited cleanly.
    pub async fn terminate(&mut self, grace: Duration) -> bool {
        let Some(mut c) = self.child.take() else {
            return false;
        };
        signal(&c, "TERM");
        match tokio::time::timeout(grace, c.wait()).await {
            Ok(Ok(status)) => status.success(),
            _ => {
                signal(&c, "KILL");
                let _ = c.wait().await;
                false
            }
        }
    }

    /// The process's log so far (for a failing test's message).
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// A private `redis-server` (nothing on disk, like the machine's): a restart loses every key,
/// subscription and connection, as a real Redis restart without persistence does.
pub struct RedisProc {
    pub port: u16,
    child: Option<Child>,
}

impl RedisProc {
    pub async fn start() -> Self {
        let mut me = Self {
            port: free_port(),
            child: None,
        };
        me.spawn().await;
        me
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub async fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed (the services pass needs it)");
        self.child = Some(child);
        wait_listening(self.port, Duration::from_secs(10)).await;
    }

    /// SIGKILL: a crash, with everything in memory lost.
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(&c, "KILL");
            let _ = c.wait().await;
        }
    }
}

const PG_BIN: &str = "/usr/lib/postgresql";

fn pg_bin(tool: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir(PG_BIN)
        .expect("PostgreSQL's binaries under /usr/lib/postgresql (the services pass needs them)")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("a PostgreSQL version")
        .join("bin")
        .join(tool)
}

/// A private PostgreSQL cluster (initdb'd for the test, run as the `postgres` user), so the
/// test can crash it (immediate shutdown: no checkpoint, WAL recovery at the next start).
pub struct PgProc {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

fn postgres_uid() -> (u32, u32) {
    let out = std::process::Command::new("id")
        .args(["-u", "postgres"])
        .output()
        .expect("id");
    let uid = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("postgres uid");
    let out = std::process::Command::new("id")
        .args(["-g", "postgres"])
        .output()
        .expect("id");
    let gid = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("postgres gid");
    (uid, gid)
}

impl PgProc {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (uid, gid) = postgres_uid();
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown");
        let status = Command::new(pg_bin("initdb"))
            .arg("-D")
            .arg(dir.path().join("data"))
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
            .uid(uid)
            .gid(gid)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .expect("initdb");
        assert!(status.success(), "initdb failed");
        let mut me = Self {
            port: free_port(),
            dir,
            child: None,
        };
        me.spawn().await;
        me
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    pub async fn spawn(&mut self) {
        let (uid, gid) = postgres_uid();
        let child = Command::new(pg_bin("postgres"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
            ])
            .arg("-k")
            .arg(self.dir.path())
            .args(["-c", "max_connections=100", "-c", "fsync=on"])
            .uid(uid)
            .gid(gid)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("postgres");
        self.child = Some(child);
        wait_listening(self.port, Duration::from_secs(20)).await;
        // Listening comes before accepting queries during recovery.
        let start = Instant::now();
        loop {
            use sqlx::Connection;
            if let Ok(c) = sqlx::PgConnection::connect(&self.url("postgres")).await {
                let _ = c.close().await;
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "postgres did not recover"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Immediate shutdown (SIGQUIT): every backend ends at once, nothing is checkpointed;
    /// committed transactions survive only through the WAL, as in a crash.
    pub async fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(&c, "QUIT");
            let _ = c.wait().await;
        }
    }

    pub async fn create_database(&self, name: &str) -> String {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&self.url("postgres"))
            .await
            .expect("connect");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .await
            .expect("create database");
        self.url(name)
    }
}

impl Drop for PgProc {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            signal(c, "QUIT");
        }
    }
}

pub use super::cluster_procs::RedisClusterProcs;
