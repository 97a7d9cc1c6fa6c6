//! One integration binary: every test spawns real servers on port 0 and talks to them with real
//! HTTP and WebSocket clients. SQLite by default; PostgreSQL and Redis when `TEST_DATABASE_URL`
//! and `TEST_REDIS_URL` are set (a fresh database and key prefix per test).

mod helpers;

mod accounts;
mod accounts_admin;
mod auth;
mod auth_attacks;
mod auth_keys;
mod bus_replies;
mod chat;
mod chat_faults;
mod chat_shutdown;
mod cli;
mod clients;
mod completions;
mod completions_errors;
mod compression;
mod cors;
mod docs;
mod edge_attacks;
mod edge_metrics;
mod errors;
mod files;
mod files_limits;
mod files_turn;
mod health;
mod layers;
mod maintenance;
mod mcp;
mod mcp_attacks;
mod mcp_client;
mod mcp_reasons;
mod mcp_status;
mod openapi;
mod ops;
mod presence;
mod profile;
mod projects;
mod ratelimit;
mod schemas;
mod sdk;
mod store;
mod store_faults;
mod sync;
mod sync_access;
mod sync_fixes;
mod sync_limits;
mod sync_prop;
mod sync_prop_views;
mod tools;
mod tools_client;
mod totp;
mod ws;
mod ws_cluster;
mod ws_limits;
