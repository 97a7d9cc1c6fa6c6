//! Filenames as clients send them, made safe to store and echo: no path parts, no control or
//! invisible characters, no bidirectional overrides (`invoice\u{202E}fdp.exe` reads as
//! `invoiceexe.pdf`), and compatibility forms folded (a fullwidth `／` is a slash).

use unicode_normalization::UnicodeNormalization;

/// Longest stored filename, in bytes.
pub const MAX_FILENAME: usize = 255;

/// Characters that change how text is displayed without being seen.
fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
            | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}'
            | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFF}'
            | '\u{E0000}'..='\u{E0FFF}')
}

/// The name to keep, or why there is none.
pub fn clean(raw: &str) -> Result<String, String> {
    let folded: String = raw.nfkc().collect();
    let last = folded.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut out = String::with_capacity(last.len());
    let mut space = false;
    for c in last.chars().filter(|c| !invisible(*c)) {
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.push(c);
    }
    let out = out
        .trim_start_matches(['.', ' '])
        .trim_end_matches(['.', ' ']);
    if out.is_empty() {
        return Err(
            "filename must name a file (a name with no path, control or invisible characters)"
                .into(),
        );
    }
    if out.len() > MAX_FILENAME {
        return Err(format!("filename must be at most {MAX_FILENAME} bytes"));
    }
    Ok(out.to_owned())
}

/// The extension, lower case (`None` without one).
pub fn extension(name: &str) -> Option<String> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

/// `Content-Disposition: attachment` with an ASCII fallback and the exact name (RFC 6266 and
/// 8187), so no browser renders an upload inline as a page of the server's origin.
pub fn disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '_',
        })
        .collect();
    let mut exact = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            exact.push(b as char);
        } else {
            exact.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{exact}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parts_and_tricks_are_taken_out() {
        assert_eq!(clean("../../etc/passwd.txt").unwrap(), "passwd.txt");
        assert_eq!(clean("C:\\Users\\me\\notes.md").unwrap(), "notes.md");
        assert_eq!(clean("a\u{FF0F}b.txt").unwrap(), "b.txt");
        assert_eq!(clean("invoice\u{202E}fdp.exe").unwrap(), "invoicefdp.exe");
        assert_eq!(
            clean("zero\u{200B}width\u{0007}.png").unwrap(),
            "zerowidth.png"
        );
        assert_eq!(clean("  two   words .txt ").unwrap(), "two words .txt");
        assert_eq!(clean(".hidden.txt").unwrap(), "hidden.txt");
        assert!(clean("../..").is_err());
        assert!(clean("\u{202E}\u{200B}").is_err());
        assert!(clean(&"a".repeat(300)).is_err());
    }

    #[test]
    fn the_extension_is_the_last_one() {
        assert_eq!(extension("a.tar.GZ").as_deref(), Some("gz"));
        assert_eq!(extension("README"), None);
        assert_eq!(extension("hidden."), None);
    }

    #[test]
    fn disposition_is_quoted_and_exact() {
        assert_eq!(
            disposition("naïve \"x\".txt"),
            "attachment; filename=\"na_ve _x_.txt\"; filename*=UTF-8''na%C3%AFve%20%22x%22.txt"
        );
    }
}
