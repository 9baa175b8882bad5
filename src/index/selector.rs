//! Series selectors (`metric`, `metric{a="x",b=~"y.*"}`,
//! `{__name__=~"http_.*",code!="200"}`) for the tools that pick series
//! without evaluating anything: export and discovery.
//!
//! The text is read by the PromQL parser ([`crate::parse_expr`]), so the
//! syntax, escapes, regex anchoring and error positions are exactly the
//! query language's. The result must be a plain instant-vector selector:
//! a function call, an aggregation, an operator, a range or a modifier is
//! refused with a message that points to `strata query`. A bad regex
//! names the pattern as the user wrote it (the parser's error).
//!
//! One extension: an empty selector and `{}` select every series (PromQL
//! refuses `{}`, which would match everything by accident in a query; a
//! tool that lists or exports series means it).

use super::Matcher;
use crate::error::InputError;
use crate::query::ast::Expr;
use crate::query::parse::parse_expr;

/// Where an expression needs the query engine rather than a selector.
const NEEDS_QUERY: &str = "functions, operators and ranges need `strata query`";

/// Parses a selector into matchers; see the module doc. Errors are
/// [`InputError::BadSeriesText`] whose reason starts with the line and
/// column (`1:5: ...`).
pub fn parse_selector(text: &str) -> Result<Vec<Matcher>, InputError> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() || compact == "{}" {
        return Ok(Vec::new());
    }
    let fail = |reason: String| InputError::BadSeriesText {
        text: text.to_owned(),
        reason,
    };
    let not_selector =
        |what: String| fail(format!("1:1: {what}, not a series selector; {NEEDS_QUERY}"));
    match parse_expr(text) {
        Ok(Expr::Vector(selector)) => {
            if selector.offset_ms != 0 || selector.at.is_some() {
                return Err(fail(format!(
                    "1:1: offset and @ move a query's evaluation time; a series selector takes neither ({NEEDS_QUERY})"
                )));
            }
            Ok(selector.matchers)
        }
        Ok(Expr::Matrix { .. } | Expr::Subquery(_)) => Err(not_selector("this is a range".to_owned())),
        Ok(Expr::Call { func, .. }) => {
            Err(not_selector(format!("{}(...) is a function call", func.name())))
        }
        Ok(Expr::Aggregate(aggregate)) => Err(not_selector(format!(
            "{}(...) is an aggregation",
            aggregate.op.name()
        ))),
        Ok(Expr::Binary(binary)) => Err(not_selector(format!(
            "this is an operation ({})",
            binary.op.symbol()
        ))),
        Ok(Expr::Neg(_)) => Err(not_selector("this is a negation".to_owned())),
        Ok(Expr::Number(_) | Expr::String(_)) => Err(fail(
            "1:1: expected a series selector like up or http_requests_total{code=~\"5..\"}, found a literal"
                .to_owned(),
        )),
        Err(error) => {
            let mut reason = error.to_string();
            if looks_like_an_expression(text) {
                reason.push_str("; ");
                reason.push_str(NEEDS_QUERY);
            }
            Err(fail(reason))
        }
    }
}

/// Whether `text` has, outside quotes and braces, a character that only
/// expressions use: parentheses, brackets or an operator.
fn looks_like_an_expression(text: &str) -> bool {
    let mut quote = None;
    let mut escaped = false;
    let mut braces = 0usize;
    for c in text.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && q != '`' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '{' => braces += 1,
            '}' => braces = braces.saturating_sub(1),
            '(' | ')' | '[' | ']' | '+' | '-' | '*' | '/' | '%' | '^' | '<' | '>' | '=' | '!'
                if braces == 0 =>
            {
                return true
            }
            _ => {}
        }
    }
    false
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

    fn reason(text: &str) -> String {
        match parse_selector(text) {
            Err(InputError::BadSeriesText { reason, .. }) => reason,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn selectors_parse() {
        assert!(show("").is_empty());
        assert!(show(" { } ").is_empty());
        assert_eq!(show("up"), [r#"__name__="up""#]);
        assert_eq!(
            show(r#"node:cpu{mode!="idle", cpu=~"1|2" ,x!~'a\\.b',}"#),
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
    fn expressions_point_to_strata_query() {
        for (text, expected) in [
            (
                "rate(x[5m])",
                "1:1: rate(...) is a function call, not a series selector",
            ),
            ("sum by (a) (x)", "sum(...) is an aggregation"),
            ("a / b", "operation (/)"),
            ("-a", "negation"),
            ("x[5m]", "range"),
            ("x[5m:1m]", "range"),
            ("x offset 5m", "offset and @"),
            ("x @ 100", "offset and @"),
            // Parse errors inside expressions get the hint too.
            ("rate(x[5m]", "1:11"),
            ("foo(x)", "1:1"),
        ] {
            let reason = reason(text);
            assert!(reason.contains(expected), "{text}: {reason}");
            assert!(reason.contains("need `strata query`"), "{text}: {reason}");
        }
        assert!(reason("42").contains("found a literal"));
    }

    #[test]
    fn bad_selectors_say_where() {
        for (text, column) in [
            ("up{", "1:4"),
            ("up{a}", "1:5"),
            ("up{a=b}", "1:6"),
            (r#"up{a="b""#, "1:9"),
            (r#"up{a="b"} x"#, "1:11"),
            ("up x", "1:4"),
            (r#"{a=""}"#, "1:1"),
        ] {
            let reason = reason(text);
            assert!(reason.starts_with(column), "{text}: {reason}");
            assert!(!reason.contains("strata query"), "{text}: {reason}");
        }
        // Matchers inside braces are not operators.
        assert!(!looks_like_an_expression(r#"x{a!="(", b=~"[a-z]+"}"#));
    }

    #[test]
    fn bad_regexes_show_the_users_pattern() {
        let reason = reason(r#"up{a=~"(x"}"#);
        assert!(reason.contains(r#""(x""#), "{reason}");
        assert!(!reason.contains("?s:"), "{reason}");
    }
}
