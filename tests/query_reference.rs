//! Differential property test: random small data and random expressions,
//! evaluated by the engine (`instant_query`, `range_query`) and by a naive
//! reference evaluator written here from Prometheus 2.42's documented
//! semantics. The two must agree: the same series label sets, every value
//! equal within 1e-9 relative (NaN equal to NaN), and an error exactly when
//! the reference finds one.
//!
//! The reference shares no code with `src/query/eval`: it evaluates its own
//! expression tree ([`E`]) one evaluation time at a time, series by series,
//! sample by sample, over the data kept in plain vectors; the engine gets
//! the same tree printed as PromQL text and the same data through a `Db`.
//!
//! The generator covers selectors with `=`, `!=`, `=~` (and a `__name__`
//! regex for instant vectors), `offset`, rate/increase/delta/irate and the
//! `*_over_time` functions over range selectors and over subqueries,
//! sum/avg/min/max/count with `by`/`without`, vector-scalar and
//! vector-vector arithmetic and comparisons (with and without `bool`,
//! `on`/`ignoring`), and `and`/`or`/`unless`. Data: 2–6 series over up to
//! three metrics with one or two labels, irregular timestamps with jitter,
//! counters with occasional resets, rare NaN values and staleness markers,
//! sometimes flushed to a segment file.
//!
//! Range selectors always name one metric, so a range function's output
//! series stay distinct without their names (Prometheus 2.42 checks that
//! over the whole result matrix, the engine per step; the two only differ
//! for series that would collide at no step).
//!
//! Deterministic: a fixed seed and a fixed number of cases.

mod query_support;

use std::collections::BTreeMap;
use std::fmt;

use proptest::prelude::*;
use proptest::test_runner::{
    Config as ProptestConfig, RngAlgorithm, TestCaseError, TestRng, TestRunner,
};
use query_support::{plain, same_f64, Plain, TestDb, STALE};
use strata::SeriesKey;

const REL: f64 = 1e-9;
const LOOKBACK_MS: i64 = 5 * 60 * 1000;
const CASES: u32 = 96;
const SEED: [u8; 32] = *b"strata query reference seed 0001";

// ---------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------

type Labels = BTreeMap<String, String>;

/// One series: labels (with `__name__`) and samples in time order (ms).
#[derive(Clone)]
struct Series {
    labels: Labels,
    samples: Vec<(i64, f64)>,
}

impl fmt::Debug for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [", label_text(&self.labels))?;
        for (i, (t, v)) in self.samples.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if v.to_bits() == STALE.to_bits() {
                write!(f, "{t}:STALE")?;
            } else {
                write!(f, "{t}:{v}")?;
            }
        }
        f.write_str("]")
    }
}

/// The same text as `query_support::format_labels`.
fn label_text(labels: &Labels) -> String {
    let name = labels.get("__name__").map(String::as_str).unwrap_or("");
    let rest: Vec<String> = labels
        .iter()
        .filter(|(n, _)| *n != "__name__")
        .map(|(n, v)| format!("{n}={v:?}"))
        .collect();
    format!("{name}{{{}}}", rest.join(", "))
}

const METRICS: [&str; 3] = ["m1", "m2", "m3"];
const A_VALUES: [&str; 3] = ["x", "y", "z"];
const B_VALUES: [&str; 2] = ["p", "q"];

/// Samples of one series from a recipe: a start, then (gap, choice) pairs.
/// `choice` picks the value change, and rarely a reset, a NaN, a
/// staleness marker or a long gap.
fn build_samples(counter: bool, start_ms: i64, steps: &[(i64, u8)]) -> Vec<(i64, f64)> {
    let mut t = start_ms;
    let mut value: f64 = if counter { 0.0 } else { 1.0 };
    let mut out = Vec::new();
    for &(gap, choice) in steps {
        t += gap;
        if (93..96).contains(&choice) {
            // A long gap: the lookback and the windows run dry.
            t += 200_000;
        }
        let sample = match choice {
            99 => f64::NAN,
            98 => STALE,
            _ if counter && choice < 4 => {
                value = f64::from(choice % 3);
                value
            }
            _ if counter => {
                value += f64::from(choice % 5);
                value
            }
            _ => {
                value = f64::from(choice % 21) / 2.0 - 5.0;
                value
            }
        };
        out.push((t, sample));
    }
    out
}

/// Indexes into METRICS, A_VALUES and (optionally) B_VALUES.
type KeyRecipe = (usize, usize, Option<usize>);

fn series_strategy() -> impl Strategy<Value = (KeyRecipe, Vec<(i64, f64)>)> {
    (
        (
            0..METRICS.len(),
            0..A_VALUES.len(),
            prop::option::of(0..B_VALUES.len()),
        ),
        any::<bool>(),
        0i64..30_000,
        prop::collection::vec((2_000i64..45_000, 0u8..100), 3..40),
    )
        .prop_map(|(key, counter, start, steps)| (key, build_samples(counter, start, &steps)))
}

fn data_strategy() -> impl Strategy<Value = Vec<Series>> {
    prop::collection::vec(series_strategy(), 2..=6).prop_map(|raw| {
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for ((m, a, b), samples) in raw {
            if !seen.insert((m, a, b)) {
                continue;
            }
            let mut labels = Labels::new();
            labels.insert("__name__".into(), METRICS[m].into());
            labels.insert("a".into(), A_VALUES[a].into());
            if let Some(b) = b {
                labels.insert("b".into(), B_VALUES[b].into());
            }
            out.push(Series { labels, samples });
        }
        out.sort_by(|x, y| x.labels.cmp(&y.labels));
        out
    })
}

// ---------------------------------------------------------------------
// Expressions
// ---------------------------------------------------------------------

/// A regular expression from a fixed menu, matched here without a regex
/// engine (anchored, as PromQL's).
#[derive(Debug, Clone, Copy)]
enum Re {
    /// `x|y`
    Alt(&'static str, &'static str),
    /// `x.*`
    Prefix(&'static str),
    /// `.*`
    Any,
    /// `.+`
    NonEmpty,
}

impl Re {
    fn text(self) -> String {
        match self {
            Re::Alt(a, b) => format!("{a}|{b}"),
            Re::Prefix(p) => format!("{p}.*"),
            Re::Any => ".*".into(),
            Re::NonEmpty => ".+".into(),
        }
    }

    fn matches(self, s: &str) -> bool {
        match self {
            Re::Alt(a, b) => s == a || s == b,
            Re::Prefix(p) => s.starts_with(p),
            Re::Any => true,
            Re::NonEmpty => !s.is_empty(),
        }
    }
}

/// `__name__=~"m1|m2"`.
const TWO_METRICS: Re = Re::Alt("m1", "m2");

#[derive(Debug, Clone)]
enum MatchOp {
    Eq(&'static str),
    Ne(&'static str),
    Re(Re),
}

#[derive(Debug, Clone)]
struct Sel {
    /// Written before the braces; `None` means `__name__=~"m1|m2"`.
    metric: Option<&'static str>,
    matchers: Vec<(&'static str, MatchOp)>,
    offset_ms: i64,
}

impl Sel {
    fn matches(&self, labels: &Labels) -> bool {
        let get = |n: &str| labels.get(n).map(String::as_str).unwrap_or("");
        let name_ok = match self.metric {
            Some(m) => get("__name__") == m,
            None => TWO_METRICS.matches(get("__name__")),
        };
        name_ok
            && self.matchers.iter().all(|(n, op)| match op {
                MatchOp::Eq(v) => get(n) == *v,
                MatchOp::Ne(v) => get(n) != *v,
                MatchOp::Re(re) => re.matches(get(n)),
            })
    }
}

impl fmt::Display for Sel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        match self.metric {
            Some(m) => f.write_str(m)?,
            None => parts.push(format!("__name__=~\"{}\"", TWO_METRICS.text())),
        }
        for (n, op) in &self.matchers {
            parts.push(match op {
                MatchOp::Eq(v) => format!("{n}=\"{v}\""),
                MatchOp::Ne(v) => format!("{n}!=\"{v}\""),
                MatchOp::Re(re) => format!("{n}=~\"{}\"", re.text()),
            });
        }
        if !parts.is_empty() {
            write!(f, "{{{}}}", parts.join(", "))?;
        }
        Ok(())
    }
}

/// A duration in milliseconds, printed in PromQL form.
fn dur(ms: i64) -> String {
    let (sign, ms) = if ms < 0 { ("-", -ms) } else { ("", ms) };
    if ms % 60_000 == 0 {
        format!("{sign}{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{sign}{}s", ms / 1000)
    } else {
        format!("{sign}{ms}ms")
    }
}

fn offset_text(ms: i64) -> String {
    if ms == 0 {
        String::new()
    } else {
        format!(" offset {}", dur(ms))
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum RangeFunc {
    Rate,
    Increase,
    Delta,
    Irate,
    Avg,
    Min,
    Max,
    Sum,
    Count,
    Last,
}

impl RangeFunc {
    const ALL: [RangeFunc; 10] = [
        RangeFunc::Rate,
        RangeFunc::Increase,
        RangeFunc::Delta,
        RangeFunc::Irate,
        RangeFunc::Avg,
        RangeFunc::Min,
        RangeFunc::Max,
        RangeFunc::Sum,
        RangeFunc::Count,
        RangeFunc::Last,
    ];

    fn name(self) -> &'static str {
        match self {
            RangeFunc::Rate => "rate",
            RangeFunc::Increase => "increase",
            RangeFunc::Delta => "delta",
            RangeFunc::Irate => "irate",
            RangeFunc::Avg => "avg_over_time",
            RangeFunc::Min => "min_over_time",
            RangeFunc::Max => "max_over_time",
            RangeFunc::Sum => "sum_over_time",
            RangeFunc::Count => "count_over_time",
            RangeFunc::Last => "last_over_time",
        }
    }
}

#[derive(Debug, Clone)]
enum RangeArg {
    /// `sel[range]` (the selector's offset applies).
    Matrix(Sel, i64),
    /// `(expr)[range:step] offset`.
    Subquery {
        expr: Box<E>,
        range_ms: i64,
        step_ms: i64,
        offset_ms: i64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum AggOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
}

#[derive(Debug, Clone)]
enum Grouping {
    By(Vec<&'static str>),
    Without(Vec<&'static str>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
}

impl BinOp {
    fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Gt => ">",
            BinOp::Lt => "<",
            BinOp::Ge => ">=",
            BinOp::Le => "<=",
        }
    }

    fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Lt | BinOp::Ge | BinOp::Le
        )
    }

    /// The value and whether the element is kept (comparisons keep the
    /// left operand when true).
    fn apply(self, l: f64, r: f64) -> (f64, bool) {
        match self {
            BinOp::Add => (l + r, true),
            BinOp::Sub => (l - r, true),
            BinOp::Mul => (l * r, true),
            BinOp::Div => (l / r, true),
            BinOp::Mod => (l % r, true),
            BinOp::Eq => (l, l == r),
            BinOp::Ne => (l, l != r),
            BinOp::Gt => (l, l > r),
            BinOp::Lt => (l, l < r),
            BinOp::Ge => (l, l >= r),
            BinOp::Le => (l, l <= r),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum SetOp {
    And,
    Or,
    Unless,
}

/// `on(labels)` (true) or `ignoring(labels)` (false).
type Matching = Option<(bool, Vec<&'static str>)>;

fn matching_text(m: &Matching) -> String {
    match m {
        None => String::new(),
        Some((on, labels)) => format!(
            " {}({})",
            if *on { "on" } else { "ignoring" },
            labels.join(", ")
        ),
    }
}

/// An instant-vector expression.
#[derive(Debug, Clone)]
enum E {
    Sel(Sel),
    Call(RangeFunc, RangeArg),
    Agg(AggOp, Grouping, Box<E>),
    /// `vector op scalar`, or `scalar op vector` when `scalar_left`.
    Scalar {
        op: BinOp,
        vector: Box<E>,
        scalar: f64,
        scalar_left: bool,
        bool_mod: bool,
    },
    Binary {
        op: BinOp,
        lhs: Box<E>,
        rhs: Box<E>,
        matching: Matching,
        bool_mod: bool,
    },
    Set(SetOp, Box<E>, Box<E>, Matching),
}

impl fmt::Display for E {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            E::Sel(sel) => write!(f, "{sel}{}", offset_text(sel.offset_ms)),
            E::Call(func, RangeArg::Matrix(sel, range)) => write!(
                f,
                "{}({sel}[{}]{})",
                func.name(),
                dur(*range),
                offset_text(sel.offset_ms)
            ),
            E::Call(
                func,
                RangeArg::Subquery {
                    expr,
                    range_ms,
                    step_ms,
                    offset_ms,
                },
            ) => write!(
                f,
                "{}(({expr})[{}:{}]{})",
                func.name(),
                dur(*range_ms),
                dur(*step_ms),
                offset_text(*offset_ms)
            ),
            E::Agg(op, grouping, inner) => {
                let name = match op {
                    AggOp::Sum => "sum",
                    AggOp::Avg => "avg",
                    AggOp::Min => "min",
                    AggOp::Max => "max",
                    AggOp::Count => "count",
                };
                let (word, labels) = match grouping {
                    Grouping::By(l) => ("by", l),
                    Grouping::Without(l) => ("without", l),
                };
                write!(f, "{name} {word} ({}) ({inner})", labels.join(", "))
            }
            E::Scalar {
                op,
                vector,
                scalar,
                scalar_left,
                bool_mod,
            } => {
                let b = if *bool_mod { " bool" } else { "" };
                if *scalar_left {
                    write!(f, "({scalar}) {}{b} ({vector})", op.symbol())
                } else {
                    write!(f, "({vector}) {}{b} ({scalar})", op.symbol())
                }
            }
            E::Binary {
                op,
                lhs,
                rhs,
                matching,
                bool_mod,
            } => {
                let b = if *bool_mod { " bool" } else { "" };
                write!(
                    f,
                    "({lhs}) {}{b}{} ({rhs})",
                    op.symbol(),
                    matching_text(matching)
                )
            }
            E::Set(op, lhs, rhs, matching) => {
                let word = match op {
                    SetOp::And => "and",
                    SetOp::Or => "or",
                    SetOp::Unless => "unless",
                };
                write!(f, "({lhs}) {word}{} ({rhs})", matching_text(matching))
            }
        }
    }
}

fn matcher_strategy() -> impl Strategy<Value = (&'static str, MatchOp)> {
    let a_value = prop::sample::select(&A_VALUES[..]);
    let b_value = prop::sample::select(&B_VALUES[..]);
    let a_re = prop::sample::select(vec![
        Re::Alt("x", "y"),
        Re::Prefix("z"),
        Re::Any,
        Re::NonEmpty,
    ]);
    let b_re = prop::sample::select(vec![
        Re::Alt("p", "r"),
        Re::Prefix("q"),
        Re::Any,
        Re::NonEmpty,
    ]);
    prop_oneof![
        a_value.clone().prop_map(|v| ("a", MatchOp::Eq(v))),
        a_value.prop_map(|v| ("a", MatchOp::Ne(v))),
        b_value.clone().prop_map(|v| ("b", MatchOp::Eq(v))),
        b_value.prop_map(|v| ("b", MatchOp::Ne(v))),
        a_re.prop_map(|r| ("a", MatchOp::Re(r))),
        b_re.prop_map(|r| ("b", MatchOp::Re(r))),
    ]
}

fn matchers_strategy() -> impl Strategy<Value = Vec<(&'static str, MatchOp)>> {
    prop_oneof![
        8 => Just(Vec::new()),
        9 => matcher_strategy().prop_map(|m| vec![m]),
        3 => prop::collection::vec(matcher_strategy(), 2),
    ]
}

fn offset_strategy() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => Just(0i64),
        1 => Just(30_000i64),
        1 => Just(60_000i64),
        1 => Just(150_000i64),
        1 => Just(-30_000i64),
    ]
}

/// A selector; `any_name` allows `{__name__=~"m1|m2", ...}`.
fn sel_strategy(any_name: bool) -> impl Strategy<Value = Sel> {
    let metric = if any_name {
        prop_oneof![
            4 => prop::sample::select(&METRICS[..]).prop_map(Some),
            1 => Just(None),
        ]
        .boxed()
    } else {
        prop::sample::select(&METRICS[..]).prop_map(Some).boxed()
    };
    (metric, matchers_strategy(), offset_strategy()).prop_map(|(metric, matchers, offset_ms)| Sel {
        metric,
        matchers,
        offset_ms,
    })
}

fn range_call_strategy() -> impl Strategy<Value = E> {
    (
        prop::sample::select(&RangeFunc::ALL[..]),
        sel_strategy(false),
        prop::sample::select(vec![10_000i64, 30_000, 60_000, 90_000, 300_000]),
    )
        .prop_map(|(func, sel, range)| E::Call(func, RangeArg::Matrix(sel, range)))
}

fn leaf_strategy() -> impl Strategy<Value = E> {
    prop_oneof![sel_strategy(true).prop_map(E::Sel), range_call_strategy(),]
}

fn grouping_strategy() -> impl Strategy<Value = Grouping> {
    prop::sample::select(vec![
        Grouping::By(vec![]),
        Grouping::By(vec!["a"]),
        Grouping::By(vec!["b"]),
        Grouping::By(vec!["a", "b"]),
        Grouping::Without(vec!["a"]),
        Grouping::Without(vec!["b"]),
    ])
}

fn matching_strategy() -> impl Strategy<Value = Matching> {
    prop::sample::select(vec![
        None,
        None,
        Some((true, vec!["a"])),
        Some((true, vec!["b"])),
        Some((true, vec!["a", "b"])),
        Some((false, vec!["a"])),
        Some((false, vec!["b"])),
    ])
}

fn op_strategy() -> impl Strategy<Value = BinOp> {
    prop::sample::select(vec![
        BinOp::Add,
        BinOp::Sub,
        BinOp::Mul,
        BinOp::Div,
        BinOp::Mod,
        BinOp::Eq,
        BinOp::Ne,
        BinOp::Gt,
        BinOp::Lt,
        BinOp::Ge,
        BinOp::Le,
    ])
}

fn expr_strategy() -> impl Strategy<Value = E> {
    leaf_strategy().prop_recursive(3, 12, 2, |inner| {
        let subquery = (
            prop::sample::select(&RangeFunc::ALL[..]),
            // Subqueries of leaves only: nested subqueries multiply the
            // reference's work without covering more of the engine.
            leaf_strategy(),
            prop::sample::select(vec![60_000i64, 120_000, 300_000]),
            prop::sample::select(vec![10_000i64, 15_000, 30_000, 60_000]),
            offset_strategy(),
        )
            .prop_map(|(func, expr, range_ms, step_ms, offset_ms)| {
                E::Call(
                    func,
                    RangeArg::Subquery {
                        expr: Box::new(expr),
                        range_ms,
                        step_ms,
                        offset_ms,
                    },
                )
            });
        let agg = (
            prop::sample::select(vec![
                AggOp::Sum,
                AggOp::Avg,
                AggOp::Min,
                AggOp::Max,
                AggOp::Count,
            ]),
            grouping_strategy(),
            inner.clone(),
        )
            .prop_map(|(op, g, e)| E::Agg(op, g, Box::new(e)));
        let scalar = (
            op_strategy(),
            inner.clone(),
            prop::sample::select(vec![0.0, 0.5, 1.0, 2.0, 3.0, -1.0, 10.0]),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(op, e, scalar, scalar_left, b)| E::Scalar {
                op,
                vector: Box::new(e),
                scalar,
                scalar_left,
                bool_mod: b && op.is_comparison(),
            });
        let binary = (
            op_strategy(),
            inner.clone(),
            inner.clone(),
            matching_strategy(),
            any::<bool>(),
        )
            .prop_map(|(op, l, r, matching, b)| E::Binary {
                op,
                lhs: Box::new(l),
                rhs: Box::new(r),
                matching,
                bool_mod: b && op.is_comparison(),
            });
        let set = (
            prop::sample::select(vec![SetOp::And, SetOp::Or, SetOp::Unless]),
            inner.clone(),
            inner,
            matching_strategy(),
        )
            .prop_map(|(op, l, r, m)| E::Set(op, Box::new(l), Box::new(r), m));
        prop_oneof![
            2 => subquery,
            3 => agg,
            2 => scalar,
            2 => binary,
            2 => set,
        ]
    })
}

// ---------------------------------------------------------------------
// The reference evaluator
// ---------------------------------------------------------------------

type Vector = Vec<(Labels, f64)>;
type Matrix = Vec<(Labels, Vec<(i64, f64)>)>;

/// Why an evaluation fails (Prometheus' runtime errors the generator can
/// reach).
type RefResult<T> = Result<T, String>;

fn without_name(labels: &Labels) -> Labels {
    let mut l = labels.clone();
    l.remove("__name__");
    l
}

fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE.to_bits()
}

/// Prometheus: "vector cannot contain metrics with the same labelset".
fn check_unique(v: &Vector) -> RefResult<()> {
    let mut seen = std::collections::BTreeSet::new();
    for (l, _) in v {
        if !seen.insert(l) {
            return Err(format!("duplicate labelset {}", label_text(l)));
        }
    }
    Ok(())
}

/// The label values an `on`/`ignoring` clause matches on.
fn signature(labels: &Labels, matching: &Matching) -> Vec<(String, String)> {
    match matching {
        Some((true, on)) => on
            .iter()
            .map(|n| (n.to_string(), labels.get(*n).cloned().unwrap_or_default()))
            .collect(),
        Some((false, ignoring)) => labels
            .iter()
            .filter(|(n, _)| *n != "__name__" && !ignoring.contains(&n.as_str()))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect(),
        None => labels
            .iter()
            .filter(|(n, _)| *n != "__name__")
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect(),
    }
}

struct Reference<'a> {
    data: &'a [Series],
}

impl Reference<'_> {
    fn eval(&self, e: &E, t: i64) -> RefResult<Vector> {
        let out = match e {
            E::Sel(sel) => self.instant_selector(sel, t),
            E::Call(func, arg) => {
                let (matrix, range_ms, offset_ms) = self.range_arg(arg, t)?;
                let window_end = t - offset_ms;
                let window_start = window_end - range_ms;
                let mut out = Vec::new();
                for (labels, points) in matrix {
                    let value = range_function(*func, &points, window_start, window_end, range_ms);
                    if let Some(v) = value {
                        // Prometheus 2.42 drops the name for every range
                        // function but last_over_time (which acts like an
                        // offset).
                        let labels = if *func == RangeFunc::Last {
                            labels
                        } else {
                            without_name(&labels)
                        };
                        out.push((labels, v));
                    }
                }
                out
            }
            E::Agg(op, grouping, inner) => aggregate(*op, grouping, self.eval(inner, t)?),
            E::Scalar {
                op,
                vector,
                scalar,
                scalar_left,
                bool_mod,
            } => {
                let mut out = Vec::new();
                for (labels, v) in self.eval(vector, t)? {
                    let (l, r) = if *scalar_left {
                        (*scalar, v)
                    } else {
                        (v, *scalar)
                    };
                    let (mut value, mut keep) = op.apply(l, r);
                    if op.is_comparison() {
                        // The vector's value is the result, on either side.
                        value = v;
                    }
                    if *bool_mod {
                        value = if keep { 1.0 } else { 0.0 };
                        keep = true;
                    }
                    if keep {
                        let labels = if !op.is_comparison() || *bool_mod {
                            without_name(&labels)
                        } else {
                            labels
                        };
                        out.push((labels, value));
                    }
                }
                out
            }
            E::Binary {
                op,
                lhs,
                rhs,
                matching,
                bool_mod,
            } => binary(
                *op,
                self.eval(lhs, t)?,
                self.eval(rhs, t)?,
                matching,
                *bool_mod,
            )?,
            E::Set(op, lhs, rhs, matching) => {
                let lhs = self.eval(lhs, t)?;
                let rhs = self.eval(rhs, t)?;
                let rsigs: Vec<_> = rhs.iter().map(|(l, _)| signature(l, matching)).collect();
                let lsigs: Vec<_> = lhs.iter().map(|(l, _)| signature(l, matching)).collect();
                match op {
                    SetOp::And => lhs
                        .into_iter()
                        .zip(&lsigs)
                        .filter(|(_, s)| rsigs.contains(s))
                        .map(|(x, _)| x)
                        .collect(),
                    SetOp::Unless => lhs
                        .into_iter()
                        .zip(&lsigs)
                        .filter(|(_, s)| !rsigs.contains(s))
                        .map(|(x, _)| x)
                        .collect(),
                    SetOp::Or => {
                        let mut out = lhs;
                        for (x, s) in rhs.into_iter().zip(&rsigs) {
                            if !lsigs.contains(s) {
                                out.push(x);
                            }
                        }
                        out
                    }
                }
            }
        };
        check_unique(&out)?;
        Ok(out)
    }

    /// The newest sample in `[t - offset - 5m, t - offset]`, unless it is a
    /// staleness marker.
    fn instant_selector(&self, sel: &Sel, t: i64) -> Vector {
        let at = t - sel.offset_ms;
        let mut out = Vec::new();
        for s in self.data.iter().filter(|s| sel.matches(&s.labels)) {
            let newest = s
                .samples
                .iter()
                .rev()
                .find(|(ts, _)| *ts <= at)
                .filter(|(ts, _)| *ts >= at - LOOKBACK_MS);
            if let Some(&(_, v)) = newest {
                if !is_stale(v) {
                    out.push((s.labels.clone(), v));
                }
            }
        }
        out
    }

    /// The points each series has in the window ending at `t - offset`,
    /// with the window's range and offset.
    fn range_arg(&self, arg: &RangeArg, t: i64) -> RefResult<(Matrix, i64, i64)> {
        match arg {
            RangeArg::Matrix(sel, range_ms) => {
                let end = t - sel.offset_ms;
                let start = end - range_ms;
                let mut out = Vec::new();
                for s in self.data.iter().filter(|s| sel.matches(&s.labels)) {
                    let points: Vec<(i64, f64)> = s
                        .samples
                        .iter()
                        .copied()
                        .filter(|&(ts, v)| ts >= start && ts <= end && !is_stale(v))
                        .collect();
                    if !points.is_empty() {
                        out.push((s.labels.clone(), points));
                    }
                }
                Ok((out, *range_ms, sel.offset_ms))
            }
            RangeArg::Subquery {
                expr,
                range_ms,
                step_ms,
                offset_ms,
            } => {
                let end = t - offset_ms;
                // The first multiple of the step at or after end - range.
                let from = end - range_ms;
                let mut ts = from.div_euclid(*step_ms) * step_ms;
                if ts < from {
                    ts += step_ms;
                }
                let mut series: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
                while ts <= end {
                    for (labels, v) in self.eval(expr, ts)? {
                        series.entry(labels).or_default().push((ts, v));
                    }
                    ts += step_ms;
                }
                Ok((series.into_iter().collect(), *range_ms, *offset_ms))
            }
        }
    }
}

fn range_function(
    func: RangeFunc,
    points: &[(i64, f64)],
    window_start: i64,
    window_end: i64,
    range_ms: i64,
) -> Option<f64> {
    let values = || points.iter().map(|p| p.1);
    match func {
        RangeFunc::Rate => extrapolated(points, window_start, window_end, range_ms, true, true),
        RangeFunc::Increase => {
            extrapolated(points, window_start, window_end, range_ms, true, false)
        }
        RangeFunc::Delta => extrapolated(points, window_start, window_end, range_ms, false, false),
        RangeFunc::Irate => {
            let n = points.len();
            if n < 2 {
                return None;
            }
            let (prev, last) = (points[n - 2], points[n - 1]);
            let interval = last.0 - prev.0;
            if interval == 0 {
                return None;
            }
            // A drop is a counter reset: the counter grew by its new value.
            let diff = if last.1 < prev.1 {
                last.1
            } else {
                last.1 - prev.1
            };
            Some(diff / (interval as f64 / 1000.0))
        }
        RangeFunc::Avg => Some(incremental_mean(values())),
        RangeFunc::Min => values().reduce(|m, v| if v < m || m.is_nan() { v } else { m }),
        RangeFunc::Max => values().reduce(|m, v| if v > m || m.is_nan() { v } else { m }),
        RangeFunc::Sum => Some(values().sum()),
        RangeFunc::Count => Some(points.len() as f64),
        RangeFunc::Last => points.last().map(|p| p.1),
    }
}

/// Prometheus 2.42's running mean (each step divides before subtracting,
/// an infinite mean stays put for finite values or the same infinity).
fn incremental_mean(values: impl Iterator<Item = f64>) -> f64 {
    let mut mean = 0.0f64;
    let mut count = 0.0f64;
    for v in values {
        count += 1.0;
        if mean.is_infinite() {
            if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                continue;
            }
            if !v.is_infinite() && !v.is_nan() {
                continue;
            }
        }
        mean += v / count - mean / count;
    }
    mean
}

/// rate / increase / delta (see tests/query_golden.rs for the rule).
fn extrapolated(
    points: &[(i64, f64)],
    window_start: i64,
    window_end: i64,
    range_ms: i64,
    counter: bool,
    per_second: bool,
) -> Option<f64> {
    let n = points.len();
    if n < 2 {
        return None;
    }
    let (first, last) = (points[0], points[n - 1]);
    let mut result = last.1 - first.1;
    if counter {
        for pair in points.windows(2) {
            if pair[1].1 < pair[0].1 {
                result += pair[0].1;
            }
        }
    }
    let mut to_start = (first.0 - window_start) as f64 / 1000.0;
    let to_end = (window_end - last.0) as f64 / 1000.0;
    let sampled = (last.0 - first.0) as f64 / 1000.0;
    let average = sampled / (n - 1) as f64;
    if counter && result > 0.0 && first.1 >= 0.0 {
        let to_zero = sampled * (first.1 / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average * 1.1;
    let mut extended = sampled;
    extended += if to_start < threshold {
        to_start
    } else {
        average / 2.0
    };
    extended += if to_end < threshold {
        to_end
    } else {
        average / 2.0
    };
    let mut factor = extended / sampled;
    if per_second {
        factor /= range_ms as f64 / 1000.0;
    }
    Some(result * factor)
}

fn aggregate(op: AggOp, grouping: &Grouping, input: Vector) -> Vector {
    // Groups in first-seen order, values in input order.
    let mut groups: Vec<(Labels, Vec<f64>)> = Vec::new();
    for (labels, v) in input {
        let key: Labels = match grouping {
            Grouping::By(keep) => labels
                .into_iter()
                .filter(|(n, _)| keep.contains(&n.as_str()))
                .collect(),
            Grouping::Without(drop) => labels
                .into_iter()
                .filter(|(n, _)| n != "__name__" && !drop.contains(&n.as_str()))
                .collect(),
        };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, values)) => values.push(v),
            None => groups.push((key, vec![v])),
        }
    }
    groups
        .into_iter()
        .map(|(key, values)| {
            let value = match op {
                AggOp::Sum => values.iter().sum(),
                AggOp::Avg => incremental_mean(values.iter().copied()),
                AggOp::Min => values
                    .iter()
                    .copied()
                    .reduce(|m, v| if m > v || m.is_nan() { v } else { m })
                    .unwrap_or(f64::NAN),
                AggOp::Max => values
                    .iter()
                    .copied()
                    .reduce(|m, v| if m < v || m.is_nan() { v } else { m })
                    .unwrap_or(f64::NAN),
                AggOp::Count => values.len() as f64,
            };
            (key, value)
        })
        .collect()
}

/// One-to-one vector matching (Prometheus' VectorBinop without grouping).
fn binary(
    op: BinOp,
    lhs: Vector,
    rhs: Vector,
    matching: &Matching,
    bool_mod: bool,
) -> RefResult<Vector> {
    let mut right: Vec<(Vec<(String, String)>, f64)> = Vec::new();
    for (labels, v) in &rhs {
        let sig = signature(labels, matching);
        if right.iter().any(|(s, _)| *s == sig) {
            return Err(format!(
                "duplicate series on the right for the match group {sig:?}"
            ));
        }
        right.push((sig, *v));
    }
    let mut matched: Vec<Vec<(String, String)>> = Vec::new();
    let mut out = Vec::new();
    for (labels, lv) in lhs {
        let sig = signature(&labels, matching);
        let Some(&(_, rv)) = right.iter().find(|(s, _)| *s == sig) else {
            continue;
        };
        let (mut value, keep) = op.apply(lv, rv);
        if bool_mod {
            value = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        let mut result = labels;
        if !op.is_comparison() || bool_mod {
            result.remove("__name__");
        }
        match matching {
            Some((true, on)) => result.retain(|n, _| on.contains(&n.as_str())),
            Some((false, ignoring)) => result.retain(|n, _| !ignoring.contains(&n.as_str())),
            None => {}
        }
        if matched.contains(&sig) {
            return Err("many-to-one matching must be explicit".into());
        }
        matched.push(sig);
        out.push((result, value));
    }
    Ok(out)
}

// ---------------------------------------------------------------------
// The property
// ---------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Case {
    data: Vec<Series>,
    expr: E,
    /// Instant query times, ms.
    instants: Vec<i64>,
    /// Range query start, step, number of steps.
    range: (i64, i64, i64),
    flush: bool,
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (
        data_strategy(),
        expr_strategy(),
        prop::collection::vec(
            prop_oneof![(0i64..800).prop_map(|s| s * 1000), 0i64..800_000,],
            2..=3,
        ),
        (
            0i64..400_000,
            prop::sample::select(vec![7_000i64, 10_000, 15_000, 30_000, 60_000]),
            1i64..=20,
        ),
        any::<bool>(),
    )
        .prop_map(|(data, expr, instants, range, flush)| Case {
            data,
            expr,
            instants,
            range,
            flush,
        })
}

/// Engine and reference results as (label text, points), sorted.
type Outcome = Result<Vec<(String, Vec<(i64, f64)>)>, String>;

fn same_outcome(engine: &Outcome, reference: &Outcome) -> bool {
    match (engine, reference) {
        (Err(_), Err(_)) => true,
        (Ok(a), Ok(b)) => {
            a.len() == b.len()
                && a.iter().zip(b).all(|((la, pa), (lb, pb))| {
                    la == lb
                        && pa.len() == pb.len()
                        && pa
                            .iter()
                            .zip(pb)
                            .all(|(x, y)| x.0 == y.0 && same_f64(x.1, y.1, REL))
                })
        }
        _ => false,
    }
}

fn sorted(mut v: Vec<(String, Vec<(i64, f64)>)>) -> Vec<(String, Vec<(i64, f64)>)> {
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn reference_instant(data: &[Series], expr: &E, t: i64) -> Outcome {
    let v = Reference { data }.eval(expr, t)?;
    Ok(sorted(
        v.into_iter()
            .map(|(l, x)| (label_text(&l), vec![(t, x)]))
            .collect(),
    ))
}

fn reference_range(data: &[Series], expr: &E, (start, step, n): (i64, i64, i64)) -> Outcome {
    let reference = Reference { data };
    let mut series: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    for i in 0..n {
        let t = start + i * step;
        for (l, x) in reference.eval(expr, t)? {
            series.entry(label_text(&l)).or_default().push((t, x));
        }
    }
    Ok(series.into_iter().collect())
}

/// The engine's answer; `matrix` tells which shape the query must have.
fn engine_outcome(result: Result<strata::QueryValue, strata::QueryError>, matrix: bool) -> Outcome {
    match (result.map(plain), matrix) {
        (Err(e), _) => Err(e.to_string()),
        (Ok(Plain::Vector(v)), false) => {
            Ok(v.into_iter().map(|(l, t, x)| (l, vec![(t, x)])).collect())
        }
        (Ok(Plain::Matrix(m)), true) => Ok(m),
        (Ok(other), _) => Err(format!("wrong result shape {other:?}")),
    }
}

fn check_case(case: &Case) -> Result<(), TestCaseError> {
    let keyed: Vec<(SeriesKey, Vec<(i64, f64)>)> = case
        .data
        .iter()
        .map(|s| {
            let labels: Vec<(&str, &str)> = s
                .labels
                .iter()
                .filter(|(n, _)| *n != "__name__")
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            (
                SeriesKey::new(&s.labels["__name__"], &labels).unwrap(),
                s.samples.clone(),
            )
        })
        .collect();
    let db = TestDb::from_ms(&keyed, case.flush);
    let query = case.expr.to_string();
    for &t in &case.instants {
        // An instant vector's samples are stamped with the query time.
        let engine = engine_outcome(db.instant_ms(&query, t), false);
        let reference = reference_instant(&case.data, &case.expr, t);
        prop_assert!(
            same_outcome(&engine, &reference),
            "instant query {query} at {t} ms\n  engine:    {engine:?}\n  reference: {reference:?}"
        );
    }
    let (start, step, n) = case.range;
    let end = start + (n - 1) * step;
    let engine = engine_outcome(db.range_ms(&query, start, end, step), true);
    let reference = reference_range(&case.data, &case.expr, case.range);
    prop_assert!(
        same_outcome(&engine, &reference),
        "range query {query} from {start} to {end} step {step} ms\n  engine:    {engine:?}\n  reference: {reference:?}"
    );
    Ok(())
}

#[test]
fn engine_agrees_with_the_reference_evaluator() {
    let config = ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &SEED);
    let mut runner = TestRunner::new_with_rng(config, rng);
    if let Err(e) = runner.run(&case_strategy(), |case| check_case(&case)) {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------
// The reference itself, on values computed by hand in
// tests/query_golden.rs
// ---------------------------------------------------------------------

fn series(metric: &str, samples: &[(i64, f64)]) -> Series {
    let mut labels = Labels::new();
    labels.insert("__name__".into(), metric.into());
    labels.insert("a".into(), "x".into());
    Series {
        labels,
        samples: samples.iter().map(|&(t, v)| (t * 1000, v)).collect(),
    }
}

fn sel(metric: &'static str) -> Sel {
    Sel {
        metric: Some(metric),
        matchers: Vec::new(),
        offset_ms: 0,
    }
}

fn call(func: RangeFunc, metric: &'static str, range_s: i64) -> E {
    E::Call(func, RangeArg::Matrix(sel(metric), range_s * 1000))
}

fn subquery(func: RangeFunc, metric: &'static str, range_s: i64, step_s: i64, offset_s: i64) -> E {
    E::Call(
        func,
        RangeArg::Subquery {
            expr: Box::new(E::Sel(sel(metric))),
            range_ms: range_s * 1000,
            step_ms: step_s * 1000,
            offset_ms: offset_s * 1000,
        },
    )
}

#[track_caller]
fn assert_reference(data: &[Series], expr: &E, t_s: i64, expected: Option<f64>) {
    let got = reference_instant(data, expr, t_s * 1000).unwrap();
    match expected {
        None => assert!(got.is_empty(), "{expr}: {got:?}"),
        Some(want) => {
            assert_eq!(got.len(), 1, "{expr}: {got:?}");
            assert!(
                same_f64(got[0].1[0].1, want, 1e-12),
                "{expr}: {got:?}, expected {want}"
            );
        }
    }
}

#[test]
fn reference_reproduces_hand_computed_values() {
    let data = [
        series("c1", &[(5, 10.0), (20, 20.0), (35, 30.0), (50, 40.0)]),
        series("c2", &[(20, 2.0), (35, 12.0), (50, 22.0)]),
        series("c3", &[(30, 100.0), (40, 110.0), (50, 120.0)]),
        series(
            "c4",
            &[(0, 5.0), (10, 10.0), (20, 2.0), (30, 6.0), (40, 8.0)],
        ),
        series("s", &[(0, 1.0), (60, 2.0), (90, STALE), (150, 5.0)]),
        series(
            "g2",
            &(0..=30).map(|i| (i * 10, i as f64)).collect::<Vec<_>>(),
        ),
    ];
    assert_reference(&data, &call(RangeFunc::Increase, "c1", 60), 60, Some(40.0));
    assert_reference(
        &data,
        &call(RangeFunc::Rate, "c1", 60),
        60,
        Some(40.0 / 60.0),
    );
    assert_reference(
        &data,
        &call(RangeFunc::Increase, "c2", 60),
        60,
        Some(20.0 * 43.0 / 30.0),
    );
    assert_reference(
        &data,
        &call(RangeFunc::Delta, "c2", 60),
        60,
        Some(20.0 * 47.5 / 30.0),
    );
    assert_reference(&data, &call(RangeFunc::Increase, "c3", 70), 90, Some(35.0));
    assert_reference(&data, &call(RangeFunc::Rate, "c3", 5), 42, None);
    assert_reference(&data, &call(RangeFunc::Increase, "c4", 40), 40, Some(13.0));
    assert_reference(&data, &call(RangeFunc::Irate, "c4", 40), 20, Some(0.2));
    assert_reference(&data, &call(RangeFunc::Count, "c4", 40), 40, Some(5.0));
    assert_reference(&data, &E::Sel(sel("s")), 120, None);
    assert_reference(&data, &E::Sel(sel("s")), 150, Some(5.0));
    assert_reference(&data, &call(RangeFunc::Count, "s", 120), 120, Some(2.0));
    assert_reference(
        &data,
        &subquery(RangeFunc::Sum, "g2", 60, 20, 0),
        305,
        Some(84.0),
    );
    assert_reference(
        &data,
        &subquery(RangeFunc::Sum, "g2", 60, 20, 30),
        305,
        Some(72.0),
    );
    assert_reference(
        &data,
        &subquery(RangeFunc::Count, "g2", 60, 20, 0),
        300,
        Some(4.0),
    );
    let range = reference_range(&data, &call(RangeFunc::Rate, "c4", 20), (0, 10_000, 5)).unwrap();
    let want = [(10_000, 0.5), (20_000, 0.35), (30_000, 0.3), (40_000, 0.3)];
    assert_eq!(range.len(), 1);
    assert_eq!(range[0].0, "{a=\"x\"}");
    assert_eq!(range[0].1.len(), want.len());
    for (got, want) in range[0].1.iter().zip(want) {
        assert!(
            got.0 == want.0 && same_f64(got.1, want.1, 1e-12),
            "{got:?} {want:?}"
        );
    }
}
