//! A private three-master Redis Cluster for the cluster tests, each node a real process.

use super::procs::{free_port, signal, wait_listening};
use std::{
    process::Stdio,
    time::{Duration, Instant},
};
use tokio::process::{Child, Command};

/// A private three-master Redis Cluster (no replicas; `cluster-require-full-coverage no`, so
/// the other shards serve while one is down), each node killable and restartable on its port
/// with its `nodes.conf`, as a restarted shard rejoins.
pub struct RedisClusterProcs {
    pub ports: Vec<u16>,
    dir: tempfile::TempDir,
    children: Vec<Option<Child>>,
}

impl RedisClusterProcs {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut me = Self {
            ports: ports.clone(),
            dir,
            children: (0..3).map(|_| None).collect(),
        };
        for i in 0..3 {
            me.spawn(i).await;
        }
        let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .await
            .expect("redis-cli is installed");
        assert!(
            out.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        me.wait_ok(Duration::from_secs(30)).await;
        me
    }

    /// `redis://127.0.0.1:<port>` of every node (the seeds).
    pub fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    pub async fn spawn(&mut self, i: usize) {
        let port = self.ports[i].to_string();
        let conf = self.dir.path().join(format!("nodes-{port}.conf"));
        let child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes", "--cluster-config-file"])
            .arg(&conf)
            .args(["--cluster-node-timeout", "2000"])
            .args(["--cluster-require-full-coverage", "no"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed (the services pass needs it)");
        self.children[i] = Some(child);
        wait_listening(self.ports[i], Duration::from_secs(10)).await;
    }

    /// SIGKILL of node `i`: its shard is gone, with what it held in memory.
    pub async fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            signal(&c, "KILL");
            let _ = c.wait().await;
        }
    }

    /// Waits until every node says `cluster_state:ok`.
    pub async fn wait_ok(&self, within: Duration) {
        let start = Instant::now();
        loop {
            let mut all = true;
            for p in &self.ports {
                let out = Command::new("redis-cli")
                    .args(["-p", &p.to_string(), "cluster", "info"])
                    .output()
                    .await
                    .expect("redis-cli");
                all &= String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok");
            }
            if all {
                return;
            }
            assert!(start.elapsed() < within, "the cluster never became ok");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl RedisClusterProcs {
    /// The node that owns shard channel `name`: the one that takes an `SPUBLISH` to it (the
    /// others answer MOVED).
    pub async fn owner_of(&self, name: &str) -> usize {
        for (i, url) in self.urls().iter().enumerate() {
            let client = redis::Client::open(url.as_str()).expect("node url");
            let mut c = client
                .get_multiplexed_async_connection()
                .await
                .expect("node up");
            let r: redis::RedisResult<i64> = redis::cmd("SPUBLISH")
                .arg(name)
                .arg("probe")
                .query_async(&mut c)
                .await;
            if r.is_ok() {
                return i;
            }
        }
        panic!("no node owns {name}")
    }
}
