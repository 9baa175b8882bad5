//! Aggregation operators over instant vectors (module doc by its author).

use super::value::{QueryError, StepSeries, Steps, Value};
use crate::query::ast::{AggOp, Grouping};

/// `op by/without (grouping) (param, input)`, evaluated at every step.
/// `param` is the evaluated parameter (a scalar for topk/bottomk/quantile,
/// a string for count_values).
pub(super) fn aggregate(
    op: AggOp,
    param: Option<&Value>,
    input: Vec<StepSeries>,
    grouping: &Grouping,
    steps: &Steps,
) -> Result<Vec<StepSeries>, QueryError> {
    let _ = (op, param, input, grouping, steps);
    todo!("aggregations")
}
