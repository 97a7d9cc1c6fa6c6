//! Client addresses as limits count them: an IPv4 address, or an IPv6 /64 (one subscriber
//! typically holds a whole /64, so counting single IPv6 addresses would count nothing).

use std::net::{IpAddr, Ipv6Addr};

/// The unit a per-client limit is kept for.
pub fn client_bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::client_bucket;

    #[test]
    fn ipv6_counts_by_64_and_mapped_v4_as_v4() {
        let a = client_bucket("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = client_bucket("2001:db8:1:2:bbbb::9".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, client_bucket("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(
            client_bucket("::ffff:10.0.0.1".parse().unwrap()),
            "10.0.0.1".parse::<std::net::IpAddr>().unwrap()
        );
    }
}
