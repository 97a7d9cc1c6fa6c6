//! API keys for REST-only clients: created (the secret shown once), listed, revoked (closing
//! the sockets opened with them, on every instance).

use super::{secrets, AuthService};
use crate::{
    domain::{ApiKeyId, UserId},
    error::AppError,
    store::{ApiKey, NewApiKey},
};

impl AuthService {
    pub async fn create_api_key(
        &self,
        user: UserId,
        name: &str,
        ip: Option<&str>,
    ) -> Result<(ApiKey, String), AppError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AppError::validation(
                "name",
                "name must be 1 to 100 characters",
            ));
        }
        let secret = secrets::new_api_key();
        let key = self
            .store
            .create_api_key(&NewApiKey {
                user_id: user,
                name: name.to_owned(),
                prefix: secrets::shown_prefix(&secret),
                key_hash: secrets::hash(&secret),
            })
            .await?;
        self.audit(
            Some(user),
            "api_key_created",
            ip,
            serde_json::json!({"key_id": key.id}),
        )
        .await;
        Ok((key, secret))
    }

    pub async fn list_api_keys(&self, user: UserId) -> Result<Vec<ApiKey>, AppError> {
        Ok(self.store.list_api_keys(user).await?)
    }

    pub async fn revoke_api_key(
        &self,
        user: UserId,
        id: ApiKeyId,
        ip: Option<&str>,
    ) -> Result<(), AppError> {
        if !self.store.revoke_api_key(user, id).await? {
            return Err(AppError::NotFound(format!("no API key {id}")));
        }
        self.checked.forget_key(id);
        self.bus.close_key(&user.to_string(), id.0).await;
        self.audit(
            Some(user),
            "api_key_revoked",
            ip,
            serde_json::json!({"key_id": id}),
        )
        .await;
        Ok(())
    }
}
