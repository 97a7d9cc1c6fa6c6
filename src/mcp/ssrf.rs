//! Refuses MCP URLs that point into the server's own network: loopback, private, link-local
//! (cloud metadata at 169.254.169.254), unique-local, CGNAT, multicast, unspecified — checked on
//! every address the host name resolves to, so a public name for a private address is refused
//! too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => internal_v4(v4),
            None => internal_v6(v6),
        },
    }
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (64..128).contains(&o[1])) // CGNAT 100.64/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF 192.0.0/24
        || (o[0] == 198 && (18..20).contains(&o[1])) // benchmarking 198.18/15
        || o[0] >= 240 // reserved
}

fn internal_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link local fe80::/10
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64 (embeds an IPv4 address)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("url must be an absolute http:// or https:// URL")]
    Scheme,
    #[error("url must not carry a user name or password; put credentials in headers")]
    Credentials,
    #[error("url host could not be resolved")]
    Unresolved,
    #[error("url resolves to a loopback, private or link-local address ({0}); this server does not connect there")]
    Internal(IpAddr),
}

/// Checks an MCP server URL; resolves its host name.
pub async fn check_url(raw: &str, allow_internal: bool) -> Result<url::Url, UrlError> {
    let url = url::Url::parse(raw).map_err(|_| UrlError::Scheme)?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(UrlError::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Credentials);
    }
    if allow_internal {
        return Ok(url);
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs: Vec<IpAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        Some(url::Host::Domain(d)) => tokio::net::lookup_host((d, port))
            .await
            .map_err(|_| UrlError::Unresolved)?
            .map(|a| a.ip())
            .collect(),
        None => return Err(UrlError::Scheme),
    };
    if addrs.is_empty() {
        return Err(UrlError::Unresolved);
    }
    match addrs.into_iter().find(|ip| is_internal(*ip)) {
        Some(ip) => Err(UrlError::Internal(ip)),
        None => Ok(url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_ranges() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "::",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["1.1.1.1", "8.8.8.8", "2606:4700:4700::1111", "172.32.0.1"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn urls() {
        assert_eq!(check_url("ftp://x/", false).await, Err(UrlError::Scheme));
        assert_eq!(
            check_url("http://u:p@1.1.1.1/", false).await,
            Err(UrlError::Credentials)
        );
        assert!(matches!(
            check_url("http://localhost:9/mcp", false).await,
            Err(UrlError::Internal(_))
        ));
        assert!(matches!(
            check_url("http://[::1]/", false).await,
            Err(UrlError::Internal(_))
        ));
        assert!(check_url("https://1.1.1.1/mcp", false).await.is_ok());
        assert!(check_url("http://127.0.0.1:9/mcp", true).await.is_ok());
    }
}
