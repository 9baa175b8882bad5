//! Series selectors in PromQL syntax: `metric`, `metric{a="x",b=~"y.*"}`,
//! `{__name__=~"http_.*",code!="200"}`. Label values are double-quoted
//! with `\\`, `\"` and `\n` escapes (single quotes are accepted too).

use super::{MatchOp, Matcher};
use crate::error::InputError;
use crate::series::METRIC_NAME_LABEL;

/// Parses a selector into matchers. An empty selector (or `{}`) selects
/// every series.
pub fn parse_selector(text: &str) -> Result<Vec<Matcher>, InputError> {
    let error = |at: usize, reason: &str| InputError::BadSeriesText {
        text: text.to_owned(),
        reason: format!("column {}: {reason}", at + 1),
    };
    let chars: Vec<char> = text.chars().collect();
    let mut pos = 0;
    let skip_blanks = |pos: &mut usize| {
        while chars.get(*pos).is_some_and(|c| c.is_whitespace()) {
            *pos += 1;
        }
    };
    let ident = |pos: &mut usize, metric: bool| -> String {
        let start = *pos;
        while let Some(&c) = chars.get(*pos) {
            let ok = c.is_ascii_alphabetic()
                || c == '_'
                || (metric && c == ':')
                || (*pos > start && c.is_ascii_digit());
            if !ok {
                break;
            }
            *pos += 1;
        }
        chars[start..*pos].iter().collect()
    };
    let mut matchers = Vec::new();
    skip_blanks(&mut pos);
    let metric = ident(&mut pos, true);
    if !metric.is_empty() {
        matchers.push(Matcher::equal(METRIC_NAME_LABEL, &metric));
    }
    skip_blanks(&mut pos);
    if pos < chars.len() {
        if chars[pos] != '{' {
            return Err(error(pos, "expected '{' or the end of the selector"));
        }
        pos += 1;
        loop {
            skip_blanks(&mut pos);
            if chars.get(pos) == Some(&'}') {
                pos += 1;
                break;
            }
            let name_at = pos;
            let name = ident(&mut pos, false);
            if name.is_empty() {
                return Err(error(name_at, "expected a label name"));
            }
            skip_blanks(&mut pos);
            let op = match (chars.get(pos), chars.get(pos + 1)) {
                (Some('='), Some('~')) => MatchOp::Regex,
                (Some('!'), Some('=')) => MatchOp::NotEqual,
                (Some('!'), Some('~')) => MatchOp::NotRegex,
                (Some('='), _) => MatchOp::Equal,
                _ => return Err(error(pos, "expected =, !=, =~ or !~")),
            };
            pos += if op == MatchOp::Equal { 1 } else { 2 };
            skip_blanks(&mut pos);
            let quote = match chars.get(pos) {
                Some(&q) if q == '"' || q == '\'' => q,
                _ => return Err(error(pos, "expected a quoted label value")),
            };
            pos += 1;
            let mut value = String::new();
            loop {
                match chars.get(pos) {
                    None => return Err(error(pos, "unterminated label value")),
                    Some(&c) if c == quote => break,
                    Some('\\') => {
                        pos += 1;
                        match chars.get(pos) {
                            Some('n') => value.push('\n'),
                            Some(&c) if c == '\\' || c == '"' || c == '\'' => value.push(c),
                            // Keep other escapes for the regex engine (\d, \.).
                            Some(&c) => {
                                value.push('\\');
                                value.push(c);
                            }
                            None => return Err(error(pos, "unterminated escape")),
                        }
                    }
                    Some(&c) => value.push(c),
                }
                pos += 1;
            }
            pos += 1;
            matchers.push(Matcher::new(&name, op, &value)?);
            skip_blanks(&mut pos);
            match chars.get(pos) {
                Some(',') => pos += 1,
                Some('}') => {}
                _ => return Err(error(pos, "expected ',' or '}'")),
            }
        }
        skip_blanks(&mut pos);
        if pos < chars.len() {
            return Err(error(pos, "unexpected text after '}'"));
        }
    }
    Ok(matchers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(text: &str) -> Vec<String> {
        parse_selector(text)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn selectors_parse() {
        assert!(show("").is_empty());
        assert!(show("{}").is_empty());
        assert_eq!(show("up"), [r#"__name__="up""#]);
        assert_eq!(
            show(r#"node:cpu{mode!="idle", cpu=~"1|2" ,x!~'a\.b',}"#),
            [
                r#"__name__="node:cpu""#,
                r#"mode!="idle""#,
                r#"cpu=~"1|2""#,
                r#"x!~"a\\.b""#
            ]
        );
        assert_eq!(show(r#"{a="q\"uote"}"#), [r#"a="q\"uote""#]);
    }

    #[test]
    fn bad_selectors_say_where() {
        for (text, column) in [
            ("up{", "column 4"),
            ("up{a}", "column 5"),
            ("up{a=b}", "column 6"),
            (r#"up{a="b""#, "column 9"),
            (r#"up{a="b"} x"#, "column 11"),
            ("up x", "column 4"),
        ] {
            let error = parse_selector(text).unwrap_err().to_string();
            assert!(error.contains(column), "{text}: {error}");
        }
        assert!(matches!(
            parse_selector(r#"{a=~"("}"#),
            Err(InputError::BadRegex { .. })
        ));
    }
}
