//! `spawn_app()` and friends: a real server per test, its own database, its own data dir.

#![allow(dead_code)]

pub mod accounts;
pub mod balancer;
pub mod cluster_procs;
pub mod completions;
pub mod faultload;
pub mod files;
pub mod fixtures;
pub mod mcp;
pub mod npm;
pub mod procs;
pub mod proxy;
pub mod replica;
pub mod sync_gen;
pub mod tools;
pub mod turns;
pub mod upstream;
pub mod ws;

pub use proxy::Proxy;

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use std::{future::Future, net::SocketAddr, path::PathBuf, time::Duration};
use switchyard::{app::App, config::Config, domain::Role, state::AppState};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

pub const PASSWORD: &str = "tidy-lantern-91";

/// Every test body runs under this, so a hang fails instead of stalling CI.
pub async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test timed out after 60 s")
}

pub fn pg_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

pub fn redis_url() -> Option<String> {
    std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// A fresh PostgreSQL database on the `TEST_DATABASE_URL` server; returns its URL.
pub async fn fresh_pg_database(base: &str) -> String {
    use sqlx::Connection;
    let name = format!("sy_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(base)
        .await
        .expect("connect to TEST_DATABASE_URL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create database");
    let mut url = url::Url::parse(base).expect("TEST_DATABASE_URL is a URL");
    url.set_path(&name);
    url.to_string()
}

/// What several instances of one deployment share: a database, a Redis prefix, signing keys.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    pub key_prefix: String,
    pub key_file: PathBuf,
}

impl Cluster {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let key_file = dir.path().join("shared-key.pem");
        switchyard::auth::jwt::write_new_key(&key_file).expect("keygen");
        let database_url = match pg_url() {
            Some(base) => Some(fresh_pg_database(&base).await),
            None => Some(format!(
                "sqlite://{}",
                dir.path().join("shared.db").display()
            )),
        };
        Self {
            dir,
            database_url,
            redis_url: redis_url(),
            key_prefix: format!("t{}:", uuid::Uuid::new_v4().simple()),
            key_file,
        }
    }

    pub fn config(&self) -> Config {
        let mut c = test_config(
            self.dir
                .path()
                .join(format!("node-{}", uuid::Uuid::new_v4().simple())),
        );
        c.database.url = self.database_url.clone();
        c.redis.url = self.redis_url.clone();
        c.redis.key_prefix = self.key_prefix.clone();
        c.auth.key_files = vec![self.key_file.clone()];
        c
    }

    pub async fn spawn(&self, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let mut c = self.config();
        tweak(&mut c);
        TestApp::start(c, None).await
    }
}

/// Defaults for tests: cheap argon2 (the parameters are not what these tests check) and a
/// rate limit high enough not to interfere unless a test lowers it.
pub fn test_config(data_dir: PathBuf) -> Config {
    let mut c = Config::default();
    c.server.data_dir = data_dir;
    c.server.bind = SocketAddr::from(([127, 0, 0, 1], 0));
    c.server.shutdown_grace_secs = 2;
    c.auth.argon2_memory_kib = 4096;
    c.auth.argon2_iterations = 1;
    c.auth.hash_concurrency = 2;
    c.ratelimit.auth_requests = 10_000;
    c.database.max_connections = 5;
    c
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub http: reqwest::Client,
    pub state: AppState,
    pub config: Config,
    /// Kept alive for the test's length when the app owns its data dir.
    pub dir: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// One server with its own database (SQLite file, or a fresh PostgreSQL database) and, when
/// `TEST_REDIS_URL` is set, Redis under its own key prefix.
pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = test_config(dir.path().to_path_buf());
    if let Some(base) = pg_url() {
        c.database.url = Some(fresh_pg_database(&base).await);
    }
    c.redis.url = redis_url();
    c.redis.key_prefix = format!("t{}:", uuid::Uuid::new_v4().simple());
    tweak(&mut c);
    TestApp::start(c, Some(dir)).await
}

impl TestApp {
    pub async fn start(config: Config, dir: Option<tempfile::TempDir>) -> Self {
        if std::env::var_os("RUST_LOG").is_some() {
            switchyard::telemetry::init_tracing(&config.log, false);
        }
        let listener = TcpListener::bind(config.server.bind).await.expect("bind");
        let app = App::build(config.clone(), listener)
            .await
            .expect("app builds");
        let addr = app.local_addr().expect("addr");
        let state = app.state().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run(async {
            let _ = rx.await;
        }));
        Self {
            addr,
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            state,
            config,
            dir,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server and waits for it to exit.
    pub async fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get_auth(&self, path: &str, token: &str) -> Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// Any request with a bearer token and, when given, a JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Response {
        let mut r = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            r = r.json(b);
        }
        r.send().await.expect("request")
    }

    /// `get_auth`'s JSON body.
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        self.get_auth(path, token)
            .await
            .json()
            .await
            .expect("a JSON body")
    }

    /// Registers `email` with the test password; returns the token pair.
    pub async fn register(&self, email: &str) -> Tokens {
        let r = self
            .post(
                "/v1/auth/register",
                &json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED, "register {email}");
        let body: Value = r.json().await.expect("json");
        Tokens::from(&body["tokens"])
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post(
            "/v1/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    /// An admin account made the way an operator would (`switchyard user create --admin`).
    pub async fn admin_token(&self) -> String {
        let email = format!("admin-{}@example.com", uuid::Uuid::new_v4().simple());
        self.state
            .auth
            .create_user(&email, PASSWORD, Role::Admin)
            .await
            .expect("create admin");
        let r = self.login(&email, PASSWORD).await;
        assert_eq!(r.status(), StatusCode::OK);
        Tokens::from(&r.json::<Value>().await.expect("json")).access
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

impl From<&Value> for Tokens {
    fn from(v: &Value) -> Self {
        Self {
            access: v["access_token"]
                .as_str()
                .expect("access_token")
                .to_string(),
            refresh: v["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_string(),
        }
    }
}

pub fn unique_email() -> String {
    format!("u{}@example.com", uuid::Uuid::new_v4().simple())
}

/// Asserts the one error shape and returns the error object.
pub async fn error_of(r: Response, status: StatusCode) -> Value {
    assert_eq!(r.status(), status, "status");
    let request_id = r
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = r.json().await.expect("error body is JSON");
    let e = body["error"].clone();
    assert!(e["message"].is_string(), "message in {body}");
    assert!(e["type"].is_string(), "type in {body}");
    assert!(e["code"].is_string(), "code in {body}");
    assert!(e.get("param").is_some(), "param in {body}");
    assert_eq!(
        e["request_id"].as_str(),
        request_id.as_deref(),
        "request id in body matches header"
    );
    e
}
