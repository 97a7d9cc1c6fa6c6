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
