//! Comparing two engines' answers for tests/prometheus_diff.rs, and the
//! report of every expression × run.
//!
//! Invariants: an [`Answer`] keys its series by [`label_text`], the same
//! text for both engines; two answers agree only when they have the same
//! result type, the same series, the same timestamps and values equal
//! within [`RELATIVE_TOLERANCE`] (NaN equals NaN, an infinity only itself),
//! or when both engines reject the query.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// Values agree when `|a - b| <= RELATIVE_TOLERANCE * max(|a|, |b|)`.
pub const RELATIVE_TOLERANCE: f64 = 1e-9;

/// One engine's answer to one query.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The result type as Prometheus' API names it: `matrix`, `vector`,
    /// `scalar` or `string`.
    pub kind: &'static str,
    /// Points by series: one point per series for a vector or a scalar
    /// (whose series is `{}`).
    pub series: BTreeMap<String, Vec<(i64, f64)>>,
}

/// A label set as text, sorted by name, the same for both engines:
/// `{__name__="up", job="node"}`.
pub fn label_text<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut sorted: Vec<_> = labels.into_iter().collect();
    sorted.sort();
    let mut text = String::from("{");
    for (i, (name, value)) in sorted.iter().enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        write!(text, "{name}={value:?}").unwrap();
    }
    text.push('}');
    text
}

/// How one expression × run came out.
pub enum Verdict {
    Agree {
        series: usize,
        points: usize,
        /// Points equal within the tolerance but not bit for bit.
        inexact: usize,
    },
    /// Both answers are empty: true, but it tests nothing.
    BothEmpty,
    BothRejected {
        prometheus: String,
        strata: String,
    },
    Differ(String),
}

pub fn same_value(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    a.is_finite() && b.is_finite() && (a - b).abs() <= RELATIVE_TOLERANCE * a.abs().max(b.abs())
}

/// Compares Prometheus' answer (`theirs`) with strata's (`ours`).
pub fn compare(theirs: &Result<Answer, String>, ours: &Result<Answer, String>) -> Verdict {
    let (theirs, ours) = match (theirs, ours) {
        (Ok(t), Ok(o)) => (t, o),
        (Err(t), Err(o)) => {
            return Verdict::BothRejected {
                prometheus: t.clone(),
                strata: o.clone(),
            }
        }
        (Err(t), Ok(o)) => {
            return Verdict::Differ(format!(
                "Prometheus rejects it ({t}); strata answers {} series",
                o.series.len()
            ))
        }
        (Ok(t), Err(o)) => {
            return Verdict::Differ(format!(
                "strata fails ({o}); Prometheus answers {} series",
                t.series.len()
            ))
        }
    };
    let mut why = String::new();
    if theirs.kind != ours.kind {
        writeln!(
            why,
            "Prometheus answers a {}, strata a {}",
            theirs.kind, ours.kind
        )
        .unwrap();
    }
    let only = |a: &Answer, b: &Answer| -> Vec<String> {
        a.series
            .iter()
            .filter(|(k, _)| !b.series.contains_key(*k))
            .map(|(k, v)| match v.as_slice() {
                [(t, value)] => format!("{k} ({value:?} at {t} ms)"),
                _ => format!("{k} ({} points)", v.len()),
            })
            .collect()
    };
    for (side, missing) in [
        ("only Prometheus", only(theirs, ours)),
        ("only strata", only(ours, theirs)),
    ] {
        if !missing.is_empty() {
            writeln!(why, "{} series {side} answers, e.g.:", missing.len()).unwrap();
            for m in missing.iter().take(3) {
                writeln!(why, "    {m}").unwrap();
            }
        }
    }
    let (mut differing, mut first) = (0, None);
    for (labels, t_points) in &theirs.series {
        let Some(o_points) = ours.series.get(labels) else {
            continue;
        };
        if let Some(diff) = first_difference(t_points, o_points) {
            differing += 1;
            first.get_or_insert_with(|| format!("    {labels}: {diff}"));
        }
    }
    if let Some(first) = first {
        writeln!(why, "{differing} common series differ; the first:\n{first}").unwrap();
    }
    if !why.is_empty() {
        return Verdict::Differ(why.trim_end().to_owned());
    }
    let points: usize = theirs.series.values().map(Vec::len).sum();
    if points == 0 {
        return Verdict::BothEmpty;
    }
    let inexact = theirs
        .series
        .iter()
        .flat_map(|(labels, t_points)| t_points.iter().zip(&ours.series[labels]))
        .filter(|((_, t), (_, o))| t != o && !(t.is_nan() && o.is_nan()))
        .count();
    Verdict::Agree {
        series: theirs.series.len(),
        points,
        inexact,
    }
}

/// The first point where two series differ, described.
fn first_difference(theirs: &[(i64, f64)], ours: &[(i64, f64)]) -> Option<String> {
    for i in 0..theirs.len().max(ours.len()) {
        match (theirs.get(i), ours.get(i)) {
            (Some(&(tt, tv)), Some(&(ot, ov))) if tt == ot && same_value(tv, ov) => continue,
            (Some(&(tt, tv)), Some(&(ot, ov))) if tt == ot => {
                return Some(format!(
                    "at {tt} ms (point {i}) Prometheus {tv:?}, strata {ov:?} (relative difference {:.3e})",
                    (tv - ov).abs() / tv.abs().max(ov.abs())
                ))
            }
            (t, o) => {
                return Some(format!(
                    "point {i}: Prometheus {}, strata {} ({} vs {} points)",
                    describe(t),
                    describe(o),
                    theirs.len(),
                    ours.len()
                ))
            }
        }
    }
    None
}

fn describe(point: Option<&(i64, f64)>) -> String {
    point.map_or_else(|| "none".to_owned(), |(t, v)| format!("{v:?} at {t} ms"))
}

/// The verdicts of one data set, printed as a table and counted.
#[derive(Default)]
pub struct Report {
    /// Expression, run name, verdict; an expression's runs are adjacent.
    lines: Vec<(String, String, Verdict)>,
    pub prometheus_time: Duration,
    pub strata_time: Duration,
}

impl Report {
    pub fn record(&mut self, expression: &str, run: &str, verdict: Verdict) {
        self.lines
            .push((expression.to_owned(), run.to_owned(), verdict));
    }

    /// Comparisons made (expression × run).
    pub fn total(&self) -> usize {
        self.lines.len()
    }

    pub fn expressions(&self) -> usize {
        let mut names: Vec<_> = self.lines.iter().map(|(e, _, _)| e).collect();
        names.dedup();
        names.len()
    }

    /// Expressions empty on both sides in every run: they test nothing.
    fn never_answered(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for chunk in self.lines.chunk_by(|a, b| a.0 == b.0) {
            if chunk
                .iter()
                .all(|(_, _, v)| matches!(v, Verdict::BothEmpty))
            {
                out.push(&chunk[0].0);
            }
        }
        out
    }

    /// Differences, plus, when `empty_fails`, every run of an expression
    /// that never answered anything.
    pub fn failures(&self, empty_fails: bool) -> usize {
        let differ = self
            .lines
            .iter()
            .filter(|(_, _, v)| matches!(v, Verdict::Differ(_)))
            .count();
        let empty = if empty_fails {
            self.never_answered().len()
        } else {
            0
        };
        differ + empty
    }

    /// Expressions with at least one difference.
    pub fn differing_expressions(&self) -> usize {
        let mut names: Vec<_> = self
            .lines
            .iter()
            .filter(|(_, _, v)| matches!(v, Verdict::Differ(_)))
            .map(|(e, _, _)| e)
            .collect();
        names.dedup();
        names.len()
    }

    pub fn print(&self, title: &str, empty_fails: bool) {
        println!("== {title}");
        for (expression, run, verdict) in &self.lines {
            let mark = if matches!(verdict, Verdict::Differ(_)) {
                "DIFF"
            } else {
                "ok"
            };
            let what = match verdict {
                Verdict::Agree {
                    series,
                    points,
                    inexact: 0,
                } => format!("{series} series, {points} points"),
                Verdict::Agree {
                    series,
                    points,
                    inexact,
                } => format!("{series} series, {points} points ({inexact} within tolerance)"),
                Verdict::BothEmpty => "both empty".to_owned(),
                Verdict::BothRejected { .. } => "both reject it".to_owned(),
                Verdict::Differ(_) => "differ".to_owned(),
            };
            println!("{mark:4} {run:12} {what:26} {expression}");
            match verdict {
                Verdict::Differ(why) => println!("    {why}"),
                Verdict::BothRejected { prometheus, strata } => {
                    println!("    Prometheus: {prometheus}\n    strata: {strata}")
                }
                _ => {}
            }
        }
        for expression in self.never_answered() {
            let verdict = if empty_fails { "FAILS" } else { "note" };
            println!("{verdict}: empty on both sides in every run, tests nothing: {expression}");
        }
        let (points, inexact) = self
            .lines
            .iter()
            .filter_map(|(_, _, v)| match v {
                Verdict::Agree {
                    points, inexact, ..
                } => Some((*points, *inexact)),
                _ => None,
            })
            .fold((0, 0), |(p, i), (vp, vi)| (p + vp, i + vi));
        println!(
            "{points} points agree, {inexact} of them within the tolerance but not bit for bit; \
             Prometheus answered in {:.2} s (HTTP and JSON included), strata in {:.2} s",
            self.prometheus_time.as_secs_f64(),
            self.strata_time.as_secs_f64()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(series: &[(&str, &[(i64, f64)])]) -> Result<Answer, String> {
        Ok(Answer {
            kind: "matrix",
            series: series
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_vec()))
                .collect(),
        })
    }

    #[test]
    fn values_agree_within_the_relative_tolerance_only() {
        assert!(same_value(f64::NAN, f64::NAN));
        assert!(same_value(f64::INFINITY, f64::INFINITY));
        assert!(same_value(0.0, -0.0));
        assert!(same_value(1.0, 1.0 + 0.5e-9));
        assert!(!same_value(1.0, 1.0 + 2e-9));
        // A relative bound: at 1e6 an absolute 1e-4 is 1e-10 relative.
        assert!(same_value(1e6, 1e6 + 1e-4));
        assert!(!same_value(f64::NAN, 0.0));
        assert!(!same_value(f64::INFINITY, f64::NEG_INFINITY));
        // Infinity is not "within tolerance" of a finite number, although
        // inf - x <= 1e-9 * inf holds.
        assert!(!same_value(f64::INFINITY, 1e300));
        // No absolute slack at zero: float noise is reported.
        assert!(!same_value(0.0, 1e-17));
    }

    #[test]
    fn comparison_names_the_first_differing_point_and_missing_series() {
        let a = [(0, 1.0), (15_000, 2.0)];
        let agree = compare(&answer(&[("{a}", &a)]), &answer(&[("{a}", &a)]));
        assert!(matches!(
            agree,
            Verdict::Agree {
                series: 1,
                points: 2,
                inexact: 0
            }
        ));
        let close = [(0, 1.0), (15_000, 2.0 + 1e-12)];
        let agree = compare(&answer(&[("{a}", &a)]), &answer(&[("{a}", &close)]));
        assert!(matches!(
            agree,
            Verdict::Agree {
                series: 1,
                points: 2,
                inexact: 1
            }
        ));

        let b = [(0, 1.0), (15_000, 2.5)];
        let Verdict::Differ(why) = compare(&answer(&[("{a}", &a)]), &answer(&[("{a}", &b)])) else {
            panic!("a different value must differ");
        };
        assert!(
            why.contains("at 15000 ms (point 1) Prometheus 2.0, strata 2.5"),
            "{why}"
        );

        let c = [(0, 1.0)];
        let Verdict::Differ(why) = compare(&answer(&[("{a}", &a)]), &answer(&[("{a}", &c)])) else {
            panic!("a missing point must differ");
        };
        assert!(
            why.contains("point 1: Prometheus 2.0 at 15000 ms, strata none"),
            "{why}"
        );

        let Verdict::Differ(why) = compare(
            &answer(&[("{a}", &a), ("{b}", &a)]),
            &answer(&[("{a}", &a), ("{c}", &c)]),
        ) else {
            panic!("different series must differ");
        };
        assert!(why.contains("1 series only Prometheus answers"), "{why}");
        assert!(why.contains("{b} (2 points)"), "{why}");
        assert!(why.contains("1 series only strata answers"), "{why}");
        assert!(why.contains("{c} (1.0 at 0 ms)"), "{why}");

        let mut vector = answer(&[("{a}", &c)]).unwrap();
        vector.kind = "vector";
        let Verdict::Differ(why) = compare(&answer(&[("{a}", &c)]), &Ok(vector)) else {
            panic!("a different result type must differ");
        };
        assert_eq!(why, "Prometheus answers a matrix, strata a vector");

        assert!(matches!(
            compare(&answer(&[]), &answer(&[])),
            Verdict::BothEmpty
        ));
        assert!(matches!(
            compare(&Err("bad".into()), &Err("worse".into())),
            Verdict::BothRejected { .. }
        ));
        assert!(matches!(
            compare(&Err("bad".into()), &answer(&[])),
            Verdict::Differ(_)
        ));
    }

    #[test]
    fn an_expression_fails_as_empty_only_when_every_run_is_empty() {
        let mut report = Report::default();
        report.record("a", "15s", Verdict::BothEmpty);
        report.record("a", "60s", Verdict::BothEmpty);
        report.record(
            "b",
            "15s",
            Verdict::Agree {
                series: 1,
                points: 1,
                inexact: 0,
            },
        );
        report.record("b", "60s", Verdict::BothEmpty);
        report.record("c", "15s", Verdict::Differ("x".into()));
        report.record("c", "60s", Verdict::Differ("y".into()));
        assert_eq!(report.never_answered(), ["a"]);
        assert_eq!(report.failures(true), 3);
        assert_eq!(report.failures(false), 2);
        assert_eq!(report.differing_expressions(), 1);
        assert_eq!(report.expressions(), 3);
        assert_eq!(report.total(), 6);
    }

    #[test]
    fn label_sets_print_sorted_and_quoted() {
        assert_eq!(
            label_text([("job", "a\"b"), ("__name__", "up")]),
            r#"{__name__="up", job="a\"b"}"#
        );
        assert_eq!(label_text([]), "{}");
    }
}
