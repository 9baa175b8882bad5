//! Subqueries: `expr[range:step]` evaluated on a grid of absolute times.
//!
//! As in Prometheus 2.42, the inner expression is evaluated at every
//! multiple of the subquery step (counted from the Unix epoch) from the
//! first one at or after `first_end - range` to `last_end`, where the
//! ends are the outer read times (the outer steps, or the `@` time, minus
//! the subquery's offset). So the same inner points serve every outer
//! step, and a window `[end - range, end]` holds exactly the multiples of
//! the step inside it. Without a step (`[1h:]`) the step is
//! `QueryOptions::subquery_step_ms`, Prometheus' evaluation interval.

use super::engine::{Ends, Evaluator};
use super::value::{Labels, QueryError, StepSeries, Steps, Value};
use crate::query::ast::Subquery;

/// The inner result of a subquery and the outer windows it serves.
pub(super) struct Evaluated {
    /// The inner expression's series, on `steps`; empty when no multiple
    /// of the step falls in any window.
    pub series: Vec<StepSeries>,
    pub steps: Steps,
    /// The outer windows' ends.
    pub ends: Ends,
}

/// Evaluates the inner expression of `sq` for the outer `steps`.
pub(super) fn eval(
    ev: &Evaluator<'_>,
    sq: &Subquery,
    steps: &Steps,
) -> Result<Evaluated, QueryError> {
    let ends = ev.ends(sq.at, sq.offset_ms, steps);
    let step_ms = sq.step_ms.unwrap_or(ev.options.subquery_step_ms).max(1);
    let Some(inner) = inner_steps(
        ends.first_ms.saturating_sub(sq.range_ms),
        ends.last_ms(),
        step_ms,
    )?
    else {
        return Ok(Evaluated {
            series: Vec::new(),
            steps: Steps::instant(ends.first_ms),
            ends,
        });
    };
    if inner.count > ev.options.max_samples {
        return Err(QueryError::TooManySamples {
            limit: ev.options.max_samples,
        });
    }
    let series = match ev.eval(&sq.expr, &inner)? {
        Value::Vector(series) => series,
        // Only a hand-built tree has a scalar here; treat it as one
        // series without labels, as a range query's output does.
        Value::Scalar(values) => vec![StepSeries {
            labels: Labels::new(),
            present: vec![true; values.len()],
            values,
        }],
        Value::String(_) => {
            return Err(QueryError::BadArgument(format!(
                "a subquery needs an instant vector, got the string {}",
                sq.expr
            )))
        }
    };
    Ok(Evaluated {
        series,
        steps: inner,
        ends,
    })
}

/// The multiples of `step_ms` in `[from_ms, to_ms]`, if any (`step_ms` >
/// 0). Too many to count in a `usize` is an error rather than a wrap.
fn inner_steps(from_ms: i64, to_ms: i64, step_ms: i64) -> Result<Option<Steps>, QueryError> {
    // The first multiple at or after `from_ms` (a ceiling that holds for
    // negative times too, as Go's truncating division plus correction
    // does in Prometheus).
    let floor = from_ms.div_euclid(step_ms).saturating_mul(step_ms);
    let start_ms = if floor < from_ms {
        floor.saturating_add(step_ms)
    } else {
        floor
    };
    if start_ms > to_ms {
        return Ok(None);
    }
    // Steps::time computes `index * step` in an i64: the span must fit.
    let too_wide = || {
        QueryError::BadRange(format!(
            "a subquery spans {from_ms} ms to {to_ms} ms, too wide"
        ))
    };
    let span = i64::try_from(to_ms as i128 - start_ms as i128).map_err(|_| too_wide())?;
    let count = usize::try_from(span / step_ms + 1).map_err(|_| too_wide())?;
    Ok(Some(Steps {
        start_ms,
        step_ms,
        count,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inner_steps_are_absolute_multiples_of_the_step() {
        // [95, 250] at step 60 → 120, 180, 240.
        let s = inner_steps(95, 250, 60).unwrap().unwrap();
        assert_eq!((s.start_ms, s.step_ms, s.count), (120, 60, 3));
        // A bound on a multiple is included at both ends.
        let s = inner_steps(120, 240, 60).unwrap().unwrap();
        assert_eq!((s.start_ms, s.count), (120, 3));
        // Negative times round up too: [-95, 0] → -60, 0.
        let s = inner_steps(-95, 0, 60).unwrap().unwrap();
        assert_eq!((s.start_ms, s.count), (-60, 2));
        // No multiple inside.
        assert!(inner_steps(61, 119, 60).unwrap().is_none());
    }
}
