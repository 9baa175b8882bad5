//! The subset of Prometheus's Go templates that alert labels and
//! annotations use, parsed when the rule file is loaded (so `strata rules
//! check` reports an unsupported form) and expanded at each evaluation.
//!
//! Supported actions, between `{{` and `}}` (with Go's `{{-` / `-}}`
//! whitespace trimming):
//! - `$value` / `.Value`: the sample value, printed as Go's `%v`;
//! - `$labels.NAME` / `.Labels.NAME`: a label of the result (empty when
//!   absent, as Prometheus's `missingkey=zero`);
//! - `humanize X`, `humanizePercentage X` (X: `$value` or a label parsed as
//!   a number), as Prometheus's functions of the same name;
//! - `printf "FORMAT" X` with one verb: `%f`, `%.Nf`, `%g`, `%.Ng`, `%e`,
//!   `%.Ne`, `%v`, `%s` (and `%%`).
//!
//! Anything else (`if`, `range`, pipelines, other functions) is a load
//! error naming the template. Invariant: a parsed [`Template`] always
//! expands (no runtime template errors).

use crate::Label;

/// A parsed template: literal text and actions.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// The text as written.
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Action(Arg, Format),
}

/// What an action prints.
#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Value,
    Label(String),
}

/// How it prints it.
#[derive(Debug, Clone, PartialEq)]
enum Format {
    Plain,
    Humanize,
    HumanizePercentage,
    /// `printf`: text before the verb, the verb, its precision, text after.
    Printf {
        before: String,
        verb: char,
        precision: Option<usize>,
        after: String,
    },
}

impl Template {
    /// Parses `text`; the error says which action is not supported.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut trim_next_text = false;
        while let Some(open) = rest.find("{{") {
            let (literal, after_open) = (&rest[..open], &rest[open + 2..]);
            let close = after_open
                .find("}}")
                .ok_or_else(|| format!("unclosed action \"{{{{\" in {text:?}"))?;
            let mut action = &after_open[..close];
            let mut literal = if trim_next_text {
                literal.trim_start()
            } else {
                literal
            };
            if let Some(trimmed) = action.strip_prefix('-') {
                literal = literal.trim_end();
                action = trimmed;
            }
            trim_next_text = false;
            if let Some(trimmed) = action.strip_suffix('-') {
                trim_next_text = true;
                action = trimmed;
            }
            if !literal.is_empty() {
                parts.push(Part::Text(literal.to_owned()));
            }
            let (arg, format) = parse_action(action.trim())
                .map_err(|problem| format!("{problem} in {{{{{action}}}}} of {text:?}"))?;
            parts.push(Part::Action(arg, format));
            rest = &after_open[close + 2..];
        }
        let rest = if trim_next_text {
            rest.trim_start()
        } else {
            rest
        };
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template {
            source: text.to_owned(),
            parts,
        })
    }

    /// A template that expands to `text` as written (no actions).
    pub fn literal(text: String) -> Template {
        let parts = if text.is_empty() {
            Vec::new()
        } else {
            vec![Part::Text(text.clone())]
        };
        Template {
            source: text,
            parts,
        }
    }

    /// The text as written in the rule file.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The text with `labels` (`$labels`) and `value` (`$value`) filled in.
    pub fn expand(&self, labels: &[Label], value: f64) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Action(arg, format) => out.push_str(&render(arg, format, labels, value)),
            }
        }
        out
    }
}

const SUPPORTED: &str = "supported: $value, $labels.NAME, humanize X, humanizePercentage X, \
                         printf \"FORMAT\" X";

fn parse_action(action: &str) -> Result<(Arg, Format), String> {
    if let Some(rest) = action.strip_prefix("printf ") {
        return parse_printf(rest.trim());
    }
    for (name, format) in [
        ("humanizePercentage ", Format::HumanizePercentage),
        ("humanize ", Format::Humanize),
    ] {
        if let Some(arg) = action.strip_prefix(name) {
            return Ok((parse_arg(arg.trim())?, format));
        }
    }
    Ok((parse_arg(action)?, Format::Plain))
}

fn parse_arg(arg: &str) -> Result<Arg, String> {
    if arg == "$value" || arg == ".Value" {
        return Ok(Arg::Value);
    }
    let name = arg
        .strip_prefix("$labels.")
        .or_else(|| arg.strip_prefix(".Labels."));
    match name {
        Some(name) if crate::series::validate_label_name(name).is_ok() => {
            Ok(Arg::Label(name.to_owned()))
        }
        _ => Err(format!("unsupported template action ({SUPPORTED})")),
    }
}

fn parse_printf(rest: &str) -> Result<(Arg, Format), String> {
    let bad =
        || format!("printf needs a quoted format with one verb and one argument ({SUPPORTED})");
    let quoted = rest.strip_prefix('"').ok_or_else(bad)?;
    let end = quoted.find('"').ok_or_else(bad)?;
    let (format, arg) = (&quoted[..end], quoted[end + 1..].trim());
    let arg = parse_arg(arg)?;
    let (before, verb, precision, after) = split_verb(format).ok_or_else(bad)?;
    let numeric = matches!(verb, 'f' | 'g' | 'e');
    if numeric && matches!(arg, Arg::Label(_)) || verb == 's' && arg == Arg::Value {
        return Err(format!("printf verb %{verb} does not fit its argument"));
    }
    Ok((
        arg,
        Format::Printf {
            before,
            verb,
            precision,
            after,
        },
    ))
}

/// Splits a printf format around its one verb (`%%` stays text).
fn split_verb(format: &str) -> Option<(String, char, Option<usize>, String)> {
    let unescape = |s: &str| s.replace("%%", "%");
    let mut search = 0;
    loop {
        let at = search + format[search..].find('%')?;
        if format[at + 1..].starts_with('%') {
            search = at + 2;
            continue;
        }
        let spec = &format[at + 1..];
        let digits_end = spec.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let precision = match &spec[..digits_end] {
            "" => None,
            p => Some(p.strip_prefix('.')?.parse().ok()?),
        };
        let verb = spec[digits_end..].chars().next()?;
        if !matches!(verb, 'f' | 'g' | 'e' | 'v' | 's') {
            return None;
        }
        let after = &spec[digits_end + verb.len_utf8()..];
        if after.replace("%%", "").contains('%') {
            return None;
        }
        return Some((unescape(&format[..at]), verb, precision, unescape(after)));
    }
}

fn render(arg: &Arg, format: &Format, labels: &[Label], value: f64) -> String {
    let label = |name: &str| {
        labels
            .iter()
            .find(|l| &*l.name == name)
            .map_or("", |l| &*l.value)
            .to_owned()
    };
    let number = || match arg {
        Arg::Value => value,
        Arg::Label(name) => label(name).trim().parse().unwrap_or(f64::NAN),
    };
    match format {
        Format::Plain => match arg {
            Arg::Value => go_g(value, None),
            Arg::Label(name) => label(name),
        },
        Format::Humanize => humanize(number()),
        Format::HumanizePercentage => format!("{}%", go_g(number() * 100.0, Some(4))),
        Format::Printf {
            before,
            verb,
            precision,
            after,
        } => {
            let middle = match (verb, arg) {
                ('f', _) => fixed(number(), precision.unwrap_or(6)),
                ('g', _) => go_g(number(), *precision),
                ('e', _) => go_e(number(), Some(precision.unwrap_or(6))),
                (_, Arg::Value) => go_g(value, None),
                (_, Arg::Label(name)) => label(name),
            };
            format!("{before}{middle}{after}")
        }
    }
}

/// Prometheus's `humanize`: SI prefixes, four significant digits.
pub fn humanize(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return go_g(v, Some(4));
    }
    let (mut scaled, mut prefix) = (v, "");
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if scaled.abs() < 1000.0 {
                break;
            }
            prefix = p;
            scaled /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if scaled.abs() >= 1.0 {
                break;
            }
            prefix = p;
            scaled *= 1000.0;
        }
    }
    format!("{}{prefix}", go_g(scaled, Some(4)))
}

fn non_finite(v: f64) -> Option<String> {
    if v.is_nan() {
        Some("NaN".to_owned())
    } else if v.is_infinite() {
        Some(if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned())
    } else {
        None
    }
}

/// `%.Nf`.
fn fixed(v: f64, precision: usize) -> String {
    non_finite(v).unwrap_or_else(|| format!("{v:.precision$}"))
}

/// Decimal digits (no trailing zeros, at least one) and the exponent of
/// the first: `v = 0.d1d2... * 10^(exponent + 1)`. `significant` rounds to
/// that many digits; `None` is the shortest round-trip form.
fn digits(v: f64, significant: Option<usize>) -> (String, i32) {
    let text = match significant {
        Some(n) => format!("{:.*e}", n.max(1) - 1, v.abs()),
        None => format!("{:e}", v.abs()),
    };
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let mut digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    (digits, exponent.parse().unwrap_or(0))
}

/// Go's `%e` layout of `digits`: `d.ddde+XX` with `decimals` digits.
fn layout_e(negative: bool, digits: &str, exponent: i32, decimals: usize) -> String {
    let mut out = String::from(if negative { "-" } else { "" });
    out.push_str(&digits[..1]);
    if decimals > 0 {
        out.push('.');
        let rest: String = digits[1..]
            .chars()
            .chain(std::iter::repeat('0'))
            .take(decimals)
            .collect();
        out.push_str(&rest);
    }
    let sign = if exponent < 0 { '-' } else { '+' };
    out.push_str(&format!("e{sign}{:02}", exponent.unsigned_abs()));
    out
}

/// Go's `%.Ne`, or with `precision` `None` `strconv.FormatFloat(v, 'e',
/// -1, 64)` (the shortest digits: `1e+00`, `2.5e-07`).
pub fn go_e(v: f64, precision: Option<usize>) -> String {
    if let Some(text) = non_finite(v) {
        return text;
    }
    let (digits, exponent) = digits(v, precision.map(|p| p + 1));
    let decimals = precision.unwrap_or(digits.len() - 1);
    layout_e(v.is_sign_negative(), &digits, exponent, decimals)
}

/// Go's `%g` (`precision` `None`) or `%.Ng`: `strconv.FormatFloat(v, 'g',
/// N, 64)`.
pub fn go_g(v: f64, precision: Option<usize>) -> String {
    if let Some(text) = non_finite(v) {
        return text;
    }
    let (digits, exponent) = digits(v, precision);
    let count = digits.len();
    let point = exponent + 1;
    let mut prec = precision.map_or(count, |p| p.max(1));
    let mut eprec = prec;
    if eprec > count && count as i32 >= point {
        eprec = count;
    }
    if precision.is_none() {
        eprec = 6;
    }
    if exponent < -4 || exponent >= eprec as i32 {
        prec = prec.min(count);
        return layout_e(v.is_sign_negative(), &digits, exponent, prec - 1);
    }
    if prec as i32 > point {
        prec = count;
    }
    let decimals = (prec as i32 - point).max(0) as usize;
    let digit = |i: i32| {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.as_bytes().get(i))
            .map_or('0', |&b| b as char)
    };
    let mut out = String::from(if v.is_sign_negative() { "-" } else { "" });
    if point > 0 {
        out.extend((0..point).map(digit));
    } else {
        out.push('0');
    }
    if decimals > 0 {
        out.push('.');
        out.extend((0..decimals as i32).map(|i| digit(point + i)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<Label> {
        vec![Label::new("instance", "a:9100"), Label::new("job", "api")]
    }

    #[test]
    fn go_g_matches_go() {
        let cases = [
            (1.0, None, "1"),
            (0.5, None, "0.5"),
            (1e6, None, "1e+06"),
            (123456.0, None, "123456"),
            (1234567.0, None, "1.234567e+06"),
            (0.0001, None, "0.0001"),
            (0.00001, None, "1e-05"),
            (-2.5, None, "-2.5"),
            (0.0, None, "0"),
            (1.5, Some(4), "1.5"),
            (1234.5, Some(4), "1234"),
            (1200.0, Some(4), "1200"),
            (12345.0, Some(4), "1.234e+04"),
            (0.012345, Some(4), "0.01235"),
            (f64::NAN, None, "NaN"),
            (f64::INFINITY, Some(4), "+Inf"),
        ];
        for (v, precision, want) in cases {
            assert_eq!(go_g(v, precision), want, "{v} {precision:?}");
        }
    }

    #[test]
    fn go_e_matches_go() {
        assert_eq!(go_e(1.0, None), "1e+00");
        assert_eq!(go_e(0.25, None), "2.5e-01");
        assert_eq!(go_e(1234.5, Some(2)), "1.23e+03");
        assert_eq!(go_e(-3e-7, None), "-3e-07");
    }

    proptest::proptest! {
        /// The shortest `%v` and `%e` forms read back to the same float.
        #[test]
        fn shortest_forms_round_trip(bits in proptest::num::u64::ANY) {
            let v = f64::from_bits(bits);
            proptest::prop_assume!(v.is_finite());
            proptest::prop_assert_eq!(go_g(v, None).parse::<f64>().unwrap().to_bits(), v.to_bits());
            proptest::prop_assert_eq!(go_e(v, None).parse::<f64>().unwrap().to_bits(), v.to_bits());
        }
    }

    #[test]
    fn humanize_matches_prometheus() {
        assert_eq!(humanize(1234.0), "1.234k");
        assert_eq!(humanize(1_500_000.0), "1.5M");
        assert_eq!(humanize(0.25), "250m");
        assert_eq!(humanize(0.0), "0");
        assert_eq!(humanize(12.0), "12");
    }

    #[test]
    fn expands_labels_value_and_functions() {
        let t = Template::parse(
            "{{ $labels.job }} at {{ .Labels.instance }}: {{ $value }} \
             ({{ humanize $value }}, {{ humanizePercentage $value }}, \
             {{ printf \"%.2f\" $value }}, {{ $labels.missing }}!)",
        )
        .unwrap();
        assert_eq!(
            t.expand(&labels(), 0.1234),
            "api at a:9100: 0.1234 (123.4m, 12.34%, 0.12, !)"
        );
    }

    #[test]
    fn trims_whitespace_markers() {
        let t = Template::parse("a  {{- $labels.job -}}  b").unwrap();
        assert_eq!(t.expand(&labels(), 0.0), "aapib");
    }

    #[test]
    fn refuses_unsupported_actions() {
        for text in [
            "{{ if gt $value 1.0 }}x{{ end }}",
            "{{ $labels }}",
            "{{ $value | humanize }}",
            "{{ printf \"%d\" $value }}",
            "{{ printf \"%f\" $labels.job }}",
            "{{ $value",
        ] {
            assert!(Template::parse(text).is_err(), "{text}");
        }
        assert_eq!(
            Template::parse("plain").unwrap(),
            Template::literal("plain".into())
        );
    }
}
