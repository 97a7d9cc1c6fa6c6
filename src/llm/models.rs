//! Model ids routed to providers, from config. `echo` is always there.

use super::{anthropic::Anthropic, echo::Echo, openai::OpenAi, upstream::Upstream, Provider};
use crate::config::LlmConfig;
use std::{sync::Arc, time::Duration};

pub struct Route {
    pub id: String,
    /// `openai`, `anthropic` or `switchyard` (echo): the `owned_by` of `/v1/models`.
    pub owned_by: &'static str,
    /// The model name sent upstream.
    pub upstream_model: String,
    pub provider: Arc<dyn Provider>,
}

/// The routing table from a model name to its provider, read once from `llm.*` config. Owned
/// by `Completions`; immutable for the server's life.
pub struct Models {
    routes: Vec<Route>,
    /// Start time, reported as every model's `created`.
    pub created: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("llm.models entry {entry:?}: {reason}")]
pub struct RouteError {
    entry: String,
    reason: String,
}

impl Models {
    pub fn from_config(cfg: &LlmConfig) -> Result<Self, RouteError> {
        let upstream = Arc::new(Upstream::new(cfg));
        let openai: Arc<dyn Provider> = Arc::new(OpenAi::new(
            &cfg.openai_base_url,
            &cfg.openai_api_key,
            upstream.clone(),
        ));
        let anthropic: Arc<dyn Provider> = Arc::new(Anthropic::new(
            &cfg.anthropic_base_url,
            &cfg.anthropic_api_key,
            upstream,
        ));
        let mut routes = vec![Route {
            id: super::echo::MODEL_ID.into(),
            owned_by: "switchyard",
            upstream_model: super::echo::MODEL_ID.into(),
            provider: Arc::new(Echo {
                chunk_delay: Duration::from_millis(cfg.echo_chunk_delay_ms),
            }),
        }];
        for entry in &cfg.models {
            let bad = |reason: &str| RouteError {
                entry: entry.clone(),
                reason: reason.into(),
            };
            let (id, target) = entry
                .split_once('=')
                .ok_or_else(|| bad("expected id=provider[:upstream_model]"))?;
            let (id, target) = (id.trim(), target.trim());
            let (provider, upstream_model) = target.split_once(':').unwrap_or((target, id));
            if id.is_empty() || upstream_model.is_empty() {
                return Err(bad("model ids cannot be empty"));
            }
            if routes.iter().any(|r| r.id == id) {
                return Err(bad("model id listed twice"));
            }
            let (owned_by, provider) = match provider {
                "openai" => ("openai", openai.clone()),
                "anthropic" => ("anthropic", anthropic.clone()),
                _ => return Err(bad("provider must be openai or anthropic")),
            };
            routes.push(Route {
                id: id.into(),
                owned_by,
                upstream_model: upstream_model.into(),
                provider,
            });
        }
        Ok(Self {
            routes,
            created: crate::time::now_ms() / 1000,
        })
    }

    pub fn get(&self, id: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.id == id)
    }

    pub fn all(&self) -> &[Route] {
        &self.routes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(models: &[&str]) -> Result<Models, RouteError> {
        let cfg = LlmConfig {
            models: models.iter().map(|s| s.to_string()).collect(),
            ..LlmConfig::default()
        };
        Models::from_config(&cfg)
    }

    #[test]
    fn routes_parse_and_bad_entries_stop_start_up() {
        let m = routes(&[
            "gpt=openai",
            "claude=anthropic:claude-sonnet-4-5",
            "ft=openai:ft:gpt-4o:org",
        ])
        .unwrap();
        assert_eq!(m.get("gpt").unwrap().upstream_model, "gpt");
        assert_eq!(m.get("claude").unwrap().upstream_model, "claude-sonnet-4-5");
        assert_eq!(m.get("ft").unwrap().upstream_model, "ft:gpt-4o:org");
        assert_eq!(m.get("echo").unwrap().owned_by, "switchyard");
        for bad in [
            &["nope"][..],
            &["x=azure"],
            &["echo=openai"],
            &["a=openai", "a=anthropic"],
            &["=openai"],
        ] {
            assert!(routes(bad).is_err(), "{bad:?}");
        }
    }
}
