//! Metric metadata: the type, help text and unit of a metric family, as
//! Prometheus' `# TYPE`, `# HELP` and `# UNIT` lines and the `metrics`
//! crate's `describe_*` calls give them.
//!
//! Metadata belongs to a metric *family*, not to a series: `# TYPE
//! http_request_duration_seconds histogram` describes the series named
//! `http_request_duration_seconds_bucket`, `_sum`, `_count` and
//! `_created`. [`Metadata::of_metric`] finds the family of a series'
//! metric name by the OpenMetrics suffix rules.
//!
//! A data directory keeps its metadata in the file `METADATA` (see
//! docs/FORMAT.md; `Metadata::encode_payload` and `decode_payload` here,
//! the file's storage in `db/metadata.rs`).
//!
//! Invariants of a [`Metadata`]:
//! - family names are valid metric names, unique, iterated in byte order;
//! - every help text is at most [`MAX_HELP_BYTES`] long and every unit at
//!   most [`MAX_UNIT_BYTES`], valid UTF-8 both;
//! - `decode(encode(m)) == m`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use crate::error::{Corruption, CorruptionError, InputError, Result};
use crate::segment::format::Cursor;
use crate::series::validate_metric_name;

/// Longest help text, in bytes.
pub const MAX_HELP_BYTES: usize = 64 * 1024;
/// Longest unit, in bytes.
pub const MAX_UNIT_BYTES: usize = 256;

/// What kind of metric a family is (OpenMetrics' metric types; Prometheus
/// text format 0.0.4's `untyped` is [`MetricType::Unknown`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    #[default]
    Unknown,
}

impl MetricType {
    /// Every type, in the order of their `METADATA` codes after unknown.
    pub const ALL: [MetricType; 8] = [
        MetricType::Counter,
        MetricType::Gauge,
        MetricType::Histogram,
        MetricType::GaugeHistogram,
        MetricType::Summary,
        MetricType::Info,
        MetricType::StateSet,
        MetricType::Unknown,
    ];

    /// The name used in `# TYPE` lines and by Prometheus' metadata API.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }

    /// The byte stored in the `METADATA` file.
    fn code(self) -> u8 {
        match self {
            MetricType::Unknown => 0,
            MetricType::Counter => 1,
            MetricType::Gauge => 2,
            MetricType::Histogram => 3,
            MetricType::GaugeHistogram => 4,
            MetricType::Summary => 5,
            MetricType::Info => 6,
            MetricType::StateSet => 7,
        }
    }

    fn from_code(code: u8) -> Option<MetricType> {
        MetricType::ALL.into_iter().find(|t| t.code() == code)
    }

    /// The suffixes the family's series names may add to its name
    /// (OpenMetrics), besides the name itself.
    fn suffixes(self) -> &'static [&'static str] {
        match self {
            MetricType::Counter => &["_total", "_created"],
            MetricType::Histogram => &["_bucket", "_count", "_sum", "_created"],
            MetricType::GaugeHistogram => &["_bucket", "_gcount", "_gsum"],
            MetricType::Summary => &["_count", "_sum", "_created"],
            MetricType::Info => &["_info"],
            MetricType::Gauge | MetricType::StateSet | MetricType::Unknown => &[],
        }
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MetricType {
    type Err = String;

    /// Reads a `# TYPE` name; `untyped` (Prometheus text 0.0.4) is
    /// [`MetricType::Unknown`].
    fn from_str(name: &str) -> std::result::Result<Self, String> {
        if name == "untyped" {
            return Ok(MetricType::Unknown);
        }
        MetricType::ALL
            .into_iter()
            .find(|t| t.as_str() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = MetricType::ALL.iter().map(|t| t.as_str()).collect();
                let mut shown: String = name.chars().take(40).collect();
                if shown.len() < name.len() {
                    shown.push('…');
                }
                format!(
                    "unknown metric type {shown:?} (expected {} or untyped)",
                    names.join(", ")
                )
            })
    }
}

/// The metadata of one metric family.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct MetricMetadata {
    pub metric_type: MetricType,
    /// The help text, unescaped (may hold newlines); empty when unknown.
    pub help: String,
    /// The unit (`seconds`, `bytes`); empty when unknown.
    pub unit: String,
}

impl MetricMetadata {
    /// Metadata of `metric_type` with no help text and no unit.
    pub fn new(metric_type: MetricType) -> Self {
        MetricMetadata {
            metric_type,
            ..MetricMetadata::default()
        }
    }

    /// The same metadata with `help` as its help text.
    pub fn with_help(self, help: impl Into<String>) -> Self {
        MetricMetadata {
            help: help.into(),
            ..self
        }
    }

    /// The same metadata with `unit` as its unit.
    pub fn with_unit(self, unit: impl Into<String>) -> Self {
        MetricMetadata {
            unit: unit.into(),
            ..self
        }
    }

    /// Checks the metadata of family `metric` against the limits.
    pub fn validate(&self, metric: &str) -> std::result::Result<(), InputError> {
        validate_metric_name(metric)?;
        if metric.len() > usize::from(u16::MAX) {
            return Err(InputError::BadMetadata(format!(
                "the family name {}... is {} bytes long, over the limit of {}",
                &metric[..32],
                metric.len(),
                u16::MAX
            )));
        }
        for (what, len, limit) in [
            ("help text", self.help.len(), MAX_HELP_BYTES),
            ("unit", self.unit.len(), MAX_UNIT_BYTES),
        ] {
            if len > limit {
                return Err(InputError::BadMetadata(format!(
                    "the {what} of {metric} is {len} bytes long, over the limit of {limit}"
                )));
            }
        }
        Ok(())
    }
}

/// The metadata of every known metric family, by family name: a cheap
/// snapshot to clone (the map is shared).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    families: Arc<BTreeMap<String, MetricMetadata>>,
}

/// Magic of the `METADATA` file.
pub(crate) const MAGIC: &[u8; 8] = b"STRATMET";
/// The `METADATA` version this build writes and reads.
pub(crate) const VERSION: u16 = 1;

impl Metadata {
    /// The metadata of the family named `family` exactly.
    pub fn get(&self, family: &str) -> Option<&MetricMetadata> {
        self.families.get(family)
    }

    /// The family a series whose metric name is `metric` belongs to, and
    /// its metadata: the family named `metric` itself if there is one,
    /// else the family `metric` minus a suffix its type gives its series
    /// (`_total` and `_created` of a counter; `_bucket`, `_count`, `_sum`
    /// and `_created` of a histogram; `_count`, `_sum`, `_created` of a
    /// summary; `_bucket`, `_gcount`, `_gsum` of a gauge histogram;
    /// `_info` of an info).
    ///
    /// ```
    /// use strata::{Metadata, MetricMetadata, MetricType};
    ///
    /// let metadata = Metadata::from_families([(
    ///     "http_request_duration_seconds".to_owned(),
    ///     MetricMetadata::new(MetricType::Histogram).with_unit("seconds"),
    /// )]);
    /// let (family, found) = metadata.of_metric("http_request_duration_seconds_bucket").unwrap();
    /// assert_eq!((family, found.metric_type), ("http_request_duration_seconds", MetricType::Histogram));
    /// assert!(metadata.of_metric("http_request_duration_seconds_total").is_none());
    /// ```
    pub fn of_metric(&self, metric: &str) -> Option<(&str, &MetricMetadata)> {
        if let Some((family, found)) = self.families.get_key_value(metric) {
            return Some((family.as_str(), found));
        }
        let (stem_end, _) = metric.rmatch_indices('_').next()?;
        let (stem, suffix) = metric.split_at(stem_end);
        let (family, found) = self.families.get_key_value(stem)?;
        found
            .metric_type
            .suffixes()
            .contains(&suffix)
            .then_some((family.as_str(), found))
    }

    /// Every family and its metadata, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &MetricMetadata)> {
        self.families.iter().map(|(name, m)| (name.as_str(), m))
    }

    /// Number of families.
    pub fn len(&self) -> usize {
        self.families.len()
    }

    pub fn is_empty(&self) -> bool {
        self.families.is_empty()
    }

    /// Metadata of the given families (a later entry for a family replaces
    /// an earlier one). Unchecked: for building an expected value or a
    /// lookup table; [`crate::Db::set_metadata`] validates what it stores.
    pub fn from_families(families: impl IntoIterator<Item = (String, MetricMetadata)>) -> Self {
        Metadata {
            families: Arc::new(families.into_iter().collect()),
        }
    }

    /// This metadata with `entries` set, each replacing its family's entry
    /// whole; `None` when that changes nothing.
    pub(crate) fn updated(&self, entries: Vec<(String, MetricMetadata)>) -> Option<Metadata> {
        let changed = entries
            .iter()
            .any(|(family, metadata)| self.families.get(family) != Some(metadata));
        if !changed {
            return None;
        }
        let mut families = (*self.families).clone();
        families.extend(entries);
        Some(Metadata {
            families: Arc::new(families),
        })
    }

    /// The payload of the `METADATA` file: `u32` family count, then per
    /// family in name order `u16` name length, name, `u8` type code,
    /// `u32` help length, help, `u16` unit length, unit.
    pub(crate) fn encode_payload(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(self.families.len() as u32).to_le_bytes());
        for (name, m) in self.families.iter() {
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.push(m.metric_type.code());
            out.extend_from_slice(&(m.help.len() as u32).to_le_bytes());
            out.extend_from_slice(m.help.as_bytes());
            out.extend_from_slice(&(m.unit.len() as u16).to_le_bytes());
            out.extend_from_slice(m.unit.as_bytes());
        }
        out
    }

    /// Reads the payload written by [`Metadata::encode_payload`], found at
    /// byte `base_offset` of the file `path`, checking every invariant.
    pub(crate) fn decode_payload(payload: &[u8], base_offset: u64, path: &Path) -> Result<Self> {
        let mut c = Cursor::new(payload, base_offset, "metadata payload");
        let corrupt = |offset: u64, kind: Corruption| CorruptionError::in_file(path, offset, kind);
        let count = c.u32().map_err(|e| corrupt(base_offset, e))?;
        let mut families = BTreeMap::new();
        let mut previous: Option<String> = None;
        for _ in 0..count {
            let at = c.file_offset();
            let name_len = usize::from(c.u16().map_err(|e| corrupt(at, e))?);
            let name = text(&mut c, name_len, "family name").map_err(|e| corrupt(at, e))?;
            let code = c.u8().map_err(|e| corrupt(at, e))?;
            let metric_type = MetricType::from_code(code).ok_or_else(|| {
                corrupt(
                    at,
                    Corruption::BadLayout(format!("unknown metric type code {code} of {name}")),
                )
            })?;
            let help_len = c.u32().map_err(|e| corrupt(at, e))? as usize;
            let help = text(&mut c, help_len, "help text").map_err(|e| corrupt(at, e))?;
            let unit_len = usize::from(c.u16().map_err(|e| corrupt(at, e))?);
            let unit = text(&mut c, unit_len, "unit").map_err(|e| corrupt(at, e))?;
            let metadata = MetricMetadata {
                metric_type,
                help,
                unit,
            };
            if let Err(e) = metadata.validate(&name) {
                return Err(corrupt(at, Corruption::BadLayout(e.to_string())));
            }
            if previous.as_ref().is_some_and(|p| *p >= name) {
                return Err(corrupt(
                    at,
                    Corruption::BadLayout(format!("family {name} out of order")),
                ));
            }
            previous = Some(name.clone());
            families.insert(name, metadata);
        }
        if c.remaining() != 0 {
            return Err(corrupt(
                c.file_offset(),
                Corruption::BadLayout("bytes after the last family".into()),
            ));
        }
        Ok(Metadata {
            families: Arc::new(families),
        })
    }
}

/// `len` bytes of UTF-8 text from `c`.
fn text(c: &mut Cursor<'_>, len: usize, what: &str) -> std::result::Result<String, Corruption> {
    let bytes = c.bytes(len)?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| Corruption::BadLayout(format!("{what} is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Metadata {
        Metadata::from_families([
            (
                "http_requests".to_owned(),
                MetricMetadata::new(MetricType::Counter).with_help("Requests.\nServed."),
            ),
            (
                "rpc_seconds".to_owned(),
                MetricMetadata::new(MetricType::Summary).with_unit("seconds"),
            ),
            ("up".to_owned(), MetricMetadata::new(MetricType::Gauge)),
        ])
    }

    #[test]
    fn payload_round_trips_and_damage_is_an_error() {
        let metadata = sample();
        let payload = metadata.encode_payload();
        let path = Path::new("METADATA");
        assert_eq!(
            Metadata::decode_payload(&payload, 16, path).unwrap(),
            metadata
        );
        for len in 0..payload.len() {
            assert!(Metadata::decode_payload(&payload[..len], 16, path).is_err());
        }
        let mut bad_type = payload.clone();
        // The first family's type byte: after the count and its name.
        bad_type[4 + 2 + "http_requests".len()] = 99;
        let error = Metadata::decode_payload(&bad_type, 16, path).unwrap_err();
        assert!(error.to_string().contains("type code 99"), "{error}");
    }

    #[test]
    fn series_find_their_family_by_the_suffixes_of_its_type() {
        let metadata = sample();
        let family = |metric: &str| metadata.of_metric(metric).map(|(family, _)| family);
        assert_eq!(family("http_requests_total"), Some("http_requests"));
        assert_eq!(family("http_requests_created"), Some("http_requests"));
        assert_eq!(family("http_requests_sum"), None);
        assert_eq!(family("rpc_seconds_sum"), Some("rpc_seconds"));
        assert_eq!(family("rpc_seconds_bucket"), None);
        assert_eq!(family("up"), Some("up"));
        assert_eq!(family("up_total"), None);
        assert_eq!(family("nothing"), None);
    }

    #[test]
    fn updated_replaces_whole_entries_and_notices_no_change() {
        let metadata = sample();
        assert!(metadata
            .updated(vec![(
                "up".to_owned(),
                MetricMetadata::new(MetricType::Gauge)
            )])
            .is_none());
        let changed = metadata
            .updated(vec![(
                "http_requests".to_owned(),
                MetricMetadata::new(MetricType::Counter),
            )])
            .unwrap();
        assert_eq!(changed.get("http_requests").unwrap().help, "");
        assert_eq!(changed.len(), 3);
    }

    #[test]
    fn type_names_round_trip() {
        for t in MetricType::ALL {
            assert_eq!(t.as_str().parse::<MetricType>(), Ok(t));
            assert_eq!(MetricType::from_code(t.code()), Some(t));
        }
        assert_eq!("untyped".parse::<MetricType>(), Ok(MetricType::Unknown));
        assert!("Counter".parse::<MetricType>().is_err());
    }
}
