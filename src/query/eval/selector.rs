//! Instant vector selectors: the newest sample within the lookback.
//!
//! At a read time `r` (the step's time minus `offset`, or the `@` time
//! minus `offset` at every step), a series' value is its newest sample in
//! the closed window `[r - lookback, r]`, as in Prometheus 2.42; when that
//! sample is the staleness marker the series has no value at the step
//! (the marker hides older samples, it is not skipped).
//!
//! One `select_series` covers every step; each series is then read once
//! and walked with one forward pointer, so the work is linear in its
//! samples plus the steps. Series keep their full labels, metric name
//! included; series with no value at any step are left out.

use super::engine::{is_stale, Evaluator};
use super::value::{QueryError, StepSeries, Steps};
use crate::query::ast::VectorSelector;
use crate::series::TimeRange;

/// What a selector reports for the sample it picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Read {
    /// The sample's value.
    Value,
    /// The sample's timestamp in seconds (`timestamp(selector)`).
    Timestamp,
}

/// Evaluates `sel` at every step.
pub(super) fn eval(
    ev: &Evaluator<'_>,
    sel: &VectorSelector,
    steps: &Steps,
    read: Read,
) -> Result<Vec<StepSeries>, QueryError> {
    let ends = ev.ends(sel.at, sel.offset_ms, steps);
    let lookback = ev.options.lookback_ms.max(0);
    let range = TimeRange::new(ends.first_ms.saturating_sub(lookback), ends.last_ms());
    let set = ev.select(&sel.matchers, range)?;
    ev.map_series(set.len(), |index, scratch| {
        set.read(index, &mut scratch.columns)?;
        // The loaded samples and the result's slots, charged before the
        // slots are allocated.
        let held = scratch.columns.len() + ends.count;
        ev.charge(held)?;
        let cols = &scratch.columns;
        let (ts, vs) = (&cols.timestamps_ms, &cols.values);
        let mut out = StepSeries::empty(Vec::new(), ends.count);
        let mut any = false;
        // `next`: the first sample after the current read time.
        let mut next = 0;
        for step in 0..ends.count {
            let r = ends.at(step);
            while next < ts.len() && ts[next] <= r {
                next += 1;
            }
            let Some(newest) = next.checked_sub(1) else {
                continue;
            };
            if ts[newest] < r.saturating_sub(lookback) || is_stale(vs[newest]) {
                continue;
            }
            out.values[step] = match read {
                Read::Value => vs[newest],
                Read::Timestamp => ts[newest] as f64 / 1000.0,
            };
            out.present[step] = true;
            any = true;
        }
        if !any {
            ev.release(held);
            return Ok(None);
        }
        ev.release(held - ends.count);
        out.labels = set.key(index).labels().to_vec();
        Ok(Some(out))
    })
}
