//! Awaited answers across instances through Redis: one wait takes one answer, whichever
//! instance each answer reaches.

use crate::helpers::*;
use serde_json::json;
use std::{sync::Arc, time::Duration};
use switchyard::bus::{redis::RedisBus, redis_conn::RedisConn, Bus, BusState, Handed, Inbox};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

async fn instance(url: &str, prefix: &str, stop: &CancellationToken, t: &TaskTracker) -> RedisBus {
    let (gaps, _) = tokio::sync::mpsc::channel(16);
    let hub = Arc::new(switchyard::hub::Hub::new(gaps));
    let (inbox, _rx) = Inbox::new();
    let conn = Arc::new(
        RedisConn::new(&switchyard::bus::redis_conn::Target::Single(
            url.to_string(),
        ))
        .expect("redis url"),
    );
    let bus = RedisBus::start(
        hub,
        inbox,
        conn,
        switchyard::bus::redis::RedisBusOptions {
            prefix: prefix.to_owned(),
            presence_diff_max: 20,
            drain: Duration::ZERO,
        },
        stop.clone(),
        t,
    );
    for _ in 0..150 {
        if bus.state() == BusState::Connected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(bus.state(), BusState::Connected);
    bus
}

#[tokio::test]
async fn an_answer_taken_through_another_instance_is_not_taken_again_where_it_waits() {
    let Some(url) = redis_url() else {
        eprintln!("needs TEST_REDIS_URL (Redis pass)");
        return;
    };
    within(async {
        let prefix = format!("t{}:", uuid::Uuid::new_v4().simple());
        let (stop, tracker) = (CancellationToken::new(), TaskTracker::new());
        let waits_here = instance(&url, &prefix, &stop, &tracker).await;
        let elsewhere = instance(&url, &prefix, &stop, &tracker).await;
        let mut waiter = waits_here
            .expect_reply("call-1", "alice", Duration::from_secs(10))
            .await;
        // Someone else's answer is refused wherever it arrives.
        assert_eq!(
            elsewhere.reply("call-1", "mallory", json!(0)).await,
            Handed::NotYours
        );
        assert_eq!(
            elsewhere.reply("call-1", "alice", json!(1)).await,
            Handed::Delivered
        );
        assert_eq!(waiter.answer().await, Some(json!(1)));
        // Two answers for one wait at the same moment, one on each instance (a client
        // retrying on another socket): exactly one is acknowledged, and it is the one the
        // waiter gets.
        for i in 0..200 {
            let key = format!("race-{i}");
            let mut w = waits_here
                .expect_reply(&key, "alice", Duration::from_secs(10))
                .await;
            let (there, here) = tokio::join!(
                elsewhere.reply(&key, "alice", json!("there")),
                waits_here.reply(&key, "alice", json!("here")),
            );
            let delivered: Vec<&str> = [(there, "there"), (here, "here")]
                .into_iter()
                .filter(|(h, _)| *h == Handed::Delivered)
                .map(|(_, v)| v)
                .collect();
            assert_eq!(delivered.len(), 1, "round {i}: {there:?} and {here:?}");
            assert_eq!(w.answer().await, Some(json!(delivered[0])), "round {i}");
        }
        // An answer arriving where the waiter is goes straight to it, once.
        let mut second = waits_here
            .expect_reply("call-2", "alice", Duration::from_secs(10))
            .await;
        assert_eq!(
            waits_here.reply("call-2", "alice", json!(3)).await,
            Handed::Delivered
        );
        assert_eq!(
            elsewhere.reply("call-2", "alice", json!(4)).await,
            Handed::Unknown
        );
        assert_eq!(second.answer().await, Some(json!(3)));
        stop.cancel();
    })
    .await
}
