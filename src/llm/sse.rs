//! An incremental server-sent-events parser (the WHATWG algorithm, minus reconnection): bytes
//! go in as they arrive from the socket, complete events come out. A chunk boundary may fall
//! anywhere, even inside a CRLF or a multi-byte UTF-8 character; comments (`: keepalive`) and
//! unknown fields are skipped; several `data:` lines join with `\n`.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `event:` field; `None` means the default, "message".
    pub event: Option<String>,
    pub data: String,
}

/// Longest line accepted; a longer one is a protocol error rather than unbounded memory.
pub const MAX_LINE: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SseError {
    #[error("SSE line longer than {MAX_LINE} bytes")]
    LineTooLong,
    #[error("SSE stream is not UTF-8")]
    NotUtf8,
}

#[derive(Default)]
pub struct Parser {
    buf: Vec<u8>,
    /// A `\r` ended the last chunk: a `\n` starting the next one belongs to it.
    pending_cr: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; returns the events they completed.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<Vec<Event>, SseError> {
        let mut out = Vec::new();
        if self.pending_cr {
            self.pending_cr = false;
            if chunk.first() == Some(&b'\n') {
                chunk = &chunk[1..];
            }
        }
        let mut start = 0;
        let mut i = 0;
        while i < chunk.len() {
            match chunk[i] {
                b'\n' | b'\r' => {
                    self.buf.extend_from_slice(&chunk[start..i]);
                    let line = std::mem::take(&mut self.buf);
                    self.line(&line, &mut out)?;
                    if chunk[i] == b'\r' {
                        if i + 1 == chunk.len() {
                            self.pending_cr = true;
                        } else if chunk[i + 1] == b'\n' {
                            i += 1;
                        }
                    }
                    start = i + 1;
                }
                _ => {}
            }
            i += 1;
        }
        self.buf.extend_from_slice(&chunk[start..]);
        if self.buf.len() > MAX_LINE {
            return Err(SseError::LineTooLong);
        }
        Ok(out)
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<Event>) -> Result<(), SseError> {
        if line.is_empty() {
            if self.has_data {
                out.push(Event {
                    event: self.event.take(),
                    data: std::mem::take(&mut self.data),
                });
            }
            self.event = None;
            self.has_data = false;
            return Ok(());
        }
        let line = std::str::from_utf8(line).map_err(|_| SseError::NotUtf8)?;
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_at_once(s: &str) -> Vec<Event> {
        Parser::new().feed(s.as_bytes()).unwrap()
    }

    fn byte_by_byte(s: &str) -> Vec<Event> {
        let mut p = Parser::new();
        s.as_bytes()
            .iter()
            .flat_map(|b| p.feed(std::slice::from_ref(b)).unwrap())
            .collect()
    }

    #[test]
    fn splits_anywhere_and_handles_crlf_comments_and_multiline() {
        let stream = ": keepalive\r\n\r\ndata: {\"a\":1}\r\n\r\nevent: message_delta\ndata: line1\ndata: line2\n\ndata:é\r\rid: 5\nretry: 10\ndata: [DONE]\n\n";
        let want = vec![
            Event {
                event: None,
                data: "{\"a\":1}".into(),
            },
            Event {
                event: Some("message_delta".into()),
                data: "line1\nline2".into(),
            },
            Event {
                event: None,
                data: "é".into(),
            },
            Event {
                event: None,
                data: "[DONE]".into(),
            },
        ];
        assert_eq!(all_at_once(stream), want);
        assert_eq!(
            byte_by_byte(stream),
            want,
            "a chunk boundary anywhere, even inside CRLF or é"
        );
    }

    #[test]
    fn an_event_without_data_is_not_dispatched_and_limits_hold() {
        assert!(all_at_once("event: ping\n\n").is_empty());
        let mut p = Parser::new();
        assert_eq!(
            p.feed(&vec![b'x'; MAX_LINE + 1]),
            Err(SseError::LineTooLong)
        );
        assert_eq!(
            Parser::new().feed(b"data: \xff\n\n"),
            Err(SseError::NotUtf8)
        );
    }
}
