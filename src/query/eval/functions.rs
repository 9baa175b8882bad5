//! Functions on instant vectors and scalars, as Prometheus 2.42 evaluates
//! them, column-wise over the steps.
//!
//! `abs ceil floor round clamp clamp_min clamp_max` map every present
//! slot and drop the metric name; `time vector scalar` convert between
//! scalars and vectors; `label_replace` rewrites labels (once per series,
//! not per step) and keeps the name; `histogram_quantile` groups bucket
//! series once and interpolates per step.
//!
//! Prometheus rejects a function result holding two series with the same
//! labels at one evaluation step ("vector cannot contain metrics with the
//! same labelset"); so do we, at that step only: series that end up with
//! the same labels but are present at different steps merge into one.
//!
//! Number semantics are Go's: `clamp*` use `math.Max`/`math.Min` (NaN
//! wins over a number, but +Inf wins over NaN in `Max` and -Inf in
//! `Min`); bucket bounds are read as `strconv.ParseFloat` reads them.
//!
//! Invariants of a vector result: no series without a sample, no two
//! series with the same labels.

use regex::{Captures, Regex};

use super::value::{
    dense_ids, drop_metric_name, label_value, merge_same_labels, QueryError, StepSeries, Steps,
    Value,
};
use crate::query::ast::Function;
use crate::series::{validate_label_name, Label};

/// Calls one of `abs ceil floor round clamp clamp_min clamp_max time vector
/// scalar label_replace histogram_quantile` on evaluated arguments (the
/// optional argument of `round` is absent from `args` when not given).
pub(super) fn call_instant(
    func: Function,
    args: Vec<Value>,
    steps: &Steps,
) -> Result<Value, QueryError> {
    let n = steps.count;
    let mut args = Args {
        func,
        args: args.into_iter(),
    };
    let vector = match func {
        Function::Time => {
            return Ok(Value::Scalar(
                (0..n).map(|i| steps.time(i) as f64 / 1000.0).collect(),
            ))
        }
        Function::Scalar => {
            let vector = args.vector()?;
            return Ok(Value::Scalar(
                (0..n)
                    .map(|t| {
                        let mut present = vector.iter().filter(|s| s.present[t]);
                        match (present.next(), present.next()) {
                            (Some(only), None) => only.values[t],
                            _ => f64::NAN,
                        }
                    })
                    .collect(),
            ));
        }
        Function::Vector => vec![StepSeries {
            labels: Vec::new(),
            values: args.scalar()?,
            present: vec![true; n],
        }],
        Function::Abs => map_values(func, args.vector()?, |v, _| Some(v.abs()))?,
        Function::Ceil => map_values(func, args.vector()?, |v, _| Some(v.ceil()))?,
        Function::Floor => map_values(func, args.vector()?, |v, _| Some(v.floor()))?,
        Function::Round => {
            let vector = args.vector()?;
            let to_nearest = args.optional_scalar()?.unwrap_or_else(|| vec![1.0; n]);
            // Rounds half up, to a multiple of `to_nearest`; dividing by the
            // inverse is what Prometheus does (fewer rounding surprises).
            map_values(func, vector, |v, t| {
                let inverse = 1.0 / to_nearest[t];
                Some((v * inverse + 0.5).floor() / inverse)
            })?
        }
        Function::Clamp => {
            let vector = args.vector()?;
            let (min, max) = (args.scalar()?, args.scalar()?);
            // No result at a step where max < min.
            map_values(func, vector, |v, t| {
                (max[t] >= min[t] || min[t].is_nan() || max[t].is_nan())
                    .then(|| go_max(min[t], go_min(max[t], v)))
            })?
        }
        Function::ClampMin => {
            let vector = args.vector()?;
            let min = args.scalar()?;
            map_values(func, vector, |v, t| Some(go_max(min[t], v)))?
        }
        Function::ClampMax => {
            let vector = args.vector()?;
            let max = args.scalar()?;
            map_values(func, vector, |v, t| Some(go_min(max[t], v)))?
        }
        Function::LabelReplace => {
            let vector = args.vector()?;
            let dst = args.string()?;
            let replacement = args.string()?;
            let src = args.string()?;
            let regex = args.string()?;
            label_replace(vector, &dst, &replacement, &src, &regex)?
        }
        Function::HistogramQuantile => {
            let phi = args.scalar()?;
            histogram_quantile(&phi, args.vector()?, n)?
        }
        _ => {
            return Err(QueryError::BadArgument(format!(
                "{}() is not an instant-vector function",
                func.name()
            )))
        }
    };
    Ok(Value::Vector(vector))
}

/// The evaluated arguments of one call, taken in order.
struct Args {
    func: Function,
    args: std::vec::IntoIter<Value>,
}

impl Args {
    fn wrong(&self) -> QueryError {
        QueryError::BadArgument(format!("wrong arguments to {}()", self.func.name()))
    }

    fn vector(&mut self) -> Result<Vec<StepSeries>, QueryError> {
        match self.args.next() {
            Some(Value::Vector(v)) => Ok(v),
            _ => Err(self.wrong()),
        }
    }

    fn scalar(&mut self) -> Result<Vec<f64>, QueryError> {
        self.optional_scalar()?.ok_or_else(|| self.wrong())
    }

    fn optional_scalar(&mut self) -> Result<Option<Vec<f64>>, QueryError> {
        match self.args.next() {
            Some(Value::Scalar(v)) => Ok(Some(v)),
            None => Ok(None),
            Some(_) => Err(self.wrong()),
        }
    }

    fn string(&mut self) -> Result<String, QueryError> {
        match self.args.next() {
            Some(Value::String(s)) => Ok(s),
            _ => Err(self.wrong()),
        }
    }
}

/// Applies `f(value, step)` to every present slot (`None` removes the
/// sample) and drops the metric name.
fn map_values(
    func: Function,
    mut vector: Vec<StepSeries>,
    f: impl Fn(f64, usize) -> Option<f64>,
) -> Result<Vec<StepSeries>, QueryError> {
    for s in &mut vector {
        drop_metric_name(&mut s.labels);
        for (t, (v, p)) in s.values.iter_mut().zip(s.present.iter_mut()).enumerate() {
            if *p {
                match f(*v, t) {
                    Some(new) => *v = new,
                    None => *p = false,
                }
            }
        }
    }
    merge(func, vector)
}

/// Merges series with the same labels; an error where two meet at a step.
fn merge(func: Function, vector: Vec<StepSeries>) -> Result<Vec<StepSeries>, QueryError> {
    merge_same_labels(vector).map_err(|clash| clash.into_error(format!("{}()", func.name())))
}

/// Go's `math.Max`.
fn go_max(x: f64, y: f64) -> f64 {
    if x == f64::INFINITY || y == f64::INFINITY {
        f64::INFINITY
    } else if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x == 0.0 && y == 0.0 {
        // +0 is larger than -0.
        if x.is_sign_negative() {
            y
        } else {
            x
        }
    } else if x > y {
        x
    } else {
        y
    }
}

/// Go's `math.Min`.
fn go_min(x: f64, y: f64) -> f64 {
    if x == f64::NEG_INFINITY || y == f64::NEG_INFINITY {
        f64::NEG_INFINITY
    } else if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x == 0.0 && y == 0.0 {
        if x.is_sign_negative() {
            x
        } else {
            y
        }
    } else if x < y {
        x
    } else {
        y
    }
}

/// `label_replace(v, dst, replacement, src, regex)`: where the regex
/// (anchored at both ends) matches the value of `src` ("" if unset), `dst`
/// becomes the expanded replacement, or is removed if that is empty.
fn label_replace(
    mut vector: Vec<StepSeries>,
    dst: &str,
    replacement: &str,
    src: &str,
    regex: &str,
) -> Result<Vec<StepSeries>, QueryError> {
    let re = Regex::new(&format!("^(?:{regex})$")).map_err(|_| {
        QueryError::BadArgument(format!(
            "invalid regular expression in label_replace(): {regex}"
        ))
    })?;
    if validate_label_name(dst).is_err() {
        return Err(QueryError::BadArgument(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    for s in &mut vector {
        let Some(caps) = re.captures(label_value(&s.labels, src).unwrap_or("")) else {
            continue;
        };
        let mut value = String::new();
        expand_template(replacement, &caps, &mut value);
        let at = s.labels.binary_search_by(|l| (*l.name).cmp(dst));
        match (value.is_empty(), at) {
            (false, Ok(i)) => s.labels[i].value = value.into(),
            (false, Err(i)) => s.labels.insert(i, Label::new(dst, value)),
            (true, Ok(i)) => {
                s.labels.remove(i);
            }
            (true, Err(_)) => {}
        }
    }
    merge(Function::LabelReplace, vector)
}

/// Go's `Regexp.ExpandString`: `$name` and `${name}` (a name is letters,
/// digits and `_`; all digits without a leading zero means a group
/// number) become that group's text, or nothing if it did not take part
/// or does not exist; `$$` is `$`; a `$` not followed by a name is kept.
fn expand_template(template: &str, caps: &Captures<'_>, out: &mut String) {
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        let Some((name, after)) = template_name(rest) else {
            out.push('$');
            continue;
        };
        rest = after;
        let is_number =
            name.bytes().all(|b| b.is_ascii_digit()) && (name.len() == 1 || !name.starts_with('0'));
        let group = if is_number {
            name.parse().ok().and_then(|i| caps.get(i))
        } else {
            caps.name(name)
        };
        if let Some(group) = group {
            out.push_str(group.as_str());
        }
    }
    out.push_str(rest);
}

/// The name at the start of `s` (after a `$`), bare or in braces, and what
/// follows it; `None` if there is no name or the brace is not closed.
fn template_name(s: &str) -> Option<(&str, &str)> {
    let (braced, body) = match s.strip_prefix('{') {
        Some(body) => (true, body),
        None => (false, s),
    };
    let len = body
        .char_indices()
        .find(|&(_, c)| !(c.is_alphabetic() || c.is_numeric() || c == '_'))
        .map_or(body.len(), |(i, _)| i);
    if len == 0 {
        return None;
    }
    let (name, rest) = body.split_at(len);
    if braced {
        rest.strip_prefix('}').map(|rest| (name, rest))
    } else {
        Some((name, rest))
    }
}

/// One bucket of a classic histogram at one step.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    upper: f64,
    count: f64,
}

/// `histogram_quantile(φ, buckets)`: series with a readable `le` label are
/// grouped by all their other labels (the metric name included, so two
/// histograms never mix; the result drops `le` and the name), and each
/// group's buckets present at a step give that step's quantile.
fn histogram_quantile(
    phi: &[f64],
    input: Vec<StepSeries>,
    n: usize,
) -> Result<Vec<StepSeries>, QueryError> {
    let bounded: Vec<(f64, &StepSeries)> = input
        .iter()
        .filter_map(|s| Some((parse_go_float(label_value(&s.labels, "le")?)?, s)))
        .collect();
    let (ids, keys) = dense_ids(bounded.iter().map(|(_, s)| {
        let mut key = s.labels.clone();
        key.retain(|l| &*l.name != "le");
        key
    }));
    let mut members: Vec<Vec<(f64, &StepSeries)>> = vec![Vec::new(); keys.len()];
    for (&bucket, &g) in bounded.iter().zip(&ids) {
        members[g].push(bucket);
    }
    let mut out = Vec::with_capacity(keys.len());
    let mut buckets = Vec::new();
    for (mut labels, mut members) in keys.into_iter().zip(members) {
        members.sort_by(|a, b| a.0.total_cmp(&b.0));
        drop_metric_name(&mut labels);
        let mut s = StepSeries::empty(labels, n);
        for (t, &q) in phi.iter().enumerate().take(n) {
            buckets.clear();
            buckets.extend(
                members
                    .iter()
                    .filter(|(_, m)| m.present[t])
                    .map(|&(upper, m)| Bucket {
                        upper,
                        count: m.values[t],
                    }),
            );
            if !buckets.is_empty() {
                s.present[t] = true;
                s.values[t] = bucket_quantile(q, &mut buckets);
            }
        }
        out.push(s);
    }
    merge(Function::HistogramQuantile, out)
}

/// Prometheus 2.42's `bucketQuantile` on buckets sorted by upper bound
/// (modified in place).
fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    if buckets.last().is_none_or(|b| b.upper != f64::INFINITY) {
        return f64::NAN;
    }
    // Buckets with equal bounds (say "1" and "1.0") are one bucket.
    buckets.dedup_by(|b, kept| {
        let same = b.upper == kept.upper;
        if same {
            kept.count += b.count;
        }
        same
    });
    // Counts must not decrease with the bound (they can, when buckets are
    // scraped or summed at slightly different times): take the running
    // maximum. A NaN count is left as it is.
    let mut max = f64::NEG_INFINITY;
    for b in buckets.iter_mut() {
        if b.count > max {
            max = b.count;
        } else if b.count < max {
            b.count = max;
        }
    }
    let len = buckets.len();
    if len < 2 {
        return f64::NAN;
    }
    let observations = buckets[len - 1].count;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let b = go_search(len - 1, |i| buckets[i].count >= rank);
    if b == len - 1 {
        // In the +Inf bucket: the highest finite bound is the best answer.
        return buckets[len - 2].upper;
    }
    if b == 0 && buckets[0].upper <= 0.0 {
        return buckets[0].upper;
    }
    let end = buckets[b].upper;
    let mut count = buckets[b].count;
    // The lowest bucket starts at 0.
    let mut start = 0.0;
    if b > 0 {
        start = buckets[b - 1].upper;
        count -= buckets[b - 1].count;
        rank -= buckets[b - 1].count;
    }
    start + (end - start) * (rank / count)
}

/// Go's `sort.Search`: the smallest `i < n` with `f(i)` (or `n`), by
/// bisection, probing the same indices as Go when `f` is not monotonic.
fn go_search(n: usize, f: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if f(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// Go's `strconv.ParseFloat(s, 64)` as far as bucket bounds go: decimal
/// numbers, hexadecimal ones with a `p` exponent (without `_` separators),
/// `inf`/`infinity` with an optional sign and `nan` in any case. `None`
/// where Go reports an error, overflow to infinity included.
fn parse_go_float(s: &str) -> Option<f64> {
    if s.eq_ignore_ascii_case("nan") {
        return Some(f64::NAN);
    }
    let (sign, body) = match s.as_bytes().first() {
        Some(b'-') => (-1.0, &s[1..]),
        Some(b'+') => (1.0, &s[1..]),
        _ => (1.0, s),
    };
    if body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity") {
        return Some(sign * f64::INFINITY);
    }
    let magnitude = match body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        Some(hex) => parse_hex_float(hex)?,
        // Rust's decimal grammar is Go's (Go allows `_` only after a base
        // prefix); only the special words differ, handled above.
        None if body.starts_with(|c: char| c.is_ascii_digit() || c == '.') => body.parse().ok()?,
        None => return None,
    };
    magnitude.is_finite().then_some(sign * magnitude)
}

/// The digits of a hexadecimal float after `0x`: `h.hhhp±d`.
fn parse_hex_float(s: &str) -> Option<f64> {
    let (mantissa, exponent) = s.split_once(['p', 'P'])?;
    let mut exponent: i64 = exponent.parse().ok()?;
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut bits: u64 = 0;
    let mut truncated = false;
    for (i, c) in int.chars().chain(frac.chars()).enumerate() {
        let digit = u64::from(c.to_digit(16)?);
        let fractional = i >= int.len();
        if bits >> 60 == 0 {
            bits = bits << 4 | digit;
            if fractional {
                exponent -= 4;
            }
        } else {
            // Past 64 bits: keep the magnitude, remember lost digits.
            truncated |= digit != 0;
            if !fractional {
                exponent += 4;
            }
        }
    }
    // A sticky low bit makes the rounding to 53 bits see the lost digits.
    let mut value = (bits | u64::from(truncated)) as f64;
    // Scale by 2^exponent in steps that stay normal.
    while exponent > 1000 && value.is_finite() {
        value *= 2f64.powi(1000);
        exponent -= 1000;
    }
    while exponent < -1000 && value != 0.0 {
        value *= 2f64.powi(-1000);
        exponent += 1000;
    }
    Some(value * 2f64.powi(exponent.clamp(-1100, 1100) as i32))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::query::eval::value::test_support::{labels, series};

    fn steps(count: usize) -> Steps {
        Steps {
            start_ms: 60_000,
            step_ms: 30_000,
            count,
        }
    }

    fn call(func: Function, args: Vec<Value>, n: usize) -> Result<Value, QueryError> {
        call_instant(func, args, &steps(n))
    }

    /// (labels, values as Debug text so that NaN equals NaN).
    fn view(value: Value) -> Vec<(Vec<Label>, String)> {
        let Value::Vector(out) = value else {
            panic!("not a vector: {value:?}")
        };
        out.iter()
            .map(|s| {
                let vals: Vec<Option<f64>> = s
                    .values
                    .iter()
                    .zip(&s.present)
                    .map(|(&v, &p)| p.then_some(v))
                    .collect();
                (s.labels.clone(), format!("{vals:?}"))
            })
            .collect()
    }

    /// n{x=1..5} = 2.5, -2.5, -0.5, NaN, +Inf at one step.
    fn n() -> Value {
        let values = [2.5, -2.5, -0.5, f64::NAN, f64::INFINITY];
        Value::Vector(
            values
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    series(
                        &[("__name__", "n"), ("x", &(i + 1).to_string())],
                        &[Some(v)],
                    )
                })
                .collect(),
        )
    }

    /// The values of a one-step result, in series order.
    fn values(value: Value) -> String {
        let Value::Vector(out) = value else {
            panic!("not a vector")
        };
        format!("{:?}", out.iter().map(|s| s.values[0]).collect::<Vec<_>>())
    }

    fn k(v: f64) -> Value {
        Value::Scalar(vec![v])
    }

    #[test]
    fn math_functions_drop_the_name() {
        let out = call(Function::Abs, vec![n()], 1).unwrap();
        assert_eq!(view(out.clone())[0].0, labels(&[("x", "1")]));
        assert_eq!(values(out), "[2.5, 2.5, 0.5, NaN, inf]");
        assert_eq!(
            values(call(Function::Ceil, vec![n()], 1).unwrap()),
            "[3.0, -2.0, -0.0, NaN, inf]"
        );
        assert_eq!(
            values(call(Function::Floor, vec![n()], 1).unwrap()),
            "[2.0, -3.0, -1.0, NaN, inf]"
        );
    }

    #[test]
    fn round_half_up_to_a_multiple() {
        // Prometheus 2.42: round(n) is 3, -2, 0, NaN, +Inf (ties go up).
        assert_eq!(
            values(call(Function::Round, vec![n()], 1).unwrap()),
            "[3.0, -2.0, 0.0, NaN, inf]"
        );
        // round(5, 0.3): 1/0.3 = 3.3333333333333335; floor(5 * that + 0.5)
        // = 17; 17 / 3.3333333333333335 = 5.1 (as Prometheus answers).
        let five = Value::Vector(vec![series(&[("x", "1")], &[Some(5.0), Some(5.0)])]);
        let out = call(
            Function::Round,
            vec![five, Value::Scalar(vec![0.3, 2.0])],
            2,
        )
        .unwrap();
        // Step 1 rounds to a multiple of 2: floor(2.5 + 0.5) / 0.5 = 6.
        assert_eq!(
            view(out),
            vec![(labels(&[("x", "1")]), "[Some(5.1), Some(6.0)]".to_owned())]
        );
    }

    #[test]
    fn clamp_uses_go_min_and_max() {
        // Prometheus 2.42 answers for n = 2.5, -2.5, -0.5, NaN, +Inf.
        let min0 = call(Function::ClampMin, vec![n(), k(0.0)], 1).unwrap();
        assert_eq!(values(min0), "[2.5, 0.0, 0.0, NaN, inf]");
        let max0 = call(Function::ClampMax, vec![n(), k(0.0)], 1).unwrap();
        assert_eq!(values(max0), "[0.0, -2.5, -0.5, NaN, 0.0]");
        let clamped = call(Function::Clamp, vec![n(), k(-1.0), k(1.0)], 1).unwrap();
        assert_eq!(values(clamped), "[1.0, -1.0, -0.5, NaN, 1.0]");
        // A NaN bound makes everything NaN...
        let nan_max = call(Function::Clamp, vec![n(), k(0.0), k(f64::NAN)], 1).unwrap();
        assert_eq!(values(nan_max), "[NaN, NaN, NaN, NaN, NaN]");
        // ...except that +Inf wins over NaN in math.Max.
        let nan_min = call(Function::ClampMin, vec![n(), k(f64::NAN)], 1).unwrap();
        assert_eq!(values(nan_min), "[NaN, NaN, NaN, NaN, inf]");
        // min > max: no result at that step.
        let v = Value::Vector(vec![series(&[("x", "1")], &[Some(5.0), Some(5.0)])]);
        let out = call(
            Function::Clamp,
            vec![
                v,
                Value::Scalar(vec![1.0, 1.0]),
                Value::Scalar(vec![0.0, 2.0]),
            ],
            2,
        );
        assert_eq!(
            view(out.unwrap()),
            vec![(labels(&[("x", "1")]), "[None, Some(2.0)]".to_owned())]
        );
        assert_eq!(go_max(-0.0, 0.0).to_bits(), 0.0f64.to_bits());
        assert_eq!(go_min(0.0, -0.0).to_bits(), (-0.0f64).to_bits());
    }

    #[test]
    fn same_labels_after_dropping_the_name_clash_per_step() {
        let two = |b: &[Option<f64>]| {
            Value::Vector(vec![
                series(&[("__name__", "a"), ("x", "1")], &[Some(-1.0), None]),
                series(&[("__name__", "b"), ("x", "1")], b),
            ])
        };
        // Present at different steps: one series.
        let out = call(Function::Abs, vec![two(&[None, Some(-2.0)])], 2).unwrap();
        assert_eq!(
            view(out),
            vec![(labels(&[("x", "1")]), "[Some(1.0), Some(2.0)]".to_owned())]
        );
        // Both at step 0: Prometheus' "vector cannot contain metrics with
        // the same labelset".
        let err = call(Function::Abs, vec![two(&[Some(-2.0), None])], 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "abs(): the result would hold two series with the labels {x=\"1\"}; remove the \
             duplicate with an aggregation or label_replace"
        );
    }

    #[test]
    fn time_vector_scalar() {
        // Steps at 60 s and 90 s.
        assert_eq!(
            call(Function::Time, vec![], 2).unwrap(),
            Value::Scalar(vec![60.0, 90.0])
        );
        let v = call(
            Function::Vector,
            vec![Value::Scalar(vec![1.0, f64::NAN])],
            2,
        )
        .unwrap();
        assert_eq!(view(v), vec![(vec![], "[Some(1.0), Some(NaN)]".to_owned())]);
        // scalar(): the value when exactly one series is present, else NaN.
        let v = Value::Vector(vec![
            series(&[("x", "1")], &[Some(1.0), Some(2.0), None]),
            series(&[("x", "2")], &[None, Some(3.0), None]),
        ]);
        let Value::Scalar(s) = call(Function::Scalar, vec![v], 3).unwrap() else {
            panic!()
        };
        assert_eq!(format!("{s:?}"), "[1.0, NaN, NaN]");
    }

    fn replace(v: Value, dst: &str, repl: &str, src: &str, re: &str) -> Result<Value, QueryError> {
        let s = |x: &str| Value::String(x.to_owned());
        call(
            Function::LabelReplace,
            vec![v, s(dst), s(repl), s(src), s(re)],
            1,
        )
    }

    fn a() -> Value {
        Value::Vector(vec![
            series(
                &[("__name__", "a"), ("instance", "host1:9100"), ("y", "1")],
                &[Some(1.0)],
            ),
            series(
                &[("__name__", "a"), ("instance", "host2"), ("y", "2")],
                &[Some(2.0)],
            ),
        ])
    }

    fn label_of(value: &Value, i: usize, name: &str) -> Option<String> {
        let Value::Vector(out) = value else { panic!() };
        label_value(&out[i].labels, name).map(str::to_owned)
    }

    #[test]
    fn label_replace_expands_go_templates() {
        // Anchored: "(.*):.*" matches host1:9100 only; the other series is
        // unchanged. The name is kept.
        let out = replace(a(), "host", "$1", "instance", "(.*):.*").unwrap();
        assert_eq!(label_of(&out, 0, "host").as_deref(), Some("host1"));
        assert_eq!(label_of(&out, 0, "__name__").as_deref(), Some("a"));
        assert_eq!(label_of(&out, 1, "host"), None);
        // Not anchored by the user, anchored anyway: "host" alone does not match.
        let out = replace(a(), "h", "x", "instance", "host").unwrap();
        assert_eq!(
            (label_of(&out, 0, "h"), label_of(&out, 1, "h")),
            (None, None)
        );
        // ${1}x is group 1 then x; $1x is the (absent) group named "1x";
        // $$ is $; a lone $ and an unclosed ${ stay as written (Prometheus
        // 2.42 gives "1x$1 $ ${2" for y="1").
        let out = replace(a(), "z", "${1}x$1x$$1 $ ${2", "y", "(.*)").unwrap();
        assert_eq!(label_of(&out, 0, "z").as_deref(), Some("1x$1 $ ${2"));
        // Named groups; a group number that does not exist is empty; $01
        // is a name (leading zero), not group 1.
        let out = replace(a(), "z", "${name}-$3-$01", "y", "(?P<name>.)").unwrap();
        assert_eq!(label_of(&out, 1, "z").as_deref(), Some("2--"));
        // An empty result removes the label: here y itself.
        let out = replace(a(), "y", "", "y", "1").unwrap();
        assert_eq!(
            (label_of(&out, 0, "y"), label_of(&out, 1, "y")),
            (None, Some("2".to_owned()))
        );
        // An absent source label reads as "": ".*" matches it.
        let out = replace(a(), "z", "v$1", "nope", "(.*)").unwrap();
        assert_eq!(label_of(&out, 0, "z").as_deref(), Some("v"));
        // The metric name can be rewritten too.
        let out = replace(a(), "__name__", "b_$1", "y", "(2)").unwrap();
        assert_eq!(label_of(&out, 1, "__name__").as_deref(), Some("b_2"));
    }

    #[test]
    fn label_replace_rejects_duplicate_label_sets() {
        // Removing y leaves two series {__name__="a"}... with different
        // instances: fine. Removing y and instance: a clash.
        let out = replace(a(), "y", "", "y", ".*").unwrap();
        assert_eq!(view(out).len(), 2);
        let same = Value::Vector(vec![
            series(&[("__name__", "a"), ("y", "1")], &[Some(1.0)]),
            series(&[("__name__", "a"), ("y", "2")], &[Some(2.0)]),
        ]);
        let err = replace(same, "y", "", "y", ".*").unwrap_err();
        assert!(matches!(
            err,
            QueryError::DuplicateLabelSet { ref labels, .. } if labels == "{__name__=\"a\"}"
        ));
        let err = replace(a(), "z", "", "y", "(").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid regular expression in label_replace(): ("
        );
    }

    /// Bucket series `name{le=...}` with one value per step.
    fn buckets(
        name: &str,
        extra: &[(&str, &str)],
        bounds: &[(&str, &[Option<f64>])],
    ) -> Vec<StepSeries> {
        bounds
            .iter()
            .map(|&(le, values)| {
                let mut pairs = vec![("__name__", name), ("le", le)];
                pairs.extend_from_slice(extra);
                series(&pairs, values)
            })
            .collect()
    }

    fn hq(q: &[f64], input: Vec<StepSeries>) -> Result<Vec<(Vec<Label>, String)>, QueryError> {
        call(
            Function::HistogramQuantile,
            vec![Value::Scalar(q.to_vec()), Value::Vector(input)],
            q.len(),
        )
        .map(view)
    }

    fn hq1(q: f64, bounds: &[(&str, f64)]) -> String {
        let input = bounds
            .iter()
            .map(|&(le, v)| series(&[("__name__", "h"), ("le", le)], &[Some(v)]))
            .collect();
        let out = hq(&[q], input).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, vec![], "le and the name are dropped");
        out[0].1.clone()
    }

    #[test]
    fn histogram_quantile_interpolates_in_the_bucket() {
        let h = [("0.1", 2.0), ("0.5", 6.0), ("1", 8.0), ("+Inf", 10.0)];
        // q=0.5: rank 5 lands in (0.1, 0.5] holding 4 (2..6): 0.1 + 0.4 * 3/4.
        assert_eq!(
            hq1(0.5, &h),
            format!("[Some({:?})]", 0.1 + 0.4 * (3.0 / 4.0))
        );
        // q=0.1: rank 1 in the lowest bucket, interpolated from 0: 0.1 * 1/2.
        assert_eq!(hq1(0.1, &h), "[Some(0.05)]");
        // q=0.95: rank 9.5 is past the last finite bucket (8): its bound, 1.
        assert_eq!(hq1(0.95, &h), "[Some(1.0)]");
        // φ outside [0, 1] and NaN.
        assert_eq!(hq1(-1.0, &h), "[Some(-inf)]");
        assert_eq!(hq1(2.0, &h), "[Some(inf)]");
        assert_eq!(hq1(f64::NAN, &h), "[Some(NaN)]");
    }

    #[test]
    fn histogram_quantile_degenerate_histograms() {
        // Only a +Inf bucket: fewer than two buckets, NaN.
        assert_eq!(hq1(0.5, &[("+Inf", 10.0)]), "[Some(NaN)]");
        // No +Inf bucket: NaN (but φ < 0 is still -Inf: checked first).
        assert_eq!(hq1(0.5, &[("1", 10.0), ("2", 20.0)]), "[Some(NaN)]");
        assert_eq!(hq1(-1.0, &[("1", 10.0), ("2", 20.0)]), "[Some(-inf)]");
        // No observations: NaN.
        assert_eq!(hq1(0.5, &[("1", 0.0), ("+Inf", 0.0)]), "[Some(NaN)]");
        // Empty low buckets: rank 5 of 10 lands in (0.5, 1] holding all 10:
        // 0.5 + 0.5 * 5/10 = 0.75. φ = 0 lands in the first (empty) bucket:
        // 0.1 * 0/0 = NaN. Both as Prometheus 2.42 answers.
        let empty = [("0.1", 0.0), ("0.5", 0.0), ("1", 10.0), ("+Inf", 10.0)];
        assert_eq!(hq1(0.5, &empty), "[Some(0.75)]");
        assert_eq!(hq1(0.0, &empty), "[Some(NaN)]");
        assert_eq!(hq1(1.0, &empty), "[Some(1.0)]");
    }

    #[test]
    fn histogram_quantile_repairs_non_monotonic_buckets() {
        // 5, 3, 8, 6 becomes 5, 5, 8, 8 (running maximum, the +Inf bucket
        // included). q=0.9: rank 7.2 in (2, 4] holding 3 (5..8): 2 + 2 *
        // 2.2/3 = 3.466666666666667; q=0.5: rank 4 in (0, 1]: 0.8. Both
        // as Prometheus 2.42 answers (the last bucket repaired too: with
        // 6 observations the answer would be 2.27).
        let h = [("1", 5.0), ("2", 3.0), ("4", 8.0), ("+Inf", 6.0)];
        assert_eq!(hq1(0.9, &h), "[Some(3.466666666666667)]");
        assert_eq!(hq1(0.5, &h), "[Some(0.8)]");
    }

    #[test]
    fn histogram_quantile_reads_bounds_as_go() {
        // "1" and "1.0" are one bucket (10 + 5 = 15 at 1 plus the 10 at -1
        // makes 25); a negative lowest bound is returned as is; "Inf" is
        // +Inf. q=0.5: rank 15 of 30 in (-1, 1] holding 15: -1 + 2 * 5/15.
        let q = [("-1", 10.0), ("1", 20.0), ("1.0", 5.0), ("Inf", 30.0)];
        assert_eq!(
            hq1(0.5, &q),
            format!("[Some({:?})]", -1.0 + 2.0 * (5.0 / 15.0))
        );
        assert_eq!(hq1(0.1, &q), "[Some(-1.0)]");
        // Hexadecimal bounds: 0x1p1 = 2.
        assert_eq!(hq1(0.5, &[("0x1p1", 10.0), ("+inf", 20.0)]), "[Some(2.0)]");
        // Series without a readable le are ignored.
        let mut input = buckets("h", &[], &[("2", &[Some(4.0)]), ("+Inf", &[Some(4.0)])]);
        input.push(series(&[("__name__", "h"), ("le", "abc")], &[Some(1000.0)]));
        input.push(series(&[("__name__", "h")], &[Some(1000.0)]));
        // 0 + 2 * 2/4.
        assert_eq!(hq(&[0.5], input).unwrap()[0].1, "[Some(1.0)]");
        for (text, want) in [
            ("+Inf", Some(f64::INFINITY)),
            ("-infinity", Some(f64::NEG_INFINITY)),
            ("1e3", Some(1000.0)),
            (".5", Some(0.5)),
            ("0x1.8p1", Some(3.0)),
            ("0X10P-4", Some(1.0)),
            ("1e400", None),
            ("0x10", None),
            ("1_000", None),
            ("+nan", None),
            ("infinit", None),
            ("", None),
        ] {
            assert_eq!(parse_go_float(text), want, "{text}");
        }
        assert!(parse_go_float("NaN").is_some_and(f64::is_nan));
    }

    #[test]
    fn histogram_quantile_groups_and_steps() {
        // Two instances; instance b has its +Inf bucket only at step 1;
        // φ changes per step.
        let mut input = buckets(
            "h",
            &[("instance", "a")],
            &[
                ("1", &[Some(5.0), Some(5.0)]),
                ("+Inf", &[Some(10.0), Some(10.0)]),
            ],
        );
        input.extend(buckets(
            "h",
            &[("instance", "b")],
            &[("1", &[Some(1.0), Some(1.0)]), ("+Inf", &[None, Some(4.0)])],
        ));
        let out = hq(&[0.5, 0.25], input).unwrap();
        assert_eq!(
            out,
            vec![
                // a: 0.5 -> rank 5 in (0, 1]: 1; 0.25 -> rank 2.5: 0.5.
                (
                    labels(&[("instance", "a")]),
                    "[Some(1.0), Some(0.5)]".to_owned()
                ),
                // b: step 0 has no +Inf bucket: NaN; step 1: rank 1 of 4 -> 1.
                (
                    labels(&[("instance", "b")]),
                    "[Some(NaN), Some(1.0)]".to_owned()
                ),
            ]
        );
        // Two histograms with the same labels but different names are not
        // mixed; their results clash (Prometheus 2.42: "vector cannot
        // contain metrics with the same labelset").
        let mut input = buckets("g", &[], &[("1", &[Some(1.0)]), ("+Inf", &[Some(2.0)])]);
        input.extend(buckets(
            "h",
            &[],
            &[("1", &[Some(1.0)]), ("+Inf", &[Some(2.0)])],
        ));
        assert!(matches!(
            hq(&[0.5], input),
            Err(QueryError::DuplicateLabelSet { .. })
        ));
    }

    #[test]
    fn other_functions_are_not_instant() {
        let err = call(Function::Rate, vec![], 1).unwrap_err();
        assert_eq!(err.to_string(), "rate() is not an instant-vector function");
        let err = call(Function::Abs, vec![Value::Scalar(vec![1.0])], 1).unwrap_err();
        assert_eq!(err.to_string(), "wrong arguments to abs()");
    }
}
