//! Socket requests answered by a service: `chat.send`, `chat.cancel`, `tool.result` (a client
//! tool's answer), and those mirroring REST: `session.list`, `project.*`, `mcp.*` (MCP server
//! configuration), `tool.list` (a session's tool records).

use crate::mcp::servers as mcp;
use crate::{
    domain::{SessionId, UserId},
    error::AppError,
    state::AppState,
    store::ProjectFields,
    sync::projects,
};
use serde::Deserialize;
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

fn bad(e: serde_json::Error) -> AppError {
    AppError::validation("frame", e.to_string())
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
    server: Option<crate::mcp::servers::McpServerInput>,
}

pub(super) async fn answer(
    state: &AppState,
    who: &crate::domain::Principal,
    kind: &str,
    frame: &str,
) -> Result<Value, AppError> {
    let user: UserId = who.user_id;
    let (store, bus) = (state.store.as_ref(), state.bus.as_ref());
    let project_args =
        || -> Result<ProjectArgs, AppError> { serde_json::from_str(frame).map_err(bad) };
    let project_id =
        |a: &ProjectArgs| projects::parse_id(a.project_id.as_deref().unwrap_or_default());
    let fields = |a: ProjectArgs| {
        a.project
            .ok_or_else(|| AppError::validation("project", "project is required"))
    };
    match kind {
        "chat.send" => {
            let a: crate::chat::SendArgs = serde_json::from_str(frame).map_err(bad)?;
            state.chat.send(who, a).await
        }
        "chat.cancel" => {
            let a: CancelArgs = serde_json::from_str(frame).map_err(bad)?;
            state.chat.cancel(who, &a.turn_id).await?;
            Ok(json!({}))
        }
        "tool.result" => {
            let a: crate::chat::tool_api::ToolAnswer = serde_json::from_str(frame).map_err(bad)?;
            state.chat.answer_tool(who, a).await?;
            Ok(json!({}))
        }
        "tool.list" => {
            let a: ToolListArgs = serde_json::from_str(frame).map_err(bad)?;
            let (data, next) = state
                .chat
                .tool_records(who, &a.session_id, a.after, a.limit)
                .await?;
            Ok(json!({ "data": data, "next_cursor": next }))
        }
        "mcp.list" => Ok(json!({ "data": mcp::list(store, user).await? })),
        "mcp.create" | "mcp.update" | "mcp.delete" => {
            let a: McpArgs = serde_json::from_str(frame).map_err(bad)?;
            let cfg = &state.config.mcp;
            let id = || mcp::parse_id(a.server_id.as_deref().unwrap_or_default());
            let input = || {
                a.server
                    .ok_or_else(|| AppError::validation("server", "server is required"))
            };
            let out = match kind {
                "mcp.create" => {
                    json!(mcp::create(store, cfg, state.mcp.sealer(), user, input()?).await?)
                }
                "mcp.update" => {
                    let id = id()?;
                    json!(mcp::update(store, cfg, state.mcp.sealer(), user, id, input()?).await?)
                }
                _ => {
                    mcp::delete(store, user, id()?).await?;
                    json!({})
                }
            };
            state.mcp.reload_user(user).await;
            Ok(out)
        }
        "session.list" => {
            let a: ListArgs = serde_json::from_str(frame).map_err(bad)?;
            let limit = crate::error::page_limit(a.limit)?;
            let after = a
                .after
                .map(|x| x.parse::<SessionId>())
                .transpose()
                .map_err(|_| {
                    AppError::validation("after", "after must be a cursor from a previous page")
                })?;
            let rows = store.list_sessions(user, after, limit).await?;
            let next = (rows.len() == limit as usize)
                .then(|| rows.last().map(|(s, _)| s.id.to_string()))
                .flatten();
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
        "project.list" => Ok(json!({ "data": projects::list(store, user).await? })),
        "project.create" => Ok(json!(
            projects::create(store, bus, user, &fields(project_args()?)?).await?
        )),
        "project.update" => {
            let a = project_args()?;
            let id = project_id(&a)?;
            Ok(json!(
                projects::update(store, bus, user, id, &fields(a)?).await?
            ))
        }
        "project.delete" => {
            let a = project_args()?;
            projects::delete(store, bus, user, project_id(&a)?).await?;
            Ok(json!({}))
        }
        other => Err(AppError::validation(
            "type",
            format!("unknown request {other}"),
        )),
    }
}
