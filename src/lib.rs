//! switchyard: a WebSocket-first realtime backend for an AI coding assistant.
//!
//! Data flows one way, down these layers (a module uses what is below it, never above;
//! `tests/api/layers.rs` checks it):
//!
//! ```text
//!   edges     http/ (REST, the upgrade)      ws/ (one actor per socket)
//!                 │ parse, authorize, call a service, answer
//!   services  auth/  sync/ (sessions, projects, merge)  chat/ (turns, completions)  mcp/
//!                 │                                   │
//!   transport bus/ (fan-out, presence, leases,        store/ (PostgreSQL | SQLite)
//!             control, Redis) ──> hub/ ──> sockets     llm/ (providers)
//!   nouns     protocol/ (frames, events, channels, error codes)   domain/ (ids, principal)
//! ```
//!
//! * `config` is read once (defaults -> TOML file -> `SWITCHYARD_*` env) and is immutable after.
//! * `app` is the only module that sees everything: it wires config, store, bus, keys and
//!   services (the queues from the bus to the services that take its control messages are
//!   made there), binds nothing itself (it takes a listener) and runs until a shutdown future
//!   fires.
//! * `http` never touches SQL; `store` never knows about HTTP; `domain` imports nothing of ours.
//! * Only `bus/` speaks Redis (`bus::Shared` and `bus::Lease` for state other modules share).
//!
//! A chat delta, from the provider to the socket (five steps; seven files, two more when it
//! crosses to another instance):
//!
//! 1. `llm/openai.rs` (or `anthropic.rs`) decodes the upstream stream into `llm::Chunk`s;
//! 2. `chat/turn/round.rs` makes each text chunk the next `chat.delta`: appended to the live
//!    turn (`chat/live.rs`, what a subscriber joining mid-turn reads) and encoded once
//!    (`protocol/events.rs`);
//! 3. `bus/local.rs` hands it to the hub (`bus/redis.rs` also queues it for `bus/redis_turns.rs`,
//!    which writes it to Redis for the other instances);
//! 4. `hub/mod.rs` puts the same bytes in each subscriber's bounded queue (`hub/outbox.rs`);
//! 5. `ws/writer.rs` writes them to the socket.

#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod app;
pub mod auth;
pub mod bus;
pub mod chat;
pub mod coalesce;
pub mod config;
pub mod connections;
pub mod domain;
pub mod error;
pub mod files;
pub mod http;
pub mod hub;
pub mod llm;
pub mod maintenance;
pub mod mcp;
pub mod presence;
pub mod protocol;
pub mod ratelimit;
pub mod shutdown;
pub mod state;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod time;
pub mod ws;
