//! Binary operators between scalars and instant vectors (module doc by its
//! author).

use super::value::{QueryError, Steps, Value};
use crate::query::ast::Binary;

/// `lhs op rhs` at every step; `lhs` and `rhs` are the evaluated operands
/// (scalars or vectors, as `binary.lhs`/`binary.rhs` typed).
pub(super) fn binary(
    binary: &Binary,
    lhs: Value,
    rhs: Value,
    steps: &Steps,
) -> Result<Value, QueryError> {
    let _ = (binary, lhs, rhs, steps);
    todo!("binary operators")
}
