//! A TCP proxy in front of a dependency, cut and restored by the test.

use std::net::SocketAddr;
use tokio::net::TcpListener;

/// A TCP proxy the test can cut, to make a dependency unreachable on demand.
pub struct Proxy {
    pub addr: SocketAddr,
    stop: tokio_util::sync::CancellationToken,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Self {
        Self::start_on(0, target).await
    }

    /// On a given port (to bring a "restarted" dependency back at the same address).
    pub async fn start_on(port: u16, target: SocketAddr) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let stop = tokio_util::sync::CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = token.cancelled() => return,
                    a = listener.accept() => a,
                };
                let Ok((mut inbound, _)) = accepted else {
                    continue;
                };
                let token = token.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = token.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    }
                });
            }
        });
        Self { addr, stop }
    }

    /// A proxy in front of the server `url` points at; returns it and the URL rewritten to go
    /// through it. `target` is the resolved upstream, for `start_on` after a cut.
    pub async fn in_front_of(url: &str, default_port: u16) -> (Self, String, SocketAddr) {
        let mut url = url::Url::parse(url).expect("service URL");
        let host = format!(
            "{}:{}",
            url.host_str().expect("host"),
            url.port().unwrap_or(default_port)
        );
        let target = tokio::net::lookup_host(host)
            .await
            .expect("resolve")
            .next()
            .expect("an address");
        let proxy = Self::start(target).await;
        url.set_host(Some("127.0.0.1")).expect("host");
        url.set_port(Some(proxy.addr.port())).expect("port");
        (proxy, url.to_string(), target)
    }

    /// Closes the listener and every proxied connection.
    pub fn cut(&self) {
        self.stop.cancel();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
