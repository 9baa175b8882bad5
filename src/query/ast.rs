//! The PromQL expression tree produced by [`super::parse::parse_expr`].
//!
//! The tree is what an evaluator needs and nothing else: parentheses are
//! gone (the tree's shape is the grouping), unary plus is gone, `-` applied
//! to a number literal is folded into the literal (as Prometheus does), and
//! positions are not kept. Every tree that the parser returns is
//! well-typed: [`Expr::value_type`] never meets an operand of the wrong
//! type.
//!
//! Selectors are boxed so that an `Expr` stays small (32 bytes).
//!
//! Times are integer milliseconds, as everywhere in strata: durations
//! (ranges, steps, offsets) and `@` timestamps.
//!
//! `Display` prints canonical PromQL with the fewest parentheses that keep
//! the tree's shape, so `parse_expr(&expr.to_string()) == Ok(expr)` for
//! every tree the parser builds (and for every tree built by hand that
//! keeps the invariants documented on each type).

use std::fmt;

use crate::index::Matcher;
use crate::series::METRIC_NAME_LABEL;

/// The type of a PromQL expression's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    Scalar,
    /// One sample per series at each evaluation time.
    Vector,
    /// A range of samples per series at each evaluation time.
    Matrix,
    String,
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueType::Scalar => "scalar",
            ValueType::Vector => "instant vector",
            ValueType::Matrix => "range vector",
            ValueType::String => "string",
        })
    }
}

/// A PromQL expression.
#[derive(Debug, Clone)]
pub enum Expr {
    /// A number literal; `Inf`, `NaN`, and negative after `-` folding.
    /// Compared by bit pattern, so `NaN == NaN` in the tree.
    Number(f64),
    /// A string literal (only as a function or aggregation argument).
    String(String),
    /// An instant vector selector: `metric{label="v"} @ t offset d`.
    Vector(Box<VectorSelector>),
    /// A range vector selector `metric{...}[range] @ t offset d`; the
    /// modifiers live in `selector`.
    Matrix {
        selector: Box<VectorSelector>,
        /// Milliseconds, > 0.
        range_ms: i64,
    },
    /// `expr[range:step] @ t offset d`, a range vector.
    Subquery(Box<Subquery>),
    /// A function call; the arguments match the function's signature.
    Call { func: Function, args: Vec<Expr> },
    /// An aggregation over an instant vector.
    Aggregate(Box<Aggregate>),
    /// Unary minus of a scalar or instant vector (never of a bare number
    /// literal: that is folded into [`Expr::Number`]).
    Neg(Box<Expr>),
    /// A binary operation.
    Binary(Box<Binary>),
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Expr::Number(a), Expr::Number(b)) => a.to_bits() == b.to_bits(),
            (Expr::String(a), Expr::String(b)) => a == b,
            (Expr::Vector(a), Expr::Vector(b)) => a == b,
            (
                Expr::Matrix {
                    selector: a,
                    range_ms: ra,
                },
                Expr::Matrix {
                    selector: b,
                    range_ms: rb,
                },
            ) => a == b && ra == rb,
            (Expr::Subquery(a), Expr::Subquery(b)) => a == b,
            (Expr::Call { func: fa, args: aa }, Expr::Call { func: fb, args: ab }) => {
                fa == fb && aa == ab
            }
            (Expr::Aggregate(a), Expr::Aggregate(b)) => a == b,
            (Expr::Neg(a), Expr::Neg(b)) => a == b,
            (Expr::Binary(a), Expr::Binary(b)) => a == b,
            _ => false,
        }
    }
}

/// Where `@` pins an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// Unix milliseconds (written in seconds: `@ 1609746000.5`).
    Timestamp(i64),
    /// `@ start()`: the start of the range query (the time of an instant query).
    Start,
    /// `@ end()`: the end of the range query (the time of an instant query).
    End,
}

/// A series selector with its modifiers.
///
/// Invariant: when `name` is set, `matchers[0]` is `__name__="name"` and
/// no other matcher is on `__name__`; [`VectorSelector::new`] keeps it.
#[derive(Debug, Clone)]
pub struct VectorSelector {
    /// The metric name when written before the braces.
    pub name: Option<String>,
    /// Every matcher the series must satisfy, the name's first. At least
    /// one of them rejects the empty string.
    pub matchers: Vec<Matcher>,
    /// `offset`, in milliseconds (negative looks ahead); 0 when absent.
    pub offset_ms: i64,
    pub at: Option<At>,
}

impl VectorSelector {
    /// A selector without modifiers: `name{matchers}`.
    pub fn new(name: Option<&str>, mut matchers: Vec<Matcher>) -> Self {
        if let Some(name) = name {
            matchers.insert(0, Matcher::equal(METRIC_NAME_LABEL, name));
        }
        Self {
            name: name.map(str::to_owned),
            matchers,
            offset_ms: 0,
            at: None,
        }
    }

    /// `name{...}` without modifiers.
    fn fmt_core(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = match &self.name {
            Some(name) => {
                f.write_str(name)?;
                &self.matchers[1.min(self.matchers.len())..]
            }
            None => &self.matchers[..],
        };
        if shown.is_empty() && self.name.is_some() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, m) in shown.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(
                f,
                "{}{}{}",
                m.name(),
                m.op().symbol(),
                FormatString(m.value())
            )?;
        }
        f.write_str("}")
    }
}

impl PartialEq for VectorSelector {
    fn eq(&self, other: &Self) -> bool {
        let same = |a: &Matcher, b: &Matcher| {
            a.name() == b.name() && a.op() == b.op() && a.value() == b.value()
        };
        self.name == other.name
            && self.offset_ms == other.offset_ms
            && self.at == other.at
            && self.matchers.len() == other.matchers.len()
            && self
                .matchers
                .iter()
                .zip(&other.matchers)
                .all(|(a, b)| same(a, b))
    }
}

/// `expr[range:step]` with modifiers.
#[derive(Debug, Clone, PartialEq)]
pub struct Subquery {
    /// An instant vector expression.
    pub expr: Expr,
    /// Milliseconds, > 0.
    pub range_ms: i64,
    /// Milliseconds, > 0; `None` (`[1h:]`) means the query's default
    /// evaluation interval.
    pub step_ms: Option<i64>,
    pub offset_ms: i64,
    pub at: Option<At>,
}

/// An aggregation: `op by (labels) (param, expr)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    pub op: AggOp,
    /// Present exactly when `op.param_type()` is.
    pub param: Option<Expr>,
    /// An instant vector expression.
    pub expr: Expr,
    pub grouping: Grouping,
}

/// Which labels an aggregation keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grouping {
    /// Keep only these labels; `By(vec![])` (also written with no clause)
    /// aggregates everything into one series.
    By(Vec<String>),
    /// Keep every label except these (and the metric name).
    Without(Vec<String>),
}

/// A binary operation `lhs op bool on(...) group_left(...) rhs`.
#[derive(Debug, Clone, PartialEq)]
pub struct Binary {
    pub op: BinOp,
    pub lhs: Expr,
    pub rhs: Expr,
    /// `bool`: comparisons return 0/1 instead of filtering. Only on
    /// comparisons; always set for a comparison of two scalars.
    pub return_bool: bool,
    /// `on`/`ignoring` and grouping; only between two instant vectors.
    /// `None` is the default: match on all labels (`ignoring()`), one to
    /// one for arithmetic and comparisons, many to many for set operators.
    pub matching: Option<VectorMatching>,
}

/// `on(labels)` or `ignoring(labels)` with an optional `group_left` /
/// `group_right`. Never equal to the default (`ignoring()` one to one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorMatching {
    /// `on` when true, `ignoring` when false.
    pub on: bool,
    pub labels: Vec<String>,
    /// Always [`Cardinality::OneToOne`] for set operators.
    pub card: Cardinality,
}

/// How many series of each side may match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cardinality {
    OneToOne,
    /// `group_left(labels)`: many on the left per one on the right; the
    /// labels are copied from the right.
    ManyToOne(Vec<String>),
    /// `group_right(labels)`.
    OneToMany(Vec<String>),
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eql,
    Neq,
    Gtr,
    Lss,
    Gte,
    Lte,
    And,
    Or,
    Unless,
}

/// Display precedence of a unary minus (between `*` and `^`).
pub(crate) const UNARY_PRECEDENCE: u8 = 6;
/// Display precedence of atoms (selectors, calls, literals).
const ATOM_PRECEDENCE: u8 = 8;

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Pow => "^",
            BinOp::Atan2 => "atan2",
            BinOp::Eql => "==",
            BinOp::Neq => "!=",
            BinOp::Gtr => ">",
            BinOp::Lss => "<",
            BinOp::Gte => ">=",
            BinOp::Lte => "<=",
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Unless => "unless",
        }
    }

    /// Binding strength: `or` 1, `and unless` 2, comparisons 3, `+ -` 4,
    /// `* / % atan2` 5, `^` 7 (unary minus sits at 6).
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And | BinOp::Unless => 2,
            BinOp::Eql | BinOp::Neq | BinOp::Gtr | BinOp::Lss | BinOp::Gte | BinOp::Lte => 3,
            BinOp::Add | BinOp::Sub => 4,
            BinOp::Mul | BinOp::Div | BinOp::Mod | BinOp::Atan2 => 5,
            BinOp::Pow => 7,
        }
    }

    /// Only `^` groups from the right.
    pub fn is_right_assoc(self) -> bool {
        self == BinOp::Pow
    }

    pub fn is_comparison(self) -> bool {
        self.precedence() == 3
    }

    /// `and`, `or`, `unless`.
    pub fn is_set_op(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }
}

/// Aggregation operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    Quantile,
    CountValues,
}

impl AggOp {
    pub const ALL: [AggOp; 11] = [
        AggOp::Sum,
        AggOp::Avg,
        AggOp::Min,
        AggOp::Max,
        AggOp::Count,
        AggOp::Stddev,
        AggOp::Stdvar,
        AggOp::Topk,
        AggOp::Bottomk,
        AggOp::Quantile,
        AggOp::CountValues,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AggOp::Sum => "sum",
            AggOp::Avg => "avg",
            AggOp::Min => "min",
            AggOp::Max => "max",
            AggOp::Count => "count",
            AggOp::Stddev => "stddev",
            AggOp::Stdvar => "stdvar",
            AggOp::Topk => "topk",
            AggOp::Bottomk => "bottomk",
            AggOp::Quantile => "quantile",
            AggOp::CountValues => "count_values",
        }
    }

    pub fn from_name(name: &str) -> Option<AggOp> {
        AggOp::ALL.into_iter().find(|op| op.name() == name)
    }

    /// The type of the first argument, for the operators that take one.
    pub fn param_type(self) -> Option<ValueType> {
        match self {
            AggOp::Topk | AggOp::Bottomk | AggOp::Quantile => Some(ValueType::Scalar),
            AggOp::CountValues => Some(ValueType::String),
            _ => None,
        }
    }
}

/// The functions of the subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Rate,
    Irate,
    Increase,
    Delta,
    Idelta,
    Resets,
    Changes,
    Deriv,
    AvgOverTime,
    MinOverTime,
    MaxOverTime,
    SumOverTime,
    CountOverTime,
    LastOverTime,
    QuantileOverTime,
    StddevOverTime,
    Absent,
    AbsentOverTime,
    HistogramQuantile,
    Abs,
    Ceil,
    Floor,
    Round,
    Clamp,
    ClampMin,
    ClampMax,
    Time,
    Timestamp,
    Vector,
    Scalar,
    LabelReplace,
}

/// A function's argument types and result type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    pub args: &'static [ValueType],
    /// How many of `args` must be given (the rest are optional).
    pub required: usize,
    pub returns: ValueType,
}

impl Function {
    pub const ALL: [Function; 31] = [
        Function::Rate,
        Function::Irate,
        Function::Increase,
        Function::Delta,
        Function::Idelta,
        Function::Resets,
        Function::Changes,
        Function::Deriv,
        Function::AvgOverTime,
        Function::MinOverTime,
        Function::MaxOverTime,
        Function::SumOverTime,
        Function::CountOverTime,
        Function::LastOverTime,
        Function::QuantileOverTime,
        Function::StddevOverTime,
        Function::Absent,
        Function::AbsentOverTime,
        Function::HistogramQuantile,
        Function::Abs,
        Function::Ceil,
        Function::Floor,
        Function::Round,
        Function::Clamp,
        Function::ClampMin,
        Function::ClampMax,
        Function::Time,
        Function::Timestamp,
        Function::Vector,
        Function::Scalar,
        Function::LabelReplace,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Function::Rate => "rate",
            Function::Irate => "irate",
            Function::Increase => "increase",
            Function::Delta => "delta",
            Function::Idelta => "idelta",
            Function::Resets => "resets",
            Function::Changes => "changes",
            Function::Deriv => "deriv",
            Function::AvgOverTime => "avg_over_time",
            Function::MinOverTime => "min_over_time",
            Function::MaxOverTime => "max_over_time",
            Function::SumOverTime => "sum_over_time",
            Function::CountOverTime => "count_over_time",
            Function::LastOverTime => "last_over_time",
            Function::QuantileOverTime => "quantile_over_time",
            Function::StddevOverTime => "stddev_over_time",
            Function::Absent => "absent",
            Function::AbsentOverTime => "absent_over_time",
            Function::HistogramQuantile => "histogram_quantile",
            Function::Abs => "abs",
            Function::Ceil => "ceil",
            Function::Floor => "floor",
            Function::Round => "round",
            Function::Clamp => "clamp",
            Function::ClampMin => "clamp_min",
            Function::ClampMax => "clamp_max",
            Function::Time => "time",
            Function::Timestamp => "timestamp",
            Function::Vector => "vector",
            Function::Scalar => "scalar",
            Function::LabelReplace => "label_replace",
        }
    }

    pub fn from_name(name: &str) -> Option<Function> {
        Function::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn signature(self) -> Signature {
        use ValueType::{Matrix, Scalar, String, Vector};
        let (args, required, returns): (&'static [ValueType], usize, ValueType) = match self {
            Function::Rate
            | Function::Irate
            | Function::Increase
            | Function::Delta
            | Function::Idelta
            | Function::Resets
            | Function::Changes
            | Function::Deriv
            | Function::AvgOverTime
            | Function::MinOverTime
            | Function::MaxOverTime
            | Function::SumOverTime
            | Function::CountOverTime
            | Function::LastOverTime
            | Function::StddevOverTime
            | Function::AbsentOverTime => (&[Matrix], 1, Vector),
            Function::QuantileOverTime => (&[Scalar, Matrix], 2, Vector),
            Function::HistogramQuantile => (&[Scalar, Vector], 2, Vector),
            Function::Absent
            | Function::Abs
            | Function::Ceil
            | Function::Floor
            | Function::Timestamp => (&[Vector], 1, Vector),
            Function::Round => (&[Vector, Scalar], 1, Vector),
            Function::Clamp => (&[Vector, Scalar, Scalar], 3, Vector),
            Function::ClampMin | Function::ClampMax => (&[Vector, Scalar], 2, Vector),
            Function::Time => (&[], 0, Scalar),
            Function::Vector => (&[Scalar], 1, Vector),
            Function::Scalar => (&[Vector], 1, Scalar),
            Function::LabelReplace => (&[Vector, String, String, String, String], 5, Vector),
        };
        Signature {
            args,
            required,
            returns,
        }
    }
}

impl Expr {
    /// The type of the expression's value.
    pub fn value_type(&self) -> ValueType {
        match self {
            Expr::Number(_) => ValueType::Scalar,
            Expr::String(_) => ValueType::String,
            Expr::Vector(_) | Expr::Aggregate(_) => ValueType::Vector,
            Expr::Matrix { .. } | Expr::Subquery(_) => ValueType::Matrix,
            Expr::Call { func, .. } => func.signature().returns,
            Expr::Neg(inner) => inner.value_type(),
            Expr::Binary(b) => {
                if b.lhs.value_type() == ValueType::Vector
                    || b.rhs.value_type() == ValueType::Vector
                {
                    ValueType::Vector
                } else {
                    ValueType::Scalar
                }
            }
        }
    }

    /// How tightly the printed form binds, to decide on parentheses.
    fn precedence(&self) -> u8 {
        match self {
            Expr::Binary(b) => b.op.precedence(),
            Expr::Neg(_) => UNARY_PRECEDENCE,
            Expr::Number(n) if n.is_sign_negative() => UNARY_PRECEDENCE,
            _ => ATOM_PRECEDENCE,
        }
    }
}

/// Writes `expr`, in parentheses when `parens`.
fn write_operand(f: &mut fmt::Formatter<'_>, expr: &Expr, parens: bool) -> fmt::Result {
    if parens {
        write!(f, "({expr})")
    } else {
        write!(f, "{expr}")
    }
}

fn write_labels(f: &mut fmt::Formatter<'_>, labels: &[String]) -> fmt::Result {
    write!(f, "({})", labels.join(", "))
}

fn write_modifiers(f: &mut fmt::Formatter<'_>, at: Option<At>, offset_ms: i64) -> fmt::Result {
    match at {
        Some(At::Timestamp(ms)) => {
            let sign = if ms < 0 { "-" } else { "" };
            let abs = ms.unsigned_abs();
            match abs % 1000 {
                0 => write!(f, " @ {sign}{}", abs / 1000)?,
                frac => write!(f, " @ {sign}{}.{frac:03}", abs / 1000)?,
            }
        }
        Some(At::Start) => f.write_str(" @ start()")?,
        Some(At::End) => f.write_str(" @ end()")?,
        None => {}
    }
    if offset_ms != 0 {
        write!(f, " offset {}", FormatDuration(offset_ms))?;
    }
    Ok(())
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Number(n) => write!(f, "{}", FormatNumber(*n)),
            Expr::String(s) => write!(f, "{}", FormatString(s)),
            Expr::Vector(selector) => {
                selector.fmt_core(f)?;
                write_modifiers(f, selector.at, selector.offset_ms)
            }
            Expr::Matrix { selector, range_ms } => {
                selector.fmt_core(f)?;
                write!(f, "[{}]", FormatDuration(*range_ms))?;
                write_modifiers(f, selector.at, selector.offset_ms)
            }
            Expr::Subquery(sq) => {
                write_operand(f, &sq.expr, sq.expr.precedence() < ATOM_PRECEDENCE)?;
                write!(f, "[{}:", FormatDuration(sq.range_ms))?;
                if let Some(step) = sq.step_ms {
                    write!(f, "{}", FormatDuration(step))?;
                }
                f.write_str("]")?;
                write_modifiers(f, sq.at, sq.offset_ms)
            }
            Expr::Call { func, args } => {
                write!(f, "{}(", func.name())?;
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{arg}")?;
                }
                f.write_str(")")
            }
            Expr::Aggregate(agg) => {
                f.write_str(agg.op.name())?;
                match &agg.grouping {
                    Grouping::By(labels) if labels.is_empty() => {}
                    Grouping::By(labels) => {
                        f.write_str(" by ")?;
                        write_labels(f, labels)?;
                        f.write_str(" ")?;
                    }
                    Grouping::Without(labels) => {
                        f.write_str(" without ")?;
                        write_labels(f, labels)?;
                        f.write_str(" ")?;
                    }
                }
                f.write_str("(")?;
                if let Some(param) = &agg.param {
                    write!(f, "{param}, ")?;
                }
                write!(f, "{})", agg.expr)
            }
            Expr::Neg(inner) => {
                f.write_str("-")?;
                // A bare number after `-` would be folded into a literal.
                let parens =
                    matches!(**inner, Expr::Number(_)) || inner.precedence() < UNARY_PRECEDENCE;
                write_operand(f, inner, parens)
            }
            Expr::Binary(b) => {
                let p = b.op.precedence();
                let lhs_parens = if b.op.is_right_assoc() {
                    b.lhs.precedence() <= p
                } else {
                    b.lhs.precedence() < p
                };
                // A unary minus on the right never needs parentheses: the
                // right operand always starts where a unary may start.
                let rhs_prec = b.rhs.precedence();
                let rhs_parens = rhs_prec != UNARY_PRECEDENCE
                    && if b.op.is_right_assoc() {
                        rhs_prec < p
                    } else {
                        rhs_prec <= p
                    };
                write_operand(f, &b.lhs, lhs_parens)?;
                write!(f, " {}", b.op.symbol())?;
                if b.return_bool {
                    f.write_str(" bool")?;
                }
                if let Some(m) = &b.matching {
                    f.write_str(if m.on { " on" } else { " ignoring" })?;
                    write_labels(f, &m.labels)?;
                    match &m.card {
                        Cardinality::OneToOne => {}
                        Cardinality::ManyToOne(labels) => {
                            f.write_str(" group_left")?;
                            write_labels(f, labels)?;
                        }
                        Cardinality::OneToMany(labels) => {
                            f.write_str(" group_right")?;
                            write_labels(f, labels)?;
                        }
                    }
                }
                f.write_str(" ")?;
                write_operand(f, &b.rhs, rhs_parens)
            }
        }
    }
}

/// Prints a number as PromQL reads it back to the same bits (for the
/// NaN the parser produces): `1`, `0.5`, `1e300`, `-Inf`, `NaN`.
pub(crate) struct FormatNumber(pub f64);

impl fmt::Display for FormatNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if n.is_sign_negative() {
            f.write_str("-")?;
        }
        let abs = n.abs();
        if abs.is_nan() {
            f.write_str("NaN")
        } else if abs.is_infinite() {
            f.write_str("Inf")
        } else if abs.fract() == 0.0 && abs < 1e15 {
            write!(f, "{abs}")
        } else {
            write!(f, "{abs:?}")
        }
    }
}

/// Prints milliseconds as a PromQL duration: `1h30m`, `500ms`, `-5m`, `0s`.
pub(crate) struct FormatDuration(pub i64);

impl fmt::Display for FormatDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        if self.0 < 0 {
            f.write_str("-")?;
        }
        let mut rest = self.0.unsigned_abs();
        for (unit, ms) in super::lex::DURATION_UNITS {
            let ms = ms.unsigned_abs();
            if rest >= ms {
                write!(f, "{}{unit}", rest / ms)?;
                rest %= ms;
            }
        }
        Ok(())
    }
}

/// Prints a string as a double-quoted PromQL string literal.
pub(crate) struct FormatString<'a>(pub &'a str);

impl fmt::Display for FormatString<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if c.is_control() => write!(f, "\\u{:04x}", c as u32)?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}
