//! The store suite: the same checks against SQLite always and PostgreSQL when configured.

use crate::helpers::fixtures::stores;
use crate::helpers::*;
use chrono::{Duration as ChronoDuration, Utc};
use std::time::Duration;
use switchyard::{
    domain::{Email, Role},
    store::{AuditEvent, NewApiKey, NewUser, RotateOutcome, StoreError},
};

fn new_user(email: &str) -> NewUser {
    NewUser {
        email: Email::parse(email).unwrap(),
        password_hash: "h".into(),
        role: Role::User,
    }
}

#[tokio::test]
async fn users_unique_and_lockout_counting() {
    within(async {
        for (_d, s) in stores().await {
            let u = s.create_user(&new_user("a@b.co")).await.unwrap();
            assert!(
                matches!(
                    s.create_user(&new_user("A@B.co")).await,
                    Err(StoreError::Conflict(_))
                ),
                "{}",
                s.backend()
            );
            let until = Utc::now() + ChronoDuration::seconds(60);
            let one = s.record_login_failure(u.id, 2, until).await.unwrap();
            assert_eq!((one.failed_logins, one.locked_until.is_some()), (1, false));
            let two = s.record_login_failure(u.id, 2, until).await.unwrap();
            assert_eq!(two.failed_logins, 0, "count resets when the lock is set");
            assert!(two
                .locked_until
                .is_some_and(|t| (t - until).num_milliseconds().abs() < 1000));
            assert!(
                !s.clear_login_failures(u.id, None).await.unwrap(),
                "a success that saw no lock does not clear one set since ({})",
                s.backend()
            );
            assert!(s
                .clear_login_failures(u.id, two.locked_until)
                .await
                .unwrap());
            let back = s
                .user_by_email(&Email::parse("a@b.co").unwrap())
                .await
                .unwrap()
                .unwrap();
            assert_eq!((back.failed_logins, back.locked_until), (0, None));
        }
    })
    .await
}

#[tokio::test]
async fn concurrent_refresh_rotation_has_one_winner() {
    within(async {
        for (_d, s) in stores().await {
            let u = s.create_user(&new_user("r@b.co")).await.unwrap();
            let exp = Utc::now() + ChronoDuration::seconds(60);
            s.create_refresh_family(u.id, b"old", exp).await.unwrap();
            let mut tasks = Vec::new();
            for i in 0..8u8 {
                let s = s.clone();
                tasks.push(tokio::spawn(async move {
                    s.rotate_refresh_token(b"old", &[i; 8], exp, Duration::ZERO)
                        .await
                        .unwrap()
                }));
            }
            let mut rotated = 0;
            for t in tasks {
                match t.await.unwrap() {
                    RotateOutcome::Rotated { .. } => rotated += 1,
                    RotateOutcome::Reused { .. } | RotateOutcome::Revoked => {}
                    other => panic!("unexpected {other:?} on {}", s.backend()),
                }
            }
            assert_eq!(rotated, 1, "exactly one rotation wins on {}", s.backend());
            // The replays revoked the family: even the winner's new token is dead.
            let winner_tokens: Vec<[u8; 8]> = (0..8u8).map(|i| [i; 8]).collect();
            for t in winner_tokens {
                let o = s
                    .rotate_refresh_token(&t, b"next", exp, Duration::ZERO)
                    .await
                    .unwrap();
                assert!(
                    matches!(o, RotateOutcome::Revoked | RotateOutcome::Unknown),
                    "{o:?}"
                );
            }
            let expired_at = Utc::now() - ChronoDuration::seconds(1);
            s.create_refresh_family(u.id, b"stale", expired_at)
                .await
                .unwrap();
            assert_eq!(
                s.rotate_refresh_token(b"stale", b"x", exp, Duration::ZERO)
                    .await
                    .unwrap(),
                RotateOutcome::Expired
            );
        }
    })
    .await
}

#[tokio::test]
async fn api_keys_and_audit() {
    within(async {
        for (_d, s) in stores().await {
            let u = s.create_user(&new_user("k@b.co")).await.unwrap();
            let k = s
                .create_api_key(&NewApiKey {
                    user_id: u.id,
                    name: "n".into(),
                    prefix: "sk-sy-abc".into(),
                    key_hash: vec![7; 32],
                })
                .await
                .unwrap();
            let (used, owner) = s
                .use_api_key(&[7; 32], Duration::from_secs(60))
                .await
                .unwrap()
                .unwrap();
            assert_eq!((used.id, owner.id), (k.id, u.id));
            let listed = s.list_api_keys(u.id).await.unwrap();
            assert!(
                listed[0].last_used_at.is_some(),
                "first use touches last_used_at"
            );
            let other = s.create_user(&new_user("o@b.co")).await.unwrap();
            assert!(
                !s.revoke_api_key(other.id, k.id).await.unwrap(),
                "not theirs"
            );
            assert!(s.revoke_api_key(u.id, k.id).await.unwrap());
            assert!(s
                .use_api_key(&[7; 32], Duration::from_secs(60))
                .await
                .unwrap()
                .is_none());
            assert!(s.list_api_keys(u.id).await.unwrap().is_empty());

            s.audit(&AuditEvent {
                user_id: Some(u.id),
                event: "login",
                ip: Some("127.0.0.1".into()),
                detail: serde_json::json!({"x": 1}),
            })
            .await
            .unwrap();
            s.audit(&AuditEvent {
                user_id: None,
                event: "login_failed",
                ip: None,
                detail: serde_json::json!({}),
            })
            .await
            .unwrap();
            let mine = s.list_audit(Some(u.id), 10).await.unwrap();
            assert_eq!(mine.len(), 1);
            assert_eq!(
                (mine[0].event.as_str(), mine[0].detail["x"].as_i64()),
                ("login", Some(1))
            );
            assert_eq!(
                s.list_audit(None, 10).await.unwrap()[0].event,
                "login_failed",
                "newest first"
            );
        }
    })
    .await
}

#[tokio::test]
async fn a_usage_batch_with_a_deleted_accounts_record_keeps_the_others() {
    within(async {
        for (_d, s) in stores().await {
            let (alive, gone) = (
                s.create_user(&new_user("alive@b.co")).await.unwrap(),
                s.create_user(&new_user("gone@b.co")).await.unwrap(),
            );
            assert!(s.delete_user(gone.id).await.unwrap());
            let record = |user| switchyard::store::UsageRecord {
                id: uuid::Uuid::now_v7(),
                user_id: user,
                api_key_id: None,
                source: "rest".into(),
                model: "echo".into(),
                prompt_tokens: 3,
                completion_tokens: 2,
                latency_ms: 1,
                status: "ok".into(),
                created_at: Utc::now(),
            };
            let batch = [record(gone.id), record(alive.id), record(gone.id)];
            s.record_usage(&batch)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", s.backend()));
            let kept = s.list_usage(alive.id, None, 10).await.unwrap();
            assert_eq!(kept.len(), 1, "{}", s.backend());
            assert_eq!(kept[0].id, batch[1].id);
        }
    })
    .await
}

#[tokio::test]
async fn analytics_adds_whole_hours_from_the_rollup_to_the_raw_ends_of_its_range() {
    within(async {
        for (_d, s) in stores().await {
            let u = s.create_user(&new_user("stats@b.co")).await.unwrap();
            let base = Utc::now()
                .date_naive()
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc()
                - ChronoDuration::days(2);
            let at = |mins: i64, latency: u64, model: &str| switchyard::store::UsageRecord {
                id: uuid::Uuid::now_v7(),
                user_id: u.id,
                api_key_id: None,
                source: "rest".into(),
                model: model.into(),
                prompt_tokens: 10,
                completion_tokens: 1,
                latency_ms: latency,
                status: if latency > 1000 {
                    "error".into()
                } else {
                    "ok".into()
                },
                created_at: base + ChronoDuration::minutes(mins),
            };
            // 00:10, 00:50, 01:30, 02:00, 02:59, 03:20 (two batches: the rollup adds up).
            let batch1 = [at(10, 3, "a"), at(50, 3, "a"), at(90, 40, "b")];
            let batch2 = [at(120, 40, "a"), at(179, 4000, "a"), at(200, 3, "b")];
            s.record_usage(&batch1).await.unwrap();
            s.record_usage(&batch2).await.unwrap();
            let range = |from: i64, to: i64| {
                (
                    base + ChronoDuration::minutes(from),
                    base + ChronoDuration::minutes(to),
                )
            };
            for ((from, to), want) in [
                (range(0, 240), 6),   // whole hours only
                (range(30, 240), 5),  // starts inside the first hour
                (range(30, 190), 4),  // and ends inside the last
                (range(100, 110), 0), // inside one hour, nothing there
                (range(85, 95), 1),   // inside one hour
                (range(120, 180), 2), // exactly one whole hour
            ] {
                let a = s.analytics(from, to).await.unwrap();
                assert_eq!(a.usage.requests, want, "{}: {from}..{to}", s.backend());
                assert_eq!(a.usage.prompt_tokens, 10 * want);
                let by_model: i64 = a.by_model.iter().map(|m| m.totals.requests).sum();
                let by_day: i64 = a.by_day.iter().map(|d| d.requests).sum();
                assert_eq!((by_model, by_day), (want, want), "{}", s.backend());
            }
            let all = s.analytics(range(0, 240).0, range(0, 240).1).await.unwrap();
            assert_eq!(all.usage.errors, 1);
            assert_eq!(all.usage.latency_ms_p50, Some(5), "3 ms is in [2, 5)");
            assert_eq!(all.usage.latency_ms_p95, Some(5000), "4 s is in [2 s, 5 s)");
            assert_eq!(all.by_api_key.len(), 1);
            assert_eq!(
                (all.by_api_key[0].api_key_id, all.by_api_key[0].requests),
                (None, 6)
            );
            assert_eq!(all.active_users, 1);
            assert_eq!(
                all.by_model
                    .iter()
                    .map(|m| (m.model.as_str(), m.totals.requests))
                    .collect::<Vec<_>>(),
                vec![("a", 4), ("b", 2)]
            );
            assert_eq!(all.by_day.len(), 1);
            assert_eq!(all.by_day[0].day, base.format("%Y-%m-%d").to_string());
        }
    })
    .await
}
