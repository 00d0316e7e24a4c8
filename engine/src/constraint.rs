//! What a step type declares about the values it accepts, beyond their type: bounds, lengths,
//! formats (a CIDR block, an e-mail address, an AWS region) and rules over several inputs (two
//! regions that must differ, two CIDR blocks that must not overlap).
//!
//! The declaration lives in the step's [`StepSpec`](crate::StepSpec), so one list of constraints
//! drives every check: the compiler on literal values, the value check of `drflow validate` and
//! `drflow run` once parameters are known, the scheduler when a step starts with values only
//! known then, and the reference docs and JSON Schema.

use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::step::Outputs;

/// Why one value was refused, written as a predicate about it: the checker puts the subject in
/// front (`` `cidr` `` for a literal, `` `standby_cidr` `` for the parameter it came from).
///
/// Example: problem `has host bits set (10.1.0.1/16): …`, hint `did you mean 10.1.0.0/16?`.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// What is wrong, as a predicate: "must be at least 1, not 0".
    pub problem: String,
    /// What to do, when the check can tell.
    pub hint: Option<String>,
    /// For a list: the index of the item that is wrong.
    pub item: Option<usize>,
    /// For bounds (`max`, `max_len`, …): which bound and its value, so that when one value feeds
    /// several inputs only the tightest refusal is reported.
    pub bound: Option<(BoundKind, f64)>,
}

/// Which kind of bound a [`Violation`] broke; lower is tighter for the `Max…` kinds, higher for
/// the `Min…` kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BoundKind {
    /// The smallest number allowed.
    Min,
    /// The largest number allowed.
    Max,
    /// The fewest characters (or list items) allowed.
    MinLen,
    /// The most characters (or list items) allowed.
    MaxLen,
}

impl BoundKind {
    /// Whether `a` is a tighter bound of this kind than `b`.
    pub fn tighter(self, a: f64, b: f64) -> bool {
        match self {
            BoundKind::Min | BoundKind::MinLen => a > b,
            BoundKind::Max | BoundKind::MaxLen => a < b,
        }
    }
}

impl Violation {
    /// A refusal with no hint.
    pub fn new(problem: impl Into<String>) -> Violation {
        Violation {
            problem: problem.into(),
            hint: None,
            item: None,
            bound: None,
        }
    }

    /// Adds what to do.
    pub fn hint(mut self, hint: impl Into<String>) -> Violation {
        self.hint = Some(hint.into());
        self
    }

    /// The full sentence with a subject: `` `cidr` has host bits set … ``.
    pub fn sentence(&self, subject: &str) -> String {
        match self.item {
            Some(i) => format!("`{subject}` item {}: {}", i + 1, self.problem),
            None => format!("`{subject}` {}", self.problem),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem)?;
        if let Some(h) = &self.hint {
            write!(f, "; {h}")?;
        }
        Ok(())
    }
}

/// A named format that a string must have, checked by a function: an IPv4 CIDR block, an e-mail
/// address, an AWS region. Formats of the engine are in [`formats`](crate::formats); step
/// libraries define their own (the AWS region table lives with the AWS steps).
#[derive(Clone, Copy)]
pub struct Format {
    /// A short name for the reference docs, e.g. `ipv4-cidr`.
    pub name: &'static str,
    /// What the format is, as a noun phrase: "an IPv4 CIDR block whose address is the network
    /// address, e.g. 10.0.0.0/16".
    pub doc: &'static str,
    /// Checks one string. The problem is a predicate ("is not an e-mail address: `no`").
    pub check: fn(&str) -> Result<(), Violation>,
    /// What JSON Schema can say of the format (`pattern`, `enum`), merged into the string's
    /// schema; `None` when it can say nothing useful.
    pub schema: Option<fn() -> Value>,
}

impl fmt::Debug for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Format({})", self.name)
    }
}

impl Serialize for Format {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Format", 2)?;
        st.serialize_field("name", self.name)?;
        st.serialize_field("doc", self.doc)?;
        st.end()
    }
}

/// Why a [`Rule`] refused a step's inputs: a whole sentence (a rule is about several inputs),
/// the input to point at, and what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleViolation {
    /// What is wrong, as a sentence: "the primary and standby regions are both us-east-1".
    pub message: String,
    /// What to do, when the rule can tell.
    pub hint: Option<String>,
    /// The input the problem is located at (one of the rule's `reads`); the first one read when
    /// `None`.
    pub field: Option<&'static str>,
}

impl RuleViolation {
    /// A refusal located at `field`.
    pub fn at(field: &'static str, message: impl Into<String>) -> RuleViolation {
        RuleViolation {
            message: message.into(),
            hint: None,
            field: Some(field),
        }
    }

    /// Adds what to do.
    pub fn hint(mut self, hint: impl Into<String>) -> RuleViolation {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for RuleViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "; {h}")?;
        }
        Ok(())
    }
}

/// The check function of a [`Rule`]: given the inputs it reads (every one present, of its
/// declared type, defaults filled in), refuses them or not.
pub type RuleCheck = Arc<dyn Fn(&Outputs) -> Result<(), RuleViolation> + Send + Sync>;

/// A rule over several inputs of one step, declared with the step: "`primary_region` and
/// `standby_region` differ". It runs once every input it reads is known: at compile time when
/// they are literals, before the run once parameters are known, or when the step starts.
#[derive(Clone)]
pub struct Rule {
    /// The rule as one sentence, for the reference docs.
    pub doc: String,
    /// The inputs it reads; it runs only when all of them are known.
    pub reads: Vec<&'static str>,
    /// The check.
    pub check: RuleCheck,
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule")
            .field("doc", &self.doc)
            .field("reads", &self.reads)
            .finish_non_exhaustive()
    }
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Rule", 2)?;
        st.serialize_field("doc", &self.doc)?;
        st.serialize_field("reads", &self.reads)?;
        st.end()
    }
}

/// How a number reads in messages: `3`, not `3.0`.
pub(crate) fn num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}
