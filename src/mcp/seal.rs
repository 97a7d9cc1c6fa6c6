//! MCP header values (bearer tokens of users' servers) are stored sealed: AES-256-GCM with a
//! key from `mcp.secrets_key_file` (generated in the data dir when not configured, mode 0600),
//! bound to the user, the server and the header name, so a copied database file or a value
//! moved to another row opens to nothing. Several instances share the key file, as they share
//! signing keys.

use base64::{engine::general_purpose::STANDARD, Engine};
use ring::{
    aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN},
    rand::{SecureRandom, SystemRandom},
};
use std::path::Path;
use uuid::Uuid;

const PREFIX: &str = "enc:v1:";

/// Owned by the MCP manager for the life of the process.
pub struct Sealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<key>)")
    }
}

fn aad(user: Uuid, server: Uuid, name: &str) -> String {
    format!("{user}:{server}:{name}")
}

impl Sealer {
    /// Reads the key file (base64 of 32 bytes), or creates `data_dir/mcp-secrets.key` with a
    /// fresh key when no file is configured.
    pub fn load(file: Option<&Path>, data_dir: &Path) -> anyhow::Result<Self> {
        let path = match file {
            Some(p) => p.to_path_buf(),
            None => data_dir.join("mcp-secrets.key"),
        };
        if file.is_none() && !path.exists() {
            std::fs::create_dir_all(data_dir)?;
            let mut k = [0u8; 32];
            SystemRandom::new()
                .fill(&mut k)
                .map_err(|_| anyhow::anyhow!("no randomness for the MCP secrets key"))?;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            std::io::Write::write_all(&mut opts.open(&path)?, STANDARD.encode(k).as_bytes())?;
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("reading MCP secrets key {}: {e}", path.display()))?;
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| anyhow::anyhow!("{} is not base64", path.display()))?;
        Self::from_key(&bytes)
    }

    pub fn from_key(bytes: &[u8]) -> anyhow::Result<Self> {
        let key = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| anyhow::anyhow!("the MCP secrets key must be 32 bytes"))?;
        Ok(Self {
            key: LessSafeKey::new(key),
            rng: SystemRandom::new(),
        })
    }

    pub fn seal(&self, user: Uuid, server: Uuid, name: &str, value: &str) -> Option<String> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let mut buf = value.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(user, server, name).as_bytes()),
                &mut buf,
            )
            .ok()?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Some(format!("{PREFIX}{}", STANDARD.encode(out)))
    }

    /// The stored value in the clear; a value stored before sealing existed is returned as
    /// it is. `None` when it does not open (another key, another row).
    pub fn open(&self, user: Uuid, server: Uuid, name: &str, stored: &str) -> Option<String> {
        let Some(b64) = stored.strip_prefix(PREFIX) else {
            return Some(stored.to_owned());
        };
        let raw = STANDARD.decode(b64).ok()?;
        if raw.len() < NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let mut buf = sealed.to_vec();
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let plain = self
            .key
            .open_in_place(
                nonce,
                Aad::from(aad(user, server, name).as_bytes()),
                &mut buf,
            )
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }

    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_bound_to_its_row() {
        let s = Sealer::from_key(&[7u8; 32]).unwrap();
        let (u, v, srv) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let sealed = s
            .seal(u, srv, "Authorization", "Bearer top-secret")
            .unwrap();
        assert!(!sealed.contains("top-secret"));
        assert_eq!(
            s.open(u, srv, "Authorization", &sealed).as_deref(),
            Some("Bearer top-secret")
        );
        assert_eq!(
            s.open(v, srv, "Authorization", &sealed),
            None,
            "another user's row"
        );
        assert_eq!(s.open(u, srv, "X-Other", &sealed), None, "another header");
        let other = Sealer::from_key(&[8u8; 32]).unwrap();
        assert_eq!(
            other.open(u, srv, "Authorization", &sealed),
            None,
            "another key"
        );
        assert_eq!(s.open(u, srv, "A", "legacy").as_deref(), Some("legacy"));
    }
}
