//! Shutdown: one `CancellationToken` tells every loop to stop; a `TaskTracker` lets the
//! server wait for them, bounded by the configured grace period.

/// Resolves on ctrl-c or SIGTERM.
pub async fn signal() {
    {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => tracing::info!("ctrl-c received, shutting down"),
            _ = term => tracing::info!("SIGTERM received, shutting down"),
        }
    }
}
