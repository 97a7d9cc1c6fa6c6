//! Socket requests answered by a service: `chat.send`, `chat.cancel`, `tool.result` (a client
//! tool's answer), and those mirroring REST: `session.list`, `project.*`, `mcp.*` (MCP server
//! configuration), `tool.list` (a session's tool records), `file.list` (its files). Arguments arrive decoded and typed
//! (`protocol::calls`); each goes to the service REST calls.

use crate::{
    domain::Principal,
    error::AppError,
    protocol::Call,
    state::AppState,
    sync::{projects, sessions},
};
use serde_json::{json, Value};

pub(super) async fn answer(
    state: &AppState,
    who: &Principal,
    call: Call,
) -> Result<Value, AppError> {
    let (store, bus, user) = (state.store.as_ref(), state.bus.as_ref(), who.user_id);
    Ok(match call {
        Call::ChatSend(a) => state.chat.send(who, a).await?,
        Call::ChatCancel(a) => {
            state.chat.cancel(who, a.turn_id).await?;
            json!({})
        }
        Call::ToolResult(a) => {
            state.chat.answer_tool(who, a).await?;
            json!({})
        }
        Call::ToolList(a) => {
            let (data, next) = state
                .chat
                .tool_records(who, a.session_id, a.page.after, a.page.limit)
                .await?;
            json!({ "data": data, "next_cursor": next })
        }
        Call::FileList(a) => {
            let (data, next) = (state.files)
                .list(user, a.session_id, a.page.after.as_deref(), a.page.limit)
                .await?;
            json!({ "data": data, "next_cursor": next })
        }
        Call::McpList => json!({ "data": state.mcp.list_servers(user).await? }),
        Call::McpCreate(a) => json!(state.mcp.create_server(user, a.server).await?),
        Call::McpUpdate(a) => json!(state.mcp.update_server(user, a.server_id, a.server).await?),
        Call::McpDelete(a) => {
            state.mcp.delete_server(user, a.server_id).await?;
            json!({})
        }
        Call::McpElicitationResult(a) => {
            state.mcp.answer_elicitation(user, a).await?;
            json!({})
        }
        Call::SessionList(page) => {
            let (rows, next) =
                sessions::list(store, user, page.after.as_deref(), page.limit).await?;
            let data: Vec<Value> = rows
                .into_iter()
                .map(|(s, role)| {
                    let mut v = json!(s);
                    v["role"] = json!(role);
                    v
                })
                .collect();
            json!({ "data": data, "next_cursor": next })
        }
        Call::ProjectList => json!({ "data": projects::list(store, user).await? }),
        Call::ProjectCreate(a) => json!(projects::create(store, bus, user, &a.project).await?),
        Call::ProjectUpdate(a) => {
            json!(projects::update(store, bus, user, a.project_id, &a.project).await?)
        }
        Call::ProjectDelete(a) => {
            projects::delete(store, bus, user, a.project_id).await?;
            json!({})
        }
    })
}
