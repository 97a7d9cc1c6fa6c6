//! Redis Cluster's key slots: CRC16 (XMODEM) of the key, or of its `{hash tag}` when it has a
//! non-empty one, modulo 16384. Keys and shard channels name their session (or user, or turn)
//! as the hash tag, so everything about one session lives on one shard.

pub const SLOTS: u16 = 16384;

/// The slot `key` lives in.
pub fn slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) % SLOTS
}

/// The part of `key` that is hashed: between the first `{` and the next `}` when that is not
/// empty, else the whole key.
fn hash_tag(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|&b| b == b'{') else {
        return key;
    };
    match key[open + 1..].iter().position(|&b| b == b'}') {
        Some(len) if len > 0 => &key[open + 1..open + 1 + len],
        _ => key,
    }
}

fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// `{name}`: a key part that is its own hash tag.
pub fn tagged(name: &str) -> String {
    format!("{{{name}}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_cluster_specification() {
        // The specification's check value and examples (redis.io, cluster spec).
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"{user1000}.following"), slot(b"{user1000}.followers"));
        assert_eq!(slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % SLOTS);
        assert_eq!(slot(b"foo{{bar}}zap"), crc16(b"{bar") % SLOTS);
        assert_eq!(slot(b"foo{bar}{zap}"), crc16(b"bar") % SLOTS);
    }

    #[test]
    fn a_sessions_keys_and_channel_share_a_slot() {
        let ch = "session:5f0e5b0c-0000-4000-8000-000000000001";
        let a = format!("switchyard:ch:{}", tagged(ch));
        let b = format!("switchyard:presence:{}", tagged(ch));
        let c = format!("switchyard:turn:c:{}:0193", tagged(ch));
        assert_eq!(slot(a.as_bytes()), slot(b.as_bytes()));
        assert_eq!(slot(a.as_bytes()), slot(c.as_bytes()));
    }
}
