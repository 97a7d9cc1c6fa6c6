//! One MCP client connection, through the official SDK (`rmcp`, pinned): a stdio child
//! process started with an empty environment plus what the operator listed (its stderr kept
//! as a short tail for the server log), or a Streamable HTTP endpoint whose address is
//! resolved and checked on every connect, then pinned, so DNS cannot rebind it inward between
//! the check and the connection. Speaks protocol 2025-11-25 in `initialize` and accepts what
//! the server negotiates. A server's tool list is bounded (pages, count, bytes).

use rmcp::{
    service::{RoleClient, RunningService},
    transport::{
        streamable_http_client::StreamableHttpClientTransportConfig, StreamableHttpClientTransport,
        TokioChildProcess,
    },
    ServiceExt,
};
use serde::Serialize;
use std::{
    collections::{HashMap, VecDeque},
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::{io::AsyncBufReadExt, sync::Notify};

/// Lines of a stdio server's stderr kept for its error reason.
const STDERR_LINES: usize = 20;
/// Longest handshake plus first `tools/list`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

pub use super::handler::Handler;

/// A tool as the status shows it and the model is offered it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct ToolInfo {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub input_schema: serde_json::Value,
}

/// Where a server is.
pub enum Target {
    Stdio {
        program: String,
        args: Vec<String>,
        /// The child's whole environment.
        env: Vec<(String, String)>,
    },
    Http {
        url: String,
        headers: Vec<(String, String)>,
        /// Whether private and loopback addresses are allowed (`mcp.allow_private_urls`).
        allow_private: bool,
    },
}

/// How much of a tool list a server may send (`mcp.max_tool_*`).
#[derive(Debug, Clone, Copy)]
pub struct ToolLimits {
    pub pages: usize,
    pub tools: usize,
    pub bytes: usize,
}

/// Why a connection failed: `reason` is for the user (after scrubbing), `stderr` for the
/// server log only.
#[derive(Debug)]
pub struct Failure {
    pub reason: String,
    pub stderr: String,
    /// The library's own account of the failure (type names and all): the log only.
    pub detail: String,
}

impl Failure {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            stderr: String::new(),
            detail: String::new(),
        }
    }
}

/// A failed handshake: plain words for the user, rmcp's text for the log.
fn init_failed(e: rmcp::service::ClientInitializeError) -> (String, String) {
    (super::reason::of_init(&e), e.to_string())
}

fn timed_out() -> Failure {
    Failure::new(format!("timed out after {} s", CONNECT_TIMEOUT.as_secs()))
}

pub struct Connection {
    pub service: RunningService<RoleClient, Handler>,
    pub protocol_version: String,
    pub server_name: String,
    pub server_version: String,
    pub tools_changed: Arc<Notify>,
    /// The last lines a stdio server wrote to stderr.
    pub stderr: Arc<Mutex<VecDeque<String>>>,
    /// A stdio server's working directory, gone with the connection.
    _scratch: Option<Scratch>,
}

impl Connection {
    pub fn stderr_tail(&self) -> String {
        tail(&self.stderr)
    }

    /// Every tool, following `tools/list` pagination within `limits`.
    pub async fn tools(&self, limits: ToolLimits) -> Result<Vec<ToolInfo>, String> {
        let (mut tools, mut bytes, mut cursor) = (Vec::new(), 0usize, None);
        for _ in 0..limits.pages {
            let page = self
                .service
                .list_tools(Some(
                    rmcp::model::PaginatedRequestParams::default().with_cursor(cursor),
                ))
                .await
                .map_err(|e| {
                    tracing::debug!(error = %e, "tools/list failed");
                    format!("tools/list failed: {}", super::reason::of_service(&e))
                })?;
            for t in page.tools {
                let info = ToolInfo {
                    name: t.name.to_string(),
                    description: t.description.map(|d| d.to_string()),
                    input_schema: serde_json::Value::Object((*t.input_schema).clone()),
                };
                bytes += info.name.len()
                    + info.description.as_ref().map_or(0, String::len)
                    + serde_json::to_string(&info.input_schema).map_or(0, |s| s.len());
                tools.push(info);
                if tools.len() > limits.tools {
                    return Err(format!(
                        "the server offers more than {} tools (mcp.max_tools)",
                        limits.tools
                    ));
                }
                if bytes > limits.bytes {
                    return Err(format!(
                        "the server's tool list is larger than {} bytes (mcp.max_tool_bytes)",
                        limits.bytes
                    ));
                }
            }
            cursor = page.next_cursor;
            if cursor.is_none() {
                return Ok(tools);
            }
        }
        Err(format!(
            "the server's tool list runs past {} pages (mcp.max_tool_pages)",
            limits.pages
        ))
    }
}

pub fn tail(lines: &Mutex<VecDeque<String>>) -> String {
    lines
        .lock()
        .expect("lock is never held across a panic")
        .iter()
        .cloned()
        .collect::<Vec<_>>()
        .join("\n")
}

type Lines = Arc<Mutex<VecDeque<String>>>;
/// The service, or why the handshake failed: (for the user, for the log).
type Started = Result<RunningService<RoleClient, Handler>, (String, String)>;

/// Connects and completes the handshake. `elicitor` takes the server's questions to its user.
pub async fn connect(
    target: &Target,
    elicitor: Option<super::elicit::Elicitor>,
) -> Result<Connection, Failure> {
    let tools_changed = Arc::new(Notify::new());
    let handler = Handler {
        tools_changed: tools_changed.clone(),
        elicitor,
    };
    let stderr_lines: Lines = Arc::new(Mutex::new(VecDeque::new()));
    let mut scratch = None;
    let started = match target {
        Target::Stdio { program, args, env } => {
            let dir = Scratch::new()
                .map_err(|e| Failure::new(format!("no working directory for {program}: {e}")))?;
            let started = start_stdio(program, args, env, &dir, handler, &stderr_lines).await?;
            scratch = Some(dir);
            started
        }
        Target::Http {
            url,
            headers,
            allow_private,
        } => start_http(url, headers, *allow_private, handler).await?,
    };
    let service = match started {
        Ok(s) => s,
        Err((reason, detail)) => {
            // Give the child a moment to finish writing why it failed.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Err(Failure {
                reason,
                stderr: tail(&stderr_lines),
                detail,
            });
        }
    };
    let info = service.peer_info();
    let (protocol_version, server_name, server_version) = match info.as_deref() {
        Some(i) => (
            i.protocol_version.to_string(),
            i.server_info
                .as_ref()
                .map(|s| s.name.clone())
                .unwrap_or_default(),
            i.server_info
                .as_ref()
                .map(|s| s.version.clone())
                .unwrap_or_default(),
        ),
        None => Default::default(),
    };
    Ok(Connection {
        service,
        protocol_version,
        server_name,
        server_version,
        tools_changed,
        stderr: stderr_lines,
        _scratch: scratch,
    })
}

/// Nothing of the server's own environment (keys, database URLs) reaches the child, and it
/// starts in an empty directory of its own, not the server's (whose data dir holds the signing
/// key and the database). It still runs as the server's OS user: a separate user or sandbox is
/// the operator's to add. Its last stderr lines are kept in `lines`.
async fn start_stdio(
    program: &str,
    args: &[String],
    env: &[(String, String)],
    dir: &Scratch,
    handler: Handler,
    lines: &Lines,
) -> Result<Started, Failure> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(env.iter().cloned())
        .current_dir(&dir.0)
        .kill_on_drop(true);
    let (transport, stderr) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Failure::new(format!("could not start {program}: {e}")))?;
    if let Some(stderr) = stderr {
        let lines = lines.clone();
        tokio::spawn(async move {
            let mut reader = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let mut l = lines.lock().expect("lock is never held across a panic");
                if l.len() == STDERR_LINES {
                    l.pop_front();
                }
                l.push_back(line.chars().take(500).collect());
            }
        });
    }
    Ok(
        tokio::time::timeout(CONNECT_TIMEOUT, handler.serve(transport))
            .await
            .map_err(|_| timed_out())?
            .map_err(init_failed),
    )
}

/// Streamable HTTP through a client pinned to the addresses checked against SSRF.
async fn start_http(
    url: &str,
    headers: &[(String, String)],
    allow_private: bool,
    handler: Handler,
) -> Result<Started, Failure> {
    let mut map = HashMap::new();
    for (k, v) in headers {
        let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            axum::http::HeaderValue::from_str(v),
        ) else {
            return Err(Failure::new(format!("header {k:?} is not valid")));
        };
        map.insert(name, value);
    }
    let client = pinned_client(url, allow_private).await?;
    let cfg = StreamableHttpClientTransportConfig::with_uri(url).custom_headers(map);
    let transport = StreamableHttpClientTransport::with_client(client, cfg);
    Ok(
        tokio::time::timeout(CONNECT_TIMEOUT, handler.serve(transport))
            .await
            .map_err(|_| timed_out())?
            .map_err(init_failed),
    )
}

/// A stdio server's own empty working directory, removed when the connection ends.
pub struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new() -> std::io::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("switchyard-mcp-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An HTTP client bound to the addresses `url`'s host resolves to now, checked: the host name
/// still goes in `Host` and SNI, but no later lookup can point the connection elsewhere, and
/// no redirect or proxy can either.
async fn pinned_client(url: &str, allow_private: bool) -> Result<reqwest13::Client, Failure> {
    let checked = super::ssrf::check_url(url, allow_private)
        .await
        .map_err(|e| Failure::new(e.to_string()))?;
    let mut b = reqwest13::Client::builder()
        .redirect(reqwest13::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(CONNECT_TIMEOUT);
    if let (Some(url::Host::Domain(d)), false) = (checked.url.host(), checked.addrs.is_empty()) {
        b = b.resolve_to_addrs(d, &checked.addrs);
    }
    b.build()
        .map_err(|e| Failure::new(format!("could not set up the HTTP client: {e}")))
}
