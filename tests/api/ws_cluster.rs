//! Several instances: cross-instance delivery and presence through Redis, Redis going away and
//! coming back, and shutdown by SIGTERM.

use crate::helpers::fixtures::{session, share, user};
use crate::helpers::ws::*;
use crate::helpers::*;
use serde_json::json;
use std::time::Duration;

fn need_redis(test: &str) -> bool {
    if redis_url().is_none() {
        eprintln!("{test}: needs TEST_REDIS_URL (Redis pass)");
        return false;
    }
    true
}

#[tokio::test]
async fn publish_on_one_instance_reaches_the_other_with_presence() {
    if !need_redis("publish_on_one_instance_reaches_the_other_with_presence") {
        return;
    }
    within(async {
        let cluster = Cluster::new().await;
        let (a, b) = (cluster.spawn(|_| {}).await, cluster.spawn(|_| {}).await);
        let (alice, bob) = (user(&a).await, user(&a).await);
        let ch = session(&a, &alice).await;
        share(&a, &alice, &ch, &bob, "editor").await;
        let mut on_a = connect_authed(&a.base, &alice.tokens.access).await;
        let mut on_b = connect_authed(&b.base, &bob.tokens.access).await;
        assert_eq!(on_a.subscribe(&ch).await["type"], "ok");
        on_a.presence_diff(&ch, "joins", &alice.user_id).await;
        let joined = on_b.subscribe(&ch).await;
        assert_eq!(
            joined["result"]["presence"].as_array().unwrap().len(),
            2,
            "presence spans instances: {joined}"
        );
        let diff = on_a.presence_diff(&ch, "joins", &bob.user_id).await;
        assert_eq!(
            diff["data"]["count"], 2,
            "the count spans instances: {diff}"
        );

        on_a.request(
            "publish",
            json!({"channel": ch, "event": "typing", "data": {"on": true}}),
        )
        .await;
        assert_eq!(on_b.broadcast(&ch, "typing").await["data"]["on"], true);
        assert_eq!(
            on_a.broadcast(&ch, "typing").await["data"]["on"],
            true,
            "the publisher gets its own event too"
        );
        on_b.request(
            "publish",
            json!({"channel": ch, "event": "typing", "data": {"on": false}}),
        )
        .await;
        assert_eq!(on_a.broadcast(&ch, "typing").await["data"]["on"], false);

        let p = on_a.request("presence", json!({"channel": ch})).await;
        assert_eq!(p["result"]["members"].as_array().unwrap().len(), 2);
        on_b.close().await;
        let left = on_a.presence_diff(&ch, "leaves", &bob.user_id).await;
        assert_eq!(left["data"]["count"], 1, "{left}");
    })
    .await
}

#[tokio::test]
async fn a_dead_instance_presence_is_reaped() {
    if !need_redis("a_dead_instance_presence_is_reaped") {
        return;
    }
    within(async {
        let cluster = Cluster::new().await;
        let a = cluster.spawn(|_| {}).await;
        let mut b = cluster.spawn(|c| c.server.shutdown_grace_secs = 0).await;
        let alice = user(&a).await;
        let ch = session(&a, &alice).await;
        let mut on_a = connect_authed(&a.base, &alice.tokens.access).await;
        on_a.subscribe(&ch).await;
        let mut on_b = connect_authed(&b.base, &alice.tokens.access).await;
        on_b.subscribe(&ch).await;
        on_a.presence_diff(&ch, "joins", &alice.user_id).await;
        // Kill b without letting its connections leave: abort the server task.
        b.task.take().unwrap().abort();
        drop(on_b);
        let left = on_a.presence_diff(&ch, "leaves", &alice.user_id);
        let left = tokio::time::timeout(Duration::from_secs(30), left)
            .await
            .expect("reaped within 30 s");
        assert_eq!(
            left["data"]["left"], 1,
            "one diff for the dead instance's leaves: {left}"
        );
        assert_eq!(left["data"]["count"], 1, "only on_a is left: {left}");
        b.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn redis_outage_keeps_local_delivery_and_cross_instance_resumes() {
    if !need_redis("redis_outage_keeps_local_delivery_and_cross_instance_resumes") {
        return;
    }
    within(async {
        let (proxy, url, target) = Proxy::in_front_of(&redis_url().unwrap(), 6379).await;
        let port = proxy.addr.port();
        let mut cluster = Cluster::new().await;
        cluster.redis_url = Some(url);
        let (a, b) = (cluster.spawn(|_| {}).await, cluster.spawn(|_| {}).await);
        let alice = user(&a).await;
        let ch = session(&a, &alice).await;
        let mut pub_a = connect_authed(&a.base, &alice.tokens.access).await;
        let mut sub_a = connect_authed(&a.base, &alice.tokens.access).await;
        let mut sub_b = connect_authed(&b.base, &alice.tokens.access).await;
        for c in [&mut pub_a, &mut sub_a, &mut sub_b] {
            assert_eq!(c.subscribe(&ch).await["type"], "ok");
        }
        pub_a
            .request(
                "publish",
                json!({"channel": ch, "event": "n", "data": {"i": 0}}),
            )
            .await;
        assert_eq!(sub_b.broadcast(&ch, "n").await["data"]["i"], 0);

        eprintln!("cutting redis");
        proxy.cut();
        tokio::time::sleep(Duration::from_millis(300)).await;
        for i in 1..=3 {
            pub_a
                .request(
                    "publish",
                    json!({"channel": ch, "event": "n", "data": {"i": i}}),
                )
                .await;
        }
        for i in 0..=3 {
            assert_eq!(
                sub_a.broadcast(&ch, "n").await["data"]["i"],
                i,
                "local delivery never stops"
            );
        }
        let ready: serde_json::Value = a
            .http
            .get(a.url("/health/ready"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_ne!(ready["bus"], "connected", "{ready}");

        // Redis comes back on the same address; cross-instance delivery resumes by itself.
        eprintln!("redis back");
        let _back = Proxy::start_on(port, target).await;
        let mut i = 100;
        loop {
            pub_a
                .request(
                    "publish",
                    json!({"channel": ch, "event": "n", "data": {"i": i}}),
                )
                .await;
            if let Ok(ev) =
                tokio::time::timeout(Duration::from_millis(500), sub_b.broadcast(&ch, "n")).await
            {
                if ev["data"]["i"].as_i64().unwrap() >= 100 {
                    break;
                }
            }
            i += 1;
            assert!(
                i < 140,
                "cross-instance delivery did not resume within ~20 s"
            );
        }
    })
    .await
}

#[tokio::test]
async fn sigterm_closes_sockets_with_1012() {
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .arg("serve")
            .env("SWITCHYARD_SERVER_BIND", format!("127.0.0.1:{port}"))
            .env("SWITCHYARD_SERVER_DATA_DIR", dir.path())
            .env("SWITCHYARD_AUTH_ARGON2_MEMORY_KIB", "4096")
            .env("SWITCHYARD_AUTH_ARGON2_ITERATIONS", "1")
            .env_remove("SWITCHYARD_DATABASE_URL")
            .env_remove("SWITCHYARD_REDIS_URL")
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if http.get(format!("{base}/health")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let email = unique_email();
        let r: serde_json::Value = http
            .post(format!("{base}/v1/auth/register"))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut c = connect_authed(&base, r["tokens"]["access_token"].as_str().unwrap()).await;
        let pid = child.id().unwrap().to_string();
        assert!(std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let (how, _) = c.closed().await;
        match how {
            Closed::Code(code, reason) => {
                assert_eq!(code, 1012);
                assert!(reason.contains("reconnect"), "{reason}");
            }
            other => panic!("expected a close frame, got {other:?}"),
        }
        let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
            .await
            .expect("exits within grace")
            .unwrap();
        assert!(status.success(), "clean exit: {status:?}");
    })
    .await
}

/// An instance that missed changes on the bus (its Redis link was down while another instance
/// committed) heals the gap from the change log: its subscribers get every version, in order.
#[tokio::test]
async fn a_missed_change_is_healed_from_the_change_log() {
    if !need_redis("a_missed_change_is_healed_from_the_change_log") {
        return;
    }
    within(async {
        let cluster = Cluster::new().await;
        let (proxy, url, target) = Proxy::in_front_of(cluster.redis_url.as_deref().unwrap(), 6379).await;
        let port = proxy.addr.port();
        let a = cluster.spawn(|_| {}).await;
        let b = cluster.spawn(|c| c.redis.url = Some(url)).await;
        let owner = user(&a).await;
        let ch = session(&a, &owner).await;
        let id = ch.strip_prefix("session:").unwrap().to_string();
        let mut writer = connect_authed(&a.base, &owner.tokens.access).await;
        let mut reader = connect_authed(&b.base, &owner.tokens.access).await;
        assert_eq!(reader.request("subscribe", json!({"channel": ch, "since": 0})).await["type"], "ok");
        let push = |i: u64| json!({"session_id": id, "mutations": [{"client_id": "w", "mutation_id": i,
            "hlc": format!("{}:0", 1_000 + i), "ops": [{"op": "set_context", "key": "k", "value": i}]}]});
        assert_eq!(writer.request("session.push", push(1)).await["result"]["version"], 1);
        assert_eq!(reader.event(&ch, "sync.change").await["data"]["version"], 1);

        proxy.cut(); // b no longer hears the bus
        tokio::time::sleep(Duration::from_millis(300)).await;
        for i in 2..=4 {
            assert_eq!(writer.request("session.push", push(i)).await["result"]["version"], i);
        }
        let _back = Proxy::start_on(port, target).await;
        // Once b is subscribed again, the next change arrives and exposes the gap 2..=4.
        let mut i = 5;
        let mut seen = Vec::new();
        while seen.last().copied().unwrap_or(1) < 5 {
            writer.request("session.push", push(i)).await;
            i += 1;
            while let Ok(ev) = tokio::time::timeout(Duration::from_millis(700), reader.event(&ch, "sync.change")).await {
                seen.push(ev["data"]["version"].as_u64().unwrap());
            }
            assert!(i < 40, "gap not healed: saw {seen:?}");
        }
        let expected: Vec<u64> = (2..=seen.len() as u64 + 1).collect();
        assert_eq!(seen, expected, "every version once, in order");
    })
    .await
}

/// A gap longer than `sync.heal_max_frames` is not replayed one frame each into subscribers'
/// queues: they get `sync.resync` and catch up with one subscribe (a shorter one arrives as
/// frames, above).
#[tokio::test]
async fn a_long_missed_gap_asks_subscribers_to_resync() {
    if !need_redis("a_long_missed_gap_asks_subscribers_to_resync") {
        return;
    }
    within(async {
        let cluster = Cluster::new().await;
        let (proxy, url, target) =
            Proxy::in_front_of(cluster.redis_url.as_deref().unwrap(), 6379).await;
        let port = proxy.addr.port();
        let a = cluster.spawn(|_| {}).await;
        let b = cluster
            .spawn(|c| {
                c.redis.url = Some(url);
                c.sync.heal_max_frames = 3;
            })
            .await;
        let owner = user(&a).await;
        let ch = session(&a, &owner).await;
        let id = ch.strip_prefix("session:").unwrap().to_string();
        let mut writer = connect_authed(&a.base, &owner.tokens.access).await;
        let mut reader = connect_authed(&b.base, &owner.tokens.access).await;
        let r = reader.request("subscribe", json!({"channel": ch, "since": 0})).await;
        assert_eq!(r["type"], "ok");
        let push = |i: u64| json!({"session_id": id, "mutations": [{"client_id": "w", "mutation_id": i,
            "hlc": format!("{}:0", 1_000 + i), "ops": [{"op": "set_context", "key": "k", "value": i}]}]});
        writer.request("session.push", push(1)).await;
        assert_eq!(reader.event(&ch, "sync.change").await["data"]["version"], 1);

        proxy.cut();
        tokio::time::sleep(Duration::from_millis(300)).await;
        for i in 2..=8 {
            assert_eq!(writer.request("session.push", push(i)).await["result"]["version"], i);
        }
        let _back = Proxy::start_on(port, target).await;
        // Once b hears the bus again it finds 7 versions missing: more than 3.
        let mut i = 9;
        let resync = loop {
            writer.request("session.push", push(i)).await;
            i += 1;
            let got = tokio::time::timeout(Duration::from_millis(700), async {
                loop {
                    let v = reader.next().await.expect("open");
                    if v["type"] == "event" && v["channel"] == ch.as_str() {
                        match v["event"].as_str() {
                            Some("sync.resync") => return Some(v),
                            Some("sync.change") => {
                                let ver = v["data"]["version"].as_u64().unwrap();
                                assert!(ver > 8, "a long gap is not replayed frame by frame: {v}");
                            }
                            _ => {}
                        }
                    }
                }
            })
            .await;
            if let Ok(Some(v)) = got {
                break v;
            }
            assert!(i < 40, "no sync.resync");
        };
        assert!(resync["data"]["version"].as_u64().unwrap() >= 8, "{resync}");
        let r = reader.request("subscribe", json!({"channel": ch, "since": 1})).await;
        let versions: Vec<u64> = r["result"]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["version"].as_u64().unwrap())
            .collect();
        assert_eq!(versions[..7], [2, 3, 4, 5, 6, 7, 8], "one catch-up brings the gap: {r}");
    })
    .await
}
