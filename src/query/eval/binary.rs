//! Binary operators between scalars and instant vectors, as Prometheus 2.42
//! evaluates them, column-wise over the steps.
//!
//! Vector matching works on signatures computed once per series (the
//! `on` labels, or all labels but the `ignoring` ones and the metric name;
//! by default all labels but the name). Each pair of a "many" side series
//! and a "one" side series with the same signature gives one output column,
//! present where both are present (and, for a filtering comparison, where
//! the comparison holds).
//!
//! Prometheus checks matching one evaluation step at a time and fails at
//! the first step where a check fails; so do we: a "one" side with two
//! series of one signature present at the same step, two matches that
//! should be one, or two result series with the same labels at one step
//! are errors at that step, and series of one signature (or one result
//! label set) that are present at different steps are fine. When several
//! checks fail, the error is the one Prometheus meets first: the earliest
//! step, then in the order Prometheus makes the checks at a step.
//!
//! Number semantics are Go's: `%` is `math.Mod` (the sign of the dividend;
//! Rust's `%` on f64 computes the same exact remainder), `^` is `math.Pow`
//! and `atan2` is `math.Atan2` (here the platform's `pow`/`atan2`, which
//! may differ from Go's in the last bit).
//!
//! Invariants of a vector result: no series without a sample, no two
//! series with the same labels.

use std::collections::HashMap;

use super::value::{
    dense_ids, drop_metric_name, label_subset, label_value, merge_same_labels, FormatLabels,
    Labels, QueryError, StepSeries, Steps, Value,
};
use crate::query::ast::{BinOp, Binary, Cardinality, VectorMatching};
use crate::series::Label;

/// Evaluates `$body` with `$f` bound to the operation of `$op` on two
/// samples, a closure `(l, r) -> (value, keep)` (for a comparison the
/// value is `l`, `keep` whether the comparison holds), so that a loop over
/// samples inside `$body` is compiled once per operator instead of
/// branching on the operator at every sample. Set operators have no
/// sample operation (`binary` routes them elsewhere); they keep nothing.
macro_rules! with_elem_op {
    ($op:expr, |$f:ident| $body:expr) => {
        match $op {
            BinOp::Add => {
                let $f = |l: f64, r: f64| (l + r, true);
                $body
            }
            BinOp::Sub => {
                let $f = |l: f64, r: f64| (l - r, true);
                $body
            }
            BinOp::Mul => {
                let $f = |l: f64, r: f64| (l * r, true);
                $body
            }
            BinOp::Div => {
                let $f = |l: f64, r: f64| (l / r, true);
                $body
            }
            BinOp::Mod => {
                let $f = |l: f64, r: f64| (l % r, true);
                $body
            }
            BinOp::Pow => {
                let $f = |l: f64, r: f64| (l.powf(r), true);
                $body
            }
            BinOp::Atan2 => {
                let $f = |l: f64, r: f64| (l.atan2(r), true);
                $body
            }
            BinOp::Eql => {
                let $f = |l: f64, r: f64| (l, l == r);
                $body
            }
            BinOp::Neq => {
                let $f = |l: f64, r: f64| (l, l != r);
                $body
            }
            BinOp::Gtr => {
                let $f = |l: f64, r: f64| (l, l > r);
                $body
            }
            BinOp::Lss => {
                let $f = |l: f64, r: f64| (l, l < r);
                $body
            }
            BinOp::Gte => {
                let $f = |l: f64, r: f64| (l, l >= r);
                $body
            }
            BinOp::Lte => {
                let $f = |l: f64, r: f64| (l, l <= r);
                $body
            }
            BinOp::And | BinOp::Or | BinOp::Unless => {
                let $f = |l: f64, _: f64| (l, false);
                $body
            }
        }
    };
}

/// `lhs op rhs` at every step; `lhs` and `rhs` are the evaluated operands
/// (scalars or vectors, as `binary.lhs`/`binary.rhs` typed).
pub(super) fn binary(
    binary: &Binary,
    lhs: Value,
    rhs: Value,
    steps: &Steps,
) -> Result<Value, QueryError> {
    let op = binary.op;
    match (lhs, rhs) {
        (Value::Vector(lhs), Value::Vector(rhs)) if op.is_set_op() => Ok(Value::Vector(set_op(
            op,
            lhs,
            rhs,
            binary.matching.as_ref(),
            steps.count,
        )?)),
        (Value::Vector(lhs), Value::Vector(rhs)) => {
            vector_vector(binary, lhs, rhs, steps.count).map(Value::Vector)
        }
        _ if op.is_set_op() => Err(QueryError::BadArgument(format!(
            "set operator {} needs two instant vectors",
            op.symbol()
        ))),
        (Value::Scalar(lhs), Value::Scalar(rhs)) => Ok(Value::Scalar(
            lhs.iter()
                .zip(&rhs)
                .map(|(&l, &r)| {
                    let (value, keep) = with_elem_op!(op, |f| f(l, r));
                    // Between scalars a comparison always returns 0 or 1.
                    if op.is_comparison() {
                        f64::from(u8::from(keep))
                    } else {
                        value
                    }
                })
                .collect(),
        )),
        (Value::Vector(vector), Value::Scalar(scalar)) => {
            vector_scalar(binary, vector, &scalar, false).map(Value::Vector)
        }
        (Value::Scalar(scalar), Value::Vector(vector)) => {
            vector_scalar(binary, vector, &scalar, true).map(Value::Vector)
        }
        _ => Err(QueryError::BadArgument(format!(
            "operator {} needs scalar or instant vector operands",
            op.symbol()
        ))),
    }
}

/// Arithmetic drops the metric name; comparisons and (in Prometheus 2.42)
/// `atan2` keep it.
fn drops_metric_name(op: BinOp) -> bool {
    matches!(
        op,
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod | BinOp::Pow
    )
}

fn clash_context(op: BinOp) -> String {
    format!("binary operator {}", op.symbol())
}

/// A vector and a scalar; `swapped` when the scalar is the left operand.
/// A filtering comparison keeps the vector's value whichever side it is on.
fn vector_scalar(
    binary: &Binary,
    mut vector: Vec<StepSeries>,
    scalar: &[f64],
    swapped: bool,
) -> Result<Vec<StepSeries>, QueryError> {
    let op = binary.op;
    let (return_bool, comparison) = (binary.return_bool, op.is_comparison());
    for s in &mut vector {
        with_elem_op!(op, |f| {
            // Absent slots are computed too (their value is ignored): no
            // branch per sample.
            for ((v, p), &k) in s.values.iter_mut().zip(s.present.iter_mut()).zip(scalar) {
                let (value, keep) = if swapped { f(k, *v) } else { f(*v, k) };
                if return_bool {
                    *v = f64::from(u8::from(keep));
                } else {
                    if !comparison {
                        *v = value;
                    }
                    *p &= keep;
                }
            }
        });
    }
    if drops_metric_name(op) || binary.return_bool {
        for s in &mut vector {
            drop_metric_name(&mut s.labels);
        }
        merge_same_labels(vector).map_err(|clash| clash.into_error(clash_context(op)))
    } else {
        vector.retain(StepSeries::any_present);
        Ok(vector)
    }
}

/// `and`, `or`, `unless`, matching signatures at each step; the series keep
/// all their labels.
fn set_op(
    op: BinOp,
    mut lhs: Vec<StepSeries>,
    mut rhs: Vec<StepSeries>,
    matching: Option<&VectorMatching>,
    n: usize,
) -> Result<Vec<StepSeries>, QueryError> {
    let (on, names) = matching.map_or((false, &[][..]), |m| (m.on, &m.labels[..]));
    let (ids, sigs) = dense_ids(
        lhs.iter()
            .chain(&rhs)
            .map(|s| label_subset(&s.labels, names, on)),
    );
    let (lhs_ids, rhs_ids) = ids.split_at(lhs.len());
    // `seen[g * n + t]`: a series of signature `g` on the given side is
    // present at step `t`.
    let presence = |side: &[StepSeries], side_ids: &[usize]| {
        let mut seen = vec![false; sigs.len() * n];
        for (s, &g) in side.iter().zip(side_ids) {
            for (slot, &p) in seen[g * n..(g + 1) * n].iter_mut().zip(&s.present) {
                *slot |= p;
            }
        }
        seen
    };
    // Keeps the slots of `side` where `seen` (for the other side) is `want`.
    let filter = |side: &mut Vec<StepSeries>, side_ids: &[usize], seen: &[bool], want: bool| {
        for (s, &g) in side.iter_mut().zip(side_ids) {
            for (p, &other) in s.present.iter_mut().zip(&seen[g * n..(g + 1) * n]) {
                *p &= other == want;
            }
        }
        side.retain(StepSeries::any_present);
    };
    match op {
        BinOp::And | BinOp::Unless => {
            let seen = presence(&rhs, rhs_ids);
            filter(&mut lhs, lhs_ids, &seen, op == BinOp::And);
            Ok(lhs)
        }
        _ => {
            // `or`: all of the left, and the right where no left series of
            // its signature is present.
            let seen = presence(&lhs, lhs_ids);
            filter(&mut rhs, rhs_ids, &seen, false);
            lhs.extend(rhs);
            merge_same_labels(lhs).map_err(|clash| clash.into_error(clash_context(op)))
        }
    }
}

/// The error Prometheus reports first: ordered by step, then by the order
/// of its checks at a step, then by series order.
#[derive(Default)]
struct FirstError {
    best: Option<((usize, u8, usize), QueryError)>,
}

impl FirstError {
    fn offer(&mut self, key: (usize, u8, usize), error: impl FnOnce() -> QueryError) {
        if self.best.as_ref().is_none_or(|(best, _)| key < *best) {
            self.best = Some((key, error()));
        }
    }
}

/// Check order at one step.
const DUPLICATE_ON_ONE_SIDE: u8 = 0;
const MULTIPLE_MATCHES: u8 = 1;
const SAME_LABELS: u8 = 2;

/// Arithmetic or comparison between two vectors.
fn vector_vector(
    binary: &Binary,
    lhs: Vec<StepSeries>,
    rhs: Vec<StepSeries>,
    n: usize,
) -> Result<Vec<StepSeries>, QueryError> {
    let default = VectorMatching {
        on: false,
        labels: Vec::new(),
        card: Cardinality::OneToOne,
    };
    let matching = binary.matching.as_ref().unwrap_or(&default);
    let (include, one_to_many) = match &matching.card {
        Cardinality::OneToOne => (&[][..], false),
        Cardinality::ManyToOne(labels) => (&labels[..], false),
        Cardinality::OneToMany(labels) => (&labels[..], true),
    };
    let one_to_one = matching.card == Cardinality::OneToOne;
    // The "many" side drives the matching, the "one" side is looked up:
    // for group_right the right side is the many side.
    let (mut many, one) = if one_to_many { (rhs, lhs) } else { (lhs, rhs) };
    let (ids, sigs) = dense_ids(
        many.iter()
            .chain(&one)
            .map(|s| label_subset(&s.labels, &matching.labels, matching.on)),
    );
    let mut many_of = vec![Vec::new(); sigs.len()];
    let mut one_of = vec![Vec::new(); sigs.len()];
    for (i, &g) in ids[..many.len()].iter().enumerate() {
        many_of[g].push(i);
    }
    for (i, &g) in ids[many.len()..].iter().enumerate() {
        one_of[g].push(i);
    }

    let mut error = FirstError::default();
    let one_side = if one_to_many { "left" } else { "right" };
    for (g, members) in one_of.iter().enumerate().filter(|(_, m)| m.len() > 1) {
        let presence = members.iter().map(|&i| &one[i].present[..]);
        if let Some((t, first, second)) = first_overlap(presence, n) {
            let (first, second) = (members[first], members[second]);
            error.offer((t, DUPLICATE_ON_ONE_SIDE, second), || {
                QueryError::Matching(format!(
                    "found duplicate series for the match group {} on the {one_side} hand-side \
                     of the operation: [{}, {}];many-to-many matching not allowed: matching \
                     labels must be unique on one side",
                    FormatLabels(&sigs[g]),
                    FormatLabels(&one[second].labels),
                    FormatLabels(&one[first].labels),
                ))
            });
        }
    }

    let (op, return_bool) = (binary.op, binary.return_bool);
    let mut out: Vec<StepSeries> = Vec::new();
    // This signature's results: all pairs, then merged by labels.
    let mut pairs: Vec<StepSeries> = Vec::new();
    let mut local_index: HashMap<Labels, usize> = HashMap::new();
    for (ms, os) in many_of.iter().zip(&one_of) {
        if ms.is_empty() || os.is_empty() {
            continue;
        }
        for &m in ms {
            for &o in os {
                let labels = result_labels(binary, matching, include, &many[m], &one[o]);
                // A many series with a single partner (the usual case) is
                // computed in place.
                let mut s = if os.len() == 1 {
                    StepSeries {
                        labels,
                        values: std::mem::take(&mut many[m].values),
                        present: std::mem::take(&mut many[m].present),
                    }
                } else {
                    StepSeries {
                        labels,
                        ..many[m].clone()
                    }
                };
                let o = &one[o];
                with_elem_op!(op, |f| {
                    let slots = s.values.iter_mut().zip(s.present.iter_mut());
                    for ((v, p), (&ov, &op)) in slots.zip(o.values.iter().zip(&o.present)) {
                        // The operands in their written order.
                        let (value, keep) = if one_to_many { f(ov, *v) } else { f(*v, ov) };
                        *v = if return_bool {
                            f64::from(u8::from(keep))
                        } else {
                            value
                        };
                        *p &= op && (keep || return_bool);
                    }
                });
                pairs.push(s);
            }
        }
        // One to one, two kept matches of one signature at a step are an
        // error whatever their labels.
        if one_to_one && ms.len() > 1 {
            if let Some((t, _, _)) = first_overlap(pairs.iter().map(|s| &s.present[..]), n) {
                error.offer((t, MULTIPLE_MATCHES, 0), || {
                    QueryError::Matching(
                        "multiple matches for labels: many-to-one matching must be explicit \
                         (group_left/group_right)"
                            .to_owned(),
                    )
                });
            }
        }
        local_index.clear();
        for s in pairs.drain(..) {
            let Some(&at) = local_index.get(&s.labels) else {
                local_index.insert(s.labels.clone(), out.len());
                out.push(s);
                continue;
            };
            let dst = &mut out[at];
            for (t, (&v, &p)) in s.values.iter().zip(&s.present).enumerate() {
                if !p {
                    continue;
                }
                if dst.present[t] {
                    // One to one this is the overlap found above.
                    if !one_to_one {
                        error.offer((t, MULTIPLE_MATCHES, 0), || {
                            QueryError::Matching(
                                "multiple matches for labels: grouping labels must ensure \
                                 unique matches"
                                    .to_owned(),
                            )
                        });
                    }
                } else {
                    dst.present[t] = true;
                    dst.values[t] = v;
                }
            }
        }
    }
    // Results of different signatures may still share labels (say, with
    // `on(__name__)` and arithmetic dropping the name).
    let merged = merge_same_labels(out);
    if let Err(clash) = &merged {
        error.offer((clash.step, SAME_LABELS, 0), || {
            clash.clone().into_error(clash_context(op))
        });
    }
    match error.best {
        Some((_, error)) => Err(error),
        None => merged.map_err(|clash| clash.into_error(clash_context(op))),
    }
}

/// The earliest step where two of the presence columns are both true:
/// (step, position of the first column true there, of the second).
fn first_overlap<'a>(
    presence: impl IntoIterator<Item = &'a [bool]>,
    n: usize,
) -> Option<(usize, usize, usize)> {
    const NONE: usize = usize::MAX;
    let mut owner = vec![NONE; n];
    let mut best: Option<(usize, usize, usize)> = None;
    for (i, present) in presence.into_iter().enumerate() {
        for (t, (first, &p)) in owner.iter_mut().zip(present).enumerate() {
            if !p {
                continue;
            }
            if *first == NONE {
                *first = i;
            } else if best.is_none_or(|(bt, _, _)| t < bt) {
                best = Some((t, *first, i));
            }
        }
    }
    best
}

/// The labels of `many op one` (Prometheus' `resultMetric`): the many
/// side's labels, without the name for arithmetic (and for `bool`), only
/// the `on` labels (or without the `ignoring` ones) when matching one to
/// one, and the `group_x` labels copied from the one side (removed where
/// the one side lacks them).
fn result_labels(
    binary: &Binary,
    matching: &VectorMatching,
    include: &[String],
    many: &StepSeries,
    one: &StepSeries,
) -> Labels {
    let mut labels = many.labels.clone();
    if drops_metric_name(binary.op) {
        drop_metric_name(&mut labels);
    }
    if matching.card == Cardinality::OneToOne {
        labels.retain(|l| matching.labels.iter().any(|n| **n == *l.name) == matching.on);
    }
    for name in include {
        let at = labels.binary_search_by(|l| (*l.name).cmp(name.as_str()));
        match (label_value(&one.labels, name), at) {
            (Some(value), Ok(i)) => labels[i].value = value.into(),
            (Some(value), Err(i)) => labels.insert(i, Label::new(name.as_str(), value)),
            (None, Ok(i)) => {
                labels.remove(i);
            }
            (None, Err(_)) => {}
        }
    }
    if binary.return_bool {
        drop_metric_name(&mut labels);
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::ast::Expr;

    use crate::query::eval::value::test_support::{labels, series};

    fn view(value: Value) -> Vec<(Labels, Vec<Option<f64>>)> {
        let Value::Vector(out) = value else {
            panic!("not a vector: {value:?}")
        };
        out.iter()
            .map(|s| {
                let vals = s
                    .values
                    .iter()
                    .zip(&s.present)
                    .map(|(&v, &p)| p.then_some(v))
                    .collect();
                (s.labels.clone(), vals)
            })
            .collect()
    }

    /// Debug text, so that NaN compares equal to NaN.
    trait DebugText {
        fn debug(&self) -> String;
    }

    impl<T: std::fmt::Debug> DebugText for T {
        fn debug(&self) -> String {
            format!("{self:?}")
        }
    }

    /// A `Binary` node; the operand expressions are not used by `binary`.
    fn node(op: BinOp, return_bool: bool, matching: Option<VectorMatching>) -> Binary {
        Binary {
            op,
            lhs: Expr::Number(0.0),
            rhs: Expr::Number(0.0),
            return_bool,
            matching,
        }
    }

    fn on(names: &[&str], card: Cardinality) -> Option<VectorMatching> {
        Some(VectorMatching {
            on: true,
            labels: names.iter().map(|s| s.to_string()).collect(),
            card,
        })
    }

    fn ignoring(names: &[&str], card: Cardinality) -> Option<VectorMatching> {
        Some(VectorMatching {
            on: false,
            labels: names.iter().map(|s| s.to_string()).collect(),
            card,
        })
    }

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn eval(b: &Binary, lhs: Value, rhs: Value) -> Result<Value, QueryError> {
        let n = match (&lhs, &rhs) {
            (Value::Vector(v), _) | (_, Value::Vector(v)) if !v.is_empty() => v[0].present.len(),
            (Value::Scalar(s), _) | (_, Value::Scalar(s)) => s.len(),
            _ => 1,
        };
        let steps = Steps {
            start_ms: 0,
            step_ms: 1000,
            count: n,
        };
        binary(b, lhs, rhs, &steps)
    }

    fn scalars(op: BinOp, l: f64, r: f64) -> f64 {
        match eval(
            &node(op, op.is_comparison(), None),
            Value::Scalar(vec![l]),
            Value::Scalar(vec![r]),
        ) {
            Ok(Value::Scalar(v)) => v[0],
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn scalar_arithmetic_is_go_arithmetic() {
        assert_eq!(scalars(BinOp::Add, 1.5, 2.0), 3.5);
        assert_eq!(scalars(BinOp::Div, 1.0, 0.0), f64::INFINITY);
        assert!(scalars(BinOp::Div, 0.0, 0.0).is_nan());
        // math.Mod: the sign of the dividend; x % 0 is NaN; x % Inf is x.
        assert_eq!(scalars(BinOp::Mod, -7.0, 3.0), -1.0);
        assert_eq!(scalars(BinOp::Mod, 7.5, -2.0), 1.5);
        assert!(scalars(BinOp::Mod, 1.0, 0.0).is_nan());
        assert_eq!(scalars(BinOp::Mod, 5.0, f64::INFINITY), 5.0);
        // math.Pow: anything ^ 0 is 1, even NaN; 1 ^ NaN is 1.
        assert_eq!(scalars(BinOp::Pow, 2.0, 10.0), 1024.0);
        assert_eq!(scalars(BinOp::Pow, f64::NAN, 0.0), 1.0);
        assert_eq!(scalars(BinOp::Pow, 1.0, f64::NAN), 1.0);
        assert!(scalars(BinOp::Pow, -8.0, 1.0 / 3.0).is_nan());
        assert_eq!(scalars(BinOp::Atan2, 1.0, 1.0), std::f64::consts::FRAC_PI_4);
        // Comparisons between scalars are always 0 or 1; NaN equals nothing.
        assert_eq!(scalars(BinOp::Gtr, 2.0, 1.0), 1.0);
        assert_eq!(scalars(BinOp::Lte, 2.0, 1.0), 0.0);
        assert_eq!(scalars(BinOp::Eql, f64::NAN, f64::NAN), 0.0);
        assert_eq!(scalars(BinOp::Neq, f64::NAN, f64::NAN), 1.0);
    }

    fn ab() -> Vec<StepSeries> {
        vec![
            series(
                &[("__name__", "a"), ("x", "1")],
                &[Some(1.0), Some(5.0), None],
            ),
            series(
                &[("__name__", "a"), ("x", "2")],
                &[Some(3.0), None, Some(f64::NAN)],
            ),
        ]
    }

    #[test]
    fn vector_and_scalar() {
        let k = Value::Scalar(vec![2.0, 2.0, 2.0]);
        // Arithmetic drops the name, per step scalar.
        let out = eval(
            &node(BinOp::Sub, false, None),
            Value::Vector(ab()),
            k.clone(),
        );
        assert_eq!(
            view(out.unwrap()).debug(),
            vec![
                (labels(&[("x", "1")]), vec![Some(-1.0), Some(3.0), None]),
                (labels(&[("x", "2")]), vec![Some(1.0), None, Some(f64::NAN)]),
            ]
            .debug()
        );
        // Scalar on the left: 2 - v.
        let out = eval(
            &node(BinOp::Sub, false, None),
            k.clone(),
            Value::Vector(ab()),
        );
        assert_eq!(view(out.unwrap())[0].1, vec![Some(1.0), Some(-3.0), None]);
        // A filter keeps the name and the vector's value on either side:
        // 2 < v holds for x=1 at step 1 (5) and x=2 at step 0 (3); NaN < 2 is false.
        let out = eval(
            &node(BinOp::Lss, false, None),
            k.clone(),
            Value::Vector(ab()),
        );
        assert_eq!(
            view(out.unwrap()),
            vec![
                (
                    labels(&[("__name__", "a"), ("x", "1")]),
                    vec![None, Some(5.0), None]
                ),
                (
                    labels(&[("__name__", "a"), ("x", "2")]),
                    vec![Some(3.0), None, None]
                ),
            ]
        );
        // `bool` gives 0/1 wherever the vector is present and drops the name.
        let out = eval(
            &node(BinOp::Gtr, true, None),
            Value::Vector(ab()),
            k.clone(),
        );
        assert_eq!(
            view(out.unwrap()),
            vec![
                (labels(&[("x", "1")]), vec![Some(0.0), Some(1.0), None]),
                (labels(&[("x", "2")]), vec![Some(1.0), None, Some(0.0)]),
            ]
        );
        // atan2 keeps the metric name in Prometheus 2.42.
        let out = eval(&node(BinOp::Atan2, false, None), Value::Vector(ab()), k);
        assert_eq!(
            view(out.unwrap())[0].0,
            labels(&[("__name__", "a"), ("x", "1")])
        );
    }

    #[test]
    fn dropping_the_name_may_clash_only_at_shared_steps() {
        let k = Value::Scalar(vec![1.0, 1.0]);
        // a{x=1} and b{x=1} at different steps: one series {x=1} after `+ 1`.
        let disjoint = vec![
            series(&[("__name__", "a"), ("x", "1")], &[Some(1.0), None]),
            series(&[("__name__", "b"), ("x", "1")], &[None, Some(2.0)]),
        ];
        let out = eval(
            &node(BinOp::Add, false, None),
            Value::Vector(disjoint),
            k.clone(),
        );
        assert_eq!(
            view(out.unwrap()),
            vec![(labels(&[("x", "1")]), vec![Some(2.0), Some(3.0)])]
        );
        // Both at step 1: Prometheus' "vector cannot contain metrics with
        // the same labelset".
        let shared = vec![
            series(&[("__name__", "a"), ("x", "1")], &[Some(1.0), Some(1.0)]),
            series(&[("__name__", "b"), ("x", "1")], &[None, Some(2.0)]),
        ];
        let err = eval(
            &node(BinOp::Add, false, None),
            Value::Vector(shared.clone()),
            k.clone(),
        );
        assert!(matches!(
            err,
            Err(QueryError::DuplicateLabelSet { ref labels, .. }) if labels == "{x=\"1\"}"
        ));
        // A filter keeps the names: no clash.
        let out = eval(&node(BinOp::Gte, false, None), Value::Vector(shared), k);
        assert_eq!(view(out.unwrap()).len(), 2);
    }

    /// `errors` and `requests` by instance and code, for vector matching.
    fn requests() -> Vec<StepSeries> {
        vec![
            series(
                &[("__name__", "requests"), ("instance", "i1")],
                &[Some(100.0), Some(200.0)],
            ),
            series(
                &[("__name__", "requests"), ("instance", "i2")],
                &[Some(50.0), None],
            ),
        ]
    }

    fn errors() -> Vec<StepSeries> {
        vec![
            series(
                &[("__name__", "errors"), ("instance", "i1"), ("code", "500")],
                &[Some(5.0), Some(10.0)],
            ),
            series(
                &[("__name__", "errors"), ("instance", "i1"), ("code", "503")],
                &[Some(1.0), None],
            ),
            series(
                &[("__name__", "errors"), ("instance", "i2"), ("code", "500")],
                &[Some(50.0), Some(1.0)],
            ),
        ]
    }

    #[test]
    fn one_to_one_default_on_and_ignoring() {
        let lhs = vec![
            series(
                &[("__name__", "a"), ("x", "1"), ("y", "1")],
                &[Some(6.0), Some(8.0)],
            ),
            series(
                &[("__name__", "a"), ("x", "2"), ("y", "1")],
                &[Some(1.0), None],
            ),
        ];
        let rhs = vec![
            series(
                &[("__name__", "b"), ("x", "1"), ("y", "1")],
                &[Some(3.0), None],
            ),
            series(
                &[("__name__", "b"), ("x", "2"), ("y", "2")],
                &[Some(1.0), Some(1.0)],
            ),
        ];
        // Default: all labels but the name must match; only x=1,y=1 pairs,
        // at step 0 only (b{x=1} absent at step 1): 6 / 3.
        let out = eval(
            &node(BinOp::Div, false, None),
            Value::Vector(lhs.clone()),
            Value::Vector(rhs.clone()),
        );
        assert_eq!(
            view(out.unwrap()),
            vec![(labels(&[("x", "1"), ("y", "1")]), vec![Some(2.0), None])]
        );
        // on(x): both pairs match; the result has only the `on` labels.
        let out = eval(
            &node(BinOp::Div, false, on(&["x"], Cardinality::OneToOne)),
            Value::Vector(lhs.clone()),
            Value::Vector(rhs.clone()),
        );
        assert_eq!(
            view(out.unwrap()),
            vec![
                (labels(&[("x", "1")]), vec![Some(2.0), None]),
                (labels(&[("x", "2")]), vec![Some(1.0), None]),
            ]
        );
        // ignoring(y) with a comparison: the lhs labels without y, the name
        // kept, the lhs value where it holds: 6 > 3 at step 0, 1 > 1 fails.
        let out = eval(
            &node(BinOp::Gtr, false, ignoring(&["y"], Cardinality::OneToOne)),
            Value::Vector(lhs.clone()),
            Value::Vector(rhs.clone()),
        );
        assert_eq!(
            view(out.unwrap()),
            vec![(
                labels(&[("__name__", "a"), ("x", "1")]),
                vec![Some(6.0), None]
            )]
        );
        // `bool` keeps every matched step as 0/1 and drops the name.
        let out = eval(
            &node(BinOp::Gtr, true, ignoring(&["y"], Cardinality::OneToOne)),
            Value::Vector(lhs),
            Value::Vector(rhs),
        );
        assert_eq!(
            view(out.unwrap()),
            vec![
                (labels(&[("x", "1")]), vec![Some(1.0), None]),
                (labels(&[("x", "2")]), vec![Some(0.0), None]),
            ]
        );
    }

    #[test]
    fn group_left_copies_labels_from_the_one_side() {
        let info = vec![
            series(
                &[("__name__", "info"), ("instance", "i1"), ("host", "h1")],
                &[Some(1.0), Some(1.0)],
            ),
            series(
                &[("__name__", "info"), ("instance", "i2"), ("host", "h2")],
                &[Some(1.0), Some(1.0)],
            ),
        ];
        // errors * on(instance) group_left(host) info: every errors series
        // keeps its labels (name dropped: arithmetic) and gains host.
        let out = eval(
            &node(
                BinOp::Mul,
                false,
                on(&["instance"], Cardinality::ManyToOne(strings(&["host"]))),
            ),
            Value::Vector(errors()),
            Value::Vector(info),
        );
        assert_eq!(
            view(out.unwrap()),
            vec![
                (
                    labels(&[("code", "500"), ("host", "h1"), ("instance", "i1")]),
                    vec![Some(5.0), Some(10.0)]
                ),
                (
                    labels(&[("code", "503"), ("host", "h1"), ("instance", "i1")]),
                    vec![Some(1.0), None]
                ),
                (
                    labels(&[("code", "500"), ("host", "h2"), ("instance", "i2")]),
                    vec![Some(50.0), Some(1.0)]
                ),
            ]
        );
    }

    #[test]
    fn group_right_mirrors_group_left() {
        // requests / on(instance) group_right errors: the many side is the
        // right one; values keep their written order (requests / errors).
        let out = eval(
            &node(
                BinOp::Div,
                false,
                on(&["instance"], Cardinality::OneToMany(vec![])),
            ),
            Value::Vector(requests()),
            Value::Vector(errors()),
        );
        assert_eq!(
            view(out.unwrap()),
            vec![
                // 100 / 5, 200 / 10.
                (
                    labels(&[("code", "500"), ("instance", "i1")]),
                    vec![Some(20.0), Some(20.0)]
                ),
                (
                    labels(&[("code", "503"), ("instance", "i1")]),
                    vec![Some(100.0), None]
                ),
                // 50 / 50 at step 0; requests{i2} absent at step 1.
                (
                    labels(&[("code", "500"), ("instance", "i2")]),
                    vec![Some(1.0), None]
                ),
            ]
        );
        // A filtering comparison keeps the left (here: the one side) value
        // under the right side's labels: requests > errors.
        let out = eval(
            &node(
                BinOp::Gtr,
                false,
                on(&["instance"], Cardinality::OneToMany(vec![])),
            ),
            Value::Vector(requests()),
            Value::Vector(errors()),
        );
        assert_eq!(
            view(out.unwrap()),
            vec![
                (
                    labels(&[("__name__", "errors"), ("code", "500"), ("instance", "i1")]),
                    vec![Some(100.0), Some(200.0)]
                ),
                (
                    labels(&[("__name__", "errors"), ("code", "503"), ("instance", "i1")]),
                    vec![Some(100.0), None]
                ),
            ]
        );
    }

    #[test]
    fn many_to_many_is_an_error_at_the_step_it_happens() {
        // errors on(instance) requests: errors{i1} has two series, present
        // together at step 0. With errors on the "one" side that is
        // Prometheus 2.42's error, word for word: the series met second
        // is named first.
        let err = eval(
            &node(BinOp::Add, false, on(&["instance"], Cardinality::OneToOne)),
            Value::Vector(requests()),
            Value::Vector(errors()),
        );
        assert_eq!(
            err.unwrap_err().to_string(),
            "found duplicate series for the match group {instance=\"i1\"} on the right hand-side \
             of the operation: [{__name__=\"errors\", code=\"503\", instance=\"i1\"}, \
             {__name__=\"errors\", code=\"500\", instance=\"i1\"}];many-to-many matching not \
             allowed: matching labels must be unique on one side"
        );
        // group_right makes the left side the "one" side.
        let err = eval(
            &node(
                BinOp::Add,
                false,
                on(&["instance"], Cardinality::OneToMany(vec![])),
            ),
            Value::Vector(errors()),
            Value::Vector(requests()),
        );
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("on the left hand-side"));
        // At step 1 only one errors{i1} series is present: evaluated at that
        // step alone, the same query works.
        let step1 = |v: Vec<StepSeries>| -> Vec<StepSeries> {
            v.into_iter()
                .map(|s| StepSeries {
                    labels: s.labels,
                    values: vec![s.values[1]],
                    present: vec![s.present[1]],
                })
                .collect()
        };
        let out = eval(
            &node(BinOp::Add, false, on(&["instance"], Cardinality::OneToOne)),
            Value::Vector(step1(requests())),
            Value::Vector(step1(errors())),
        );
        assert_eq!(
            view(out.unwrap()),
            vec![(labels(&[("instance", "i1")]), vec![Some(210.0)])]
        );
    }

    #[test]
    fn multiple_matches_need_group_modifiers() {
        // errors + on(instance) requests: the many side on the left without
        // group_left.
        let err = eval(
            &node(BinOp::Add, false, on(&["instance"], Cardinality::OneToOne)),
            Value::Vector(errors()),
            Value::Vector(requests()),
        );
        assert_eq!(
            err.unwrap_err().to_string(),
            "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
        );
        // A filter that keeps only one of them per step is fine: errors{i1}
        // > 4 on(instance) ... keeps 5 (code 500) and drops 1 (code 503).
        let filtered = eval(
            &node(BinOp::Gtr, false, on(&["instance"], Cardinality::OneToOne)),
            Value::Vector(errors()),
            Value::Vector(vec![series(&[("instance", "i1")], &[Some(4.0), Some(4.0)])]),
        );
        assert_eq!(
            view(filtered.unwrap()),
            vec![(labels(&[("instance", "i1")]), vec![Some(5.0), Some(10.0)])]
        );
        // group_left whose result labels collide: the name is dropped and
        // the two lhs series differ only by name.
        let lhs = vec![
            series(&[("__name__", "a"), ("x", "1")], &[Some(1.0)]),
            series(&[("__name__", "b"), ("x", "1")], &[Some(2.0)]),
        ];
        let err = eval(
            &node(
                BinOp::Add,
                false,
                on(&["x"], Cardinality::ManyToOne(vec![])),
            ),
            Value::Vector(lhs),
            Value::Vector(vec![series(&[("x", "1")], &[Some(1.0)])]),
        );
        assert_eq!(
            err.unwrap_err().to_string(),
            "multiple matches for labels: grouping labels must ensure unique matches"
        );
    }

    #[test]
    fn a_one_side_series_may_change_between_steps() {
        // b{x=1} is one series until step 0 and another (v=2) from step 1:
        // one match per step, so no error; a + on(x) b is 11, 22, then
        // nothing (no b at step 2).
        let lhs = vec![series(
            &[("__name__", "a"), ("x", "1")],
            &[Some(1.0), Some(2.0), Some(3.0)],
        )];
        let churn = vec![
            series(
                &[("__name__", "b"), ("x", "1"), ("v", "1")],
                &[Some(10.0), None, None],
            ),
            series(
                &[("__name__", "b"), ("x", "1"), ("v", "2")],
                &[None, Some(20.0), None],
            ),
        ];
        let matching = on(&["x"], Cardinality::OneToOne);
        let out = eval(
            &node(BinOp::Add, false, matching.clone()),
            Value::Vector(lhs.clone()),
            Value::Vector(churn),
        );
        assert_eq!(
            view(out.unwrap()),
            vec![(labels(&[("x", "1")]), vec![Some(11.0), Some(22.0), None])]
        );
        // Both present at step 2: the error names step 2's duplicates.
        let both = vec![
            series(
                &[("__name__", "b"), ("x", "1"), ("v", "1")],
                &[Some(10.0), None, Some(1.0)],
            ),
            series(
                &[("__name__", "b"), ("x", "1"), ("v", "2")],
                &[None, Some(20.0), Some(2.0)],
            ),
        ];
        let err = eval(
            &node(BinOp::Add, false, matching),
            Value::Vector(lhs),
            Value::Vector(both),
        );
        assert!(err
            .unwrap_err()
            .to_string()
            .starts_with("found duplicate series for the match group {x=\"1\"}"));
    }

    #[test]
    fn results_of_different_signatures_may_clash() {
        // on(__name__): a and b are different signatures, but `+` drops the
        // name and both results are {x="1"} at step 1.
        let lhs = vec![
            series(&[("__name__", "a"), ("x", "1")], &[None, Some(1.0)]),
            series(&[("__name__", "b"), ("x", "1")], &[Some(2.0), Some(2.0)]),
        ];
        let rhs = vec![
            series(&[("__name__", "a")], &[Some(10.0), Some(10.0)]),
            series(&[("__name__", "b")], &[Some(20.0), Some(20.0)]),
        ];
        let matching = on(&["__name__"], Cardinality::ManyToOne(vec![]));
        let err = eval(
            &node(BinOp::Add, false, matching),
            Value::Vector(lhs),
            Value::Vector(rhs),
        );
        assert!(matches!(
            err,
            Err(QueryError::DuplicateLabelSet { ref labels, .. }) if labels == "{x=\"1\"}"
        ));
    }

    fn set(
        op: BinOp,
        lhs: Vec<StepSeries>,
        rhs: Vec<StepSeries>,
        matching: Option<VectorMatching>,
    ) -> Vec<(Labels, Vec<Option<f64>>)> {
        view(
            eval(
                &node(op, false, matching),
                Value::Vector(lhs),
                Value::Vector(rhs),
            )
            .unwrap(),
        )
    }

    #[test]
    fn set_operators_match_per_step() {
        let lhs = vec![
            series(
                &[("__name__", "a"), ("x", "1")],
                &[Some(1.0), None, Some(3.0)],
            ),
            series(
                &[("__name__", "a"), ("x", "2")],
                &[Some(4.0), Some(5.0), None],
            ),
        ];
        let rhs = vec![
            series(
                &[("__name__", "b"), ("x", "1")],
                &[Some(10.0), Some(20.0), Some(30.0)],
            ),
            series(&[("__name__", "b"), ("x", "3")], &[None, Some(60.0), None]),
        ];
        // or: all of lhs; rhs x=1 only at step 1 where lhs x=1 is absent;
        // rhs x=3 wherever present. Labels kept, name included.
        assert_eq!(
            set(BinOp::Or, lhs.clone(), rhs.clone(), None),
            vec![
                (
                    labels(&[("__name__", "a"), ("x", "1")]),
                    vec![Some(1.0), None, Some(3.0)]
                ),
                (
                    labels(&[("__name__", "a"), ("x", "2")]),
                    vec![Some(4.0), Some(5.0), None]
                ),
                (
                    labels(&[("__name__", "b"), ("x", "1")]),
                    vec![None, Some(20.0), None]
                ),
                (
                    labels(&[("__name__", "b"), ("x", "3")]),
                    vec![None, Some(60.0), None]
                ),
            ]
        );
        // and: lhs where an rhs series of its signature is present.
        assert_eq!(
            set(BinOp::And, lhs.clone(), rhs.clone(), None),
            vec![(
                labels(&[("__name__", "a"), ("x", "1")]),
                vec![Some(1.0), None, Some(3.0)]
            )]
        );
        // unless: the rest.
        assert_eq!(
            set(BinOp::Unless, lhs.clone(), rhs.clone(), None),
            vec![(
                labels(&[("__name__", "a"), ("x", "2")]),
                vec![Some(4.0), Some(5.0), None]
            )]
        );
        // on(): every series has the same (empty) signature; `and` keeps
        // lhs at steps where rhs has anything, `unless` where it has nothing.
        assert_eq!(
            set(
                BinOp::Unless,
                lhs.clone(),
                rhs.clone(),
                on(&[], Cardinality::OneToOne)
            ),
            vec![]
        );
        let sparse = vec![series(&[("z", "1")], &[None, Some(0.0), None])];
        assert_eq!(
            set(
                BinOp::And,
                lhs.clone(),
                sparse.clone(),
                on(&[], Cardinality::OneToOne)
            ),
            vec![(
                labels(&[("__name__", "a"), ("x", "2")]),
                vec![None, Some(5.0), None]
            )]
        );
        // Or against an empty side is the other side.
        assert_eq!(
            set(BinOp::Or, vec![], sparse.clone(), None),
            set(BinOp::Or, sparse, vec![], None)
        );
    }

    #[test]
    fn nan_values_flow_through() {
        // NaN arithmetic is NaN; NaN == NaN filters out; `bool` says 0.
        let lhs = vec![series(&[("x", "1")], &[Some(f64::NAN)])];
        let rhs = vec![series(&[("x", "1")], &[Some(f64::NAN)])];
        let out = eval(
            &node(BinOp::Add, false, None),
            Value::Vector(lhs.clone()),
            Value::Vector(rhs.clone()),
        );
        assert!(view(out.unwrap())[0].1[0].is_some_and(f64::is_nan));
        assert_eq!(set(BinOp::Eql, lhs.clone(), rhs.clone(), None), vec![]);
        let out = eval(
            &node(BinOp::Eql, true, None),
            Value::Vector(lhs),
            Value::Vector(rhs),
        );
        assert_eq!(view(out.unwrap())[0].1, vec![Some(0.0)]);
    }
}
