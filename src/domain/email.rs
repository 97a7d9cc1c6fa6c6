//! An e-mail address, normalized so that two spellings a person would read as the same address
//! are the same account: Unicode NFKC (fullwidth `ａ` is `a`), invisible format characters
//! (zero-width spaces and joiners, bidi marks) removed, trimmed, lower-cased.

use serde::Serialize;
use std::fmt;
use unicode_normalization::UnicodeNormalization;

/// Unicode's format characters (General_Category Cf): invisible, so never part of an address.
pub fn is_format(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x0890..=0x0891 | 0x08E2
        | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F
        | 0xFEFF | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F)
}

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
        let s: String = raw.nfkc().filter(|c| !is_format(*c)).collect();
        let s = s.trim().to_lowercase();
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
        // Lookalikes are the same address: fullwidth letters, zero-width characters.
        assert_eq!(
            Email::parse("ａｌｉｃｅ@ｅｘａｍｐｌｅ.com").map(|e| e.0),
            Ok("alice@example.com".into())
        );
        assert_eq!(
            Email::parse("al\u{200b}ice@exam\u{200d}ple.com\u{feff}").map(|e| e.0),
            Ok("alice@example.com".into())
        );
        assert_eq!(Email::parse("nope"), Err(EmailError::Invalid));
        assert_eq!(Email::parse("a@b"), Err(EmailError::Invalid));
        assert_eq!(Email::parse("a b@c.d"), Err(EmailError::Invalid));
        assert_eq!(
            Email::parse(&format!("{}@x.io", "a".repeat(260))),
            Err(EmailError::TooLong)
        );
    }
}
