//! A turn outlives what happens around it: an instance shutting down mid-turn finishes and
//! saves it, and Redis going away mid-turn loses nothing for the instance's own subscribers.

use crate::helpers::fixtures::{session, user};
use crate::helpers::turns::{follow, message, send, slow_routes, Follow};
use crate::helpers::upstream::Upstream;
use crate::helpers::ws::*;
use crate::helpers::*;

#[tokio::test]
async fn a_turn_in_flight_at_shutdown_finishes_and_is_saved() {
    within(async {
        let up = Upstream::start().await;
        let cluster = Cluster::new().await;
        let mut a = cluster
            .spawn(|c| {
                slow_routes(c, &up);
                c.server.shutdown_grace_secs = 10;
            })
            .await;
        let alice = user(&a).await;
        let ch = session(&a, &alice).await;
        let mut c = connect_authed(&a.base, &alice.tokens.access).await;
        c.subscribe(&ch).await;
        let r = send(&mut c, &ch, "oa-slow40", "go").await;
        follow(
            &mut c,
            &ch,
            r["turn_id"].as_str().unwrap(),
            Follow::deltas(3),
        )
        .await;
        // SIGTERM equivalent: the socket is told to reconnect (1012), the turn runs to its end.
        a.shutdown().await;
        let b = cluster.spawn(|c| slow_routes(c, &up)).await;
        let m = message(&b, &alice, &ch, r["message_id"].as_str().unwrap()).await;
        let full: String = (0..40).map(|i| format!("w{i} ")).collect();
        assert_eq!(m["content"], full.as_str());
        assert_eq!(m["metadata"]["status"], "complete");
        assert_eq!(m["streaming"], false);
        // Its usage, recorded after shutdown began, was written before the instance stopped.
        let usage: serde_json::Value = b
            .get_auth("/v1/usage", &alice.tokens.access)
            .await
            .json()
            .await
            .unwrap();
        let records = usage["data"].as_array().unwrap();
        assert!(
            records
                .iter()
                .any(|u| u["source"] == "chat" && u["status"] == "ok"),
            "{usage}"
        );
    })
    .await
}

#[tokio::test]
async fn redis_going_away_mid_turn_loses_nothing_for_local_subscribers() {
    if redis_url().is_none() {
        eprintln!("redis_going_away_mid_turn_loses_nothing_for_local_subscribers: needs TEST_REDIS_URL (Redis pass)");
        return;
    }
    within(async {
        let up = Upstream::start().await;
        let (proxy, url, _) = Proxy::in_front_of(&redis_url().unwrap(), 6379).await;
        let mut cluster = Cluster::new().await;
        cluster.redis_url = Some(url);
        let a = cluster.spawn(|c| slow_routes(c, &up)).await;
        let alice = user(&a).await;
        let ch = session(&a, &alice).await;
        let mut c = connect_authed(&a.base, &alice.tokens.access).await;
        c.subscribe(&ch).await;
        let r = send(&mut c, &ch, "oa-slow40", "go").await;
        let turn = r["turn_id"].as_str().unwrap().to_owned();
        let mut seen = follow(&mut c, &ch, &turn, Follow::deltas(5)).await;
        proxy.cut();
        let rest = follow(&mut c, &ch, &turn, Follow::END).await;
        seen.deltas.extend(rest.deltas);
        seen.assert_contiguous_from(1);
        assert_eq!(seen.deltas.len(), 40);
        assert_eq!(rest.end["data"]["status"], "complete");
        let m = message(&a, &alice, &ch, r["message_id"].as_str().unwrap()).await;
        assert_eq!(m["content"], seen.text().as_str());
        assert_eq!(m["metadata"]["status"], "complete");
    })
    .await
}
