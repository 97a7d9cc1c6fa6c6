//! The OpenAPI document's frame: info, security scheme, shared schemas. Paths are added by the
//! route modules through `utoipa_axum::routes!`.

use crate::error::{ErrorBody, ErrorObject};
use utoipa::{
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "switchyard", description = "Realtime backend for an AI coding assistant. \
        Errors share OpenAI's shape: {\"error\":{\"message\",\"type\",\"code\",\"param\",\"request_id\"}}."),
    components(schemas(ErrorBody, ErrorObject)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An access JWT from /v1/auth/login, or an API key (sk-sy-...)",
                    ))
                    .build(),
            ),
        );
    }
}
