//! A user running chat turns one after another in one session, reconnecting (to the next
//! target) whenever the socket goes, picking a running turn back up from the subscribe reply,
//! and writing down how every turn it saw ended.

use super::link::{Down, Link};
use super::writer::Phases;
use serde_json::{json, Value};
use std::{collections::BTreeMap, time::Duration};
use tokio::time::Instant;

pub struct Driver {
    pub session_id: String,
    pub token: String,
    pub targets: Vec<String>,
    /// What each turn asks (the echo model answers it word by word).
    pub message: String,
}

/// How one turn ended, as this user saw it.
#[derive(Debug, Clone)]
pub struct TurnEnd {
    pub turn_id: String,
    pub message_id: String,
    /// `done:<status>`, `error:<code>`.
    pub how: String,
    pub ended_at: Instant,
}

#[derive(Debug, Default)]
pub struct Turns {
    /// Turns started (`chat.send` acknowledged), by id, with their message id.
    pub started: BTreeMap<String, (String, Instant)>,
    pub ended: Vec<TurnEnd>,
    /// Refusals of `chat.send` by code (`turn_active` while an interrupted turn holds the session).
    pub refused: BTreeMap<String, u64>,
    pub anomalies: Vec<String>,
}

impl Driver {
    pub async fn run(self, phases: Phases) -> Turns {
        let mut t = Turns::default();
        let mut attempt = 0usize;
        while !phases.stop_pushing.is_cancelled() {
            let base = &self.targets[attempt % self.targets.len()];
            attempt += 1;
            if let Ok(link) = Link::open(base, &self.token).await {
                if self.serve(link, &mut t, &phases).await.is_ok() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        t
    }

    async fn serve(&self, mut link: Link, t: &mut Turns, phases: &Phases) -> Result<(), Down> {
        let channel = format!("session:{}", self.session_id);
        let id = link
            .request("subscribe", json!({"channel": channel}))
            .await?;
        let r = link.reply(&id, Duration::from_secs(15), |_| {}).await?;
        if r["type"] != "ok" {
            return Err(Down::Dropped("subscribe refused".into()));
        }
        // A turn already running (started by us before the socket went) is followed on.
        let mut current: Option<String> = r["result"]["turn"]["turn_id"].as_str().map(Into::into);
        loop {
            if current.is_none() {
                if phases.stop_pushing.is_cancelled() {
                    link.close().await;
                    return Ok(());
                }
                current = self.send(&mut link, t).await?;
                if current.is_none() {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            }
            let turn = current.clone().expect("a turn");
            let v = tokio::time::timeout(Duration::from_secs(5), link.next())
                .await
                .map_err(|_| Down::Dropped("turn silent for 5 s".into()))??;
            if v["type"] != "event" || v["channel"] != channel.as_str() {
                continue;
            }
            let ended = match v["event"].as_str() {
                Some("chat.done") if v["data"]["turn_id"] == turn.as_str() => Some(format!(
                    "done:{}",
                    v["data"]["status"].as_str().unwrap_or("?")
                )),
                Some("chat.error") if v["data"]["turn_id"] == turn.as_str() => Some(format!(
                    "error:{}",
                    v["data"]["code"].as_str().unwrap_or("?")
                )),
                _ => None,
            };
            if let Some(how) = ended {
                let message_id = v["data"]["message_id"].as_str().unwrap_or("").to_owned();
                if t.ended.iter().any(|e| e.turn_id == turn) {
                    t.anomalies.push(format!("turn {turn} ended twice"));
                }
                t.ended.push(TurnEnd {
                    turn_id: turn,
                    message_id,
                    how,
                    ended_at: Instant::now(),
                });
                current = None;
            }
        }
    }

    /// `chat.send`; `Ok(None)` when refused (counted).
    async fn send(&self, link: &mut Link, t: &mut Turns) -> Result<Option<String>, Down> {
        let id = link
            .request(
                "chat.send",
                json!({"session_id": self.session_id, "message": self.message, "model": "echo"}),
            )
            .await?;
        let r: Value = link.reply(&id, Duration::from_secs(15), |_| {}).await?;
        if r["type"] != "ok" {
            *t.refused
                .entry(r["code"].as_str().unwrap_or("?").to_owned())
                .or_default() += 1;
            return Ok(None);
        }
        let turn = r["result"]["turn_id"].as_str().unwrap_or("").to_owned();
        let message = r["result"]["message_id"].as_str().unwrap_or("").to_owned();
        t.started.insert(turn.clone(), (message, Instant::now()));
        Ok(Some(turn))
    }
}

/// Ephemeral events published on one instance and heard on another: the publisher numbers
/// them; the listener keeps the highest number it heard and when.
pub struct Echo {
    pub channel: String,
    pub token: String,
    pub publish_on: Vec<String>,
    pub listen_on: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Heard {
    /// (number, when it was published)
    pub published: Vec<(u64, Instant)>,
    /// (number, when it was heard)
    pub heard: Vec<(u64, Instant)>,
}

impl Echo {
    pub async fn run(self, phases: Phases) -> Heard {
        let published = tokio::spawn(publish(
            self.channel.clone(),
            self.token.clone(),
            self.publish_on,
            phases.clone(),
        ));
        let heard = listen(self.channel, self.token, self.listen_on, phases).await;
        Heard {
            published: published.await.expect("publisher"),
            heard,
        }
    }
}

async fn subscribed(base: &str, token: &str, channel: &str) -> Result<Link, Down> {
    let mut link = Link::open(base, token).await?;
    let id = link
        .request("subscribe", json!({"channel": channel}))
        .await?;
    let r = link.reply(&id, Duration::from_secs(15), |_| {}).await?;
    if r["type"] != "ok" {
        return Err(Down::Dropped("subscribe refused".into()));
    }
    Ok(link)
}

async fn publish(
    channel: String,
    token: String,
    on: Vec<String>,
    phases: Phases,
) -> Vec<(u64, Instant)> {
    let mut sent = Vec::new();
    let mut n = 0u64;
    let mut attempt = 0usize;
    while !phases.stop_pushing.is_cancelled() {
        let base = &on[attempt % on.len()];
        attempt += 1;
        let Ok(mut link) = subscribed(base, &token, &channel).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        while !phases.stop_pushing.is_cancelled() {
            n += 1;
            let frame =
                json!({"channel": channel, "event": "tick", "data": {"n": n}, "echo": false});
            let Ok(id) = link.request("publish", frame).await else {
                break;
            };
            match link.reply(&id, Duration::from_secs(5), |_| {}).await {
                Ok(r) if r["type"] == "ok" => sent.push((n, Instant::now())),
                _ => break,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    sent
}

async fn listen(
    channel: String,
    token: String,
    on: Vec<String>,
    phases: Phases,
) -> Vec<(u64, Instant)> {
    let mut heard = Vec::new();
    let mut attempt = 0usize;
    while !phases.finish.is_cancelled() {
        let base = &on[attempt % on.len()];
        attempt += 1;
        let Ok(mut link) = subscribed(base, &token, &channel).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        loop {
            let v = tokio::select! {
                _ = phases.finish.cancelled() => return heard,
                v = link.next() => v,
            };
            match v {
                Ok(v) if v["type"] == "broadcast" && v["event"] == "tick" => {
                    heard.push((v["data"]["n"].as_u64().unwrap_or(0), Instant::now()));
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
    heard
}
