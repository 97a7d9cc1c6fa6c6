//! Config loading: what is accepted, what is refused at load, and what stays redacted.

use super::*;
use crate::config::LogFormat;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn env_overrides_nested_fields() {
    let c = Config::load(
        None,
        env(&[
            ("SWITCHYARD_DATABASE_URL", "postgres://u:hunter2-pw@h/db"),
            ("SWITCHYARD_AUTH_ACCESS_TTL_SECS", "60"),
            (
                "SWITCHYARD_SERVER_CORS_ORIGINS",
                "https://a.example, https://b.example",
            ),
            ("SWITCHYARD_LOG_FORMAT", "json"),
            ("PATH", "/bin"),
        ]),
    )
    .expect("valid");
    assert_eq!(c.auth.access_ttl_secs, 60);
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.server.cors_origins.len(), 2);
    assert!(!format!("{c:?}").contains("hunter2-pw"));
}

#[test]
fn unknown_or_mistyped_env_is_an_error() {
    assert!(matches!(
        Config::load(None, env(&[("SWITCHYARD_AUTH_TTL", "1")])),
        Err(ConfigError::UnknownEnv(_))
    ));
    assert!(matches!(
        Config::load(None, env(&[("SWITCHYARD_AUTH_LOCKOUT_SECS", "soon")])),
        Err(ConfigError::Invalid(_))
    ));
}

#[test]
fn a_zero_answer_limit_is_refused_at_start() {
    for var in [
        "SWITCHYARD_LLM_ANSWER_TIMEOUT_MS",
        "SWITCHYARD_LLM_MAX_ANSWER_BYTES",
    ] {
        let e = Config::load(None, env(&[(var, "0")]));
        assert!(
            matches!(&e, Err(ConfigError::Invalid(m)) if m.contains("llm.")),
            "{var}: {e:?}"
        );
    }
}

#[test]
fn cors_origins_are_normalized_or_refused_at_load() {
    let origins = |v: &str| {
        Config::load(None, env(&[("SWITCHYARD_SERVER_CORS_ORIGINS", v)]))
            .map(|c| c.server.cors_origins)
    };
    assert_eq!(
        origins("https://App.Example/, http://127.0.0.1:5173").expect("valid"),
        vec!["https://app.example", "http://127.0.0.1:5173"]
    );
    let any = Config::load(None, env(&[("SWITCHYARD_SERVER_CORS_ORIGINS", "*")])).unwrap();
    assert!(any.server.any_origin() && any.server.origin_allowed("https://x.example"));
    for bad in [
        "https://a.example/app",
        "a.example",
        "https://*.example",
        "https://u@a.example",
        "https://a.example?x",
    ] {
        let e = origins(bad);
        assert!(
            matches!(&e, Err(ConfigError::Invalid(m)) if m.contains("cors_origins")),
            "{bad}: {e:?}"
        );
    }
}

#[test]
fn redis_settings_that_cannot_work_are_refused_at_load() {
    let refused = |pairs: &[(&str, &str)], says: &str| {
        let e = Config::load(None, env(pairs)).unwrap_err().to_string();
        assert!(e.contains(says), "{pairs:?}: {e}");
    };
    refused(
        &[
            ("SWITCHYARD_REDIS_URL", "redis://a"),
            ("SWITCHYARD_REDIS_CLUSTER_URLS", "redis://b:7000"),
        ],
        "not both",
    );
    refused(&[("SWITCHYARD_REDIS_KEY_PREFIX", "sy{1}:")], "key_prefix");
    refused(
        &[("SWITCHYARD_MCP_ELICITATION_TIMEOUT_MS", "0")],
        "elicitation_timeout_ms",
    );
    refused(
        &[("SWITCHYARD_MCP_MAX_PENDING_ELICITATIONS", "0")],
        "max_pending_elicitations",
    );
    refused(
        &[("SWITCHYARD_SYNC_HEAL_MAX_FRAMES", "256")],
        "ws.send_queue",
    );
    let c = Config::load(
        None,
        env(&[(
            "SWITCHYARD_REDIS_CLUSTER_URLS",
            "redis://:s3cret-pw@n1:7000, redis://:s3cret-pw@n2:7001",
        )]),
    )
    .expect("valid");
    assert!(matches!(
        c.redis.target(),
        Some(crate::bus::redis_conn::Target::Cluster(seeds)) if seeds.len() == 2
    ));
    assert!(
        !format!("{c:?}").contains("s3cret-pw"),
        "seeds are redacted"
    );
    assert!(c.secret_values().iter().any(|s| s == "s3cret-pw"));
}

#[test]
fn file_then_env() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "[auth]\nlockout_threshold = 3\nlockout_secs = 10\n").expect("write");
    let c =
        Config::load(Some(&path), env(&[("SWITCHYARD_AUTH_LOCKOUT_SECS", "20")])).expect("valid");
    assert_eq!((c.auth.lockout_threshold, c.auth.lockout_secs), (3, 20));
}

#[test]
fn an_extension_the_server_cannot_check_is_a_config_error() {
    let e = Config::load(
        None,
        env(&[("SWITCHYARD_FILES_ALLOWED_EXTENSIONS", "txt,exe")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("files.allowed_extensions") && e.contains(".exe"),
        "{e}"
    );
    let c = Config::load(
        None,
        env(&[("SWITCHYARD_FILES_ALLOWED_EXTENSIONS", "md,png")]),
    )
    .unwrap();
    assert_eq!(c.files.allowed_extensions, ["md", "png"]);
}
