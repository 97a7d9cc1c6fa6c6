//! The sync write path's SQL, shared by both backends: what a push reads about its clients,
//! and the writes a plan (`sync::batch`) asks for, each table in as few statements as its rows
//! allow.

macro_rules! impl_sync_writes {
    ($store:ty, $conn:ty, $db:ty) => {
        impl $store {
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
                // One statement per chunk of clients, not one per client: a hot session's group
                // holds many clients.
                let clients: Vec<(UserId, &str)> = clients.into_iter().collect();
                for chunk in clients.chunks(ROWS_PER_STATEMENT / 2) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "SELECT user_id, client_id, last_mutation_id FROM sync_clients WHERE (user_id, client_id) IN (",
                    );
                    let mut sep = q.separated(", ");
                    for (user, client) in chunk {
                        sep.push("(").push_bind_unseparated(user.0).push_unseparated(", ");
                        sep.push_bind_unseparated(*client).push_unseparated(")");
                    }
                    q.push(")");
                    let rows: Vec<(uuid::Uuid, String, i64)> =
                        q.build_query_as().fetch_all(&mut *conn).await?;
                    for (user, client, last) in rows {
                        loaded.last.insert((UserId(user), client), last as u64);
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
                Self::write_registers(conn, session, doc, plan).await?;
                Self::write_messages(conn, session, doc, plan, now).await?;
                Self::write_changes(conn, session, plan, now).await?;
                Self::write_answers(conn, session, plan, now).await?;
                Self::write_clients(conn, plan).await
            }

            async fn write_registers(
                conn: &mut $conn,
                session: SessionId,
                doc: &crate::sync::merge::Doc,
                plan: &crate::sync::batch::Plan,
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
                Ok(())
            }

            async fn write_messages(
                conn: &mut $conn,
                session: SessionId,
                doc: &crate::sync::merge::Doc,
                plan: &crate::sync::batch::Plan,
                now: DateTime<Utc>,
            ) -> StoreResult<()> {
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
                Ok(())
            }

            /// The change log: one row per applied mutation, its ops as JSON.
            async fn write_changes(
                conn: &mut $conn,
                session: SessionId,
                plan: &crate::sync::batch::Plan,
                now: DateTime<Utc>,
            ) -> StoreResult<()> {
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
                Ok(())
            }

            /// Each client mutation's answer, kept for its retries.
            async fn write_answers(
                conn: &mut $conn,
                session: SessionId,
                plan: &crate::sync::batch::Plan,
                now: DateTime<Utc>,
            ) -> StoreResult<()> {
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
                Ok(())
            }

            /// Each client's last id, and the answers below its horizon dropped: one statement
            /// per chunk of clients for each.
            async fn write_clients(conn: &mut $conn, plan: &crate::sync::batch::Plan) -> StoreResult<()> {
                let clients: Vec<_> = plan.clients.iter().collect();
                for chunk in clients.chunks(ROWS_PER_STATEMENT / 3) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO sync_clients (user_id, client_id, last_mutation_id) ",
                    );
                    q.push_values(chunk, |mut b, ((user, client), last)| {
                        b.push_bind(user.0).push_bind(client.as_str()).push_bind(*last as i64);
                    });
                    q.push(
                        " ON CONFLICT (user_id, client_id) DO UPDATE SET last_mutation_id = excluded.last_mutation_id",
                    );
                    q.build().execute(&mut *conn).await?;
                }
                // A client pushing from id N holds the answers of everything before N.
                let horizons: Vec<_> = plan.horizons.iter().filter(|(_, h)| *h > 1).collect();
                for chunk in horizons.chunks(ROWS_PER_STATEMENT / 3) {
                    let mut q = sqlx::QueryBuilder::<$db>::new("DELETE FROM mutation_results WHERE ");
                    let mut sep = q.separated(" OR ");
                    for ((user, client), horizon) in chunk {
                        sep.push("(user_id = ").push_bind_unseparated(user.0);
                        sep.push_unseparated(" AND client_id = ").push_bind_unseparated(client.as_str());
                        sep.push_unseparated(" AND mutation_id < ").push_bind_unseparated(*horizon as i64);
                        sep.push_unseparated(")");
                    }
                    q.build().execute(&mut *conn).await?;
                }
                Ok(())
            }
        }
    };
}

pub(super) use impl_sync_writes;
