//! The sync write path and catch-up, shared by both backends (see `sql.rs` for why a macro).
//! The first statement of `push` is an UPDATE of the session row, so the row (PostgreSQL) or
//! the database (SQLite) is write-locked before anything is read: pushes to one session from
//! any number of instances serialize, and versions are contiguous.

use super::StoreError;
use crate::sync::{
    hlc::Hlc,
    merge::{Message, Register, Stamp},
    ops::MessageRole,
};
use chrono::{DateTime, Utc};

#[derive(sqlx::FromRow)]
pub(super) struct RegisterRow {
    pub key: String,
    pub value: Option<String>,
    pub hlc: String,
    pub client_id: String,
}

impl RegisterRow {
    pub fn into_register(self) -> Result<(String, Register), StoreError> {
        let value = self
            .value
            .map(|v| serde_json::from_str(&v))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("register value: {e}")))?;
        let hlc: Hlc = self.hlc.parse().map_err(StoreError::Corrupt)?;
        Ok((
            self.key,
            Register {
                value,
                stamp: Stamp {
                    hlc,
                    client_id: self.client_id,
                },
            },
        ))
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct MessageRow {
    pub id: String,
    pub role: String,
    pub content: String,
    pub metadata: String,
    pub position: i64,
    pub seq: i32,
    pub author_client: String,
    pub edit_hlc: String,
    pub edit_client: String,
    pub deleted: bool,
    pub streaming: bool,
    #[allow(dead_code)]
    pub created_at: DateTime<Utc>,
}

impl MessageRow {
    pub fn into_message(self) -> Result<Message, StoreError> {
        Ok(Message {
            role: MessageRole::parse(&self.role)
                .ok_or_else(|| StoreError::Corrupt(format!("role {:?}", self.role)))?,
            metadata: serde_json::from_str(&self.metadata)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            position: self.position as u64,
            seq: self.seq as u32,
            edit: Stamp {
                hlc: self.edit_hlc.parse().map_err(StoreError::Corrupt)?,
                client_id: self.edit_client,
            },
            id: self.id,
            content: self.content,
            author_client: self.author_client,
            deleted: self.deleted,
            streaming: self.streaming,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct ChangeRow {
    pub version: i64,
    pub client_id: String,
    pub mutation_id: i64,
    pub hlc: String,
    pub ops: String,
}

impl ChangeRow {
    pub fn into_change(self) -> Result<super::Change, StoreError> {
        Ok(super::Change {
            version: self.version as u64,
            mutation: crate::sync::ops::Mutation {
                client_id: self.client_id,
                mutation_id: self.mutation_id as u64,
                hlc: self.hlc.parse().map_err(StoreError::Corrupt)?,
                ops: serde_json::from_str(&self.ops)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            },
        })
    }
}

pub(super) const MESSAGE_COLUMNS: &str =
    "id, role, content, metadata, position, seq, author_client, \
    edit_hlc, edit_client, deleted, streaming, created_at";

macro_rules! impl_sync_store {
    ($store:ty, $conn:ty) => {
        impl $store {
            async fn load_registers(conn: &mut $conn, session: SessionId) -> StoreResult<crate::sync::merge::Doc> {
                let rows: Vec<RegisterRow> = sqlx::query_as(
                    "SELECT key, value, hlc, client_id FROM session_registers WHERE session_id = $1",
                )
                .bind(session.0)
                .fetch_all(&mut *conn)
                .await?;
                let mut doc = crate::sync::merge::Doc::default();
                for r in rows {
                    let (k, v) = r.into_register()?;
                    doc.registers.insert(k, v);
                }
                Ok(doc)
            }

            async fn load_message(
                conn: &mut $conn,
                session: SessionId,
                id: &str,
            ) -> StoreResult<Option<crate::sync::merge::Message>> {
                let row: Option<MessageRow> = sqlx::query_as(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = $1 AND id = $2"
                ))
                .bind(session.0)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
                row.map(MessageRow::into_message).transpose()
            }

            async fn load_snapshot(conn: &mut $conn, session: SessionId, version: u64) -> StoreResult<Snapshot> {
                let mut doc = Self::load_registers(&mut *conn, session).await?;
                let rows: Vec<MessageRow> = sqlx::query_as(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = $1 ORDER BY position, seq"
                ))
                .bind(session.0)
                .fetch_all(&mut *conn)
                .await?;
                for r in rows {
                    let m = r.into_message()?;
                    doc.messages.insert(m.id.clone(), m);
                }
                Ok(Snapshot { version, doc })
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::SyncStore for $store {
            async fn push(
                &self,
                session: SessionId,
                batch: &[Pushed<'_>],
                keep_versions: u64,
            ) -> StoreResult<Option<PushOutcome>> {
                use std::collections::{HashMap, HashSet};
                let now = Utc::now();
                let mut tx = self.pool.begin().await?;
                let locked: Option<(i64, i64)> = sqlx::query_as(
                    "UPDATE sessions SET version = version WHERE id = $1 AND deleted_at IS NULL \
                     RETURNING version, log_floor",
                )
                .bind(session.0)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((start, floor)) = locked else { return Ok(None) };
                let mut version = start as u64;
                let mut doc = Self::load_registers(&mut *tx, session).await?;
                let mut loaded: HashSet<String> = HashSet::new();
                let mut last: HashMap<String, u64> = HashMap::new();
                let mut owners: HashMap<String, Uuid> = HashMap::new();
                let mut advanced: HashMap<String, UserId> = HashMap::new();
                let mut blocked: HashSet<String> = HashSet::new();
                let mut out = PushOutcome::default();
                for p in batch {
                    let m = p.mutation;
                    let (client, id) = (m.client_id.clone(), m.mutation_id);
                    if owners.get(&client).is_none() {
                        let row: Option<(Uuid, i64)> = sqlx::query_as(
                            "SELECT user_id, last_mutation_id FROM sync_clients WHERE client_id = $1",
                        )
                        .bind(&client)
                        .fetch_optional(&mut *tx)
                        .await?;
                        let (owner, l) = row.map_or((p.user.0, 0), |(o, l)| (o, l as u64));
                        owners.insert(client.clone(), owner);
                        last.insert(client.clone(), l);
                    }
                    if owners[&client] != p.user.0 {
                        out.results.push(MutationResult::Refused {
                            client_id: client,
                            mutation_id: id,
                            error: "client_id is in use by another account; pick a new one".into(),
                        });
                        continue;
                    }
                    let prev = last[&client];
                    if blocked.contains(&client) || id > prev + 1 {
                        blocked.insert(client.clone());
                        out.results.push(MutationResult::OutOfOrder { client_id: client, mutation_id: id, expected: prev + 1 });
                        continue;
                    }
                    if id <= prev {
                        let row: Option<(Option<i64>, Option<String>)> = sqlx::query_as(
                            "SELECT version, error FROM mutation_results WHERE client_id = $1 AND mutation_id = $2",
                        )
                        .bind(&client)
                        .bind(id as i64)
                        .fetch_optional(&mut *tx)
                        .await?;
                        out.results.push(match row {
                            Some((Some(v), _)) => MutationResult::Applied { client_id: client, mutation_id: id, version: v as u64 },
                            Some((None, Some(error))) => MutationResult::Refused { client_id: client, mutation_id: id, error },
                            _ => MutationResult::Refused { client_id: client, mutation_id: id, error: "mutation was already processed".into() },
                        });
                        continue;
                    }
                    let refusal = p.refusal.clone().or_else(|| m.validate().err());
                    let applied = match refusal {
                        Some(e) => Err(e),
                        None => {
                            for mid in crate::sync::merge::Doc::keys_of(m).1 {
                                if loaded.insert(mid.clone()) {
                                    if let Some(msg) = Self::load_message(&mut *tx, session, &mid).await? {
                                        doc.messages.insert(mid, msg);
                                    }
                                }
                            }
                            doc.apply(m, version + 1)
                        }
                    };
                    match applied {
                        Ok(touched) => {
                            version += 1;
                            if touched.session_deleted {
                                sqlx::query("UPDATE sessions SET deleted_at = $2 WHERE id = $1")
                                    .bind(session.0)
                                    .bind(now)
                                    .execute(&mut *tx)
                                    .await?;
                            }
                            if touched.registers.contains("f:title") {
                                let title = doc.registers["f:title"].value.as_ref().and_then(|v| v.as_str()).unwrap_or_default().to_owned();
                                sqlx::query("UPDATE sessions SET title = $2 WHERE id = $1")
                                    .bind(session.0)
                                    .bind(title)
                                    .execute(&mut *tx)
                                    .await?;
                            }
                            for key in &touched.registers {
                                let r = &doc.registers[key];
                                sqlx::query(
                                    "INSERT INTO session_registers (session_id, key, value, hlc, client_id) \
                                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (session_id, key) DO UPDATE SET \
                                     value = excluded.value, hlc = excluded.hlc, client_id = excluded.client_id",
                                )
                                .bind(session.0)
                                .bind(key)
                                .bind(r.value.as_ref().map(|v| v.to_string()))
                                .bind(r.stamp.hlc.to_string())
                                .bind(&r.stamp.client_id)
                                .execute(&mut *tx)
                                .await?;
                            }
                            for mid in &touched.messages {
                                let msg = &doc.messages[mid];
                                sqlx::query(
                                    "INSERT INTO messages (session_id, id, role, content, metadata, position, seq, \
                                     author_client, edit_hlc, edit_client, deleted, streaming, created_at, updated_at) \
                                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) \
                                     ON CONFLICT (session_id, id) DO UPDATE SET content = excluded.content, \
                                     metadata = excluded.metadata, edit_hlc = excluded.edit_hlc, edit_client = excluded.edit_client, \
                                     deleted = excluded.deleted, streaming = excluded.streaming, updated_at = excluded.updated_at",
                                )
                                .bind(session.0)
                                .bind(&msg.id)
                                .bind(msg.role.as_str())
                                .bind(&msg.content)
                                .bind(msg.metadata.to_string())
                                .bind(msg.position as i64)
                                .bind(msg.seq as i32)
                                .bind(&msg.author_client)
                                .bind(msg.edit.hlc.to_string())
                                .bind(&msg.edit.client_id)
                                .bind(msg.deleted)
                                .bind(msg.streaming)
                                .bind(now)
                                .execute(&mut *tx)
                                .await?;
                            }
                            sqlx::query(
                                "INSERT INTO change_log (session_id, version, client_id, mutation_id, hlc, ops, created_at) \
                                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                            )
                            .bind(session.0)
                            .bind(version as i64)
                            .bind(&client)
                            .bind(id as i64)
                            .bind(m.hlc.to_string())
                            .bind(serde_json::to_string(&m.ops).map_err(|e| StoreError::Corrupt(e.to_string()))?)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                            sqlx::query(
                                "INSERT INTO mutation_results (client_id, mutation_id, session_id, version, created_at) \
                                 VALUES ($1, $2, $3, $4, $5)",
                            )
                            .bind(&client)
                            .bind(id as i64)
                            .bind(session.0)
                            .bind(version as i64)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                            out.applied.push(Change { version, mutation: m.clone() });
                            out.results.push(MutationResult::Applied { client_id: client.clone(), mutation_id: id, version });
                        }
                        Err(error) => {
                            sqlx::query(
                                "INSERT INTO mutation_results (client_id, mutation_id, session_id, error, created_at) \
                                 VALUES ($1, $2, $3, $4, $5)",
                            )
                            .bind(&client)
                            .bind(id as i64)
                            .bind(session.0)
                            .bind(&error)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                            out.results.push(MutationResult::Refused { client_id: client.clone(), mutation_id: id, error });
                        }
                    }
                    last.insert(client.clone(), id);
                    advanced.insert(client, p.user);
                }
                for (client, user) in &advanced {
                    sqlx::query(
                        "INSERT INTO sync_clients (client_id, user_id, last_mutation_id) VALUES ($1, $2, $3) \
                         ON CONFLICT (client_id) DO UPDATE SET last_mutation_id = excluded.last_mutation_id",
                    )
                    .bind(client)
                    .bind(user.0)
                    .bind(last[client] as i64)
                    .execute(&mut *tx)
                    .await?;
                }
                let mut new_floor = floor as u64;
                if keep_versions > 0 && version > new_floor + 2 * keep_versions {
                    new_floor = version - keep_versions;
                    sqlx::query("DELETE FROM change_log WHERE session_id = $1 AND version <= $2")
                        .bind(session.0)
                        .bind(new_floor as i64)
                        .execute(&mut *tx)
                        .await?;
                }
                if version != start as u64 || new_floor != floor as u64 {
                    sqlx::query("UPDATE sessions SET version = $2, log_floor = $3, updated_at = $4 WHERE id = $1")
                        .bind(session.0)
                        .bind(version as i64)
                        .bind(new_floor as i64)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                out.version = version;
                Ok(Some(out))
            }

            async fn catch_up(&self, session: SessionId, since: u64, limit: u32) -> StoreResult<Option<CatchUp>> {
                let mut tx = self.pool.begin().await?;
                let row: Option<(i64, i64)> =
                    sqlx::query_as("SELECT version, log_floor FROM sessions WHERE id = $1")
                        .bind(session.0)
                        .fetch_optional(&mut *tx)
                        .await?;
                let Some((version, floor)) = row else { return Ok(None) };
                let (version, floor) = (version as u64, floor as u64);
                if since < floor || since > version || version - since > u64::from(limit) {
                    return Ok(Some(CatchUp::Snapshot(Self::load_snapshot(&mut *tx, session, version).await?)));
                }
                let rows: Vec<ChangeRow> = sqlx::query_as(
                    "SELECT version, client_id, mutation_id, hlc, ops FROM change_log \
                     WHERE session_id = $1 AND version > $2 AND version <= $3 ORDER BY version",
                )
                .bind(session.0)
                .bind(since as i64)
                .bind(version as i64)
                .fetch_all(&mut *tx)
                .await?;
                let changes = rows.into_iter().map(ChangeRow::into_change).collect::<Result<Vec<_>, _>>()?;
                Ok(Some(CatchUp::Changes { version, changes }))
            }

            async fn list_messages(
                &self,
                session: SessionId,
                after: Option<(u64, u32)>,
                role: Option<MessageRole>,
                limit: u32,
            ) -> StoreResult<Vec<crate::sync::merge::Message>> {
                let (pos, seq) = after.map_or((-1i64, -1i32), |(p, s)| (p as i64, s as i32));
                let rows: Vec<MessageRow> = sqlx::query_as(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = $1 AND NOT deleted \
                     AND (position > $2 OR (position = $2 AND seq > $3)) AND ($4 IS NULL OR role = $4) \
                     ORDER BY position, seq LIMIT $5"
                ))
                .bind(session.0)
                .bind(pos)
                .bind(seq)
                .bind(role.map(|r| r.as_str()))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(MessageRow::into_message).collect()
            }

            async fn snapshot(&self, session: SessionId) -> StoreResult<Option<Snapshot>> {
                let mut tx = self.pool.begin().await?;
                let row: Option<(i64,)> = sqlx::query_as("SELECT version FROM sessions WHERE id = $1")
                    .bind(session.0)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some((version,)) = row else { return Ok(None) };
                Ok(Some(Self::load_snapshot(&mut *tx, session, version as u64).await?))
            }
        }
    };
}

pub(super) use impl_sync_store;
