//! Faults under load (issue #17): two real instances (processes) on PostgreSQL and Redis, 30
//! socket clients pushing mutations with retries across instances, a user running chat turns
//! and a publisher heard on the other instance; then one fault, and after recovery the
//! promises: every acknowledged mutation present exactly once, every replica equal to the
//! server's state, versions contiguous for every client, no client stuck, no turn left
//! streaming. Each prints its recovery times (`cargo test faults -- --nocapture`).
//!
//! Redis and PostgreSQL are restarted as private servers the test starts (the suite's own are
//! shared by concurrent tests); they run in the services pass (`TEST_DATABASE_URL` and
//! `TEST_REDIS_URL` set), where `redis-server` and PostgreSQL's binaries are installed.

use crate::helpers::balancer::Balancer;
use crate::helpers::faultload::link::Link;
use crate::helpers::faultload::{server_snapshot, Deployment, Own, Running, Spec};
use crate::helpers::*;
use serde_json::{json, Value};
use std::{future::Future, time::Duration};
use tokio::time::Instant;

fn need_services(test: &str) -> bool {
    if pg_url().is_none() || redis_url().is_none() {
        eprintln!("{test}: needs TEST_DATABASE_URL and TEST_REDIS_URL (the services pass)");
        return false;
    }
    true
}

/// Fault scenarios take longer than `within`'s minute: start-ups, a death noticed, recovery.
async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(240), f)
        .await
        .expect("fault scenario timed out after 240 s")
}

fn spec(targets: Vec<String>, publish_on: &str, listen_on: &str) -> Spec {
    Spec {
        sessions: 3,
        writers_per_session: 10,
        pace: Duration::from_millis(120),
        targets,
        publish_on: vec![publish_on.to_owned()],
        listen_on: vec![listen_on.to_owned()],
    }
}

async fn readiness(base: &str) -> (u16, Value) {
    match reqwest::Client::new()
        .get(format!("{base}/health/ready"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
    {
        Ok(r) => (r.status().as_u16(), r.json().await.unwrap_or_default()),
        Err(_) => (0, Value::Null),
    }
}

/// Waits until `base`'s readiness has `status`; returns how long that took.
async fn ready_is(base: &str, status: u16, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let (s, body) = readiness(base).await;
        if s == status {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{base} readiness stayed {s} {body}, wanted {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Published on one instance after `since`, heard on the other: cross-instance delivery works.
fn heard_after(report: &crate::helpers::faultload::Report, since: Instant) -> bool {
    let first_after = report
        .heard
        .published
        .iter()
        .find(|(_, at)| *at > since)
        .map(|(n, _)| *n);
    first_after.is_some_and(|n| report.heard.heard.iter().any(|(h, _)| *h >= n))
}

#[tokio::test]
async fn sigkill_of_an_instance_loses_nothing_acknowledged() {
    if !need_services("sigkill_of_an_instance_loses_nothing_acknowledged") {
        return;
    }
    bounded(async {
        let mut d = Deployment::start(2, Own::default(), &[]).await;
        let bases = d.bases();
        // The turn user and the listener start on node0, the one that dies.
        let load = Running::start(spec(bases.clone(), &bases[1], &bases[0])).await;
        let warm = load.mark();
        load.progressed(&warm, 5, Duration::from_secs(30)).await;

        d.instances[0].kill().await;
        let killed = load.mark();
        let writes = load.progressed(&killed, 3, Duration::from_secs(45)).await;
        d.instances[0].spawn().await;
        let restarted = load.mark();
        load.progressed(&restarted, 3, Duration::from_secs(45)).await;
        // The dead instance's turn is ended by a survivor once its liveness has expired.
        let (turns_session, owner) = load.sessions()[0].clone();
        let reaped = loop {
            let snap = server_snapshot(&bases[1], &owner.token, &turns_session).await;
            let interrupted = snap["messages"].as_array().unwrap().iter().any(|m| {
                m["metadata"]["error"]["code"] == "interrupted" && m["streaming"] == false
            });
            if interrupted {
                break killed.at.elapsed();
            }
            assert!(killed.at.elapsed() < Duration::from_secs(60), "the dead turn was never ended");
            tokio::time::sleep(Duration::from_millis(250)).await;
        };

        let report = load.finish(&bases[1]).await;
        report.check();
        let statuses = report.turn_statuses();
        eprintln!(
            "FAULT sigkill: writers acknowledged again {writes:?} after the kill, its turn ended {reaped:?} after; turns {statuses:?}; failures {:?}",
            report.failures()
        );
        let interrupted = statuses.iter().position(|(_, s)| s == "interrupted");
        assert!(interrupted.is_some(), "the dead instance's turn is marked interrupted: {statuses:?}");
        assert!(
            statuses[interrupted.unwrap()..].iter().any(|(_, s)| s == "complete"),
            "the session takes a new turn after it: {statuses:?}"
        );
        assert!(
            heard_after(&report, restarted.at),
            "the restarted instance hears the other's publishes"
        );
        // Everyone has left; what the dead instance listed was reaped.
        for ((id, _), token) in report.snapshots.iter().zip(&report.owners) {
            let start = Instant::now();
            loop {
                let count = presence_count(&bases[1], token, id).await;
                if count == 1 {
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "{count} present in {id}: the dead instance's members were never reaped"
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    })
    .await
}

/// Members of session `id` as a fresh subscriber on `base` sees them (itself included).
async fn presence_count(base: &str, token: &str, id: &str) -> u64 {
    let mut link = Link::open(base, token).await.expect("probe connects");
    let rid = link
        .request("subscribe", json!({"channel": format!("session:{id}")}))
        .await
        .expect("subscribe");
    let r = link
        .reply(&rid, Duration::from_secs(10), |_| {})
        .await
        .expect("reply");
    link.close().await;
    r["result"]["presence_count"].as_u64().unwrap_or(u64::MAX)
}

#[tokio::test]
async fn redis_restart_under_load_loses_nothing_and_heals() {
    if !need_services("redis_restart_under_load_loses_nothing_and_heals") {
        return;
    }
    bounded(async {
        let own = Own {
            redis: true,
            postgres: false,
        };
        let mut d = Deployment::start(2, own, &[]).await;
        let bases = d.bases();
        let load = Running::start(spec(bases.clone(), &bases[0], &bases[1])).await;
        let warm = load.mark();
        load.progressed(&warm, 5, Duration::from_secs(30)).await;

        let redis = d.redis.as_mut().expect("own redis");
        redis.kill().await;
        let down = load.mark();
        // Writes go on without Redis: the database is the truth, Redis only carries.
        let writes = load.progressed(&down, 3, Duration::from_secs(30)).await;
        for b in &bases {
            ready_is(b, 503, Duration::from_secs(15)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        d.redis.as_mut().expect("own redis").spawn().await;
        let back = Instant::now();
        let ready = ready_is(&bases[0], 200, Duration::from_secs(30)).await;
        ready_is(&bases[1], 200, Duration::from_secs(30)).await;
        let again = load.mark();
        load.progressed(&again, 3, Duration::from_secs(30)).await;
        tokio::time::sleep(Duration::from_secs(2)).await;

        let report = load.finish(&bases[1]).await;
        report.check();
        eprintln!(
            "FAULT redis restart: writes went on ({writes:?} for 3 each), ready again {ready:?} after Redis came back; turns {:?}; failures {:?}",
            report.turn_statuses(),
            report.failures()
        );
        assert!(heard_after(&report, back), "cross-instance delivery resumed");
    })
    .await
}

#[tokio::test]
async fn redis_cut_for_ten_seconds_loses_nothing_and_heals() {
    if !need_services("redis_cut_for_ten_seconds_loses_nothing_and_heals") {
        return;
    }
    bounded(async {
        let target = {
            let u = url::Url::parse(&redis_url().unwrap()).unwrap();
            tokio::net::lookup_host(format!("{}:{}", u.host_str().unwrap(), u.port().unwrap_or(6379)))
                .await
                .unwrap()
                .next()
                .unwrap()
        };
        let proxy = Proxy::start(target).await;
        let port = proxy.addr.port();
        let through = format!("redis://127.0.0.1:{port}");
        let d = Deployment::start(2, Own::default(), &[("SWITCHYARD_REDIS_URL", &through)]).await;
        let bases = d.bases();
        let load = Running::start(spec(bases.clone(), &bases[0], &bases[1])).await;
        let warm = load.mark();
        load.progressed(&warm, 5, Duration::from_secs(30)).await;

        proxy.cut();
        let cut = load.mark();
        let writes = load.progressed(&cut, 3, Duration::from_secs(30)).await;
        ready_is(&bases[0], 503, Duration::from_secs(15)).await;
        tokio::time::sleep(Duration::from_secs(10).saturating_sub(cut.at.elapsed())).await;
        let _back = Proxy::start_on(port, target).await;
        let back = Instant::now();
        let ready = ready_is(&bases[0], 200, Duration::from_secs(30)).await;
        ready_is(&bases[1], 200, Duration::from_secs(30)).await;
        let again = load.mark();
        load.progressed(&again, 3, Duration::from_secs(30)).await;
        tokio::time::sleep(Duration::from_secs(2)).await;

        let report = load.finish(&bases[1]).await;
        report.check();
        eprintln!(
            "FAULT redis cut 10 s: writes went on ({writes:?}), ready again {ready:?} after; turns {:?}; failures {:?}",
            report.turn_statuses(),
            report.failures()
        );
        assert!(heard_after(&report, back), "cross-instance delivery resumed");
    })
    .await
}

#[tokio::test]
async fn postgres_restart_under_load_is_retryable_and_loses_nothing() {
    if !need_services("postgres_restart_under_load_is_retryable_and_loses_nothing") {
        return;
    }
    bounded(async {
        let own = Own {
            redis: false,
            postgres: true,
        };
        let mut d = Deployment::start(2, own, &[("SWITCHYARD_DATABASE_ACQUIRE_TIMEOUT_SECS", "2")]).await;
        let bases = d.bases();
        let load = Running::start(spec(bases.clone(), &bases[0], &bases[1])).await;
        let warm = load.mark();
        load.progressed(&warm, 5, Duration::from_secs(30)).await;

        d.pg.as_mut().expect("own postgres").crash().await;
        for b in &bases {
            ready_is(b, 503, Duration::from_secs(15)).await;
        }
        tokio::time::sleep(Duration::from_secs(4)).await;
        d.pg.as_mut().expect("own postgres").spawn().await;
        let back = load.mark();
        let writes = load.progressed(&back, 3, Duration::from_secs(45)).await;
        let ready = ready_is(&bases[0], 200, Duration::from_secs(30)).await;
        tokio::time::sleep(Duration::from_secs(2)).await;

        let report = load.finish(&bases[1]).await;
        report.check();
        let failures = report.failures();
        eprintln!(
            "FAULT postgres crash: writers acknowledged again {writes:?} after it was back, ready {ready:?}; turns {:?}; failures {failures:?}",
            report.turn_statuses()
        );
        assert!(
            failures.contains_key("push service_unavailable"),
            "pushes while it was down were refused as retryable: {failures:?}"
        );
        assert!(
            !failures.keys().any(|k| k.contains("internal_error")),
            "never internal_error: {failures:?}"
        );
    })
    .await
}

#[tokio::test]
async fn rolling_restart_behind_a_balancer_loses_nothing() {
    if !need_services("rolling_restart_behind_a_balancer_loses_nothing") {
        return;
    }
    bounded(async {
        let mut d = Deployment::start(2, Own::default(), &[]).await;
        let lb = Balancer::start(d.instances.iter().map(|i| i.addr()).collect()).await;
        let via = vec![lb.base()];
        let load = Running::start(spec(via.clone(), &via[0], &via[0])).await;
        let warm = load.mark();
        load.progressed(&warm, 5, Duration::from_secs(30)).await;

        let mut times = Vec::new();
        for i in 0..2 {
            let stop = load.mark();
            let clean = d.instances[i].terminate(Duration::from_secs(20)).await;
            assert!(clean, "{} exits cleanly on SIGTERM", d.instances[i].name);
            times.push(load.progressed(&stop, 3, Duration::from_secs(45)).await);
            d.instances[i].spawn().await;
        }
        let again = load.mark();
        load.progressed(&again, 3, Duration::from_secs(30)).await;

        let report = load.finish(&d.bases()[0]).await;
        report.check();
        let statuses = report.turn_statuses();
        eprintln!(
            "FAULT rolling restart: writers acknowledged again {times:?} after each SIGTERM; turns {statuses:?}; failures {:?}",
            report.failures()
        );
        assert!(
            statuses.iter().all(|(_, s)| s == "complete"),
            "a draining instance lets its turns finish: {statuses:?}"
        );
    })
    .await
}
