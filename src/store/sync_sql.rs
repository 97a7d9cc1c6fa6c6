//! The sync write path and catch-up, shared by both backends (see `sql.rs` for why a macro).
//! The first statement of `push` is an UPDATE of the session row, so the row (PostgreSQL) or
//! the database (SQLite) is write-locked before anything is read: pushes to one session from
//! any number of instances serialize, and versions are contiguous. A push reads only what its
//! batch names (`sync::batch` decides, in plain Rust) and writes each table in one statement,
//! so its cost never grows with the session. Reads of a whole session (snapshot, catch-up) run
//! in one consistent view (`SNAPSHOT_ISOLATION` of each backend). Rows are in `sync_rows`, the
//! write half in `sync_write_sql`.

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

            async fn streaming_messages(
                &self,
                limit: u32,
            ) -> StoreResult<Vec<(SessionId, crate::sync::merge::Message)>> {
                let rows: Vec<SessionMessageRow> = sqlx::query_as(&format!(
                    "SELECT session_id, {MESSAGE_COLUMNS} FROM messages WHERE streaming \
                     AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.id = messages.session_id \
                     AND s.deleted_at IS NOT NULL) ORDER BY created_at LIMIT $1"
                ))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|r| Ok((SessionId(r.session_id), r.message.into_message()?)))
                    .collect()
            }

            async fn snapshot(&self, session: SessionId) -> StoreResult<Option<Snapshot>> {
                let mut tx = self.begin_snapshot().await?;
                Ok(Self::load_snapshot(&mut *tx, session).await?.map(|(s, _)| s))
            }
        }
    };
}

pub(super) use impl_sync_store;
