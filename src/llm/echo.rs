//! The built-in `echo` model: streams the last user message back, word by word, so the server
//! does something with no provider key set. Token counts are words.

use super::{
    count_words, ChatRequest, Chunk, ChunkStream, FinishReason, LlmError, Provider, Role, Usage,
};
use async_trait::async_trait;
use std::time::Duration;

pub const MODEL_ID: &str = "echo";

pub struct Echo {
    pub chunk_delay: Duration,
}

/// The reply: the last user message, or a fixed line when there is none.
pub fn reply(req: &ChatRequest) -> String {
    req.messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(|m| m.content.clone())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "(echo: nothing to repeat)".into())
}

/// `text` cut after each run of whitespace, so the pieces concatenate back to it exactly.
pub fn pieces(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_space = false;
    for ch in text.chars() {
        if in_space && !ch.is_whitespace() {
            out.push(std::mem::take(&mut cur));
        }
        in_space = ch.is_whitespace();
        cur.push(ch);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[async_trait]
impl Provider for Echo {
    async fn stream(&self, req: ChatRequest) -> Result<ChunkStream, LlmError> {
        let text = reply(&req);
        let mut parts = pieces(&text);
        let mut finish = FinishReason::Stop;
        if let Some(max) = req.max_tokens {
            if parts.len() > max as usize {
                parts.truncate(max as usize);
                finish = FinishReason::Length;
            }
        }
        let usage = Usage {
            prompt_tokens: req.messages.iter().map(|m| count_words(&m.content)).sum(),
            completion_tokens: parts.len() as u64,
        };
        let mut chunks: Vec<Result<Chunk, LlmError>> =
            parts.into_iter().map(|p| Ok(Chunk::Text(p))).collect();
        chunks.push(Ok(Chunk::Finish(finish)));
        chunks.push(Ok(Chunk::Usage(usage)));
        let stream = futures::stream::iter(chunks);
        if self.chunk_delay.is_zero() {
            return Ok(Box::pin(stream));
        }
        let delay = self.chunk_delay;
        Ok(Box::pin(futures::StreamExt::then(
            stream,
            move |c| async move {
                tokio::time::sleep(delay).await;
                c
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pieces_join_back_to_the_text() {
        for t in [
            "hello world",
            "  lead and trail  ",
            "one",
            "a\n\nb c",
            "",
            "héllo wörld",
        ] {
            assert_eq!(super::pieces(t).concat(), t);
        }
        assert_eq!(super::pieces("a b  c"), vec!["a ", "b  ", "c"]);
    }
}
