//! Access tokens: EdDSA (Ed25519) JWTs with `iss`, `aud`, `exp`, `kid`.
//!
//! Several keys may be loaded: the first signs, all verify, and all are published at
//! `/.well-known/jwks.json`, so a key can be rotated in by listing it second, then first, then
//! dropping the old one once its tokens have expired. Instances of one deployment share keys by
//! reading the same key files.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use crate::domain::{Role, UserId};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {path} is not an Ed25519 PKCS#8 PEM key")]
    Format { path: PathBuf },
    #[error("key generation failed")]
    Generate,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("access token expired")]
    Expired,
    #[error("access token is not valid: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: UserId,
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub role: Role,
    /// The sign-in (refresh family) this token came from, so revoking one sign-in refuses its
    /// access tokens at once. Absent from tokens issued before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<uuid::Uuid>,
}

struct Key {
    kid: String,
    public: [u8; 32],
    encoding: EncodingKey,
    decoding: DecodingKey,
}

/// Loaded once at start-up; shared read-only by every request.
pub struct KeySet {
    keys: Vec<Key>,
    by_kid: HashMap<String, usize>,
    /// Derives a refresh token's successor from it (HMAC), so a replay inside the reuse grace
    /// window gets the same successor on every instance (they share the signing key).
    succession: ring::hmac::Key,
    issuer: String,
    audience: String,
    leeway: u64,
}

impl KeySet {
    /// From PKCS#8 DER documents; the first signs.
    pub fn from_der(
        ders: &[Vec<u8>],
        issuer: &str,
        audience: &str,
        leeway: u64,
    ) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        for der in ders {
            let pair =
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|_| KeyError::Format {
                    path: PathBuf::new(),
                })?;
            let mut public = [0u8; 32];
            public.copy_from_slice(pair.public_key().as_ref());
            let x = URL_SAFE_NO_PAD.encode(public);
            keys.push(Key {
                kid: hex::encode(&Sha256::digest(public)[..8]),
                public,
                encoding: EncodingKey::from_ed_der(der),
                decoding: DecodingKey::from_ed_components(&x).map_err(|_| KeyError::Format {
                    path: PathBuf::new(),
                })?,
            });
        }
        let by_kid = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.kid.clone(), i))
            .collect();
        let mut seed = Sha256::new();
        seed.update(b"switchyard refresh-token succession\0");
        seed.update(ders.first().map(Vec::as_slice).unwrap_or_default());
        let succession = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &seed.finalize());
        Ok(Self {
            keys,
            by_kid,
            succession,
            issuer: issuer.into(),
            audience: audience.into(),
            leeway,
        })
    }

    /// Reads `files`, or when there are none, `<data_dir>/jwt-ed25519.pem`, created (0600) on
    /// first start.
    pub fn load(
        files: &[PathBuf],
        data_dir: &Path,
        issuer: &str,
        audience: &str,
        leeway: u64,
    ) -> Result<Self, KeyError> {
        let mut ders = Vec::new();
        if files.is_empty() {
            let path = data_dir.join("jwt-ed25519.pem");
            if !path.exists() {
                std::fs::create_dir_all(data_dir).map_err(|source| KeyError::Io {
                    path: data_dir.into(),
                    source,
                })?;
                write_new_key(&path)?;
                tracing::info!(path = %path.display(), "generated a new JWT signing key");
            }
            ders.push(read_pem(&path)?);
        } else {
            for f in files {
                ders.push(read_pem(f)?);
            }
        }
        Self::from_der(&ders, issuer, audience, leeway)
    }

    pub fn succession_key(&self) -> &ring::hmac::Key {
        &self.succession
    }

    pub fn signing_kid(&self) -> &str {
        &self.keys[0].kid
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let key = &self.keys[0];
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .expect("Ed25519 signing of serializable claims cannot fail")
    }

    pub fn issue(
        &self,
        user: UserId,
        role: Role,
        sid: Option<uuid::Uuid>,
        ttl_secs: u64,
    ) -> (String, i64) {
        let now = chrono::Utc::now().timestamp();
        let exp = now + ttl_secs as i64;
        let claims = Claims {
            sub: user,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp,
            iat: now,
            role,
            sid,
        };
        (self.sign(&claims), exp)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| TokenError::Invalid("malformed token".into()))?;
        let kid = header
            .kid
            .ok_or_else(|| TokenError::Invalid("no kid".into()))?;
        let idx = *self
            .by_kid
            .get(&kid)
            .ok_or_else(|| TokenError::Invalid("unknown signing key".into()))?;
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.leeway = self.leeway;
        jsonwebtoken::decode::<Claims>(token, &self.keys[idx].decoding, &v)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                jsonwebtoken::errors::ErrorKind::InvalidAudience => {
                    TokenError::Invalid("wrong audience".into())
                }
                jsonwebtoken::errors::ErrorKind::InvalidIssuer => {
                    TokenError::Invalid("wrong issuer".into())
                }
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    TokenError::Invalid("bad signature".into())
                }
                _ => TokenError::Invalid("malformed token".into()),
            })
    }

    /// The JWKS document (RFC 7517/8037) with every verifying key.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = self
            .keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                    "kid": k.kid, "x": URL_SAFE_NO_PAD.encode(k.public),
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

/// Generates an Ed25519 key as PKCS#8 DER.
pub fn generate_der() -> Result<Vec<u8>, KeyError> {
    let rng = ring::rand::SystemRandom::new();
    Ed25519KeyPair::generate_pkcs8(&rng)
        .map(|d| d.as_ref().to_vec())
        .map_err(|_| KeyError::Generate)
}

/// Writes a fresh key as PEM, readable by the owner only.
pub fn write_new_key(path: &Path) -> Result<String, KeyError> {
    let der = generate_der()?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    let io = |source| KeyError::Io {
        path: path.into(),
        source,
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(io)?;
    std::io::Write::write_all(&mut f, pem.as_bytes()).map_err(io)?;
    let set = KeySet::from_der(&[der], "", "", 0)?;
    Ok(set.signing_kid().to_string())
}

fn read_pem(path: &Path) -> Result<Vec<u8>, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.into(),
        source,
    })?;
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .map_err(|_| KeyError::Format { path: path.into() })?;
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
        .map_err(|_| KeyError::Format { path: path.into() })?;
    Ok(der)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ders: &[Vec<u8>]) -> KeySet {
        KeySet::from_der(ders, "iss", "aud", 0).expect("keys")
    }

    #[test]
    fn roundtrip_and_rotation() {
        let (old, new) = (generate_der().expect("k"), generate_der().expect("k"));
        let before = set(std::slice::from_ref(&old));
        let (token, _) = before.issue(UserId::new(), Role::User, None, 60);
        // After rotation the new key signs but tokens from the old one still verify.
        let after = set(&[new, old]);
        assert!(after.verify(&token).is_ok());
        assert_ne!(after.signing_kid(), before.signing_kid());
        assert_eq!(after.jwks()["keys"].as_array().map(Vec::len), Some(2));
        // A key set without the old key refuses its tokens.
        let other = set(&[generate_der().expect("k")]);
        assert!(matches!(other.verify(&token), Err(TokenError::Invalid(_))));
    }

    #[test]
    fn expired_and_wrong_audience() {
        let s = set(&[generate_der().expect("k")]);
        let now = chrono::Utc::now().timestamp();
        let mut c = Claims {
            sub: UserId::new(),
            iss: "iss".into(),
            aud: "aud".into(),
            exp: now - 10,
            iat: now - 100,
            role: Role::User,
            sid: None,
        };
        assert_eq!(s.verify(&s.sign(&c)).err(), Some(TokenError::Expired));
        c.exp = now + 100;
        c.aud = "other".into();
        assert!(matches!(s.verify(&s.sign(&c)), Err(TokenError::Invalid(_))));
    }

    #[test]
    fn pem_file_is_private_and_loads() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = KeySet::load(&[], dir.path(), "i", "a", 0).expect("generate");
        let b = KeySet::load(&[], dir.path(), "i", "a", 0).expect("reload");
        assert_eq!(a.signing_kid(), b.signing_kid());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("jwt-ed25519.pem"))
                .expect("m")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
