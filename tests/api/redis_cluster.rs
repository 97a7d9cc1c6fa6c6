//! Redis Cluster (issue #17): instances configured with `redis.cluster_urls` against a private
//! three-master cluster the test starts. Cross-instance delivery, presence, sync and chat turns
//! (leases, deltas, cancel) work through sharded pub/sub, each session's channel subscribed on
//! its own shard only; and under load, one shard restarted or one instance killed loses
//! nothing acknowledged. Runs in the services pass (where `redis-server` is installed).

use crate::helpers::faultload::{server_snapshot, Deployment, Own, Running, Spec};
use crate::helpers::fixtures::{session, share, user};
use crate::helpers::procs::RedisClusterProcs;
use crate::helpers::turns::{slow_routes, watch_join_and_cancel};
use crate::helpers::upstream::Upstream;
use crate::helpers::ws::*;
use crate::helpers::*;
use serde_json::json;
use std::time::Duration;
use tokio::time::Instant;

fn need_services(test: &str) -> bool {
    if pg_url().is_none() || redis_url().is_none() {
        eprintln!("{test}: needs TEST_DATABASE_URL and TEST_REDIS_URL (the services pass)");
        return false;
    }
    true
}

fn on_cluster(c: &mut switchyard::config::Config, urls: &[String]) {
    c.redis.url = None;
    c.redis.cluster_urls = urls.to_vec();
}

/// `PUBSUB SHARDNUMSUB` of `channel` on each node: how many subscribers each shard has.
async fn shard_subscribers(rc: &RedisClusterProcs, channel: &str) -> Vec<i64> {
    let mut out = Vec::new();
    for url in rc.urls() {
        let client = redis::Client::open(url).unwrap();
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        let (_, n): (String, i64) = redis::cmd("PUBSUB")
            .arg("SHARDNUMSUB")
            .arg(channel)
            .query_async(&mut c)
            .await
            .unwrap();
        out.push(n);
    }
    out
}

#[tokio::test]
async fn a_cluster_carries_delivery_presence_sync_and_turns_across_instances() {
    if !need_services("a_cluster_carries_delivery_presence_sync_and_turns_across_instances") {
        return;
    }
    within(async {
        let rc = RedisClusterProcs::start().await;
        let urls = rc.urls();
        let up = Upstream::start().await;
        let cluster = Cluster::new().await;
        let a = cluster
            .spawn(|c| {
                on_cluster(c, &urls);
                slow_routes(c, &up)
            })
            .await;
        let b = cluster
            .spawn(|c| {
                on_cluster(c, &urls);
                slow_routes(c, &up)
            })
            .await;
        let (alice, bob) = (user(&a).await, user(&a).await);
        let ch = session(&a, &alice).await;
        share(&a, &alice, &ch, &bob, "editor").await;
        let mut on_a = connect_authed(&a.base, &alice.tokens.access).await;
        let mut on_b = connect_authed(&b.base, &bob.tokens.access).await;
        assert_eq!(on_a.subscribe(&ch).await["type"], "ok");
        on_a.presence_diff(&ch, "joins", &alice.user_id).await;
        let joined = on_b.subscribe(&ch).await;
        assert_eq!(
            joined["result"]["presence_count"], 2,
            "presence spans instances: {joined}"
        );
        on_a.presence_diff(&ch, "joins", &bob.user_id).await;

        // The session's channel is subscribed on one shard, by both instances, nowhere else.
        let key = format!("{}ch:{{{ch}}}", cluster.key_prefix);
        let subs = shard_subscribers(&rc, &key).await;
        let mut sorted = subs.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [0, 0, 2], "one shard carries {key}: {subs:?}");

        on_a.request(
            "publish",
            json!({"channel": ch, "event": "typing", "data": {"on": true}, "echo": false}),
        )
        .await;
        assert_eq!(on_b.broadcast(&ch, "typing").await["data"]["on"], true);
        on_b.request(
            "publish",
            json!({"channel": ch, "event": "typing", "data": {"on": false}, "echo": false}),
        )
        .await;
        assert_eq!(on_a.broadcast(&ch, "typing").await["data"]["on"], false);

        let id = ch.strip_prefix("session:").unwrap();
        let push = json!({"session_id": id, "mutations": [{"client_id": "w", "mutation_id": 1,
            "hlc": format!("{}:0", crate::helpers::fixtures::now_ms()),
            "ops": [{"op": "set_context", "key": "k", "value": 1}]}]});
        let r = on_a.request("session.push", push).await;
        assert_eq!(r["result"]["version"], 1, "{r}");
        assert_eq!(on_b.event(&ch, "sync.change").await["data"]["version"], 1);

        on_b.close().await;
        let left = on_a.presence_diff(&ch, "leaves", &bob.user_id).await;
        assert_eq!(left["data"]["count"], 1, "{left}");
        on_a.close().await;
        // Turns: one claim per session across instances, deltas and cancel through the shards.
        watch_join_and_cancel(&a, &b, &up).await;
    })
    .await
}

fn cluster_env(urls: &[String]) -> String {
    urls.join(",")
}

fn spec(targets: Vec<String>) -> Spec {
    Spec {
        sessions: 3,
        writers_per_session: 10,
        pace: Duration::from_millis(120),
        publish_on: vec![targets[0].clone()],
        listen_on: vec![targets[1].clone()],
        targets,
    }
}

#[tokio::test]
async fn one_shard_restarted_under_load_loses_nothing() {
    if !need_services("one_shard_restarted_under_load_loses_nothing") {
        return;
    }
    tokio::time::timeout(Duration::from_secs(240), async {
        let mut rc = RedisClusterProcs::start().await;
        let seeds = cluster_env(&rc.urls());
        let env = [("SWITCHYARD_REDIS_URL", ""), ("SWITCHYARD_REDIS_CLUSTER_URLS", seeds.as_str())];
        let d = Deployment::start(2, Own::default(), &env).await;
        let bases = d.bases();
        let load = Running::start(spec(bases.clone())).await;
        let warm = load.mark();
        load.progressed(&warm, 5, Duration::from_secs(30)).await;

        // The shard carrying the turns' session (a shard with none of the load's channels
        // would prove little).
        let key = format!("{}ch:{{session:{}}}", d.prefix(), load.sessions()[0].0);
        let shard = rc.owner_of(&key).await;
        rc.kill(shard).await;
        let down = load.mark();
        let writes = load.progressed(&down, 3, Duration::from_secs(30)).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        rc.spawn(shard).await;
        let back = Instant::now();
        rc.wait_ok(Duration::from_secs(30)).await;
        let again = load.mark();
        load.progressed(&again, 3, Duration::from_secs(45)).await;
        // Readiness is back once every shard subscription is.
        let http = reqwest::Client::new();
        loop {
            let ok = http.get(format!("{}/health/ready", bases[1])).send().await
                .is_ok_and(|r| r.status() == 200);
            if ok { break; }
            assert!(back.elapsed() < Duration::from_secs(30), "never ready again");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let ready = back.elapsed();
        tokio::time::sleep(Duration::from_secs(2)).await;

        let report = load.finish(&bases[1]).await;
        report.check();
        eprintln!(
            "FAULT cluster shard restart: writes went on ({writes:?}), ready {ready:?} after the shard was back; turns {:?}; failures {:?}",
            report.turn_statuses(),
            report.failures()
        );
        let first_after = report.heard.published.iter().find(|(_, at)| *at > back).map(|(n, _)| *n);
        assert!(
            first_after.is_some_and(|n| report.heard.heard.iter().any(|(h, _)| *h >= n)),
            "cross-instance delivery resumed"
        );
    })
    .await
    .expect("within 240 s")
}

#[tokio::test]
async fn an_instance_killed_on_a_cluster_loses_nothing_and_its_turn_ends() {
    if !need_services("an_instance_killed_on_a_cluster_loses_nothing_and_its_turn_ends") {
        return;
    }
    tokio::time::timeout(Duration::from_secs(240), async {
        let rc = RedisClusterProcs::start().await;
        let seeds = cluster_env(&rc.urls());
        let env = [("SWITCHYARD_REDIS_URL", ""), ("SWITCHYARD_REDIS_CLUSTER_URLS", seeds.as_str())];
        let mut d = Deployment::start(2, Own::default(), &env).await;
        let bases = d.bases();
        let mut s = spec(bases.clone());
        s.publish_on = vec![bases[1].clone()];
        s.listen_on = vec![bases[0].clone()];
        let load = Running::start(s).await;
        let warm = load.mark();
        load.progressed(&warm, 5, Duration::from_secs(30)).await;

        d.instances[0].kill().await;
        let killed = load.mark();
        load.progressed(&killed, 3, Duration::from_secs(45)).await;
        d.instances[0].spawn().await;
        let (turns_session, owner) = load.sessions()[0].clone();
        let reaped = loop {
            let snap = server_snapshot(&bases[1], &owner.token, &turns_session).await;
            if snap["messages"].as_array().unwrap().iter().any(|m| m["metadata"]["error"]["code"] == "interrupted") {
                break killed.at.elapsed();
            }
            assert!(killed.at.elapsed() < Duration::from_secs(60), "the dead turn was never ended");
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let report = load.finish(&bases[1]).await;
        report.check();
        eprintln!(
            "FAULT cluster instance kill: its turn ended {reaped:?} after; turns {:?}; failures {:?}",
            report.turn_statuses(),
            report.failures()
        );
    })
    .await
    .expect("within 240 s")
}
