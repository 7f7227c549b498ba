//! Risk levels of a tool call.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How much harm a call could do. Ordered: `Low < Medium < High`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    Low,
    Medium,
    High,
}

impl Risk {
    /// Every level, lowest first.
    pub const ALL: [Risk; 3] = [Risk::Low, Risk::Medium, Risk::High];

    /// `low`, `medium` or `high`.
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }

    /// The level written as [`Risk::as_str`] gives it, if it is one.
    pub fn from_name(name: &str) -> Option<Risk> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// One bit per level, so a rule's `risk` list is checked with one AND.
    pub(crate) fn bit(self) -> u8 {
        match self {
            Risk::Low => 1,
            Risk::Medium => 2,
            Risk::High => 4,
        }
    }
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
