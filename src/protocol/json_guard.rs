//! A look at client JSON before anything parses or relays it: how deep it nests and whether it
//! carries U+0000. One pass over the bytes, no allocation. Malformed JSON is left to the
//! parser; this only refuses what a parser would accept and should not (a 30,000-deep array
//! relayed to every subscriber crashes receivers; NUL cannot be stored by PostgreSQL).

/// What the scan found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// A string holds `\u0000`.
    pub has_nul: bool,
}

/// Nesting deeper than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("JSON nests deeper than {0} levels")]
pub struct TooDeep(pub usize);

/// Scans `json`; `max_depth` counts arrays and objects (the frame object itself is 1).
pub fn scan(json: &[u8], max_depth: usize) -> Result<Scan, TooDeep> {
    let (mut depth, mut in_string, mut has_nul) = (0usize, false, false);
    let mut i = 0;
    while i < json.len() {
        let b = json[i];
        if in_string {
            match b {
                b'\\' => {
                    if json.get(i + 1) == Some(&b'u') && json.get(i + 2..i + 6) == Some(b"0000") {
                        has_nul = true;
                    }
                    i += 1; // skip the escaped character
                }
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > max_depth {
                        return Err(TooDeep(max_depth));
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        i += 1;
    }
    Ok(Scan { has_nul })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_nesting_outside_strings_only() {
        assert_eq!(scan(br#"{"a":[[1]]}"#, 3), Ok(Scan { has_nul: false }));
        assert_eq!(scan(br#"{"a":[[[1]]]}"#, 3), Err(TooDeep(3)));
        assert!(scan(br#"{"a":"[[[[[[[[{{{{"}"#, 1).is_ok());
        let deep = "[".repeat(30_000) + &"]".repeat(30_000);
        assert_eq!(scan(deep.as_bytes(), 32), Err(TooDeep(32)));
    }

    #[test]
    fn finds_escaped_nul_but_not_an_escaped_backslash_before_u0000() {
        assert!(scan(br#"{"a":"x\u0000y"}"#, 4).unwrap().has_nul);
        assert!(!scan(br#"{"a":"x\\u0000y"}"#, 4).unwrap().has_nul);
        assert!(scan(br#"{"a":"\u00001"}"#, 4).unwrap().has_nul);
        assert!(!scan(br#"{"a":"\"[[["}"#, 1).unwrap().has_nul);
    }
}
