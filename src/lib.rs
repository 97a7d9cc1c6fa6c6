//! switchyard: a WebSocket-first realtime backend for an AI coding assistant.
//!
//! Data flows one way:
//!
//! ```text
//!   http/ (REST)  ──┐                      ┌──> store/ (PostgreSQL | SQLite)
//!                   ├─ parse + authorize ─>│ services (auth, ...)
//!   ws/ (socket)  ──┘                      └──> bus/ (in-process | Redis) ──> hub/ ──> sockets
//! ```
//!
//! * `config` is read once (defaults -> TOML file -> `SWITCHYARD_*` env) and is immutable after.
//! * `app` is the only module that sees everything: it wires config, store, bus, keys and
//!   routers, binds nothing itself (it takes a listener) and runs until a shutdown future fires.
//! * `http` never touches SQL; `store` never knows about HTTP; `domain` imports nothing of ours.
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod app;
pub mod auth;
pub mod bus;
pub mod chat;
pub mod config;
pub mod connections;
pub mod domain;
pub mod error;
pub mod http;
pub mod hub;
pub mod llm;
pub mod mcp;
pub mod protocol;
pub mod ratelimit;
pub mod shutdown;
pub mod state;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod time;
pub mod ws;
