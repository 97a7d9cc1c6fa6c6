//! The per-IP auth rate limit: in memory alone, shared through Redis across instances.

use crate::helpers::*;
use reqwest::StatusCode;

#[tokio::test]
async fn auth_routes_are_rate_limited_with_headers() {
    within(async {
        let app = spawn_with(|c| c.ratelimit.auth_requests = 3).await;
        for left in [2, 1, 0] {
            let r = app.login(&unique_email(), "whatever-pass-1").await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(r.headers()["x-ratelimit-limit"], "3");
            assert_eq!(
                r.headers()["x-ratelimit-remaining"],
                left.to_string().as_str()
            );
        }
        let r = app.login(&unique_email(), "whatever-pass-1").await;
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry));
        let reset: u64 = r.headers()["x-ratelimit-reset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(reset <= 60);
        let e = error_of(r, StatusCode::TOO_MANY_REQUESTS).await;
        assert_eq!(e["type"], "rate_limit_error");
        // Other routes are not limited by it.
        assert_eq!(
            app.http
                .get(app.url("/health"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
    })
    .await
}

#[tokio::test]
async fn two_instances_share_the_limit_through_redis() {
    if redis_url().is_none() {
        eprintln!("two_instances_share_the_limit_through_redis: needs TEST_REDIS_URL (Redis pass)");
        return;
    }
    within(async {
        let cluster = Cluster::new().await;
        let a = cluster.spawn(|c| c.ratelimit.auth_requests = 4).await;
        let b = cluster.spawn(|c| c.ratelimit.auth_requests = 4).await;
        for app in [&a, &b, &a, &b] {
            assert_eq!(
                app.login(&unique_email(), "whatever-pass-1").await.status(),
                StatusCode::UNAUTHORIZED
            );
        }
        // The fifth request overall is refused, on either instance.
        assert_eq!(
            a.login(&unique_email(), "whatever-pass-1").await.status(),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            b.login(&unique_email(), "whatever-pass-1").await.status(),
            StatusCode::TOO_MANY_REQUESTS
        );
    })
    .await
}
