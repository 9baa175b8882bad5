//! Label matchers: `name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`.

use std::fmt;

use regex::Regex;

use crate::error::InputError;

/// How a matcher compares a label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`, a fully anchored regular expression
    Regex,
    /// `!~`
    NotRegex,
}

impl MatchOp {
    pub fn symbol(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One label matcher. An absent label matches as the empty string.
#[derive(Debug, Clone)]
pub struct Matcher {
    name: String,
    op: MatchOp,
    value: String,
    pattern: Pattern,
}

/// What a value is compared with.
#[derive(Debug, Clone)]
enum Pattern {
    Literal,
    Regex(Regex),
}

impl Matcher {
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Self, InputError> {
        let pattern = match op {
            MatchOp::Equal | MatchOp::NotEqual => Pattern::Literal,
            MatchOp::Regex | MatchOp::NotRegex => {
                Pattern::Regex(Regex::new(&format!("^(?:{value})$")).map_err(|e| {
                    InputError::BadRegex {
                        pattern: value.to_owned(),
                        reason: e.to_string(),
                    }
                })?)
            }
        };
        Ok(Self {
            name: name.to_owned(),
            op,
            value: value.to_owned(),
            pattern,
        })
    }

    /// `name="value"`.
    pub fn equal(name: &str, value: &str) -> Self {
        Self {
            name: name.to_owned(),
            op: MatchOp::Equal,
            value: value.to_owned(),
            pattern: Pattern::Literal,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn op(&self) -> MatchOp {
        self.op
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether a label value (or "" for an absent label) is accepted.
    /// Regexes are anchored and `.` does not match a newline, as in
    /// Prometheus 2.x.
    pub fn matches(&self, label_value: &str) -> bool {
        let hit = match &self.pattern {
            Pattern::Literal => label_value == self.value,
            Pattern::Regex(regex) => regex.is_match(label_value),
        };
        match self.op {
            MatchOp::Equal | MatchOp::Regex => hit,
            MatchOp::NotEqual | MatchOp::NotRegex => !hit,
        }
    }

    /// Whether a whole series key is accepted.
    pub fn matches_key(&self, key: &crate::SeriesKey) -> bool {
        self.matches(key.get(&self.name).unwrap_or(""))
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.symbol(), self.value)
    }
}
