//! Query results and the merge rule shared by every read path.
//!
//! The same series can have samples in several places: segment files
//! (older to newer), frozen head data being flushed, and the live head
//! (itself in-order chunks plus an out-of-order buffer). Reads merge them
//! with one rule: order by timestamp, and for a repeated timestamp the
//! newest source wins (last write wins).
//!
//! The PromQL subset: [`parse::parse_expr`] turns text into an
//! [`ast::Expr`] (grammar and deliberate differences in docs/QUERY.md).

pub mod ast;
pub mod eval;
mod lex;
pub mod parse;
pub mod source;

use crate::series::{Sample, SeriesKey};

/// One series' samples in a query result, in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSamples {
    pub key: SeriesKey,
    pub samples: Vec<Sample>,
}

/// Merges sample runs given oldest source first; each run is in time
/// order except that the last one may be in arrival order (an
/// out-of-order buffer). Repeated timestamps keep the newest sample.
pub fn merge_last_wins(mut runs: Vec<Vec<Sample>>) -> Vec<Sample> {
    runs.retain(|run| !run.is_empty());
    if runs.len() <= 1 {
        let run = runs.pop().unwrap_or_default();
        if run
            .windows(2)
            .all(|w| w[0].timestamp_ms < w[1].timestamp_ms)
        {
            return run;
        }
        runs.push(run);
    }
    let mut all: Vec<Sample> = runs.into_iter().flatten().collect();
    // Stable: among equal timestamps the later (newer) sample stays later.
    all.sort_by_key(|s| s.timestamp_ms);
    let mut out: Vec<Sample> = Vec::with_capacity(all.len());
    for sample in all {
        match out.last_mut() {
            Some(last) if last.timestamp_ms == sample.timestamp_ms => *last = sample,
            _ => out.push(sample),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: i64, v: f64) -> Sample {
        Sample::new(t, v)
    }

    #[test]
    fn newest_source_wins_on_equal_timestamps() {
        let merged = merge_last_wins(vec![
            vec![s(1, 1.0), s(2, 1.0), s(4, 1.0)],
            vec![s(2, 2.0), s(3, 2.0)],
            vec![s(4, 3.0), s(0, 3.0), s(4, 4.0)],
        ]);
        assert_eq!(
            merged,
            vec![s(0, 3.0), s(1, 1.0), s(2, 2.0), s(3, 2.0), s(4, 4.0)]
        );
    }

    #[test]
    fn single_sorted_run_is_returned_as_is() {
        assert_eq!(
            merge_last_wins(vec![vec![], vec![s(1, 1.0), s(2, 2.0)]]),
            vec![s(1, 1.0), s(2, 2.0)]
        );
        assert_eq!(
            merge_last_wins(vec![vec![s(2, 1.0), s(2, 2.0)]]),
            vec![s(2, 2.0)]
        );
        assert!(merge_last_wins(vec![]).is_empty());
    }
}
