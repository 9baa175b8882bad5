//! The Prometheus HTTP API's JSON response bodies, shared by `strata
//! query --format json` and `strata serve`.
//!
//! Invariants (what `GET /api/v1/query` of Prometheus 2.42 returns, byte
//! for byte, checked against a running 2.42): keys in Prometheus's order,
//! no whitespace, label sets as objects sorted by name, strings escaped as
//! Go's encoding/json does (`<`, `>`, `&`, U+2028 and U+2029 as `\u`
//! escapes), values as strings: `"+Inf"`, `"-Inf"`, `"NaN"`, otherwise the
//! shortest decimal that reads back to the same float. Vector and matrix
//! points write the time as Unix seconds with three decimals unless the
//! milliseconds are zero (`1.500`, `2`) and the value in exponent form
//! below 1e-6 and from 1e21 on (`1e-07`, `1e+25`); a scalar or string
//! result writes the time as the shortest float (`1.5`) and a scalar's
//! value never in exponent form (`10000000000000000000000000`), because
//! 2.42 marshals those through Go's encoding/json.

use std::io::{self, Write};

use crate::{Label, QueryValue};

/// A float as Go's `strconv.FormatFloat` with Prometheus's choice of
/// format: `'e'` below 1e-6 and from 1e21 on (in magnitude), `'f'`
/// otherwise, shortest round-trip digits.
pub fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    let magnitude = v.abs();
    if magnitude != 0.0 && !(1e-6..1e21).contains(&magnitude) {
        // Rust writes `1e-7`, Go `1e-07`: a signed exponent of at least
        // two digits.
        let text = format!("{v:e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let (sign, digits) = match exponent.strip_prefix('-') {
            Some(digits) => ('-', digits),
            None => ('+', exponent),
        };
        format!("{mantissa}e{sign}{digits:0>2}")
    } else {
        go_float_fixed(v)
    }
}

/// A float as Go's `strconv.FormatFloat(v, 'f', -1, 64)`: the shortest
/// round-trip digits, never an exponent (`1e25` is
/// `10000000000000000000000000`).
fn go_float_fixed(v: f64) -> String {
    if v.is_finite() {
        // Rust's Display of a finite f64 is exactly that.
        format!("{v}")
    } else {
        go_float(v)
    }
}

/// A scalar's or string's time as Prometheus 2.42 writes it: the float
/// `ms / 1000` in its shortest form (`1.5`, `1.005`, `2`).
fn float_seconds(time_ms: i64) -> String {
    format!("{}", time_ms as f64 / 1000.0)
}

/// A vector's or matrix's timestamp as Prometheus writes it: Unix
/// seconds, then `.` and three digits unless the milliseconds are zero.
pub fn json_timestamp(time_ms: i64) -> String {
    let sign = if time_ms < 0 { "-" } else { "" };
    let magnitude = time_ms.unsigned_abs();
    match magnitude % 1000 {
        0 => format!("{sign}{}", magnitude / 1000),
        fraction => format!("{sign}{}.{fraction:03}", magnitude / 1000),
    }
}

/// Appends `s` as a JSON string escaped as Go's encoding/json does.
pub fn push_json_string(out: &mut String, s: &str) {
    crate::ingest::push_json_string_as(out, s, crate::ingest::JsonEscapes::Go);
}

/// `[timestamp,"value"]`.
fn push_point(out: &mut String, time_ms: i64, value: f64) {
    out.push('[');
    out.push_str(&json_timestamp(time_ms));
    out.push_str(",\"");
    out.push_str(&go_float(value));
    out.push_str("\"]");
}

/// `{"name":"value",...}`: labels are sorted by name already.
pub fn push_metric(out: &mut String, labels: &[Label]) {
    out.push('{');
    for (i, label) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(out, &label.name);
        out.push(':');
        push_json_string(out, &label.value);
    }
    out.push('}');
}

/// The result type's name in the API.
fn result_type(value: &QueryValue) -> &'static str {
    match value {
        QueryValue::Scalar(_) => "scalar",
        QueryValue::String { .. } => "string",
        QueryValue::Vector(_) => "vector",
        QueryValue::Matrix(_) => "matrix",
    }
}

/// Writes the success body, then a newline. Series are written one at a
/// time so that a large matrix is never held twice.
pub fn write_query_result(value: &QueryValue, out: &mut impl Write) -> io::Result<()> {
    let mut text = String::with_capacity(256);
    text.push_str(r#"{"status":"success","data":{"resultType":""#);
    text.push_str(result_type(value));
    text.push_str(r#"","result":"#);
    match value {
        // Prometheus 2.42 marshals scalars and strings through Go's
        // encoding/json: the time as a float (`1.5`, not `1.500`) and the
        // value in 'f' format, never with an exponent.
        QueryValue::Scalar(sample) => {
            text.push('[');
            text.push_str(&float_seconds(sample.timestamp_ms));
            text.push_str(",\"");
            text.push_str(&go_float_fixed(sample.value));
            text.push_str("\"]");
        }
        QueryValue::String { time_ms, value } => {
            text.push('[');
            text.push_str(&float_seconds(*time_ms));
            text.push(',');
            push_json_string(&mut text, value);
            text.push(']');
        }
        QueryValue::Vector(series) | QueryValue::Matrix(series) => {
            let matrix = matches!(value, QueryValue::Matrix(_));
            text.push('[');
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push_str(r#"{"metric":"#);
                push_metric(&mut text, &s.labels);
                if matrix {
                    text.push_str(r#","values":["#);
                    for (j, sample) in s.samples.iter().enumerate() {
                        if j > 0 {
                            text.push(',');
                        }
                        push_point(&mut text, sample.timestamp_ms, sample.value);
                    }
                    text.push(']');
                } else if let Some(sample) = s.samples.first() {
                    text.push_str(r#","value":"#);
                    push_point(&mut text, sample.timestamp_ms, sample.value);
                }
                text.push('}');
                out.write_all(text.as_bytes())?;
                text.clear();
            }
            text.push(']');
        }
    }
    text.push_str("}}\n");
    out.write_all(text.as_bytes())
}

/// Writes `{"status":"success","data":["a","b"]}` (the body of
/// `/api/v1/labels` and `/api/v1/label/<name>/values`), then a newline.
pub fn write_string_list<S: AsRef<str>>(
    items: impl IntoIterator<Item = S>,
    out: &mut impl Write,
) -> io::Result<()> {
    let mut text = String::from(r#"{"status":"success","data":["#);
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        push_json_string(&mut text, item.as_ref());
    }
    text.push_str("]}\n");
    out.write_all(text.as_bytes())
}

/// Writes `{"status":"success","data":[{"__name__":"up",...},...]}` (the
/// body of `/api/v1/series`), then a newline; each label set sorted by
/// name already. Written one set at a time.
pub fn write_label_sets<'a>(
    sets: impl IntoIterator<Item = &'a [Label]>,
    out: &mut impl Write,
) -> io::Result<()> {
    let mut text = String::from(r#"{"status":"success","data":["#);
    for (i, labels) in sets.into_iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        push_metric(&mut text, labels);
        out.write_all(text.as_bytes())?;
        text.clear();
    }
    text.push_str("]}\n");
    out.write_all(text.as_bytes())
}

/// Writes an error body (`errorType` is one of Prometheus's: `bad_data`,
/// `execution`, `timeout`, `canceled`, `internal`), then a newline.
pub fn write_error(error_type: &str, message: &str, out: &mut impl Write) -> io::Result<()> {
    let mut text = String::from(r#"{"status":"error","errorType":"#);
    push_json_string(&mut text, error_type);
    text.push_str(r#","error":"#);
    push_json_string(&mut text, message);
    text.push_str("}\n");
    out.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{QuerySeries, Sample};

    #[test]
    fn floats_are_formatted_as_go_and_prometheus_do() {
        for (v, text) in [
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-2.5, "-2.5"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e-6, "0.000001"),
            (9.99e-7, "9.99e-07"),
            (1e-300, "1e-300"),
            (123_456_789_012.0, "123456789012"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (-1.5e22, "-1.5e+22"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (f64::from_bits(0x7ff0_0000_0000_0002), "NaN"),
        ] {
            assert_eq!(go_float(v), text, "{v:e}");
        }
    }

    #[test]
    fn timestamps_keep_three_digits_when_not_whole() {
        assert_eq!(json_timestamp(1_500), "1.500");
        assert_eq!(json_timestamp(1_000), "1");
        assert_eq!(json_timestamp(1_005), "1.005");
        assert_eq!(json_timestamp(0), "0");
        assert_eq!(json_timestamp(-1_500), "-1.500");
        assert_eq!(json_timestamp(-5), "-0.005");
        assert_eq!(json_timestamp(i64::MIN), "-9223372036854775.808");
    }

    fn labels(pairs: &[(&str, &str)]) -> Vec<Label> {
        pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect()
    }

    #[test]
    fn json_bodies_have_prometheus_shape() {
        let series = QuerySeries {
            labels: labels(&[("__name__", "up"), ("job", "a<b>&\"c\"\u{2028}")]),
            samples: vec![Sample::new(1_500, 1.0)],
        };
        let mut out = Vec::new();
        write_query_result(&QueryValue::Vector(vec![series.clone()]), &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"__name__\":\"up\",\"job\":\"a\\u003cb\\u003e\\u0026\\\"c\\\"\\u2028\"},\"value\":[1.500,\"1\"]}]}}\n"
        );
        let mut out = Vec::new();
        write_query_result(&QueryValue::Matrix(vec![]), &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[]}}\n"
        );
        let mut out = Vec::new();
        write_query_result(
            &QueryValue::Scalar(Sample::new(2_000, f64::NEG_INFINITY)),
            &mut out,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[2,\"-Inf\"]}}\n"
        );
        let mut out = Vec::new();
        write_string_list(["a", "<b>"], &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"status\":\"success\",\"data\":[\"a\",\"\\u003cb\\u003e\"]}\n"
        );
        let mut out = Vec::new();
        write_string_list(Vec::<String>::new(), &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"status\":\"success\",\"data\":[]}\n"
        );
        let mut out = Vec::new();
        let sets = [labels(&[("__name__", "up"), ("job", "a")]), labels(&[])];
        write_label_sets(sets.iter().map(Vec::as_slice), &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"status\":\"success\",\"data\":[{\"__name__\":\"up\",\"job\":\"a\"},{}]}\n"
        );
        let mut out = Vec::new();
        write_error("bad_data", "1:1: no \"x\"\n", &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"1:1: no \\\"x\\\"\\n\"}\n"
        );
    }
}
