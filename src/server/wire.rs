//! A zero-copy reader of remote write's `WriteRequest` (the protobuf wire
//! format read by hand), for the receiver's hot path: a series' labels
//! are not decoded into strings but kept as the bytes of their label
//! fields, which identify the series in the server's cache of series
//! handles; only a series seen for the first time has its labels decoded
//! ([`label_pairs`]). Samples are read into one flat vector.
//!
//! Invariants:
//! - what is read is what `prost` reads into [`proto::WriteRequest`] for
//!   the fields strata uses (labels, samples, metadata); unknown fields of
//!   any wire type are skipped, as protobuf requires; a length or varint
//!   running past its message, or a group wire type, is an error naming
//!   the byte offset;
//! - two series have equal [`SeriesView::identity`] bytes only if their
//!   label fields are byte for byte the same, hence the same labels in the
//!   same order.

use std::borrow::Cow;
use std::ops::Range;

use prost::Message;

use super::proto;

/// One series of a request.
pub(super) struct SeriesView<'a> {
    /// The bytes of the series' label fields (keys, lengths and the Label
    /// messages), borrowed when they are contiguous in the message (as
    /// every known sender writes them), else copied together.
    pub identity: Cow<'a, [u8]>,
    /// Its samples in [`WriteView::samples`].
    pub samples: Range<usize>,
}

/// A decoded `WriteRequest`, borrowing from the decompressed body.
pub(super) struct WriteView<'a> {
    pub series: Vec<SeriesView<'a>>,
    /// (timestamp_ms, value) of every series, series after series.
    pub samples: Vec<(i64, f64)>,
    pub metadata: Vec<proto::MetricMetadata>,
}

/// Wire types.
const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LEN: u64 = 2;
const FIXED32: u64 = 5;

/// A cursor over one message's bytes; offsets in errors are relative to
/// the whole body (`base`).
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], base: usize) -> Self {
        Reader {
            bytes,
            pos: 0,
            base,
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn error(&self, what: &str) -> String {
        format!("{what} at byte {}", self.base + self.pos)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&byte) = self.bytes.get(self.pos) else {
                return Err(self.error("truncated varint"));
            };
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.error("varint longer than 10 bytes"))
    }

    fn take(&mut self, len: usize) -> Result<(&'a [u8], usize), String> {
        let start = self.pos;
        let end = start
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| self.error("length past the end of its message"))?;
        self.pos = end;
        Ok((&self.bytes[start..end], self.base + start))
    }

    fn fixed64(&mut self) -> Result<u64, String> {
        let (bytes, _) = self.take(8)?;
        let mut array = [0u8; 8];
        array.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(array))
    }

    /// The next field's number and wire type.
    fn key(&mut self) -> Result<(u64, u64), String> {
        let key = self.varint()?;
        Ok((key >> 3, key & 7))
    }

    /// Skips a field of `wire_type` whose key was read.
    fn skip(&mut self, wire_type: u64) -> Result<(), String> {
        match wire_type {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            LEN => {
                let len = self.len()?;
                self.take(len).map(drop)
            }
            FIXED32 => self.take(4).map(drop),
            other => Err(self.error(&format!("unsupported wire type {other}"))),
        }
    }

    fn len(&mut self) -> Result<usize, String> {
        usize::try_from(self.varint()?).map_err(|_| self.error("length too large"))
    }

    /// A length-delimited field's bytes and their offset in the body.
    fn message(&mut self) -> Result<(&'a [u8], usize), String> {
        let len = self.len()?;
        self.take(len)
    }
}

/// Reads a `WriteRequest` from its (decompressed) bytes.
pub(super) fn read_write_request(bytes: &[u8]) -> Result<WriteView<'_>, String> {
    let mut view = WriteView {
        series: Vec::new(),
        samples: Vec::new(),
        metadata: Vec::new(),
    };
    let mut reader = Reader::new(bytes, 0);
    while !reader.at_end() {
        match reader.key()? {
            (1, LEN) => {
                let (message, base) = reader.message()?;
                let series = read_time_series(message, base, &mut view.samples)?;
                view.series.push(series);
            }
            (3, LEN) => {
                let (message, base) = reader.message()?;
                let entry = proto::MetricMetadata::decode(message)
                    .map_err(|e| format!("metadata at byte {base}: {e}"))?;
                view.metadata.push(entry);
            }
            (_, wire_type) => reader.skip(wire_type)?,
        }
    }
    Ok(view)
}

fn read_time_series<'a>(
    bytes: &'a [u8],
    base: usize,
    samples: &mut Vec<(i64, f64)>,
) -> Result<SeriesView<'a>, String> {
    let first_sample = samples.len();
    let mut reader = Reader::new(bytes, base);
    // Label fields: their byte ranges in `bytes`, and whether they follow
    // one another with nothing between.
    let mut labels: Option<Range<usize>> = None;
    let mut contiguous = true;
    let mut scattered: Vec<u8> = Vec::new();
    while !reader.at_end() {
        let field_start = reader.pos;
        match reader.key()? {
            (1, LEN) => {
                reader.message()?;
                let field = field_start..reader.pos;
                match &mut labels {
                    None => labels = Some(field),
                    Some(range) if contiguous && range.end == field.start => range.end = field.end,
                    Some(range) => {
                        if contiguous {
                            scattered.extend_from_slice(&bytes[range.clone()]);
                            contiguous = false;
                        }
                        scattered.extend_from_slice(&bytes[field]);
                    }
                }
            }
            (2, LEN) => {
                let (message, sample_base) = reader.message()?;
                samples.push(read_sample(message, sample_base)?);
            }
            (_, wire_type) => reader.skip(wire_type)?,
        }
    }
    let identity = match (labels, contiguous) {
        (Some(range), true) => Cow::Borrowed(&bytes[range]),
        (None, _) => Cow::Borrowed(&bytes[..0]),
        (Some(_), false) => Cow::Owned(scattered),
    };
    Ok(SeriesView {
        identity,
        samples: first_sample..samples.len(),
    })
}

/// A `Sample`: value (field 1, double) and timestamp (field 2, int64).
fn read_sample(bytes: &[u8], base: usize) -> Result<(i64, f64), String> {
    let mut reader = Reader::new(bytes, base);
    let (mut timestamp_ms, mut value) = (0i64, 0.0f64);
    while !reader.at_end() {
        match reader.key()? {
            (1, FIXED64) => value = f64::from_bits(reader.fixed64()?),
            (2, VARINT) => timestamp_ms = reader.varint()? as i64,
            (_, wire_type) => reader.skip(wire_type)?,
        }
    }
    Ok((timestamp_ms, value))
}

/// The (name, value) pairs of a series' [`SeriesView::identity`] bytes, in
/// order; an error for a label that is not UTF-8 or not well formed.
pub(super) fn label_pairs(identity: &[u8]) -> Result<Vec<(&str, &str)>, String> {
    let mut pairs = Vec::new();
    let mut reader = Reader::new(identity, 0);
    while !reader.at_end() {
        let (_, LEN) = reader.key()? else {
            return Err(reader.error("a label field that is not length-delimited"));
        };
        let (message, base) = reader.message()?;
        let mut label = Reader::new(message, base);
        let (mut name, mut value) = ("", "");
        while !label.at_end() {
            match label.key()? {
                (1, LEN) => name = utf8(label.message()?)?,
                (2, LEN) => value = utf8(label.message()?)?,
                (_, wire_type) => label.skip(wire_type)?,
            }
        }
        pairs.push((name, value));
    }
    Ok(pairs)
}

fn utf8((bytes, base): (&[u8], usize)) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|_| format!("label text at byte {base} is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn label(name: &str, value: &str) -> proto::Label {
        proto::Label {
            name: name.to_owned(),
            value: value.to_owned(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// What prost encodes, this reader reads as prost decodes it.
        #[test]
        fn reads_what_prost_writes(
            series in prop::collection::vec(
                (
                    prop::collection::vec(("[a-z_]{0,6}", "\\PC{0,6}"), 0..4),
                    prop::collection::vec((any::<i64>(), any::<u64>()), 0..5),
                ),
                0..5,
            ),
            metadata_help in "\\PC{0,10}",
        ) {
            let request = proto::WriteRequest {
                timeseries: series
                    .iter()
                    .map(|(labels, samples)| proto::TimeSeries {
                        labels: labels.iter().map(|(n, v)| label(n, v)).collect(),
                        samples: samples
                            .iter()
                            .map(|&(t, bits)| proto::Sample { value: f64::from_bits(bits), timestamp: t })
                            .collect(),
                    })
                    .collect(),
                metadata: vec![proto::MetricMetadata {
                    r#type: 1,
                    metric_family_name: "m".to_owned(),
                    help: metadata_help,
                    unit: String::new(),
                }],
            };
            let bytes = request.encode_to_vec();
            let view = read_write_request(&bytes).unwrap();
            prop_assert_eq!(view.series.len(), request.timeseries.len());
            prop_assert_eq!(&view.metadata, &request.metadata);
            for (read, sent) in view.series.iter().zip(&request.timeseries) {
                let pairs = label_pairs(&read.identity).unwrap();
                let expected: Vec<(&str, &str)> =
                    sent.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
                prop_assert_eq!(pairs, expected);
                let samples = &view.samples[read.samples.clone()];
                prop_assert_eq!(samples.len(), sent.samples.len());
                for (&(t, v), s) in samples.iter().zip(&sent.samples) {
                    prop_assert_eq!(t, s.timestamp);
                    // prost leaves out a zero double: it reads back as +0.0.
                    let expected = if s.value == 0.0 { 0.0f64 } else { s.value };
                    prop_assert_eq!(v.to_bits(), expected.to_bits());
                }
            }
        }

        /// Cut or damaged bytes are an error or a request, never a panic.
        #[test]
        fn damaged_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(view) = read_write_request(&bytes) {
                for series in &view.series {
                    let _ = label_pairs(&series.identity);
                }
            }
        }
    }

    #[test]
    fn equal_labels_have_equal_identity_and_scattered_labels_are_joined() {
        let mut request = proto::WriteRequest::default();
        for _ in 0..2 {
            request.timeseries.push(proto::TimeSeries {
                labels: vec![label("__name__", "up"), label("job", "a")],
                samples: vec![proto::Sample {
                    value: 1.0,
                    timestamp: 5,
                }],
            });
        }
        let bytes = request.encode_to_vec();
        let view = read_write_request(&bytes).unwrap();
        assert_eq!(view.series[0].identity, view.series[1].identity);
        assert!(matches!(view.series[0].identity, Cow::Borrowed(_)));

        // labels, a sample, then another label: the label bytes are joined.
        let one = proto::TimeSeries {
            labels: vec![label("__name__", "up")],
            samples: vec![proto::Sample {
                value: 2.0,
                timestamp: 7,
            }],
        }
        .encode_to_vec();
        let extra = proto::TimeSeries {
            labels: vec![label("job", "a")],
            samples: vec![],
        }
        .encode_to_vec();
        let mut series = one;
        series.extend_from_slice(&extra);
        let mut body = Vec::new();
        prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, &mut body);
        prost::encoding::encode_varint(series.len() as u64, &mut body);
        body.extend_from_slice(&series);
        let view = read_write_request(&body).unwrap();
        assert!(matches!(view.series[0].identity, Cow::Owned(_)));
        assert_eq!(
            label_pairs(&view.series[0].identity).unwrap(),
            [("__name__", "up"), ("job", "a")]
        );
        assert_eq!(view.samples, [(7, 2.0)]);
    }
}
