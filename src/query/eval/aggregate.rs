//! Aggregation operators over instant vectors, as Prometheus 2.42 computes
//! them, column-wise over the steps.
//!
//! Every input series is put in its group once (its grouping key: the
//! `by` labels, or all labels but the `without` ones and the metric name);
//! the per-step work then only reads value and present slots. A group has
//! a value at a step when at least one of its members is present there.
//! Members are folded in input order, which is the order Prometheus adds
//! them in, so sums and means round the same way.
//!
//! Invariants of the output:
//! - `sum` … `quantile` and `count_values` return one series per group,
//!   labelled by the grouping key (sorted, no metric name unless `by`
//!   names it); groups appear in the order their first member does;
//! - `topk`/`bottomk` return the selected input series with their full
//!   labels, present only at the steps where they were selected;
//! - no output series is without a sample, and no two share labels.

use std::collections::HashMap;

use super::value::{dense_ids, label_subset, Labels, QueryError, StepSeries, Steps, Value};
use crate::query::ast::{AggOp, Grouping};
use crate::series::{validate_label_name, Label, METRIC_NAME_LABEL};

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
    let groups = Groups::new(&input, grouping);
    let n = steps.count;
    let out = match op {
        AggOp::Topk | AggOp::Bottomk => select_k(
            op == AggOp::Topk,
            scalar_param(op, param)?,
            input,
            &groups,
            n,
        )?,
        AggOp::Quantile => quantiles(scalar_param(op, param)?, &input, groups, n),
        AggOp::CountValues => count_values(string_param(param)?, &input, grouping, n)?,
        _ => fold(op, &input, groups, n),
    };
    Ok(out.into_iter().filter(StepSeries::any_present).collect())
}

fn scalar_param(op: AggOp, param: Option<&Value>) -> Result<&[f64], QueryError> {
    match param {
        Some(Value::Scalar(values)) => Ok(values),
        _ => Err(QueryError::BadArgument(format!(
            "{} needs a scalar parameter",
            op.name()
        ))),
    }
}

fn string_param(param: Option<&Value>) -> Result<&str, QueryError> {
    match param {
        Some(Value::String(label)) => Ok(label),
        _ => Err(QueryError::BadArgument(
            "count_values needs a label name parameter".to_owned(),
        )),
    }
}

fn grouping_key(labels: &[Label], grouping: &Grouping) -> Labels {
    match grouping {
        Grouping::By(names) => label_subset(labels, names, true),
        Grouping::Without(names) => label_subset(labels, names, false),
    }
}

/// The grouping of one input vector: each group's labels and members.
struct Groups {
    labels: Vec<Labels>,
    /// Indices into the input, in input order.
    members: Vec<Vec<usize>>,
}

impl Groups {
    fn new(input: &[StepSeries], grouping: &Grouping) -> Self {
        let (ids, labels) = dense_ids(input.iter().map(|s| grouping_key(&s.labels, grouping)));
        let mut members = vec![Vec::new(); labels.len()];
        for (i, &g) in ids.iter().enumerate() {
            members[g].push(i);
        }
        Groups { labels, members }
    }

    /// One empty output series per group.
    fn empty_outputs(self, n: usize) -> (Vec<StepSeries>, Vec<Vec<usize>>) {
        let out = self
            .labels
            .into_iter()
            .map(|labels| StepSeries::empty(labels, n))
            .collect();
        (out, self.members)
    }
}

/// The running state of `sum avg min max count stddev stdvar` for one
/// group at one step (Prometheus' `groupedAggregation`).
#[derive(Clone, Copy, Default)]
struct Fold {
    value: f64,
    mean: f64,
    count: f64,
}

impl Fold {
    fn start(op: AggOp, v: f64) -> Self {
        Fold {
            // stddev/stdvar accumulate squared deviations from zero.
            value: if matches!(op, AggOp::Stddev | AggOp::Stdvar) {
                0.0
            } else {
                v
            },
            mean: v,
            count: 1.0,
        }
    }

    fn add(&mut self, op: AggOp, v: f64) {
        match op {
            AggOp::Sum => self.value += v,
            // A NaN is replaced by any number; a number never by a NaN.
            AggOp::Min => {
                if self.value > v || self.value.is_nan() {
                    self.value = v;
                }
            }
            AggOp::Max => {
                if self.value < v || self.value.is_nan() {
                    self.value = v;
                }
            }
            AggOp::Count => self.count += 1.0,
            AggOp::Avg => {
                self.count += 1.0;
                if self.mean.is_infinite() {
                    // An infinite mean stays as it is when the new value is
                    // the same infinity or finite: the update below would
                    // compute Inf - Inf = NaN.
                    let same_infinity = v.is_infinite() && (self.mean > 0.0) == (v > 0.0);
                    if same_infinity || v.is_finite() {
                        return;
                    }
                }
                // Incremental mean, each term divided first so that large
                // values do not overflow.
                self.mean += v / self.count - self.mean / self.count;
            }
            AggOp::Stddev | AggOp::Stdvar => {
                // Welford's online variance.
                self.count += 1.0;
                let delta = v - self.mean;
                self.mean += delta / self.count;
                self.value += delta * (v - self.mean);
            }
            AggOp::Topk | AggOp::Bottomk | AggOp::Quantile | AggOp::CountValues => {}
        }
    }

    fn result(&self, op: AggOp) -> f64 {
        match op {
            AggOp::Count => self.count,
            AggOp::Avg => self.mean,
            AggOp::Stdvar => self.value / self.count,
            AggOp::Stddev => (self.value / self.count).sqrt(),
            _ => self.value,
        }
    }
}

/// `sum avg min max count stddev stdvar`.
fn fold(op: AggOp, input: &[StepSeries], groups: Groups, n: usize) -> Vec<StepSeries> {
    let (mut out, members) = groups.empty_outputs(n);
    let mut state = vec![Fold::default(); n];
    for (o, members) in out.iter_mut().zip(&members) {
        for &i in members {
            let s = &input[i];
            let slots = state.iter_mut().zip(o.present.iter_mut());
            for ((fold, seen), (&v, &p)) in slots.zip(s.values.iter().zip(&s.present)) {
                if !p {
                    continue;
                }
                if *seen {
                    fold.add(op, v);
                } else {
                    *seen = true;
                    *fold = Fold::start(op, v);
                }
            }
        }
        for ((value, &p), fold) in o.values.iter_mut().zip(&o.present).zip(&state) {
            if p {
                *value = fold.result(op);
            }
        }
    }
    out
}

/// The largest float64 that converts to an int64 without overflow, and
/// the smallest (Prometheus' `convertibleToInt64` bounds).
const MAX_INT64: f64 = 9_223_372_036_854_774_784.0;
const MIN_INT64: f64 = -9_223_372_036_854_775_808.0;

/// `topk`/`bottomk`: at each step, the `k` largest (smallest) members of
/// each group, chosen by Prometheus' heap so that ties go the same way.
fn select_k(
    top: bool,
    k_param: &[f64],
    input: Vec<StepSeries>,
    groups: &Groups,
    n: usize,
) -> Result<Vec<StepSeries>, QueryError> {
    let mut selected = vec![vec![false; n]; input.len()];
    let mut heap = KHeap {
        top,
        items: Vec::new(),
    };
    for (t, &k) in k_param.iter().enumerate().take(n) {
        if !(MIN_INT64..=MAX_INT64).contains(&k) {
            return Err(QueryError::BadArgument(format!(
                "Scalar value {} overflows int64",
                go_format_g(k)
            )));
        }
        // Truncated toward zero, as Go's int64(k).
        let k = k as i64;
        if k < 1 {
            continue;
        }
        for members in &groups.members {
            heap.items.clear();
            for &i in members {
                if input[i].present[t] {
                    heap.offer(k as u64, i, input[i].values[t]);
                }
            }
            for &(_, i) in &heap.items {
                selected[i][t] = true;
            }
        }
    }
    // Within a group, largest first for topk (smallest for bottomk) at the
    // first step a series was selected, NaN last: Prometheus' order for an
    // instant query.
    let order_value = |i: usize| {
        let t = selected[i].iter().position(|&p| p).unwrap_or(0);
        let v = input[i].values[t];
        if v.is_nan() {
            f64::NEG_INFINITY
        } else if top {
            v
        } else {
            -v
        }
    };
    let mut order = Vec::new();
    for members in &groups.members {
        let start = order.len();
        order.extend(
            members
                .iter()
                .copied()
                .filter(|&i| selected[i].contains(&true)),
        );
        order[start..].sort_by(|&a, &b| order_value(b).total_cmp(&order_value(a)));
    }
    let mut input: Vec<Option<StepSeries>> = input.into_iter().map(Some).collect();
    Ok(order
        .into_iter()
        .filter_map(|i| {
            let mut s = input[i].take()?;
            for (p, &sel) in s.present.iter_mut().zip(&selected[i]) {
                *p &= sel;
            }
            Some(s)
        })
        .collect())
}

/// Go's `container/heap` over (value, series index), ordered as
/// Prometheus' `vectorByValueHeap` (topk: smallest on top) or
/// `vectorByReverseValueHeap` (bottomk: largest on top); NaN is below
/// everything in both.
struct KHeap {
    top: bool,
    items: Vec<(f64, usize)>,
}

impl KHeap {
    fn less(&self, a: usize, b: usize) -> bool {
        let (x, y) = (self.items[a].0, self.items[b].0);
        x.is_nan() || if self.top { x < y } else { x > y }
    }

    fn up(&mut self, mut j: usize) {
        while j > 0 {
            let parent = (j - 1) / 2;
            if !self.less(j, parent) {
                break;
            }
            self.items.swap(parent, j);
            j = parent;
        }
    }

    /// Returns true if the item at `i0` moved.
    fn down(&mut self, i0: usize) -> bool {
        let n = self.items.len();
        let mut i = i0;
        loop {
            let left = 2 * i + 1;
            if left >= n {
                break;
            }
            let mut j = left;
            if left + 1 < n && self.less(left + 1, left) {
                j = left + 1;
            }
            if !self.less(j, i) {
                break;
            }
            self.items.swap(i, j);
            i = j;
        }
        i > i0
    }

    /// Adds a member while fewer than `k` are held, else replaces the one
    /// on top if `v` beats it (a number beats a NaN).
    fn offer(&mut self, k: u64, index: usize, v: f64) {
        if (self.items.len() as u64) < k {
            self.items.push((v, index));
            self.up(self.items.len() - 1);
            return;
        }
        let head = self.items[0].0;
        let beats = if self.top { head < v } else { head > v };
        if beats || (head.is_nan() && !v.is_nan()) {
            self.items[0] = (v, index);
            if k > 1 && !self.down(0) {
                self.up(0);
            }
        }
    }
}

/// `quantile(φ, …)` with φ taken per step.
fn quantiles(phi: &[f64], input: &[StepSeries], groups: Groups, n: usize) -> Vec<StepSeries> {
    let (mut out, members) = groups.empty_outputs(n);
    let mut values = Vec::new();
    for (o, members) in out.iter_mut().zip(&members) {
        for (t, &q) in phi.iter().enumerate().take(n) {
            values.clear();
            values.extend(
                members
                    .iter()
                    .filter(|&&i| input[i].present[t])
                    .map(|&i| input[i].values[t]),
            );
            if !values.is_empty() {
                o.present[t] = true;
                o.values[t] = quantile(q, &mut values);
            }
        }
    }
    out
}

/// The φ-quantile of `values` (sorted in place), interpolating linearly
/// between the two closest ranks; NaNs sort below every number. NaN for
/// no values or a NaN φ, -Inf for φ < 0, +Inf for φ > 1 (Prometheus'
/// `quantile`, also what `quantile_over_time` computes).
pub(super) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_unstable_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        (false, false) => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// `count_values("label", …)`: per group and step, how many members have
/// each value; the value, formatted as Go's `FormatFloat(v, 'f', -1)`,
/// becomes label `label` of the output (replacing one of that name).
fn count_values(
    label: &str,
    input: &[StepSeries],
    grouping: &Grouping,
    n: usize,
) -> Result<Vec<StepSeries>, QueryError> {
    if validate_label_name(label).is_err() {
        return Err(QueryError::BadArgument(format!(
            "invalid label name {label:?}"
        )));
    }
    // The value label is set before grouping, so `without` can remove it
    // again (and always removes it when it is the metric name).
    let labelled = match grouping {
        Grouping::By(_) => true,
        Grouping::Without(names) => {
            label != METRIC_NAME_LABEL && !names.iter().any(|name| name == label)
        }
    };
    let (base_ids, bases) = dense_ids(input.iter().map(|s| {
        let mut key = grouping_key(&s.labels, grouping);
        key.retain(|l| &*l.name != label);
        key
    }));
    let mut out: Vec<StepSeries> = Vec::new();
    let mut index: HashMap<(usize, u64), usize> = HashMap::new();
    for (s, &base) in input.iter().zip(&base_ids) {
        for t in 0..n {
            if !s.present[t] {
                continue;
            }
            let v = s.values[t];
            // Every NaN formats as "NaN": one output for all of them. A
            // removed value label leaves one output per group.
            let bits = match (labelled, v.is_nan()) {
                (false, _) => 0,
                (true, true) => f64::NAN.to_bits(),
                (true, false) => v.to_bits(),
            };
            let o = *index.entry((base, bits)).or_insert_with(|| {
                let mut labels = bases[base].clone();
                if labelled {
                    let at = labels.partition_point(|l| *l.name < *label);
                    labels.insert(at, Label::new(label, go_format_f(v)));
                }
                out.push(StepSeries::empty(labels, n));
                out.len() - 1
            });
            out[o].present[t] = true;
            out[o].values[t] += 1.0;
        }
    }
    Ok(out)
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: the shortest decimal that
/// reads back to `v`, never in exponent form; `+Inf`, `-Inf`, `NaN`.
fn go_format_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        // Rust's Display is also shortest-round-trip without exponent.
        v.to_string()
    }
}

/// Go's `%v` of a float64 (`strconv.FormatFloat(v, 'g', -1, 64)`): the
/// shortest digits, in exponent form (`1e+20`, two exponent digits at
/// least) when the decimal exponent is below -4 or at least 6.
fn go_format_g(v: f64) -> String {
    if !v.is_finite() {
        return go_format_f(v);
    }
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        return v.to_string();
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::query::eval::value::test_support::{labels, series};

    fn steps(count: usize) -> Steps {
        Steps {
            start_ms: 0,
            step_ms: 1000,
            count,
        }
    }

    fn by(names: &[&str]) -> Grouping {
        Grouping::By(names.iter().map(|s| s.to_string()).collect())
    }

    fn without(names: &[&str]) -> Grouping {
        Grouping::Without(names.iter().map(|s| s.to_string()).collect())
    }

    /// (labels, per-step values) of a result, for compact assertions.
    fn view(out: &[StepSeries]) -> Vec<(Labels, Vec<Option<f64>>)> {
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

    fn agg(op: AggOp, input: Vec<StepSeries>, grouping: Grouping, n: usize) -> Vec<StepSeries> {
        aggregate(op, None, input, &grouping, &steps(n)).unwrap()
    }

    /// Three `cpu` series on two hosts; host b's second series starts at
    /// step 1, host a has no sample at step 2.
    fn cpu() -> Vec<StepSeries> {
        vec![
            series(
                &[("__name__", "cpu"), ("host", "a"), ("core", "0")],
                &[Some(1.0), Some(2.0), None],
            ),
            series(
                &[("__name__", "cpu"), ("host", "b"), ("core", "0")],
                &[Some(10.0), Some(20.0), Some(30.0)],
            ),
            series(
                &[("__name__", "cpu"), ("host", "b"), ("core", "1")],
                &[None, Some(4.0), Some(6.0)],
            ),
        ]
    }

    #[test]
    fn sum_by_keeps_only_the_listed_labels() {
        let out = agg(AggOp::Sum, cpu(), by(&["host"]), 3);
        assert_eq!(
            view(&out),
            vec![
                // host a: absent at step 2 where its only member is absent.
                (labels(&[("host", "a")]), vec![Some(1.0), Some(2.0), None]),
                // host b: 10; 20 + 4; 30 + 6.
                (
                    labels(&[("host", "b")]),
                    vec![Some(10.0), Some(24.0), Some(36.0)]
                ),
            ]
        );
    }

    #[test]
    fn without_drops_the_listed_labels_and_the_name() {
        let out = agg(AggOp::Count, cpu(), without(&["core"]), 3);
        assert_eq!(
            view(&out),
            vec![
                (labels(&[("host", "a")]), vec![Some(1.0), Some(1.0), None]),
                (
                    labels(&[("host", "b")]),
                    vec![Some(1.0), Some(2.0), Some(2.0)]
                ),
            ]
        );
        // `by (__name__)` keeps the name: it was asked for.
        let out = agg(AggOp::Max, cpu(), by(&["__name__"]), 3);
        assert_eq!(
            view(&out),
            vec![(
                labels(&[("__name__", "cpu")]),
                vec![Some(10.0), Some(20.0), Some(30.0)]
            )]
        );
    }

    #[test]
    fn no_grouping_labels_give_one_label_less_series() {
        let out = agg(AggOp::Sum, cpu(), by(&[]), 3);
        // 1 + 10; 2 + 20 + 4; 30 + 6.
        assert_eq!(
            view(&out),
            vec![(vec![], vec![Some(11.0), Some(26.0), Some(36.0)])]
        );
        // `without` a label nobody has: every series its own group, names dropped.
        let out = agg(AggOp::Sum, cpu(), without(&["nope"]), 3);
        assert_eq!(out.len(), 3);
        assert!(out
            .iter()
            .all(|s| s.labels.iter().all(|l| &*l.name != "__name__")));
        // No input, no output.
        assert!(agg(AggOp::Sum, vec![], by(&[]), 3).is_empty());
    }

    #[test]
    fn avg_is_an_incremental_mean() {
        let input = vec![
            series(&[("x", "1")], &[Some(0.1)]),
            series(&[("x", "2")], &[Some(0.2)]),
            series(&[("x", "3")], &[Some(0.3)]),
        ];
        let out = agg(AggOp::Avg, input, by(&[]), 1);
        // Prometheus 2.42 answers exactly 0.2 where (0.1 + 0.2 + 0.3) / 3
        // is 0.20000000000000004: mean 0.1; += 0.2/2 - 0.1/2 gives 0.15;
        // += 0.3/3 - 0.15/3 gives 0.2.
        assert_eq!(out[0].values[0], 0.2);
        assert_ne!((0.1 + 0.2 + 0.3) / 3.0, 0.2);
    }

    #[test]
    fn avg_handles_infinities_and_overflow() {
        let inf = f64::INFINITY;
        let one = |v: &[f64]| {
            let input = v
                .iter()
                .enumerate()
                .map(|(i, &v)| series(&[("i", &i.to_string())], &[Some(v)]))
                .collect();
            agg(AggOp::Avg, input, by(&[]), 1)[0].values[0]
        };
        // An infinite mean stays when finite values or the same infinity follow.
        assert_eq!(one(&[inf, 1.0, inf]), inf);
        assert_eq!(one(&[1.0, -inf, 5.0]), -inf);
        // Opposite infinities: NaN.
        assert!(one(&[inf, -inf]).is_nan());
        // A NaN member makes the mean NaN.
        assert!(one(&[1.0, f64::NAN, 2.0]).is_nan());
        // Two values near f64::MAX do not overflow: each is halved first.
        assert_eq!(one(&[f64::MAX, f64::MAX]), f64::MAX);
    }

    #[test]
    fn min_and_max_replace_nan_by_any_number() {
        let nan = f64::NAN;
        let input = vec![
            series(&[("x", "1")], &[Some(nan), Some(nan), Some(3.0)]),
            series(&[("x", "2")], &[Some(5.0), Some(nan), Some(nan)]),
            series(&[("x", "3")], &[Some(-1.0), None, Some(7.0)]),
        ];
        let min = agg(AggOp::Min, input.clone(), by(&[]), 3);
        let max = agg(AggOp::Max, input, by(&[]), 3);
        // Step 0: NaN, 5, -1 -> min -1, max 5 (the leading NaN is replaced).
        assert_eq!((min[0].values[0], max[0].values[0]), (-1.0, 5.0));
        // Step 1: only NaNs -> NaN.
        assert!(min[0].values[1].is_nan() && max[0].values[1].is_nan());
        // Step 2: 3, NaN, 7 -> a number is never replaced by NaN.
        assert_eq!((min[0].values[2], max[0].values[2]), (3.0, 7.0));
    }

    #[test]
    fn stddev_and_stdvar() {
        // 1, 2, 1, 3: mean 1.75, squared deviations 0.5625 + 0.0625 +
        // 0.5625 + 1.5625 = 2.75, variance 2.75 / 4 = 0.6875,
        // stddev 0.82915619758885 (Prometheus prints 8.2915619758885E-01).
        let input: Vec<StepSeries> = [1.0, 2.0, 1.0, 3.0]
            .iter()
            .enumerate()
            .map(|(i, &v)| series(&[("i", &i.to_string())], &[Some(v), Some(4.0)]))
            .collect();
        let var = agg(AggOp::Stdvar, input.clone(), by(&[]), 2);
        let dev = agg(AggOp::Stddev, input, by(&[]), 2);
        assert_eq!(var[0].values[0], 0.6875);
        assert!((dev[0].values[0] - 0.82915619758885).abs() < 1e-14);
        // Identical values: 0; one member: 0.
        assert_eq!((var[0].values[1], dev[0].values[1]), (0.0, 0.0));
        let single = agg(AggOp::Stddev, vec![series(&[], &[Some(9.0)])], by(&[]), 1);
        assert_eq!(single[0].values[0], 0.0);
    }

    fn topk(top: bool, k: &[f64], input: Vec<StepSeries>, grouping: Grouping) -> Vec<StepSeries> {
        let op = if top { AggOp::Topk } else { AggOp::Bottomk };
        let param = Value::Scalar(k.to_vec());
        aggregate(op, Some(&param), input, &grouping, &steps(k.len())).unwrap()
    }

    fn ys(values: &[f64]) -> Vec<StepSeries> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                series(
                    &[("__name__", "a"), ("y", &(i + 1).to_string())],
                    &[Some(v)],
                )
            })
            .collect()
    }

    fn y_of(s: &StepSeries) -> String {
        super::super::value::label_value(&s.labels, "y")
            .unwrap_or("")
            .to_owned()
    }

    #[test]
    fn topk_and_bottomk_break_ties_as_prometheus() {
        // y=1..4 with values 1, 2, 1, 3. topk(2): the heap takes y1, y2;
        // y3 (1) does not beat the top (1); y4 (3) replaces y1. Result
        // y4 (3), y2 (2): Prometheus 2.42 gives the same two.
        let out = topk(true, &[2.0], ys(&[1.0, 2.0, 1.0, 3.0]), by(&[]));
        assert_eq!(out.iter().map(y_of).collect::<Vec<_>>(), ["4", "2"]);
        // bottomk(2): y1 (1), y2 (2); y3 (1) beats 2 and replaces y2; y4
        // does not. The tie between y1 and y3 keeps both: y1, y3.
        let out = topk(false, &[2.0], ys(&[1.0, 2.0, 1.0, 3.0]), by(&[]));
        assert_eq!(out.iter().map(y_of).collect::<Vec<_>>(), ["1", "3"]);
        // All equal: the first k in input order.
        let out = topk(true, &[2.0], ys(&[7.0, 7.0, 7.0]), by(&[]));
        assert_eq!(out.iter().map(y_of).collect::<Vec<_>>(), ["1", "2"]);
        // Full labels kept, metric name included.
        assert_eq!(label_value_of(&out[0], "__name__"), "a");
    }

    fn label_value_of(s: &StepSeries, name: &str) -> String {
        super::super::value::label_value(&s.labels, name)
            .unwrap_or("")
            .to_owned()
    }

    #[test]
    fn topk_prefers_numbers_to_nan() {
        let nan = f64::NAN;
        // NaN, 5, -Inf, 1e21, 1e-6: topk(2) is 1e21 and 5, bottomk(2) is
        // -Inf and 1e-6 (as Prometheus 2.42 answers).
        let input = ys(&[nan, 5.0, f64::NEG_INFINITY, 1e21, 1e-6]);
        let out = topk(true, &[2.0], input.clone(), by(&[]));
        assert_eq!(out.iter().map(y_of).collect::<Vec<_>>(), ["4", "2"]);
        let out = topk(false, &[2.0], input, by(&[]));
        assert_eq!(out.iter().map(y_of).collect::<Vec<_>>(), ["3", "5"]);
        // With k above the member count, the NaN is selected too, last.
        let out = topk(true, &[9.0], ys(&[nan, 1.0]), by(&[]));
        assert_eq!(out.iter().map(y_of).collect::<Vec<_>>(), ["2", "1"]);
    }

    #[test]
    fn topk_takes_k_per_step_and_per_group() {
        let input = vec![
            series(
                &[("g", "a"), ("y", "1")],
                &[Some(1.0), Some(5.0), Some(1.0)],
            ),
            series(&[("g", "a"), ("y", "2")], &[Some(2.0), Some(4.0), None]),
            series(&[("g", "b"), ("y", "3")], &[Some(0.0), None, Some(0.0)]),
        ];
        // k = 1, 2.9 (truncated to 2), 0 (nothing at that step).
        let out = topk(true, &[1.0, 2.9, 0.0], input, by(&["g"]));
        assert_eq!(
            view(&out),
            vec![
                // Group a: y2 wins step 0, both are kept at step 1. Order
                // by the value at the first selected step: y1 (5 at step
                // 1) before y2 (2 at step 0).
                (
                    labels(&[("g", "a"), ("y", "1")]),
                    vec![None, Some(5.0), None]
                ),
                (
                    labels(&[("g", "a"), ("y", "2")]),
                    vec![Some(2.0), Some(4.0), None]
                ),
                (
                    labels(&[("g", "b"), ("y", "3")]),
                    vec![Some(0.0), None, None]
                ),
            ]
        );
    }

    #[test]
    fn topk_rejects_k_outside_int64() {
        let err = |k: f64| {
            let param = Value::Scalar(vec![k]);
            aggregate(AggOp::Topk, Some(&param), vec![], &by(&[]), &steps(1))
                .unwrap_err()
                .to_string()
        };
        // Prometheus 2.42's messages, with Go's %v of the number.
        assert_eq!(err(f64::NAN), "Scalar value NaN overflows int64");
        assert_eq!(err(1e20), "Scalar value 1e+20 overflows int64");
        assert_eq!(err(f64::NEG_INFINITY), "Scalar value -Inf overflows int64");
        // A negative k is no error: nothing is selected.
        assert!(topk(true, &[-3.0], ys(&[1.0]), by(&[])).is_empty());
    }

    #[test]
    fn quantile_interpolates_between_ranks() {
        let q = |phi: f64, input: Vec<StepSeries>| {
            let param = Value::Scalar(vec![phi]);
            let out = aggregate(AggOp::Quantile, Some(&param), input, &by(&[]), &steps(1));
            out.unwrap()[0].values[0]
        };
        // 1, 2, 1, 3 sorted 1, 1, 2, 3: φ = 0.5 -> rank 1.5 -> 1 * 0.5 + 2 * 0.5.
        assert_eq!(q(0.5, ys(&[1.0, 2.0, 1.0, 3.0])), 1.5);
        assert_eq!(q(0.0, ys(&[1.0, 2.0, 1.0, 3.0])), 1.0);
        assert_eq!(q(1.0, ys(&[1.0, 2.0, 1.0, 3.0])), 3.0);
        // φ outside [0, 1] and NaN.
        assert_eq!(q(-0.1, ys(&[1.0])), f64::NEG_INFINITY);
        assert_eq!(q(1.1, ys(&[1.0])), f64::INFINITY);
        assert!(q(f64::NAN, ys(&[1.0])).is_nan());
        // NaN sorts first: NaN, -Inf, 1e-6, 5, 1e21. φ = 0.5 -> rank 2 ->
        // 1e-6; φ = 0.1 -> rank 0.4 -> NaN * 0.6 + -Inf * 0.4 = NaN.
        let n = ys(&[f64::NAN, 5.0, f64::NEG_INFINITY, 1e21, 1e-6]);
        assert_eq!(q(0.5, n.clone()), 1e-6);
        assert!(q(0.1, n).is_nan());
    }

    fn count_values_of(label: &str, grouping: Grouping, values: &[f64]) -> Vec<(Labels, f64)> {
        let param = Value::String(label.to_owned());
        let out = aggregate(
            AggOp::CountValues,
            Some(&param),
            ys(values),
            &grouping,
            &steps(1),
        );
        out.unwrap()
            .into_iter()
            .map(|s| (s.labels, s.values[0]))
            .collect()
    }

    #[test]
    fn count_values_formats_as_go() {
        let out = count_values_of(
            "v",
            by(&[]),
            &[
                f64::NAN,
                5.0,
                f64::NEG_INFINITY,
                1e21,
                1e-6,
                5.0,
                -0.0,
                0.1 + 0.2,
                -f64::NAN,
            ],
        );
        let got: Vec<(String, f64)> = out
            .iter()
            .map(|(l, c)| (l[0].value.to_string(), *c))
            .collect();
        assert_eq!(
            got,
            [
                // Both NaNs (whatever their sign bit) count as one value.
                ("NaN".to_owned(), 2.0),
                ("5".to_owned(), 2.0),
                ("-Inf".to_owned(), 1.0),
                // Never an exponent: 1e21 and 1e-6 written out.
                ("1000000000000000000000".to_owned(), 1.0),
                ("0.000001".to_owned(), 1.0),
                ("-0".to_owned(), 1.0),
                // Shortest digits that read back.
                ("0.30000000000000004".to_owned(), 1.0),
            ]
        );
    }

    #[test]
    fn count_values_grouping_and_label_name() {
        // by (y): each series its own group, plus the value label.
        let out = count_values_of("v", by(&["y"]), &[1.0, 1.0]);
        assert_eq!(out[0].0, labels(&[("v", "1"), ("y", "1")]));
        assert_eq!(out.len(), 2);
        // The value label replaces a label of the same name...
        let out = count_values_of("y", by(&["y"]), &[1.0, 1.0]);
        assert_eq!(out, vec![(labels(&[("y", "1")]), 2.0)]);
        // ...and `without` it removes it again: one group of everything.
        let out = count_values_of("y", without(&["y"]), &[1.0, 2.0]);
        assert_eq!(out, vec![(vec![], 2.0)]);
        let err = aggregate(
            AggOp::CountValues,
            Some(&Value::String("1v".to_owned())),
            vec![],
            &by(&[]),
            &steps(1),
        );
        assert_eq!(err.unwrap_err().to_string(), "invalid label name \"1v\"");
    }

    #[test]
    fn go_float_formats() {
        assert_eq!(go_format_g(1e20), "1e+20");
        assert_eq!(go_format_g(123456789.0), "1.23456789e+08");
        assert_eq!(go_format_g(123456.0), "123456");
        assert_eq!(go_format_g(0.0001), "0.0001");
        assert_eq!(go_format_g(0.00001), "1e-05");
        assert_eq!(go_format_g(-2.5e-300), "-2.5e-300");
        assert_eq!(go_format_f(f64::INFINITY), "+Inf");
        assert_eq!(go_format_f(1.5), "1.5");
    }
}
