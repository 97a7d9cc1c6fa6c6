//! The sync write path and catch-up, shared by both backends (see `sql.rs` for why a macro).
//! The first statement of `push` is an UPDATE of the session row, so the row (PostgreSQL) or
//! the database (SQLite) is write-locked before anything is read: pushes to one session from
//! any number of instances serialize, and versions are contiguous. A push reads only what its
//! batch names (`sync::batch` decides, in plain Rust) and writes each table in one statement,
//! so its cost never grows with the session. Reads of a whole session (snapshot, catch-up) run
//! in one consistent view (`SNAPSHOT_ISOLATION` of each backend).

use super::StoreError;
use crate::sync::{
    batch::Answer,
    hlc::Hlc,
    merge::{Counts, Message, Register, Stamp},
    ops::{MessageRole, Refusal, RefusalCode},
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

/// The locked session row: where its versions and its sizes stand.
#[derive(sqlx::FromRow)]
pub(super) struct SizeRow {
    pub version: i64,
    pub log_floor: i64,
    pub context_keys: i64,
    pub context_bytes: i64,
    pub tag_count: i64,
    pub message_count: i64,
    pub content_bytes: i64,
}

impl SizeRow {
    pub fn counts(&self) -> Counts {
        let n = |v: i64| v.max(0) as u64;
        Counts {
            context_keys: n(self.context_keys),
            context_bytes: n(self.context_bytes),
            tags: n(self.tag_count),
            messages: n(self.message_count),
            content_bytes: n(self.content_bytes),
        }
    }
}

/// A stored answer as its columns hold it.
pub(super) fn answer_of(
    version: Option<i64>,
    code: Option<String>,
    error: Option<String>,
) -> Answer {
    match version {
        Some(v) => Answer::Applied(v as u64),
        None => Answer::Refused(Refusal::new(
            code.as_deref()
                .map_or(RefusalCode::Invalid, RefusalCode::parse),
            error.unwrap_or_default(),
        )),
    }
}

/// Rows per multi-row statement: far below both backends' bind limits.
pub(super) const ROWS_PER_STATEMENT: usize = 500;

macro_rules! impl_sync_store {
    ($store:ty, $conn:ty, $db:ty) => {
        impl $store {
            async fn load_registers(
                conn: &mut $conn,
                session: SessionId,
                keys: Option<&std::collections::BTreeSet<String>>,
                doc: &mut crate::sync::merge::Doc,
            ) -> StoreResult<()> {
                let mut chunks: Vec<Vec<&String>> = match keys {
                    Some(k) => k.iter().collect::<Vec<_>>().chunks(ROWS_PER_STATEMENT).map(<[_]>::to_vec).collect(),
                    None => vec![Vec::new()],
                };
                if keys.is_some_and(|k| k.is_empty()) {
                    chunks.clear();
                }
                for chunk in chunks {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "SELECT key, value, hlc, client_id FROM session_registers WHERE session_id = ",
                    );
                    q.push_bind(session.0);
                    if keys.is_some() {
                        q.push(" AND key IN (");
                        let mut sep = q.separated(", ");
                        for k in chunk {
                            sep.push_bind(k.as_str());
                        }
                        q.push(")");
                    }
                    let rows: Vec<RegisterRow> = q.build_query_as().fetch_all(&mut *conn).await?;
                    for r in rows {
                        let (k, v) = r.into_register()?;
                        doc.registers.insert(k, v);
                    }
                }
                Ok(())
            }

            async fn load_messages(
                conn: &mut $conn,
                session: SessionId,
                ids: &std::collections::BTreeSet<String>,
                doc: &mut crate::sync::merge::Doc,
            ) -> StoreResult<()> {
                for chunk in ids.iter().collect::<Vec<_>>().chunks(ROWS_PER_STATEMENT) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = "
                    ));
                    q.push_bind(session.0);
                    q.push(" AND id IN (");
                    let mut sep = q.separated(", ");
                    for id in chunk {
                        sep.push_bind(id.as_str());
                    }
                    q.push(")");
                    let rows: Vec<MessageRow> = q.build_query_as().fetch_all(&mut *conn).await?;
                    for r in rows {
                        let m = r.into_message()?;
                        doc.messages.insert(m.id.clone(), m);
                    }
                }
                Ok(())
            }

            /// One consistent view of the session (the caller's transaction runs under
            /// `SNAPSHOT_ISOLATION`): the version and the content it labels.
            async fn load_snapshot(conn: &mut $conn, session: SessionId) -> StoreResult<Option<(Snapshot, u64)>> {
                let row: Option<(i64, i64)> =
                    sqlx::query_as("SELECT version, log_floor FROM sessions WHERE id = $1")
                        .bind(session.0)
                        .fetch_optional(&mut *conn)
                        .await?;
                let Some((version, floor)) = row else { return Ok(None) };
                let mut doc = crate::sync::merge::Doc::default();
                Self::load_registers(&mut *conn, session, None, &mut doc).await?;
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
                Ok(Some((Snapshot { version: version as u64, doc }, floor as u64)))
            }

            async fn begin_snapshot(&self) -> StoreResult<sqlx::Transaction<'static, $db>> {
                let mut tx = self.pool.begin().await?;
                if let Some(stmt) = SNAPSHOT_ISOLATION {
                    sqlx::query(stmt).execute(&mut *tx).await?;
                }
                Ok(tx)
            }

            /// The clients' last ids and the stored answers of the batch's retries.
            async fn load_clients(
                conn: &mut $conn,
                batch: &[Pushed<'_>],
            ) -> StoreResult<crate::sync::batch::Loaded> {
                let mut loaded = crate::sync::batch::Loaded::default();
                let clients: std::collections::BTreeSet<(UserId, &str)> = batch
                    .iter()
                    .filter(|p| !p.server)
                    .map(|p| (p.user, p.mutation.client_id.as_str()))
                    .collect();
                for (user, client) in clients {
                    let row: Option<(i64,)> = sqlx::query_as(
                        "SELECT last_mutation_id FROM sync_clients WHERE user_id = $1 AND client_id = $2",
                    )
                    .bind(user.0)
                    .bind(client)
                    .fetch_optional(&mut *conn)
                    .await?;
                    if let Some((last,)) = row {
                        loaded.last.insert((user, client.to_owned()), last as u64);
                    }
                }
                for ((user, client), id) in crate::sync::batch::retries(batch, &loaded.last) {
                    let row: Option<(Option<i64>, Option<String>, Option<String>)> = sqlx::query_as(
                        "SELECT version, code, error FROM mutation_results \
                         WHERE user_id = $1 AND client_id = $2 AND mutation_id = $3",
                    )
                    .bind(user.0)
                    .bind(&client)
                    .bind(id as i64)
                    .fetch_optional(&mut *conn)
                    .await?;
                    if let Some((v, code, error)) = row {
                        loaded.answers.insert(((user, client), id), answer_of(v, code, error));
                    }
                }
                Ok(loaded)
            }

            /// Writes what a plan changed: each table in as few statements as its rows allow.
            async fn write_plan(
                conn: &mut $conn,
                session: SessionId,
                doc: &crate::sync::merge::Doc,
                plan: &crate::sync::batch::Plan,
                now: DateTime<Utc>,
            ) -> StoreResult<()> {
                let regs: Vec<(&String, &crate::sync::merge::Register)> =
                    plan.touched.registers.iter().filter_map(|k| doc.registers.get_key_value(k)).collect();
                for chunk in regs.chunks(ROWS_PER_STATEMENT) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO session_registers (session_id, key, value, hlc, client_id) ",
                    );
                    q.push_values(chunk, |mut b, (key, r)| {
                        b.push_bind(session.0)
                            .push_bind(key.as_str())
                            .push_bind(r.value.as_ref().map(|v| v.to_string()))
                            .push_bind(r.stamp.hlc.to_string())
                            .push_bind(r.stamp.client_id.as_str());
                    });
                    q.push(
                        " ON CONFLICT (session_id, key) DO UPDATE SET value = excluded.value, \
                         hlc = excluded.hlc, client_id = excluded.client_id",
                    );
                    q.build().execute(&mut *conn).await?;
                }
                let msgs: Vec<&crate::sync::merge::Message> =
                    plan.touched.messages.iter().filter_map(|id| doc.messages.get(id)).collect();
                for chunk in msgs.chunks(ROWS_PER_STATEMENT) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO messages (session_id, id, role, content, metadata, position, seq, \
                         author_client, edit_hlc, edit_client, deleted, streaming, created_at, updated_at) ",
                    );
                    q.push_values(chunk, |mut b, m| {
                        b.push_bind(session.0)
                            .push_bind(m.id.as_str())
                            .push_bind(m.role.as_str())
                            .push_bind(m.content.as_str())
                            .push_bind(m.metadata.to_string())
                            .push_bind(m.position as i64)
                            .push_bind(m.seq as i32)
                            .push_bind(m.author_client.as_str())
                            .push_bind(m.edit.hlc.to_string())
                            .push_bind(m.edit.client_id.as_str())
                            .push_bind(m.deleted)
                            .push_bind(m.streaming)
                            .push_bind(now)
                            .push_bind(now);
                    });
                    q.push(
                        " ON CONFLICT (session_id, id) DO UPDATE SET content = excluded.content, \
                         metadata = excluded.metadata, edit_hlc = excluded.edit_hlc, \
                         edit_client = excluded.edit_client, deleted = excluded.deleted, \
                         streaming = excluded.streaming, updated_at = excluded.updated_at",
                    );
                    q.build().execute(&mut *conn).await?;
                }
                let mut ops = Vec::with_capacity(plan.applied.len());
                for c in &plan.applied {
                    ops.push(serde_json::to_string(&c.mutation.ops).map_err(|e| StoreError::Corrupt(e.to_string()))?);
                }
                let changes: Vec<_> = plan.applied.iter().zip(&ops).collect();
                for chunk in changes.chunks(ROWS_PER_STATEMENT) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO change_log (session_id, version, client_id, mutation_id, hlc, ops, created_at) ",
                    );
                    q.push_values(chunk, |mut b, (c, ops)| {
                        b.push_bind(session.0)
                            .push_bind(c.version as i64)
                            .push_bind(c.mutation.client_id.as_str())
                            .push_bind(c.mutation.mutation_id as i64)
                            .push_bind(c.mutation.hlc.to_string())
                            .push_bind(ops.as_str())
                            .push_bind(now);
                    });
                    q.build().execute(&mut *conn).await?;
                }
                for chunk in plan.answers.chunks(ROWS_PER_STATEMENT) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO mutation_results (user_id, client_id, mutation_id, session_id, version, code, error, created_at) ",
                    );
                    q.push_values(chunk, |mut b, a| {
                        let (version, code, error) = match &a.answer {
                            crate::sync::batch::Answer::Applied(v) => (Some(*v as i64), None, None),
                            crate::sync::batch::Answer::Refused(r) => (None, Some(r.code.as_str()), Some(r.message.as_str())),
                        };
                        b.push_bind(a.client.0 .0)
                            .push_bind(a.client.1.as_str())
                            .push_bind(a.mutation_id as i64)
                            .push_bind(session.0)
                            .push_bind(version)
                            .push_bind(code)
                            .push_bind(error)
                            .push_bind(now);
                    });
                    q.build().execute(&mut *conn).await?;
                }
                for ((user, client), last) in &plan.clients {
                    sqlx::query(
                        "INSERT INTO sync_clients (user_id, client_id, last_mutation_id) VALUES ($1, $2, $3) \
                         ON CONFLICT (user_id, client_id) DO UPDATE SET last_mutation_id = excluded.last_mutation_id",
                    )
                    .bind(user.0)
                    .bind(client)
                    .bind(*last as i64)
                    .execute(&mut *conn)
                    .await?;
                }
                // A client pushing from id N holds the answers of everything before N.
                for ((user, client), horizon) in plan.horizons.iter().filter(|(_, h)| *h > 1) {
                    sqlx::query(
                        "DELETE FROM mutation_results WHERE user_id = $1 AND client_id = $2 AND mutation_id < $3",
                    )
                    .bind(user.0)
                    .bind(client)
                    .bind(*horizon as i64)
                    .execute(&mut *conn)
                    .await?;
                }
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::SyncStore for $store {
            async fn push(
                &self,
                session: SessionId,
                batch: &[Pushed<'_>],
                rules: &PushRules,
            ) -> StoreResult<Option<PushOutcome>> {
                let now = Utc::now();
                let mut tx = self.pool.begin().await?;
                let locked: Option<SizeRow> = sqlx::query_as(
                    "UPDATE sessions SET version = version WHERE id = $1 AND deleted_at IS NULL \
                     RETURNING version, log_floor, context_keys, context_bytes, tag_count, message_count, content_bytes",
                )
                .bind(session.0)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(size) = locked else { return Ok(None) };
                let start = size.version as u64;
                let loaded = Self::load_clients(&mut *tx, batch).await?;
                let (regs, msgs) = crate::sync::batch::keys(batch, &loaded.last);
                let mut doc = crate::sync::merge::Doc { counts: size.counts(), ..Default::default() };
                Self::load_registers(&mut *tx, session, Some(&regs), &mut doc).await?;
                Self::load_messages(&mut *tx, session, &msgs, &mut doc).await?;
                let plan = crate::sync::batch::plan(batch, start, &mut doc, &loaded, &rules.limits);
                Self::write_plan(&mut *tx, session, &doc, &plan, now).await?;
                let floor = size.log_floor as u64;
                let keep = rules.keep_versions;
                let new_floor = if keep > 0 && plan.version > floor + 2 * keep { plan.version - keep } else { floor };
                if new_floor != floor {
                    sqlx::query("DELETE FROM change_log WHERE session_id = $1 AND version <= $2")
                        .bind(session.0)
                        .bind(new_floor as i64)
                        .execute(&mut *tx)
                        .await?;
                }
                if plan.version != start || new_floor != floor {
                    let title = plan.touched.registers.contains("f:title").then(|| {
                        doc.registers.get("f:title")
                            .and_then(|r| r.value.as_ref())
                            .and_then(|v| v.as_str())
                            .unwrap_or_default()
                            .to_owned()
                    });
                    let c = doc.counts;
                    sqlx::query(
                        "UPDATE sessions SET version = $2, log_floor = $3, updated_at = $4, context_keys = $5, \
                         context_bytes = $6, tag_count = $7, message_count = $8, content_bytes = $9, \
                         title = COALESCE($10, title), deleted_at = COALESCE($11, deleted_at) WHERE id = $1",
                    )
                    .bind(session.0)
                    .bind(plan.version as i64)
                    .bind(new_floor as i64)
                    .bind(now)
                    .bind(c.context_keys as i64)
                    .bind(c.context_bytes as i64)
                    .bind(c.tags as i64)
                    .bind(c.messages as i64)
                    .bind(c.content_bytes as i64)
                    .bind(title)
                    .bind(plan.touched.session_deleted.then_some(now))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(Some(PushOutcome { results: plan.results, applied: plan.applied, version: plan.version }))
            }

            async fn catch_up(&self, session: SessionId, since: u64, limit: u32) -> StoreResult<Option<CatchUp>> {
                let mut tx = self.begin_snapshot().await?;
                let row: Option<(i64, i64)> =
                    sqlx::query_as("SELECT version, log_floor FROM sessions WHERE id = $1")
                        .bind(session.0)
                        .fetch_optional(&mut *tx)
                        .await?;
                let Some((version, floor)) = row else { return Ok(None) };
                let (version, floor) = (version as u64, floor as u64);
                let reason = if since > version {
                    Some(SnapshotReason::Ahead)
                } else if since < floor {
                    Some(SnapshotReason::Compacted)
                } else if version - since > u64::from(limit) {
                    Some(SnapshotReason::TooFarBehind)
                } else {
                    None
                };
                if let Some(reason) = reason {
                    return Ok(Self::load_snapshot(&mut *tx, session).await?.map(|(s, _)| CatchUp::Snapshot(s, reason)));
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
                let mut tx = self.begin_snapshot().await?;
                Ok(Self::load_snapshot(&mut *tx, session).await?.map(|(s, _)| s))
            }
        }
    };
}

pub(super) use impl_sync_store;
