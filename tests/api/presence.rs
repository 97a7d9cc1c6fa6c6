//! Presence under many joins: batched diffs, bounded lists, and subscribes checked per user
//! while their reads are shared.

use crate::helpers::fixtures::{session, share, user};
use crate::helpers::ws::*;
use crate::helpers::*;
use futures::future::join_all;
use serde_json::{json, Value};

/// Reads `presence.diff`s until they add up to `n` joins (or leaves, by `side`).
async fn diffs_totalling(c: &mut WsClient, ch: &str, side: &str, n: u64) -> Vec<Value> {
    let mut seen = Vec::new();
    let mut total = 0;
    while total < n {
        let d = c.event(ch, "presence.diff").await;
        total += d["data"][side].as_u64().unwrap();
        seen.push(d);
    }
    assert_eq!(total, n, "{seen:?}");
    seen
}

#[tokio::test]
async fn a_join_storm_arrives_as_a_few_diffs_with_bounded_lists() {
    within(async {
        let app = spawn_with(|c| {
            c.ws.presence_interval_ms = 1000;
            c.ws.presence_diff_max = 2;
            c.ws.presence_list_max = 3;
        })
        .await;
        let alice = user(&app).await;
        let ch = session(&app, &alice).await;
        let mut watcher = connect_authed(&app.base, &alice.tokens.access).await;
        assert_eq!(watcher.subscribe(&ch).await["type"], "ok");
        let own = watcher.event(&ch, "presence.diff").await;
        assert_eq!(
            (&own["data"]["joined"], &own["data"]["count"]),
            (&json!(1), &json!(1))
        );

        let mut crowd = Vec::new();
        for _ in 0..6 {
            crowd.push(connect_authed(&app.base, &alice.tokens.access).await);
        }
        let replies = join_all(crowd.iter_mut().map(|c| c.subscribe(&ch))).await;
        for r in &replies {
            assert_eq!(r["type"], "ok", "{r}");
            let listed = r["result"]["presence"].as_array().unwrap().len();
            assert!(
                listed <= 3,
                "a reply lists at most ws.presence_list_max: {r}"
            );
        }
        let counts: Vec<u64> = replies
            .iter()
            .map(|r| r["result"]["presence_count"].as_u64().unwrap())
            .collect();
        assert_eq!(
            counts.iter().max(),
            Some(&7),
            "the count is not capped: {counts:?}"
        );

        // Six joins within one second: at most two intervals, so at most two diffs, and one
        // of them holds more than ws.presence_diff_max changes.
        let diffs = diffs_totalling(&mut watcher, &ch, "joined", 6).await;
        assert!(
            diffs.len() <= 2,
            "one diff per interval, not one per join: {diffs:?}"
        );
        let big = diffs
            .iter()
            .find(|d| d["data"]["truncated"] == true)
            .expect("a truncated diff");
        assert_eq!(
            (&big["data"]["joins"], &big["data"]["leaves"]),
            (&json!([]), &json!([])),
            "{big}"
        );
        assert_eq!(diffs.last().unwrap()["data"]["count"], 7);
        let p = watcher.request("presence", json!({"channel": ch})).await;
        assert_eq!(
            p["result"]["members"],
            json!([]),
            "past ws.presence_list_max: {p}"
        );
        assert_eq!(p["result"]["count"], 7);

        for c in crowd {
            c.close().await;
        }
        let diffs = diffs_totalling(&mut watcher, &ch, "left", 6).await;
        assert!(diffs.len() <= 2, "{diffs:?}");
        assert_eq!(diffs.last().unwrap()["data"]["count"], 1);
    })
    .await
}

#[tokio::test]
async fn subscribes_at_once_are_each_checked_for_their_own_user_and_a_revoke_holds() {
    within(async {
        let app = spawn_app().await;
        let (owner, guest, stranger) = (user(&app).await, user(&app).await, user(&app).await);
        let ch = session(&app, &owner).await;
        share(&app, &owner, &ch, &guest, "viewer").await;
        let mut socks = Vec::new();
        for who in [&owner, &guest, &stranger] {
            for _ in 0..8 {
                socks.push((
                    who.user_id.clone(),
                    connect_authed(&app.base, &who.tokens.access).await,
                ));
            }
        }
        let replies = join_all(socks.iter_mut().map(|(_, c)| c.subscribe(&ch))).await;
        for ((who, _), r) in socks.iter().zip(&replies) {
            if *who == stranger.user_id {
                assert_eq!(r["code"], "forbidden", "{r}");
            } else {
                assert_eq!(r["type"], "ok", "{r}");
            }
        }

        // Revoked: every subscribe after the revoke answered is refused, however many at once.
        let id = ch.trim_start_matches("session:");
        let r = app
            .http
            .delete(app.url(&format!("/v1/sessions/{id}/members/{}", guest.user_id)))
            .bearer_auth(&owner.tokens.access)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        let mut again = Vec::new();
        for _ in 0..8 {
            again.push(connect_authed(&app.base, &guest.tokens.access).await);
        }
        for r in join_all(again.iter_mut().map(|c| c.subscribe(&ch))).await {
            assert_eq!(r["code"], "forbidden", "{r}");
        }
    })
    .await
}

#[tokio::test]
async fn a_busy_channel_hears_presence_less_often() {
    within(async {
        let app = spawn_with(|c| {
            c.ws.presence_interval_ms = 400;
            c.ws.presence_busy_members = 1;
        })
        .await;
        let alice = user(&app).await;
        let ch = session(&app, &alice).await;
        let mut watcher = connect_authed(&app.base, &alice.tokens.access).await;
        let mut crowd = Vec::new();
        for _ in 0..3 {
            crowd.push(connect_authed(&app.base, &alice.tokens.access).await);
        }
        assert_eq!(watcher.subscribe(&ch).await["type"], "ok");
        watcher.event(&ch, "presence.diff").await;
        assert_eq!(crowd[0].subscribe(&ch).await["type"], "ok");
        let d = watcher.event(&ch, "presence.diff").await;
        assert_eq!(d["data"]["count"], 2, "{d}");
        // Two members, over ws.presence_busy_members = 1: the next diff waits two intervals,
        // so joins one interval apart arrive together.
        assert_eq!(crowd[1].subscribe(&ch).await["type"], "ok");
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        assert_eq!(crowd[2].subscribe(&ch).await["type"], "ok");
        let d = watcher.event(&ch, "presence.diff").await;
        assert_eq!(
            (&d["data"]["joined"], &d["data"]["count"]),
            (&json!(2), &json!(4)),
            "{d}"
        );
    })
    .await
}

#[tokio::test]
async fn a_refused_subscriber_hears_nothing_of_the_channel_meanwhile() {
    within(async {
        let app = spawn_app().await;
        let (owner, stranger) = (user(&app).await, user(&app).await);
        let ch = session(&app, &owner).await;
        let mut o = connect_authed(&app.base, &owner.tokens.access).await;
        let mut e = connect_authed(&app.base, &stranger.tokens.access).await;
        assert_eq!(o.subscribe(&ch).await["type"], "ok");
        let publish = async {
            for line in 0..80 {
                let r = o
                    .request(
                        "publish",
                        json!({"channel": ch, "event": "cursor", "data": {"line": line}}),
                    )
                    .await;
                assert_eq!(r["type"], "ok", "{r}");
            }
        };
        let knock = async {
            for _ in 0..40 {
                assert_eq!(e.subscribe(&ch).await["code"], "forbidden");
            }
        };
        tokio::join!(publish, knock);
        assert!(
            e.pending_is_empty_after(std::time::Duration::from_millis(200))
                .await,
            "a refused subscribe never joins the channel, not even while it is checked"
        );
    })
    .await
}
