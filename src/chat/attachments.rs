//! Files attached to a turn's messages, loaded for the model within the turn's budget: text
//! files become context in the message (`files.turn_text_budget_bytes` across the turn, the
//! newest messages first, a cut said in the prompt), images become image parts (at most
//! `files.turn_max_images`), other files are named but not sent.

use crate::{
    error::AppError,
    files::{kind, FileService},
    llm::{Image, Part},
    store::FileRecord,
    sync::{merge::Doc, ops::MessageRole},
};
use base64::Engine;
use serde_json::{json, Value};
use std::collections::HashMap;
use uuid::Uuid;

/// A message's attachments as its metadata records them: `{"attachments": [{"file_id"}]}`.
pub fn ids_of(metadata: &Value) -> Vec<Uuid> {
    metadata["attachments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["file_id"].as_str().or(a.as_str())?.parse().ok())
        .collect()
}

/// What `chat.send` records for its files in the user message's metadata.
pub fn metadata_of(files: &[FileRecord]) -> Value {
    if files.is_empty() {
        return Value::Null;
    }
    let list: Vec<Value> = files
        .iter()
        .map(|f| {
            json!({"file_id": f.id, "filename": f.filename, "content_type": f.content_type,
                "size": f.size})
        })
        .collect();
    json!({ "attachments": list })
}

/// One attachment as the model gets it.
enum Loaded {
    Text(String),
    Image(Image),
    Note(String),
}

/// The loaded attachments of a turn, by file id.
#[derive(Default)]
pub struct Attached(HashMap<Uuid, Loaded>);

impl Attached {
    /// A user message's text with its attachments' context after it, and its parts when it
    /// carries an image (then the text is the first part).
    pub fn render(&self, text: &str, ids: &[Uuid]) -> (String, Vec<Part>) {
        let (mut out, mut images) = (text.to_owned(), Vec::new());
        for id in ids {
            match self.0.get(id) {
                Some(Loaded::Text(t)) | Some(Loaded::Note(t)) => {
                    out.push_str("\n\n");
                    out.push_str(t);
                }
                Some(Loaded::Image(i)) => images.push(Part::Image(i.clone())),
                None => {}
            }
        }
        if images.is_empty() {
            return (out, Vec::new());
        }
        let mut parts = vec![Part::Text(out.clone())];
        parts.append(&mut images);
        (out, parts)
    }
}

/// The attachments of the messages a turn shows the model (`conversation::request` leaves out
/// assistant, streaming and failed ones), newest message first (`new`: the message being sent),
/// each once, at most `max` (a session holds at most `files.max_files_per_session` files, so
/// more ids than that only name files that do not exist).
pub fn in_order(doc: &Doc, new: &[Uuid], max: usize) -> Vec<Uuid> {
    let shown = doc.transcript().into_iter().rev().filter(|m| {
        m.role != MessageRole::Assistant && !m.streaming && m.metadata["status"] != "failed"
    });
    let mut seen = std::collections::HashSet::new();
    let older = shown.flat_map(|m| ids_of(&m.metadata));
    new.iter()
        .copied()
        .chain(older)
        .filter(|id| seen.insert(*id))
        .take(max)
        .collect()
}

/// Loads what the budget allows, in `order` (newest first).
pub async fn load(
    files: &FileService,
    session: crate::domain::SessionId,
    order: &[Uuid],
) -> Result<Attached, AppError> {
    if order.is_empty() {
        return Ok(Attached::default());
    }
    let c = files.config();
    let (mut budget, mut images) = (c.turn_text_budget_bytes as u64, c.turn_max_images);
    let mut out = HashMap::new();
    for f in files.attached(session, order).await? {
        let ext = crate::files::name::extension(&f.filename).unwrap_or_default();
        let class = kind::of_extension(&ext).map(|k| k.class);
        let loaded = match class {
            Some(kind::Class::Text) if budget == 0 => Loaded::Note(format!(
                "[attached file {} not included: this turn's attachment budget is spent]",
                f.filename
            )),
            Some(kind::Class::Text) => {
                let take = budget.min(f.size);
                let bytes = files.head(&f, take).await?;
                let text = cut_to_char(&bytes);
                budget -= text.len() as u64;
                Loaded::Text(context(&f, text))
            }
            Some(kind::Class::Image) if f.size > c.turn_max_image_bytes => Loaded::Note(format!(
                "[attached image {} not sent: larger than {} bytes]",
                f.filename, c.turn_max_image_bytes
            )),
            Some(kind::Class::Image) if images > 0 => {
                images -= 1;
                let bytes = files.head(&f, f.size).await?;
                let data = base64::engine::general_purpose::STANDARD.encode(bytes);
                Loaded::Image(Image {
                    url: format!("data:{};base64,{data}", f.content_type),
                    detail: None,
                })
            }
            Some(kind::Class::Image) => Loaded::Note(format!(
                "[attached image {} not sent: at most {} images per turn]",
                f.filename, c.turn_max_images
            )),
            _ => Loaded::Note(format!(
                "[attached file {} ({}, {} bytes): not readable by the model]",
                f.filename, f.content_type, f.size
            )),
        };
        out.insert(f.id, loaded);
    }
    Ok(Attached(out))
}

/// The longest valid UTF-8 prefix (a cut may fall inside a character).
fn cut_to_char(bytes: &[u8]) -> &str {
    match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
    }
}

fn context(f: &FileRecord, text: &str) -> String {
    let cut = if (text.len() as u64) < f.size {
        format!(
            "\n[truncated: the first {} of {} bytes are shown]",
            text.len(),
            f.size
        )
    } else {
        String::new()
    };
    format!(
        "<attachment filename=\"{}\" content_type=\"{}\">\n{text}{cut}\n</attachment>",
        f.filename.replace('"', "'"),
        f.content_type
    )
}
