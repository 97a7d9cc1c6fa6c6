//! What the MCP client answers a server with: its capabilities in `initialize`, and the
//! server's notifications and requests (`tools/list_changed`, `elicitation/create`).

use rmcp::{
    model::{
        ClientCapabilities, ClientConfig, ElicitRequestParams, ElicitResult, ElicitationAction,
        ElicitationCapability, ErrorData, FormElicitationCapability, Implementation,
        ProtocolVersion,
    },
    service::{NotificationContext, RequestContext, RoleClient},
    ClientHandler,
};
use std::sync::Arc;
use tokio::sync::Notify;

/// Receives the server's notifications (`tools/list_changed`) and requests: `elicitation/create`
/// (form mode) goes to the user when an elicitor is given, and only then is the capability
/// advertised.
pub struct Handler {
    pub tools_changed: Arc<Notify>,
    pub elicitor: Option<super::elicit::Elicitor>,
}

impl ClientHandler for Handler {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.tools_changed.notify_one();
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let (
            Some(elicitor),
            ElicitRequestParams::FormElicitationParams {
                message,
                requested_schema,
                ..
            },
        ) = (&self.elicitor, request)
        else {
            // URL mode is not advertised, nor is anything without an elicitor.
            return Ok(ElicitResult::new(ElicitationAction::Decline));
        };
        let Ok(schema) = serde_json::to_value(&requested_schema) else {
            return Ok(ElicitResult::new(ElicitationAction::Decline));
        };
        Ok(elicitor.ask(message, schema, context.ct.clone()).await)
    }

    fn get_info(&self) -> ClientConfig {
        let mut capabilities = ClientCapabilities::default();
        if self.elicitor.is_some() {
            capabilities.elicitation =
                Some(ElicitationCapability::new().with_form(FormElicitationCapability::new()));
        }
        ClientConfig::new(
            capabilities,
            Implementation::new("switchyard", env!("CARGO_PKG_VERSION")),
        )
        .with_protocol_version(ProtocolVersion::V_2025_11_25)
    }
}
