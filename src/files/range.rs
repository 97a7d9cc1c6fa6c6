//! `Range: bytes=...` on downloads (RFC 9110 §14): one range is served as 206; a header this
//! server does not take (another unit, several ranges, bad syntax) is ignored and the whole
//! file sent, as the RFC allows; a range wholly past the end is 416.

/// Bytes `start..end` (end exclusive) of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: u64,
    pub end: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Want {
    Whole,
    Part(Span),
    Unsatisfiable,
}

pub fn parse(header: Option<&str>, size: u64) -> Want {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Want::Whole;
    };
    if spec.contains(',') {
        return Want::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Want::Whole;
    };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (a.trim(), b.trim()) {
        ("", n) => match num(n) {
            None => Want::Whole,
            Some(0) => Want::Unsatisfiable,
            Some(_) if size == 0 => Want::Unsatisfiable,
            Some(n) => Want::Part(Span {
                start: size - n.min(size),
                end: size,
            }),
        },
        (a, b) => {
            let Some(start) = num(a) else {
                return Want::Whole;
            };
            let end = if b.is_empty() {
                size
            } else {
                match num(b) {
                    Some(last) if last >= start => last.saturating_add(1).min(size),
                    _ => return Want::Whole,
                }
            };
            if start >= size {
                Want::Unsatisfiable
            } else {
                Want::Part(Span { start, end })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(start: u64, end: u64) -> Want {
        Want::Part(Span { start, end })
    }

    #[test]
    fn the_forms_of_one_range() {
        assert_eq!(parse(Some("bytes=0-9"), 100), part(0, 10));
        assert_eq!(parse(Some("bytes=90-"), 100), part(90, 100));
        assert_eq!(parse(Some("bytes=-5"), 100), part(95, 100));
        assert_eq!(parse(Some("bytes=-500"), 100), part(0, 100));
        assert_eq!(parse(Some("bytes=50-5000"), 100), part(50, 100));
        assert_eq!(parse(Some("bytes=100-"), 100), Want::Unsatisfiable);
        assert_eq!(parse(Some("bytes=-0"), 100), Want::Unsatisfiable);
        assert_eq!(parse(Some("bytes=0-0"), 0), Want::Unsatisfiable);
        for ignored in [
            "items=0-1",
            "bytes=0-1,5-6",
            "bytes=9-3",
            "bytes=a-b",
            "bytes=--1",
        ] {
            assert_eq!(parse(Some(ignored), 100), Want::Whole, "{ignored}");
        }
        assert_eq!(parse(None, 100), Want::Whole);
    }
}
