//! Discovery: `strata labels`, `strata label-values`, `strata series`,
//! `strata metadata` and `strata cardinality`, on a data directory
//! (read-only, beside a live writer or not) or a segment file: what
//! Prometheus users get from `/api/v1/labels`, `/api/v1/label/NAME/values`,
//! `/api/v1/series`, `/api/v1/metadata` and `promtool tsdb analyze`.
//!
//! Selectors are PromQL series selectors ([`strata::parse_selector`]),
//! checked while the arguments are parsed, so a bad one is a usage error
//! (exit 2) that says where it went wrong.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;

use strata::{Error, InputError, Matcher, SeriesKey, TimeRange};

use super::source::Source;
use super::time::{describe_time, parse_time};

/// A series selector checked by the PromQL parser.
#[derive(Clone, Debug)]
pub struct Selector(pub Vec<Matcher>);

/// Clap value parser for selectors: the parser's reason (`1:5: ...`).
pub fn parse_selector_arg(text: &str) -> Result<Selector, String> {
    match strata::parse_selector(text) {
        Ok(matchers) => Ok(Selector(matchers)),
        Err(InputError::BadSeriesText { reason, .. }) => Err(reason),
        Err(other) => Err(other.to_string()),
    }
}

/// Where to read and which series.
#[derive(clap::Args)]
pub struct Target {
    /// Data directory (opened read-only) or a segment file (*.seg).
    #[arg(long)]
    db: PathBuf,
    /// Only series matching this selector, e.g. 'up' or
    /// 'http_requests_total{code=~"5.."}'.
    #[arg(long = "match", value_parser = parse_selector_arg)]
    selector: Option<Selector>,
    /// Only series with samples at or after this time (RFC 3339, Unix
    /// seconds or milliseconds, now-1h; see `strata query --help`).
    #[arg(long, value_parser = parse_time)]
    start: Option<i64>,
    /// Only series with samples at or before this time.
    #[arg(long, value_parser = parse_time)]
    end: Option<i64>,
}

const LABELS_EXAMPLES: &str = "\
Examples:
  strata labels --db DIR
  strata labels --db DIR --match gateway_requests_total";

const VALUES_EXAMPLES: &str = "\
Examples:
  strata label-values --db DIR __name__          # every metric name
  strata label-values --db DIR instance --match 'heartbeat_up{service=\"billing\"}'";

const SERIES_EXAMPLES: &str = "\
Examples:
  strata series --db DIR 'gateway_requests_total{code=\"500\"}'
  strata series --db DIR '{__name__=~\"scheduler_.*\"}' --start now-1h
  strata series --db DIR/segments/00000000000000000001.seg heartbeat_up

A selector is a metric name and/or label matchers (=, !=, =~, !~; regexes are
anchored). Functions and operators need `strata query`.";

const METADATA_EXAMPLES: &str = "\
Examples:
  strata metadata --db DIR                        # every metric family
  strata metadata --db DIR node_cpu_seconds_total # the family of a metric name

Metadata comes from the # TYPE, # HELP and # UNIT lines of an import, Parquet
files, Db::set_metadata or the metrics recorder's describe_* calls. A segment
file carries none.";

const CARDINALITY_EXAMPLES: &str = "\
Examples:
  strata cardinality --db DIR
  strata cardinality --db DIR --top 5 --match '{instance=\"host-000\"}'";

#[derive(clap::Args)]
#[command(after_help = LABELS_EXAMPLES)]
pub struct LabelsArgs {
    #[command(flatten)]
    target: Target,
}

#[derive(clap::Args)]
#[command(after_help = VALUES_EXAMPLES)]
pub struct LabelValuesArgs {
    /// The label name (`__name__` for metric names).
    name: String,
    #[command(flatten)]
    target: Target,
}

#[derive(clap::Args)]
#[command(after_help = SERIES_EXAMPLES)]
pub struct SeriesArgs {
    /// Series selector. Default: every series.
    #[arg(value_parser = parse_selector_arg)]
    selector: Option<Selector>,
    /// Data directory (opened read-only) or a segment file (*.seg).
    #[arg(long)]
    db: PathBuf,
    /// Only series with samples at or after this time.
    #[arg(long, value_parser = parse_time)]
    start: Option<i64>,
    /// Only series with samples at or before this time.
    #[arg(long, value_parser = parse_time)]
    end: Option<i64>,
}

#[derive(clap::Args)]
#[command(after_help = METADATA_EXAMPLES)]
pub struct MetadataArgs {
    /// Metric names: show the family each belongs to (`x_total` and
    /// `x_created` of a counter `x`, `x_bucket` of a histogram `x`...).
    /// Default: every family.
    metrics: Vec<String>,
    /// Data directory (opened read-only) or a segment file (*.seg).
    #[arg(long)]
    db: PathBuf,
}

#[derive(clap::Args)]
#[command(after_help = CARDINALITY_EXAMPLES)]
pub struct CardinalityArgs {
    #[command(flatten)]
    target: Target,
    /// Entries in each top list.
    #[arg(long, default_value_t = 10)]
    top: usize,
}

impl Target {
    fn keys(&self) -> Result<Result<Vec<SeriesKey>, ExitCode>, Error> {
        let Some(range) = time_range(self.start, self.end) else {
            return Ok(Err(ExitCode::from(2)));
        };
        let matchers = self.selector.as_ref().map_or(&[][..], |s| &s.0[..]);
        series_keys(&Source::open(&self.db)?, matchers, range).map(Ok)
    }

    fn filtered(&self) -> bool {
        self.selector.is_some() || self.start.is_some() || self.end.is_some()
    }
}

/// `--start`/`--end` as a range (`Some(None)` without either); `None`
/// after reporting an end before the start.
fn time_range(start: Option<i64>, end: Option<i64>) -> Option<Option<TimeRange>> {
    if start.is_none() && end.is_none() {
        return Some(None);
    }
    let (start, end) = (start.unwrap_or(i64::MIN), end.unwrap_or(i64::MAX));
    if end < start {
        errln!(
            "strata: --end {} is before --start {}",
            describe_time(end),
            describe_time(start)
        );
        return None;
    }
    Some(Some(TimeRange::new(start, end)))
}

/// The keys of the series matching `matchers` (every series when empty),
/// sorted; with a range, only series that may have samples in it.
fn series_keys(
    source: &Source,
    matchers: &[Matcher],
    range: Option<TimeRange>,
) -> Result<Vec<SeriesKey>, Error> {
    let mut keys = match (source, range) {
        (Source::Db(db), None) => db.find_series(matchers),
        (Source::Segment(segment), None) => segment
            .select(matchers)
            .into_iter()
            .filter_map(|id| segment.series_key(id).cloned())
            .collect(),
        (_, Some(range)) => {
            let set = source.queryable().select_series(matchers, range)?;
            (0..set.len()).map(|i| set.key(i).clone()).collect()
        }
    };
    keys.sort();
    keys.dedup();
    Ok(keys)
}

/// `strata metadata`: one line per family, `family<TAB>type<TAB>unit<TAB>help`
/// (help escaped as in a `# HELP` line); exit 1 when a metric asked for
/// has no family.
pub fn metadata(args: &MetadataArgs) -> Result<ExitCode, Error> {
    let metadata = Source::open(&args.db)?.queryable().metadata();
    let mut families = BTreeMap::new();
    let mut missing = Vec::new();
    if args.metrics.is_empty() {
        families.extend(metadata.iter());
    }
    for metric in &args.metrics {
        match metadata.of_metric(metric) {
            Some((family, found)) => {
                families.insert(family, found);
            }
            None => missing.push(metric.as_str()),
        }
    }
    for (family, found) in families {
        let help = found.help.replace('\\', "\\\\").replace('\n', "\\n");
        outln!("{family}\t{}\t{}\t{help}", found.metric_type, found.unit)?;
    }
    if !missing.is_empty() {
        errln!("strata metadata: no metadata for {}", missing.join(", "));
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn labels(args: &LabelsArgs) -> Result<ExitCode, Error> {
    let names = if args.target.filtered() {
        let keys = match args.target.keys()? {
            Ok(keys) => keys,
            Err(code) => return Ok(code),
        };
        let names: BTreeSet<&str> = keys
            .iter()
            .flat_map(|k| k.labels().iter().map(|l| &*l.name))
            .collect();
        names.into_iter().map(str::to_owned).collect()
    } else {
        Source::open(&args.target.db)?.queryable().label_names()?
    };
    for name in names {
        outln!("{name}")?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn label_values(args: &LabelValuesArgs) -> Result<ExitCode, Error> {
    let values = if args.target.filtered() {
        let keys = match args.target.keys()? {
            Ok(keys) => keys,
            Err(code) => return Ok(code),
        };
        let values: BTreeSet<&str> = keys.iter().filter_map(|k| k.get(&args.name)).collect();
        values.into_iter().map(str::to_owned).collect()
    } else {
        Source::open(&args.target.db)?
            .queryable()
            .label_values(&args.name)?
    };
    for value in values {
        outln!("{value}")?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn series(args: &SeriesArgs) -> Result<ExitCode, Error> {
    let matchers = args.selector.as_ref().map_or(&[][..], |s| &s.0[..]);
    let Some(range) = time_range(args.start, args.end) else {
        return Ok(ExitCode::from(2));
    };
    let source = Source::open(&args.db)?;
    for key in series_keys(&source, matchers, range)? {
        outln!("{key}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Counts for the cardinality report.
#[derive(Debug, Default, PartialEq)]
pub struct Cardinality {
    pub series: usize,
    /// (series, metric name), most first.
    pub metrics: Vec<(usize, String)>,
    /// (distinct values, label name), most first.
    pub label_names: Vec<(usize, String)>,
    /// (series, `name=value`), most first.
    pub label_pairs: Vec<(usize, String)>,
}

/// Counts over `keys`; ties are broken by name so the report is stable.
pub fn cardinality(keys: &[SeriesKey]) -> Cardinality {
    let mut metrics: HashMap<&str, usize> = HashMap::new();
    let mut values: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut pairs: HashMap<(&str, &str), usize> = HashMap::new();
    for key in keys {
        *metrics.entry(key.metric()).or_default() += 1;
        for label in key.labels() {
            if &*label.name != strata::METRIC_NAME_LABEL {
                values.entry(&label.name).or_default().insert(&label.value);
                *pairs.entry((&label.name, &label.value)).or_default() += 1;
            }
        }
    }
    fn ranked(items: impl Iterator<Item = (usize, String)>) -> Vec<(usize, String)> {
        let mut items: Vec<_> = items.collect();
        items.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        items
    }
    Cardinality {
        series: keys.len(),
        metrics: ranked(metrics.into_iter().map(|(m, n)| (n, m.to_owned()))),
        label_names: ranked(values.into_iter().map(|(l, v)| (v.len(), l.to_owned()))),
        label_pairs: ranked(pairs.into_iter().map(|((l, v), n)| (n, format!("{l}={v}")))),
    }
}

pub fn cardinality_report(args: &CardinalityArgs) -> Result<ExitCode, Error> {
    let keys = match args.target.keys()? {
        Ok(keys) => keys,
        Err(code) => return Ok(code),
    };
    let report = cardinality(&keys);
    outln!(
        "Series: {}   Metric names: {}   Label names: {}   Label pairs: {}",
        report.series,
        report.metrics.len(),
        report.label_names.len(),
        report.label_pairs.len()
    )?;
    for (title, list) in [
        ("Highest cardinality metric names (series)", &report.metrics),
        (
            "Highest cardinality labels (distinct values)",
            &report.label_names,
        ),
        ("Most common label pairs (series)", &report.label_pairs),
    ] {
        outln!()?;
        outln!("{title}:")?;
        let width = list
            .iter()
            .take(args.top)
            .map(|(n, _)| n.to_string().len())
            .max()
            .unwrap_or(1);
        for (count, name) in list.iter().take(args.top) {
            outln!("  {count:>width$}  {name}")?;
        }
        if list.len() > args.top {
            outln!("  ... {} more (--top)", list.len() - args.top)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cardinality_counts_and_ranks() {
        let keys: Vec<SeriesKey> = [
            ("up", &[("job", "a"), ("instance", "1")][..]),
            ("up", &[("job", "a"), ("instance", "2")][..]),
            ("up", &[("job", "b"), ("instance", "3")][..]),
            ("errors_total", &[("job", "a")][..]),
        ]
        .iter()
        .map(|(m, labels)| SeriesKey::new(m, labels).unwrap())
        .collect();
        let report = cardinality(&keys);
        assert_eq!(report.series, 4);
        assert_eq!(
            report.metrics,
            [(3, "up".to_owned()), (1, "errors_total".to_owned())]
        );
        // instance has 3 distinct values, job 2.
        assert_eq!(
            report.label_names,
            [(3, "instance".to_owned()), (2, "job".to_owned())]
        );
        // job=a is on 3 series; the four others on one each, by name.
        assert_eq!(report.label_pairs[0], (3, "job=a".to_owned()));
        assert_eq!(report.label_pairs[1], (1, "instance=1".to_owned()));
        assert_eq!(report.label_pairs.len(), 5);
    }
}
