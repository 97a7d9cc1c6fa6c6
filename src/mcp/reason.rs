//! Why an MCP connection or request failed, in words a user reads (`authorization required`,
//! `server refused the connection: 503`, `timed out after 10 s`). rmcp's own messages name
//! Rust types (`Transport [rmcp::transport::worker::WorkerTransport<...>] error: Auth
//! required`); those stay in the server log, never in a status a user sees.

use rmcp::service::{ClientInitializeError, ServiceError};
use rmcp::transport::streamable_http_client::StreamableHttpError;
use std::error::Error;

type HttpError = StreamableHttpError<reqwest13::Error>;

/// The handshake failed.
pub fn of_init(e: &ClientInitializeError) -> String {
    match e {
        ClientInitializeError::TransportError { error, .. } => of_transport(error.error.as_ref()),
        ClientInitializeError::ConnectionClosed(_) => {
            "the server closed the connection during the handshake".into()
        }
        ClientInitializeError::JsonRpcError(d) => {
            format!("the server refused the handshake: {}", d.message)
        }
        ClientInitializeError::NoCompatibleProtocolVersion { .. } => {
            "the server supports no protocol version switchyard speaks".into()
        }
        _ => "the server's answer to the handshake is not valid MCP".into(),
    }
}

/// A request on an open connection failed.
pub fn of_service(e: &ServiceError) -> String {
    match e {
        ServiceError::McpError(d) => format!("the server answered with an error: {}", d.message),
        ServiceError::TransportSend(t) => of_transport(t.error.as_ref()),
        ServiceError::TransportClosed => "the connection to the server closed".into(),
        ServiceError::Timeout { timeout } => format!("timed out after {} s", timeout.as_secs()),
        ServiceError::Cancelled { .. } => "the request was cancelled".into(),
        _ => "the server's answer is not valid MCP".into(),
    }
}

fn of_transport(e: &(dyn Error + Send + Sync + 'static)) -> String {
    if let Some(h) = e.downcast_ref::<HttpError>() {
        return of_http(h);
    }
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        return of_io(io);
    }
    "the connection to the server failed".into()
}

fn of_http(e: &HttpError) -> String {
    match e {
        StreamableHttpError::AuthRequired(_) => {
            "authorization required: the server answered 401".into()
        }
        StreamableHttpError::InsufficientScope(_) => {
            "the server refused: it needs more authorization (403 insufficient_scope)".into()
        }
        StreamableHttpError::HttpStatus(s) => {
            format!("server refused the connection: {}", s.status)
        }
        StreamableHttpError::Client(r) => of_reqwest(r),
        StreamableHttpError::Io(io) => of_io(io),
        StreamableHttpError::UnexpectedServerResponse(m) => match status_in(m) {
            Some(status) => format!("server refused the connection: {status}"),
            None => "the server's answer is not valid MCP".into(),
        },
        StreamableHttpError::UnexpectedContentType(ct) => format!(
            "the server did not answer as an MCP server (content type {})",
            ct.as_deref()
                .and_then(|c| c.split(';').next())
                .unwrap_or("none")
        ),
        StreamableHttpError::ResponseBodyTooLarge { max_size } => {
            format!("the server's answer is larger than {max_size} bytes")
        }
        StreamableHttpError::SessionExpired => "the server ended the session".into(),
        _ => "the server's answer is not valid MCP".into(),
    }
}

/// `HTTP 404: <body>` (rmcp's text for a refused request): the status alone.
fn status_in(m: &str) -> Option<u16> {
    let code = m.strip_prefix("HTTP ")?.get(..3)?;
    code.parse().ok()
}

fn of_reqwest(e: &reqwest13::Error) -> String {
    if e.is_timeout() {
        return "timed out waiting for the server".into();
    }
    if let Some(s) = e.status() {
        return format!("server refused the connection: {}", s.as_u16());
    }
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return of_io(io);
        }
        source = s.source();
    }
    if e.is_connect() {
        return "could not connect to the server".into();
    }
    "the connection to the server failed".into()
}

fn of_io(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "could not connect: connection refused".into(),
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => {
            "the connection to the server broke".into()
        }
        TimedOut => "timed out waiting for the server".into(),
        NotFound => "the server's program was not found".into(),
        PermissionDenied => "permission denied".into(),
        _ => "the connection to the server failed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::transport::{streamable_http_client::AuthRequiredError, DynamicTransportError};

    fn init(e: HttpError) -> ClientInitializeError {
        ClientInitializeError::TransportError {
            error: DynamicTransportError::from_parts(
                "rmcp::transport::worker::WorkerTransport<StreamableHttpClientWorker<reqwest::Client>>",
                std::any::TypeId::of::<()>(),
                Box::new(e),
            ),
            context: "send initialize request".into(),
        }
    }

    #[test]
    fn rmcp_errors_become_plain_words() {
        let auth = init(StreamableHttpError::AuthRequired(AuthRequiredError::new(
            "Bearer resource_metadata=\"x\"".into(),
        )));
        assert!(
            auth.to_string().contains("rmcp::"),
            "rmcp's own text: {auth}"
        );
        assert_eq!(
            of_init(&auth),
            "authorization required: the server answered 401"
        );
        let gone = init(StreamableHttpError::UnexpectedServerResponse(
            "HTTP 404: <html>not here</html>".into(),
        ));
        assert_eq!(of_init(&gone), "server refused the connection: 404");
        let refused = init(StreamableHttpError::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert_eq!(of_init(&refused), "could not connect: connection refused");
        let html = init(StreamableHttpError::UnexpectedContentType(Some(
            "text/html; charset=utf-8".into(),
        )));
        assert_eq!(
            of_init(&html),
            "the server did not answer as an MCP server (content type text/html)"
        );
        let t = ServiceError::Timeout {
            timeout: std::time::Duration::from_secs(30),
        };
        assert_eq!(of_service(&t), "timed out after 30 s");
    }
}
