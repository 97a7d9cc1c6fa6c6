//! Compression at the edge. Responses: gzip, br or zstd by `Accept-Encoding` (tower-http), above
//! `server.compress_min_bytes`; event streams are left to `gzip_events`, because a buffering
//! encoder would hold events back, and so are ranged downloads (`not_ranged`). Requests: a compressed body is accepted and decompressed as
//! it is read, and `server.body_limit_bytes` applies to what it decompresses to (a zip bomb
//! gets 413 after that many bytes, never more in memory).

use axum::http::{header, HeaderMap, HeaderValue};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use std::io::Write;
use tower_http::compression::{
    predicate::{DefaultPredicate, Predicate, SizeAbove},
    CompressionLayer,
};
use tower_http::decompression::RequestDecompressionLayer;

pub fn responses(min_bytes: u16) -> CompressionLayer<impl Predicate> {
    CompressionLayer::new()
        .gzip(true)
        .br(true)
        .zstd(true)
        .compress_when(
            DefaultPredicate::new()
                .and(SizeAbove::new(min_bytes))
                .and(not_ranged),
        )
}

/// A resource served with `Accept-Ranges` (file downloads) keeps one representation: its
/// strong `ETag` and byte ranges are of the stored bytes, never of a compressed copy.
fn not_ranged(
    _: axum::http::StatusCode,
    _: axum::http::Version,
    h: &HeaderMap,
    _: &axum::http::Extensions,
) -> bool {
    !h.contains_key(header::ACCEPT_RANGES)
}

pub fn requests() -> RequestDecompressionLayer {
    RequestDecompressionLayer::new()
        .gzip(true)
        .br(true)
        .zstd(true)
}

/// Whether the client takes gzip (`Accept-Encoding: gzip` without `q=0`).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            let mut it = part.split(';').map(str::trim);
            let name = it.next().unwrap_or("");
            let refused = it.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

/// Marks a response as gzip-encoded.
pub fn mark_gzip(headers: &mut HeaderMap) {
    headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
}

/// Gzips an event stream with a sync flush after every chunk, so each event reaches the client
/// as soon as it is written, while later events still compress against earlier ones (the
/// repeated `chat.completion.chunk` envelope shrinks to a few bytes).
pub fn gzip_events<S, E>(events: S) -> impl Stream<Item = Result<Bytes, E>> + Send
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: Send + 'static,
{
    let enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    futures::stream::unfold(Some((events, enc)), |state| async move {
        let (mut events, mut enc) = state?;
        match events.next().await {
            Some(Ok(chunk)) => {
                // Writing to a Vec cannot fail.
                let _ = enc.write_all(&chunk).and_then(|()| enc.flush());
                let out = Bytes::from(std::mem::take(enc.get_mut()));
                Some((Ok(out), Some((events, enc))))
            }
            Some(Err(e)) => Some((Err(e), None)),
            None => {
                let tail = enc.finish().unwrap_or_default();
                Some((Ok(Bytes::from(tail)), None))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn each_event_decodes_as_soon_as_it_is_sent() {
        let events = ["data: one\n\n", "data: two\n\n", "data: [DONE]\n\n"];
        let input = futures::stream::iter(events.map(|e| Ok::<_, ()>(Bytes::from(e))));
        let out: Vec<Bytes> =
            futures::executor::block_on(gzip_events(input).map(|r| r.unwrap()).collect::<Vec<_>>());
        // After each chunk alone, what was sent so far decodes to every event so far.
        let mut sent = Vec::new();
        for (i, chunk) in out.iter().take(events.len()).enumerate() {
            sent.extend_from_slice(chunk);
            let mut d = flate2::read::GzDecoder::new(&sent[..]);
            let mut text = Vec::new();
            let _ = d.read_to_end(&mut text); // no trailer yet: ends in an error
            assert_eq!(String::from_utf8(text).unwrap(), events[..=i].concat());
        }
        let whole: Vec<u8> = out.concat();
        let mut text = String::new();
        flate2::read::GzDecoder::new(&whole[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, events.concat());
    }

    #[test]
    fn accept_encoding_is_read_with_its_weights() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            m
        };
        assert!(accepts_gzip(&h("gzip, deflate, br")));
        assert!(accepts_gzip(&h("br;q=1.0, GZIP;q=0.5")));
        assert!(accepts_gzip(&h("*")));
        assert!(!accepts_gzip(&h("gzip;q=0")));
        assert!(!accepts_gzip(&h("br, zstd")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
