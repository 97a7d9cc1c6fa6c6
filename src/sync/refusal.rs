//! Why a mutation was refused: a code a client switches on, and a message a person reads. Both
//! are stored, so a retry gets the same answer.

use serde::{Deserialize, Serialize};

/// Why a mutation was refused, as a code a client can switch on (`refused.code` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// A value failed validation (wrong type, too long, NUL in text, ...).
    Invalid,
    /// An op this server does not know (a newer client); only its own mutation is refused.
    UnknownOp,
    /// The mutation's clock runs too far ahead of the server's.
    ClockAhead,
    /// Not allowed for this caller (server-only ops, deleting someone else's session).
    NotAllowed,
    /// A per-session cap (`sync.max_*`) would be crossed.
    LimitExceeded,
    /// Inconsistent with the session's state (message id reused, unknown or streaming message).
    Conflict,
    /// A retry of a mutation whose answer was pruned (the client had moved past it).
    AlreadyProcessed,
}

impl RefusalCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::Invalid => "invalid",
            RefusalCode::UnknownOp => "unknown_op",
            RefusalCode::ClockAhead => "clock_ahead",
            RefusalCode::NotAllowed => "not_allowed",
            RefusalCode::LimitExceeded => "limit_exceeded",
            RefusalCode::Conflict => "conflict",
            RefusalCode::AlreadyProcessed => "already_processed",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "unknown_op" => RefusalCode::UnknownOp,
            "clock_ahead" => RefusalCode::ClockAhead,
            "not_allowed" => RefusalCode::NotAllowed,
            "limit_exceeded" => RefusalCode::LimitExceeded,
            "conflict" => RefusalCode::Conflict,
            "already_processed" => RefusalCode::AlreadyProcessed,
            _ => RefusalCode::Invalid,
        }
    }
}

/// A refused mutation's answer: stored, and returned to every retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: RefusalCode,
    pub message: String,
}

impl Refusal {
    /// The message is stored and echoed: whatever it quotes, it never carries NUL.
    pub fn new(code: RefusalCode, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            code,
            message: if message.contains('\0') {
                message.replace('\0', "\u{FFFD}")
            } else {
                message
            },
        }
    }
}
