//! Socket requests answered by a service: `chat.send`, `chat.cancel`, `tool.result` (a client
//! tool's answer), and those mirroring REST: `session.list`, `project.*`, `mcp.*` (MCP server
//! configuration), `tool.list` (a session's tool records). Each reads its own fields from the
//! frame and calls the service REST calls.

use crate::{
    domain::Principal, error::AppError, mcp::servers::McpServerInput, state::AppState,
    store::ProjectFields, sync::projects, sync::sessions,
};
use serde::{de::DeserializeOwned, Deserialize};
use serde_json::{json, Value};

#[derive(Deserialize)]
struct ListArgs {
    after: Option<String>,
    limit: Option<u32>,
}

#[derive(Deserialize)]
struct ProjectArgs {
    project_id: Option<String>,
    project: Option<ProjectFields>,
}

#[derive(Deserialize)]
struct CancelArgs {
    turn_id: String,
}

#[derive(Deserialize)]
struct ToolListArgs {
    session_id: String,
    after: Option<String>,
    limit: Option<u32>,
}

#[derive(Deserialize)]
struct McpArgs {
    server_id: Option<String>,
    server: Option<McpServerInput>,
}

fn args<T: DeserializeOwned>(frame: &str) -> Result<T, AppError> {
    serde_json::from_str(frame).map_err(|e| AppError::validation("frame", e.to_string()))
}

pub(super) async fn answer(
    state: &AppState,
    who: &Principal,
    kind: &str,
    frame: &str,
) -> Result<Value, AppError> {
    match kind.split_once('.').map_or(kind, |(family, _)| family) {
        "chat" | "tool" => chat(state, who, kind, frame).await,
        "mcp" => mcp(state, who, kind, frame).await,
        "project" => project(state, who, kind, frame).await,
        "session" if kind == "session.list" => {
            let a: ListArgs = args(frame)?;
            let (rows, next) = sessions::list(
                state.store.as_ref(),
                who.user_id,
                a.after.as_deref(),
                a.limit,
            )
            .await?;
            let data: Vec<Value> = rows
                .into_iter()
                .map(|(s, role)| {
                    let mut v = json!(s);
                    v["role"] = json!(role);
                    v
                })
                .collect();
            Ok(json!({ "data": data, "next_cursor": next }))
        }
        _ => Err(AppError::validation(
            "type",
            format!("unknown request {kind}"),
        )),
    }
}

async fn chat(
    state: &AppState,
    who: &Principal,
    kind: &str,
    frame: &str,
) -> Result<Value, AppError> {
    match kind {
        "chat.send" => state.chat.send(who, args(frame)?).await,
        "chat.cancel" => {
            let a: CancelArgs = args(frame)?;
            state.chat.cancel(who, &a.turn_id).await?;
            Ok(json!({}))
        }
        "tool.result" => {
            state.chat.answer_tool(who, args(frame)?).await?;
            Ok(json!({}))
        }
        "tool.list" => {
            let a: ToolListArgs = args(frame)?;
            let (data, next) = state
                .chat
                .tool_records(who, &a.session_id, a.after, a.limit)
                .await?;
            Ok(json!({ "data": data, "next_cursor": next }))
        }
        _ => Err(AppError::validation(
            "type",
            format!("unknown request {kind}"),
        )),
    }
}

async fn mcp(
    state: &AppState,
    who: &Principal,
    kind: &str,
    frame: &str,
) -> Result<Value, AppError> {
    let user = who.user_id;
    if kind == "mcp.list" {
        return Ok(json!({ "data": state.mcp.list_servers(user).await? }));
    }
    let a: McpArgs = args(frame)?;
    let id = || crate::mcp::servers::parse_id(a.server_id.as_deref().unwrap_or_default());
    let input = || {
        a.server
            .ok_or_else(|| AppError::validation("server", "server is required"))
    };
    Ok(match kind {
        "mcp.create" => json!(state.mcp.create_server(user, input()?).await?),
        "mcp.update" => {
            let id = id()?;
            json!(state.mcp.update_server(user, id, input()?).await?)
        }
        "mcp.delete" => {
            state.mcp.delete_server(user, id()?).await?;
            json!({})
        }
        _ => {
            return Err(AppError::validation(
                "type",
                format!("unknown request {kind}"),
            ))
        }
    })
}

async fn project(
    state: &AppState,
    who: &Principal,
    kind: &str,
    frame: &str,
) -> Result<Value, AppError> {
    let (store, bus, user) = (state.store.as_ref(), state.bus.as_ref(), who.user_id);
    if kind == "project.list" {
        return Ok(json!({ "data": projects::list(store, user).await? }));
    }
    let a: ProjectArgs = args(frame)?;
    let id = || projects::parse_id(a.project_id.as_deref().unwrap_or_default());
    let fields = |a: ProjectArgs| {
        a.project
            .ok_or_else(|| AppError::validation("project", "project is required"))
    };
    Ok(match kind {
        "project.create" => json!(projects::create(store, bus, user, &fields(a)?).await?),
        "project.update" => {
            let id = id()?;
            json!(projects::update(store, bus, user, id, &fields(a)?).await?)
        }
        "project.delete" => {
            projects::delete(store, bus, user, id()?).await?;
            json!({})
        }
        _ => {
            return Err(AppError::validation(
                "type",
                format!("unknown request {kind}"),
            ))
        }
    })
}
