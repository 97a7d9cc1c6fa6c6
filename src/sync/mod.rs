//! Session sync: mutations from clients, merged by rules that do not depend on arrival order.
//! `hlc` is the clock, `ops` the mutation vocabulary and its validation (`refusal`: why one is
//! refused), `merge` the rules, `batch` the decisions of one group commit, `service` the write
//! path (group commit, broadcast after commit), `heal` the gap repair, `view` what clients see.

pub mod batch;
mod group;
pub mod heal;
pub mod hlc;
pub mod merge;
pub mod ops;
pub mod projects;
mod reads;
pub mod refusal;
pub mod service;
pub mod sessions;
pub mod view;
