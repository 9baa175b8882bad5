//! `strata query --plot`: a line chart drawn with characters, for people
//! who would rather look than read.
//!
//! One line per series, each with its own symbol (and colour on a
//! terminal), points joined when they are one step apart and left apart
//! across gaps; a y axis with round tick values in units-aware form
//! (`1.5k`, `2M`, or `250ms`, `1.5s` for seconds); an x axis with times in
//! UTC; a legend with each series' labels.
//!
//! Invariants: every line of the chart is exactly `width` columns wide or
//! less (legend lines are cut to fit); NaN and infinite values are not
//! drawn; any input, including no series or a single point, renders
//! without panicking.

use std::fmt::Write as _;

use strata::QuerySeries;

use super::inspect::format_utc;
use super::render::series_text;

/// How values are labelled on the y axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// SI prefixes: `1.5k`, `20M`, `3G`.
    Plain,
    /// Durations: `250µs`, `20ms`, `1.5s`, `2min`, `1.5h`.
    Seconds,
}

/// Chart size and style.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Total width in columns; less than [`MIN_WIDTH`] is raised to it.
    pub width: usize,
    /// Rows of the plotting area (raised to at least 5).
    pub height: usize,
    /// ANSI colours.
    pub color: bool,
}

/// The narrowest chart: room for a y label, 30 columns of plot and an
/// RFC 3339 time in the caption.
pub const MIN_WIDTH: usize = 40;

const SYMBOLS: [char; 10] = ['*', '+', 'o', 'x', '#', '@', '%', '&', '=', '~'];
/// ANSI foreground colours: red, green, yellow, blue, magenta, cyan.
const COLORS: [u8; 6] = [31, 32, 33, 34, 35, 36];

/// The symbol and colour of series `index`: symbols cycle every 10
/// series and colours every 6, so the first 30 pairs are distinct.
fn marker(index: usize) -> (char, u8) {
    (SYMBOLS[index % SYMBOLS.len()], COLORS[index % COLORS.len()])
}

/// Draws `series` (points in time order) as a chart followed by a legend.
pub fn render(series: &[QuerySeries], unit: Unit, style: Style) -> String {
    let width = style.width.max(MIN_WIDTH);
    let rows = style.height.max(5);
    let points = || {
        series.iter().enumerate().flat_map(|(i, s)| {
            s.samples
                .iter()
                .filter(|p| p.value.is_finite())
                .map(move |p| (i, p.timestamp_ms, p.value))
        })
    };
    let Some((t_min, t_max, v_min, v_max)) = points().fold(None, |acc, (_, t, v)| {
        Some(match acc {
            None => (t, t, v, v),
            Some((t0, t1, v0, v1)) => (t.min(t0), t.max(t1), v.min(v0), v.max(v1)),
        })
    }) else {
        return "(nothing to plot: no finite values)\n".to_owned();
    };
    let axis = YAxis::new(v_min, v_max, rows, unit);
    let label_width = axis
        .labels
        .iter()
        .map(|(_, l)| l.chars().count())
        .max()
        .unwrap_or(1);
    let cols = width.saturating_sub(label_width + 2).max(10);
    let step = min_step(series);
    let col_of = |t: i64| -> usize {
        if t_max == t_min {
            cols / 2
        } else {
            // In f64: the difference of two i64 times can overflow i64.
            let fraction = (t as f64 - t_min as f64) / (t_max as f64 - t_min as f64);
            (fraction * (cols - 1) as f64).round() as usize
        }
    };

    // Later series are drawn over earlier ones.
    let mut grid: Vec<Vec<Option<usize>>> = vec![vec![None; cols]; rows];
    for (i, s) in series.iter().enumerate() {
        let mut previous: Option<(i64, usize, usize)> = None;
        for p in &s.samples {
            if !p.value.is_finite() {
                previous = None;
                continue;
            }
            let (c, r) = (col_of(p.timestamp_ms), axis.row_of(p.value));
            match previous {
                Some((t0, c0, r0))
                    if step.is_some_and(|step| {
                        p.timestamp_ms.saturating_sub(t0) <= step.saturating_add(step / 2)
                    }) =>
                {
                    draw_line(&mut grid, (c0, r0), (c, r), i);
                }
                _ => grid[r][c] = Some(i),
            }
            previous = Some((p.timestamp_ms, c, r));
        }
    }

    let mut out = String::new();
    for (r, row) in grid.iter().enumerate() {
        let label = axis
            .labels
            .iter()
            .find(|(row, _)| *row == r)
            .map(|(_, l)| l.as_str());
        let _ = write!(
            out,
            "{:>label_width$} {}",
            label.unwrap_or(""),
            if label.is_some() { '┤' } else { '│' }
        );
        for cell in row {
            match cell {
                Some(i) => {
                    let (symbol, color) = marker(*i);
                    if style.color {
                        let _ = write!(out, "\x1b[{color}m{symbol}\x1b[0m");
                    } else {
                        out.push(symbol);
                    }
                }
                None => out.push(' '),
            }
        }
        trim_end(&mut out);
        out.push('\n');
    }
    let ticks = time_ticks(t_min, t_max, cols, &col_of);
    let _ = write!(out, "{:>label_width$} └", "");
    for c in 0..cols {
        out.push(if ticks.iter().any(|(tc, _)| *tc == c) {
            '┬'
        } else {
            '─'
        });
    }
    out.push('\n');
    let mut labels = " ".repeat(label_width + 2);
    for (c, text) in &ticks {
        let len = labels.chars().count();
        // Under its tick, or moved left to end at the chart's edge; always
        // a space after the previous label.
        let at = (label_width + 2 + c).min(width.saturating_sub(text.chars().count()));
        if at > len || (at == len && len == label_width + 2) {
            labels.push_str(&" ".repeat(at - len));
            labels.push_str(text);
        }
    }
    out.push_str(labels.trim_end());
    out.push('\n');
    let step_text = step.map_or(String::new(), |s| format!(", step {}", duration_text(s)));
    let span = format!("{} to {}{step_text}", format_utc(t_min), format_utc(t_max));
    if span.chars().count() + 2 <= width {
        let _ = writeln!(out, "  {span}");
    } else {
        let _ = writeln!(out, "  from {}", format_utc(t_min));
        let _ = writeln!(out, "  to {}{step_text}", format_utc(t_max));
    }
    for (i, s) in series.iter().enumerate() {
        let (symbol, color) = marker(i);
        let name: String = series_text(&s.labels, true, false)
            .chars()
            .take(width.saturating_sub(4))
            .collect();
        if style.color {
            let _ = writeln!(out, "  \x1b[{color}m{symbol}\x1b[0m {name}");
        } else {
            let _ = writeln!(out, "  {symbol} {name}");
        }
    }
    out
}

fn trim_end(text: &mut String) {
    let kept = text.trim_end_matches(' ').len();
    text.truncate(kept);
}

/// The smallest positive time between two consecutive points of a
/// series: the query's step, for joining neighbours.
fn min_step(series: &[QuerySeries]) -> Option<i64> {
    series
        .iter()
        .flat_map(|s| {
            s.samples
                .windows(2)
                .map(|w| w[1].timestamp_ms.saturating_sub(w[0].timestamp_ms))
        })
        .filter(|&d| d > 0)
        .min()
}

/// Marks the cells from `a` to `b` (column, row) for series `index`.
fn draw_line(grid: &mut [Vec<Option<usize>>], a: (usize, usize), b: (usize, usize), index: usize) {
    let (c0, r0) = (a.0 as f64, a.1 as f64);
    let (dc, dr) = (b.0 as f64 - c0, b.1 as f64 - r0);
    let steps = dc.abs().max(dr.abs()).max(1.0) as usize;
    for k in 0..=steps {
        let f = k as f64 / steps as f64;
        let (c, r) = (
            (c0 + dc * f).round() as usize,
            (r0 + dr * f).round() as usize,
        );
        if let Some(cell) = grid.get_mut(r).and_then(|row| row.get_mut(c)) {
            *cell = Some(index);
        }
    }
}

/// The y scale: round bounds and tick labels.
struct YAxis {
    low: f64,
    high: f64,
    rows: usize,
    /// (row, label) of each tick.
    labels: Vec<(usize, String)>,
}

impl YAxis {
    fn new(min: f64, max: f64, rows: usize, unit: Unit) -> YAxis {
        let (min, max) = if min == max {
            let pad = if min == 0.0 { 1.0 } else { min.abs() / 10.0 };
            (min - pad, max + pad)
        } else {
            (min, max)
        };
        // About one tick every four rows.
        let step = nice_step((max - min) / ((rows - 1) as f64 / 4.0).max(1.0));
        let low = (min / step).floor() * step;
        let high = (max / step).ceil() * step;
        let mut axis = YAxis {
            low,
            high,
            rows,
            labels: Vec::new(),
        };
        let count = ((high - low) / step).round();
        if !(low.is_finite() && high.is_finite() && count <= (2 * rows) as f64) {
            // A span beyond f64 (or a step lost to rounding): label the
            // extremes only.
            return YAxis {
                low: min,
                high: max,
                rows,
                labels: vec![
                    (0, format_value(max, max.abs(), unit)),
                    (rows - 1, format_value(min, min.abs(), unit)),
                ],
            };
        }
        for k in 0..=count as usize {
            let value = low + k as f64 * step;
            let row = axis.row_of(value);
            if !axis.labels.iter().any(|(r, _)| *r == row) {
                axis.labels.push((row, format_value(value, step, unit)));
            }
        }
        axis
    }

    fn row_of(&self, value: f64) -> usize {
        let fraction = (self.high - value) / (self.high - self.low);
        ((fraction * (self.rows - 1) as f64).round().max(0.0) as usize).min(self.rows - 1)
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&s| s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * power)
}

/// `value` scaled to a prefix that suits `step` (the tick spacing) with
/// just enough decimals to tell neighbouring ticks apart.
pub fn format_value(value: f64, step: f64, unit: Unit) -> String {
    let reference = step.abs().max(value.abs());
    let (factor, suffix) = match unit {
        Unit::Plain => [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
            .into_iter()
            .find(|(f, _)| reference >= *f)
            .unwrap_or((1.0, "")),
        Unit::Seconds => [(3600.0, "h"), (60.0, "min"), (1.0, "s"), (1e-3, "ms")]
            .into_iter()
            .find(|(f, _)| reference >= *f)
            .unwrap_or((1e-6, "µs")),
    };
    let scaled_step = step / factor;
    let decimals = if scaled_step > 0.0 && scaled_step.is_finite() {
        (-scaled_step.log10().floor()).clamp(0.0, 6.0) as usize
    } else {
        0
    };
    if (value / factor).abs() >= 1e4 {
        // Beyond the largest prefix: exponent form keeps the label short.
        return format!("{value:.1e}");
    }
    let mut text = format!("{:.decimals$}", value / factor);
    if text.starts_with('-') && text.trim_start_matches(['-', '0', '.']).is_empty() {
        text.remove(0);
    }
    text + suffix
}

/// X-axis ticks: (column, label) at round times, about one per 16
/// columns.
fn time_ticks(
    t_min: i64,
    t_max: i64,
    cols: usize,
    col_of: &dyn Fn(i64) -> usize,
) -> Vec<(usize, String)> {
    if t_max == t_min {
        return vec![(col_of(t_min), clock(t_min, 1000))];
    }
    let wanted = (cols / 16).max(2) as i64;
    let raw = t_max.saturating_sub(t_min) / wanted;
    const STEPS: [i64; 16] = [
        1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000,
        1_800_000, 3_600_000, 10_800_000, 21_600_000, 43_200_000,
    ];
    let step = STEPS
        .iter()
        .copied()
        .find(|&s| s >= raw)
        .unwrap_or_else(|| {
            let day = 86_400_000;
            raw.div_euclid(day).saturating_add(1).saturating_mul(day)
        });
    let mut ticks = Vec::new();
    // The first multiple of `step` at or after `t_min`.
    let mut t = t_min
        .div_euclid(step)
        .checked_mul(step)
        .filter(|&t| t >= t_min)
        .unwrap_or_else(|| {
            t_min
                .div_euclid(step)
                .saturating_add(1)
                .saturating_mul(step)
        });
    while t <= t_max {
        ticks.push((col_of(t), clock(t, step)));
        match t.checked_add(step) {
            Some(next) => t = next,
            None => break,
        }
    }
    ticks
}

/// A tick label: `HH:MM:SS` below a minute's step, `HH:MM` below a day,
/// `MM-DD` from a day on; the date is added to `HH:MM` at midnight.
fn clock(time_ms: i64, step: i64) -> String {
    let text = format_utc(time_ms); // YYYY-MM-DDTHH:MM:SS.fffZ
    let (date, rest) = text.split_once('T').unwrap_or((&text, ""));
    let month_day = date.get(date.len().saturating_sub(5)..).unwrap_or(date);
    if step >= 86_400_000 {
        month_day.to_owned()
    } else if step < 60_000 {
        rest.get(..8).unwrap_or(rest).to_owned()
    } else if rest.starts_with("00:00") {
        format!("{month_day} 00:00")
    } else {
        rest.get(..5).unwrap_or(rest).to_owned()
    }
}

/// A step for the caption: `1m`, `15s`, `1h30m`, `250ms`.
fn duration_text(ms: i64) -> String {
    let mut text = String::new();
    let mut rest = ms;
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if rest >= size {
            let _ = write!(text, "{}{unit}", rest / size);
            rest %= size;
        }
    }
    if text.is_empty() {
        text.push_str("0s");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata::{Label, Sample};

    fn series(name: &str, instance: &str, points: &[(i64, f64)]) -> QuerySeries {
        QuerySeries {
            labels: vec![
                Label::new("__name__", name),
                Label::new("instance", instance),
            ],
            samples: points.iter().map(|&(t, v)| Sample::new(t, v)).collect(),
        }
    }

    #[test]
    fn values_are_formatted_with_units() {
        assert_eq!(format_value(1500.0, 500.0, Unit::Plain), "1.5k");
        assert_eq!(format_value(2e6, 1e6, Unit::Plain), "2M");
        assert_eq!(format_value(3e9, 1e9, Unit::Plain), "3G");
        assert_eq!(format_value(0.25, 0.05, Unit::Plain), "0.25");
        assert_eq!(format_value(40.0, 20.0, Unit::Plain), "40");
        assert_eq!(format_value(-0.0, 1.0, Unit::Plain), "0");
        assert_eq!(format_value(0.25, 0.05, Unit::Seconds), "250ms");
        assert_eq!(format_value(1.5, 0.5, Unit::Seconds), "1.5s");
        assert_eq!(format_value(0.00002, 0.00001, Unit::Seconds), "20µs");
        assert_eq!(format_value(120.0, 60.0, Unit::Seconds), "2min");
        assert_eq!(format_value(5400.0, 1800.0, Unit::Seconds), "1.5h");
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(2.0), 2.0);
    }

    #[test]
    fn steps_are_described() {
        assert_eq!(duration_text(60_000), "1m");
        assert_eq!(duration_text(5_400_000), "1h30m");
        assert_eq!(duration_text(250), "250ms");
    }

    #[test]
    fn empty_and_degenerate_inputs_render() {
        let style = Style {
            width: 60,
            height: 10,
            color: false,
        };
        assert!(render(&[], Unit::Plain, style).contains("nothing to plot"));
        let nan = series("up", "a", &[(0, f64::NAN), (1000, f64::INFINITY)]);
        assert!(render(&[nan], Unit::Plain, style).contains("nothing to plot"));
        let one = render(&[series("up", "a", &[(5_000, 1.0)])], Unit::Plain, style);
        // The point and the legend's symbol.
        assert_eq!(one.matches('*').count(), 2, "{one}");
        for width in [0, 1, 41, 200] {
            let chart = render(
                &[series("up", "a", &[(0, 1.0), (60_000, 2.0)])],
                Unit::Plain,
                Style {
                    width,
                    height: 0,
                    color: false,
                },
            );
            assert!(
                chart
                    .lines()
                    .all(|l| l.chars().count() <= width.max(MIN_WIDTH)),
                "{chart}"
            );
        }
    }
}
