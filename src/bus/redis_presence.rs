//! Presence in Redis: one hash per channel (conn id -> member and the instance holding it),
//! and one set per instance of what it holds, so survivors can reap a dead instance's entries.

use super::redis::Inner;
use super::Present;
use crate::protocol::Member;
use std::collections::HashSet;

pub(super) async fn join(i: &Inner, channel: &str, member: &Member) {
    let value =
        serde_json::json!({"member": member, "instance": i.instance.to_string()}).to_string();
    let mut pipe = redis::pipe();
    pipe.cmd("HSET")
        .arg(i.presence_key(channel))
        .arg(&member.conn_id)
        .arg(value)
        .ignore();
    pipe.cmd("SADD")
        .arg(i.owned_key(&i.instance.to_string()))
        .arg(format!("{channel}\t{}", member.conn_id))
        .ignore();
    if let Err(e) = i.run_pipe(&pipe).await {
        tracing::warn!(error = %e, "presence join not recorded in redis");
    }
}

pub(super) async fn leave(i: &Inner, channel: &str, conn_id: &str) {
    let mut pipe = redis::pipe();
    pipe.cmd("HDEL")
        .arg(i.presence_key(channel))
        .arg(conn_id)
        .ignore();
    pipe.cmd("SREM")
        .arg(i.owned_key(&i.instance.to_string()))
        .arg(format!("{channel}\t{conn_id}"))
        .ignore();
    if let Err(e) = i.run_pipe(&pipe).await {
        tracing::warn!(error = %e, "presence leave not recorded in redis");
    }
}

/// The count is `HLEN` (O(1)); the list is read only when the whole hash fits in `limit`, so a
/// big channel's read stays O(1).
pub(super) async fn list(i: &Inner, channel: &str, limit: usize) -> Present {
    let key = i.presence_key(channel);
    let mut hlen = redis::cmd("HLEN");
    hlen.arg(&key);
    let count: usize = i.run(&hlen).await.unwrap_or(0);
    if count == 0 || count > limit {
        return Present {
            members: Vec::new(),
            count,
        };
    }
    let mut cmd = redis::cmd("HVALS");
    cmd.arg(&key);
    let raw: Vec<String> = i.run(&cmd).await.unwrap_or_default();
    let members = alive(i, &raw).await;
    capped(members, limit)
}

/// The hash may have grown between `HLEN` and `HVALS` (joins on any instance): the list is
/// whole or absent, so a read that now exceeds `limit` answers with the count alone.
fn capped(members: Vec<Member>, limit: usize) -> Present {
    let count = members.len();
    Present {
        members: if count <= limit { members } else { Vec::new() },
        count,
    }
}

/// The members of `raw` entries whose instance still heartbeats: a dead instance's entries are
/// ghosts awaiting the reaper.
async fn alive(i: &Inner, raw: &[String]) -> Vec<Member> {
    let entries: Vec<(Member, String)> = raw
        .iter()
        .filter_map(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .filter_map(|v| {
            let inst = v["instance"].as_str()?.to_owned();
            Some((serde_json::from_value(v["member"].clone()).ok()?, inst))
        })
        .collect();
    let instances: HashSet<&str> = entries.iter().map(|(_, i)| i.as_str()).collect();
    let mut live = HashSet::new();
    for inst in instances {
        let mut c = redis::cmd("EXISTS");
        c.arg(i.alive_key(inst));
        if i.run::<i64>(&c).await.unwrap_or(1) == 1 {
            live.insert(inst.to_owned());
        }
    }
    entries
        .into_iter()
        .filter(|(_, inst)| live.contains(inst))
        .map(|(m, _)| m)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(n: usize) -> Member {
        Member {
            user_id: "u".into(),
            conn_id: format!("c{n}"),
            device: None,
            connected_since: 0,
        }
    }

    #[test]
    fn a_list_that_grew_past_the_limit_after_the_count_answers_with_the_count_alone() {
        let grown = capped((0..4).map(member).collect(), 3);
        assert_eq!((grown.members.len(), grown.count), (0, 4));
        let fits = capped((0..3).map(member).collect(), 3);
        assert_eq!((fits.members.len(), fits.count), (3, 3));
    }
}
