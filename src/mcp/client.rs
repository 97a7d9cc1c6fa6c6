//! One MCP client connection, through the official SDK (`rmcp`, pinned): a stdio child
//! process (its stderr kept as a short tail for error reasons) or a Streamable HTTP endpoint.
//! Speaks protocol 2025-11-25 in `initialize` and accepts what the server negotiates.

use rmcp::{
    model::{ClientCapabilities, ClientConfig, Implementation, ProtocolVersion},
    service::{NotificationContext, RoleClient, RunningService},
    transport::{
        streamable_http_client::StreamableHttpClientTransportConfig, StreamableHttpClientTransport,
        TokioChildProcess,
    },
    ClientHandler, ServiceExt,
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

/// Receives the server's notifications; only `tools/list_changed` matters here.
pub struct Handler {
    pub tools_changed: Arc<Notify>,
}

impl ClientHandler for Handler {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.tools_changed.notify_one();
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("switchyard", env!("CARGO_PKG_VERSION")),
        )
        .with_protocol_version(ProtocolVersion::V_2025_11_25)
    }
}

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
    },
    Http {
        url: String,
        headers: Vec<(String, String)>,
    },
}

pub struct Connection {
    pub service: RunningService<RoleClient, Handler>,
    pub protocol_version: String,
    pub server_name: String,
    pub server_version: String,
    pub tools_changed: Arc<Notify>,
    /// The last lines a stdio server wrote to stderr.
    pub stderr: Arc<Mutex<VecDeque<String>>>,
}

impl Connection {
    pub fn stderr_tail(&self) -> String {
        tail(&self.stderr)
    }

    /// Every tool, following `tools/list` pagination.
    pub async fn tools(&self) -> Result<Vec<ToolInfo>, String> {
        let tools = self
            .service
            .list_all_tools()
            .await
            .map_err(|e| format!("tools/list failed: {e}"))?;
        Ok(tools
            .into_iter()
            .map(|t| ToolInfo {
                name: t.name.to_string(),
                description: t.description.map(|d| d.to_string()),
                input_schema: serde_json::Value::Object((*t.input_schema).clone()),
            })
            .collect())
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

/// Connects and completes the handshake. An error carries the reason a user can act on
/// (for stdio, the tail of the server's stderr when it has one).
pub async fn connect(target: &Target) -> Result<Connection, String> {
    let tools_changed = Arc::new(Notify::new());
    let handler = Handler {
        tools_changed: tools_changed.clone(),
    };
    let stderr_lines = Arc::new(Mutex::new(VecDeque::new()));
    let started = match target {
        Target::Stdio { program, args } => {
            let mut cmd = tokio::process::Command::new(program);
            cmd.args(args).kill_on_drop(true);
            let (transport, stderr) = TokioChildProcess::builder(cmd)
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("could not start {program}: {e}"))?;
            if let Some(stderr) = stderr {
                let lines = stderr_lines.clone();
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
            tokio::time::timeout(CONNECT_TIMEOUT, handler.serve(transport))
                .await
                .map_err(|_| "initialize timed out".to_string())?
                .map_err(|e| e.to_string())
        }
        Target::Http { url, headers } => {
            let mut map = HashMap::new();
            for (k, v) in headers {
                let (Ok(name), Ok(value)) = (
                    axum::http::HeaderName::from_bytes(k.as_bytes()),
                    axum::http::HeaderValue::from_str(v),
                ) else {
                    return Err(format!("header {k:?} is not valid"));
                };
                map.insert(name, value);
            }
            let cfg =
                StreamableHttpClientTransportConfig::with_uri(url.as_str()).custom_headers(map);
            let transport = StreamableHttpClientTransport::from_config(cfg);
            tokio::time::timeout(CONNECT_TIMEOUT, handler.serve(transport))
                .await
                .map_err(|_| "initialize timed out".to_string())?
                .map_err(|e| e.to_string())
        }
    };
    let service = match started {
        Ok(s) => s,
        Err(e) => {
            // Give the child a moment to finish writing why it failed.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let t = tail(&stderr_lines);
            return Err(if t.is_empty() {
                e
            } else {
                format!("{e}; stderr: {t}")
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
    })
}
