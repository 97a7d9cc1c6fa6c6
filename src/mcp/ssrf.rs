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
    let embedded = |hi: u16, lo: u16| {
        internal_v4(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        ))
    };
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site local fec0::/10 (deprecated, still routed inward)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] == 0) // Teredo (embeds an obfuscated IPv4 address)
        || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64 (embeds an IPv4 address)
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only 100::/64
        || (s[0] == 0x2002 && embedded(s[1], s[2])) // 6to4 of an internal IPv4 address
        || (s[..6] == [0; 6] && embedded(s[6], s[7])) // IPv4-compatible ::a.b.c.d
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("url must be an absolute http:// or https:// URL")]
    Scheme,
    #[error("url must not carry a user name or password; put credentials in headers")]
    Credentials,
    #[error("url host could not be resolved")]
    Unresolved,
    /// Which address is not said: the refusal must not map the internal network.
    #[error("url resolves to a loopback, private or link-local address; this server does not connect there")]
    Internal,
}

/// A URL that passed, with the addresses its host resolved to when they were checked (empty
/// when private addresses are allowed and nothing was checked).
#[derive(Debug)]
pub struct Checked {
    pub url: url::Url,
    pub addrs: Vec<std::net::SocketAddr>,
}

/// Checks an MCP server URL; resolves its host name. Called at configuration and again on
/// every connect (a name may resolve elsewhere later).
pub async fn check_url(raw: &str, allow_internal: bool) -> Result<Checked, UrlError> {
    let url = url::Url::parse(raw).map_err(|_| UrlError::Scheme)?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(UrlError::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Credentials);
    }
    if allow_internal {
        return Ok(Checked {
            url,
            addrs: Vec::new(),
        });
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs: Vec<std::net::SocketAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![(IpAddr::V4(ip), port).into()],
        Some(url::Host::Ipv6(ip)) => vec![(IpAddr::V6(ip), port).into()],
        Some(url::Host::Domain(d)) => tokio::net::lookup_host((d, port))
            .await
            .map_err(|_| UrlError::Unresolved)?
            .collect(),
        None => return Err(UrlError::Scheme),
    };
    if addrs.is_empty() {
        return Err(UrlError::Unresolved);
    }
    if addrs.iter().any(|a| is_internal(a.ip())) {
        return Err(UrlError::Internal);
    }
    Ok(Checked { url, addrs })
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
            "::10.0.0.1",
            "::127.0.0.1",
            "2002:a00:1::1",
            "2002:7f00:1::",
            "fec0::1",
            "100::1",
            "2001:0:4136:e378::1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "2606:4700:4700::1111",
            "172.32.0.1",
            "2002:101:101::1",
        ] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn urls() {
        assert_eq!(
            check_url("ftp://x/", false).await.unwrap_err(),
            UrlError::Scheme
        );
        assert_eq!(
            check_url("http://u:p@1.1.1.1/", false).await.unwrap_err(),
            UrlError::Credentials
        );
        assert_eq!(
            check_url("http://localhost:9/mcp", false)
                .await
                .unwrap_err(),
            UrlError::Internal
        );
        assert_eq!(
            check_url("http://[::1]/", false).await.unwrap_err(),
            UrlError::Internal
        );
        assert!(!UrlError::Internal.to_string().contains("127."));
        assert!(check_url("https://1.1.1.1/mcp", false).await.is_ok());
        assert!(check_url("http://127.0.0.1:9/mcp", true).await.is_ok());
    }
}
