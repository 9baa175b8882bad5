//! Query results and the merge rule shared by every read path.
//!
//! The same series can have samples in several places: segment files
//! (older to newer), frozen head data being flushed, and the live head
//! (itself in-order chunks plus an out-of-order buffer). Reads merge them
//! with one rule: order by timestamp, and for a repeated timestamp the
//! newest source wins (last write wins). [`source`] implements it, on
//! columns, for every read: queries, [`crate::Db::select`] and flushes.
//!
//! The PromQL subset: [`parse::parse_expr`] turns text into an
//! [`ast::Expr`] (grammar and deliberate differences in docs/QUERY.md).

pub mod ast;
pub mod buckets;
pub mod eval;
pub(crate) mod lex;
pub mod parse;
pub mod source;

use crate::series::{Sample, SeriesKey};

/// One series' samples in a query result, in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSamples {
    pub key: SeriesKey,
    pub samples: Vec<Sample>,
}
