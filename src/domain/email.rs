//! An e-mail address, normalized (trimmed, lower-cased) so uniqueness is case-insensitive.

use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EmailError {
    #[error("email must look like name@example.com")]
    Invalid,
    #[error("email must be at most 254 characters")]
    TooLong,
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let s = raw.trim().to_lowercase();
        if s.len() > 254 {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = s.split_once('@').ok_or(EmailError::Invalid)?;
        let ok = !local.is_empty()
            && local.len() <= 64
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && !s.chars().any(|c| c.is_whitespace() || c.is_control());
        if ok {
            Ok(Self(s))
        } else {
            Err(EmailError::Invalid)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or_default()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_rejects() {
        assert_eq!(Email::parse(" A@B.Co ").map(|e| e.0), Ok("a@b.co".into()));
        assert_eq!(Email::parse("nope"), Err(EmailError::Invalid));
        assert_eq!(Email::parse("a@b"), Err(EmailError::Invalid));
        assert_eq!(Email::parse("a b@c.d"), Err(EmailError::Invalid));
        assert_eq!(
            Email::parse(&format!("{}@x.io", "a".repeat(260))),
            Err(EmailError::TooLong)
        );
    }
}
