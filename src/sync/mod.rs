//! Session sync: mutations from clients, merged by rules that do not depend on arrival order.
//! `hlc` is the clock, `ops` the mutation vocabulary and its validation, `merge` the rules.
//! (Persistence, exactly-once bookkeeping and pull follow in the session-sync issue.)

pub mod batch;
pub mod heal;
pub mod hlc;
pub mod merge;
pub mod ops;
pub mod projects;
pub mod service;
pub mod view;
