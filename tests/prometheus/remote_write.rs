//! Prometheus remote-write 1.0 requests, encoded by hand: a `WriteRequest`
//! protobuf message compressed in the Snappy block format, for loading
//! samples into a running Prometheus (`--web.enable-remote-write-receiver`)
//! where OpenMetrics text cannot carry them: the staleness marker, a NaN
//! with its own bit pattern, travels as the 8 raw bytes of a protobuf
//! `double`, so Prometheus stores exactly the bits it is sent.
//!
//! Invariants: labels are written sorted by name, as the remote-write
//! specification requires; the Snappy stream holds only literal elements,
//! which every Snappy decoder accepts (compression is optional in the
//! format, the framing is not).

/// One series of a request: its labels (any order; sorted when encoded)
/// and its samples `(timestamp_ms, value)` in time order.
pub struct TimeSeries<'a> {
    pub labels: Vec<(&'a str, &'a str)>,
    pub samples: &'a [(i64, f64)],
}

/// The HTTP headers a remote-write 1.0 request carries.
pub const HEADERS: [(&str, &str); 3] = [
    ("Content-Type", "application/x-protobuf"),
    ("Content-Encoding", "snappy"),
    ("X-Prometheus-Remote-Write-Version", "0.1.0"),
];

/// The request body for `series`: the encoded `WriteRequest`, Snappy
/// compressed.
pub fn body(series: &[TimeSeries<'_>]) -> Vec<u8> {
    snappy_literals(&write_request(series))
}

/// `prometheus.WriteRequest { repeated TimeSeries timeseries = 1; }` with
/// `TimeSeries { repeated Label labels = 1; repeated Sample samples = 2; }`,
/// `Label { string name = 1; string value = 2; }` and
/// `Sample { double value = 1; int64 timestamp = 2; }`.
fn write_request(series: &[TimeSeries<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut message = Vec::new();
    let mut field = Vec::new();
    for s in series {
        message.clear();
        let mut labels = s.labels.clone();
        labels.sort();
        for (name, value) in labels {
            field.clear();
            bytes_field(&mut field, 1, name.as_bytes());
            bytes_field(&mut field, 2, value.as_bytes());
            bytes_field(&mut message, 1, &field);
        }
        for &(timestamp_ms, value) in s.samples {
            field.clear();
            field.push(1 << 3 | 1); // field 1, 64-bit
            field.extend_from_slice(&value.to_bits().to_le_bytes());
            field.push(2 << 3); // field 2, varint
            varint(&mut field, timestamp_ms as u64);
            bytes_field(&mut message, 2, &field);
        }
        bytes_field(&mut out, 1, &message);
    }
    out
}

/// A length-delimited field (wire type 2).
fn bytes_field(out: &mut Vec<u8>, number: u8, bytes: &[u8]) {
    out.push(number << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A base-128 varint; an `int64` is sent as its two's complement `u64`.
fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// The Snappy block format with literals only: the uncompressed length as
/// a varint, then literal elements of at most 64 KiB, each a tag byte
/// (low bits `00`) holding `length - 1` inline when below 60, or 60 / 61
/// followed by `length - 1` in one / two little-endian bytes.
fn snappy_literals(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 1000 + 16);
    varint(&mut out, data.len() as u64);
    for chunk in data.chunks(1 << 16) {
        let n = chunk.len() - 1;
        if n < 60 {
            out.push((n as u8) << 2);
        } else if n < 256 {
            out.push(60 << 2);
            out.push(n as u8);
        } else {
            out.push(61 << 2);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        out.extend_from_slice(chunk);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_are_little_endian_base_128() {
        let encode = |v: u64| {
            let mut out = Vec::new();
            varint(&mut out, v);
            out
        };
        assert_eq!(encode(0), [0]);
        assert_eq!(encode(127), [127]);
        assert_eq!(encode(300), [0xAC, 0x02]);
        // A negative int64 takes all ten bytes.
        assert_eq!(
            encode(-1i64 as u64),
            [0xFF; 9].iter().chain(&[1]).copied().collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_request_encodes_labels_sorted_and_values_bit_for_bit() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let request = write_request(&[TimeSeries {
            labels: vec![("b", "2"), ("__name__", "x")],
            samples: &[(1, stale)],
        }]);
        // Hand-encoded: timeseries (field 1) of 2 labels and 1 sample.
        let label_name = [0x0A, 0x0D, 0x0A, 0x08]
            .iter()
            .chain(b"__name__")
            .chain(&[0x12, 0x01, b'x'])
            .copied();
        let label_b = [0x0A, 0x06, 0x0A, 0x01, b'b', 0x12, 0x01, b'2'];
        let sample = [
            0x12, 0x0B, 0x09, 0x02, 0, 0, 0, 0, 0, 0xF0, 0x7F, 0x10, 0x01,
        ];
        let series: Vec<u8> = label_name.chain(label_b).chain(sample).collect();
        let mut expected = vec![0x0A, series.len() as u8];
        expected.extend(series);
        assert_eq!(request, expected);
    }

    #[test]
    fn snappy_literals_frame_every_length() {
        assert_eq!(snappy_literals(b"abc"), [3, 2 << 2, b'a', b'b', b'c']);
        let sixty_one = [7u8; 61];
        let framed = snappy_literals(&sixty_one);
        assert_eq!(framed[..3], [61, 60 << 2, 60]);
        assert_eq!(framed.len(), 3 + 61);
        let big = vec![1u8; (1 << 16) + 300];
        let framed = snappy_literals(&big);
        // Length 65836 as a varint: 0xAC 0x82 0x04.
        assert_eq!(framed[..3], [0xAC, 0x82, 0x04]);
        assert_eq!(framed[3..6], [61 << 2, 0xFF, 0xFF]);
        let second = 6 + (1 << 16);
        assert_eq!(framed[second..second + 3], [61 << 2, 43, 1]);
        assert_eq!(framed.len(), second + 3 + 300);
    }
}
