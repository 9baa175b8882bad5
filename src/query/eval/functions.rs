//! Functions on instant vectors and scalars (module doc by its author).

use super::value::{QueryError, Steps, Value};
use crate::query::ast::Function;

/// Calls one of `abs ceil floor round clamp clamp_min clamp_max time vector
/// scalar label_replace histogram_quantile` on evaluated arguments (the
/// optional argument of `round` is absent from `args` when not given).
pub(super) fn call_instant(
    func: Function,
    args: Vec<Value>,
    steps: &Steps,
) -> Result<Value, QueryError> {
    let _ = (func, args, steps);
    todo!("instant functions")
}
