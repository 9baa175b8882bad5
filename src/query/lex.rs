//! PromQL tokens: the lexer behind [`super::parse`].
//!
//! The whole input is turned into tokens before parsing, in one pass that
//! looks at every byte a bounded number of times. Every token carries the
//! byte offset of its first character. Rules (Prometheus's lexer):
//!
//! - identifiers `[a-zA-Z_:][a-zA-Z0-9_:]*`; keywords are identifiers the
//!   parser gives a meaning in context (so `{by="x"}` and `by (on)` work);
//! - numbers: decimal `1`, `1.5`, `.5`, `1e-3`, hex `0x1F`; `Inf` and `NaN`
//!   (any case) are identifiers that the parser reads as numbers;
//! - durations: one or more `<digits><unit>` with units `y w d h m s ms`,
//!   each at most once and from the largest to the smallest (`1h30m`); a
//!   number glued to letters (`5x`, `1e`) is an error, not two tokens;
//! - strings: `"..."` and `'...'` with Go escapes (`\a \b \f \n \r \t \v
//!   \\`, the opening quote, `\NNN` octal, `\xHH`, `\uHHHH`,
//!   `\UHHHHHHHH`), no raw newline; `` `...` `` raw, newlines allowed;
//! - `#` starts a comment that runs to the end of the line.

use std::fmt;

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    Number(f64),
    /// Milliseconds.
    Duration(i64),
    Str(String),
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Comma,
    Colon,
    At,
    /// `=` (label matchers only)
    Assign,
    /// `=~`
    EqRegex,
    /// `!~`
    NeqRegex,
    Eql,
    Neq,
    Lss,
    Gtr,
    Lte,
    Gte,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eof,
}

impl fmt::Display for Tok {
    /// How an error message names the token it found.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let symbol = match self {
            Tok::Ident(name) => return write!(f, "identifier \"{name}\""),
            Tok::Number(n) => return write!(f, "number {}", super::ast::FormatNumber(*n)),
            Tok::Duration(ms) => return write!(f, "duration {}", super::ast::FormatDuration(*ms)),
            Tok::Str(s) => return write!(f, "string {}", super::ast::FormatString(s)),
            Tok::Eof => return f.write_str("end of input"),
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::Comma => ",",
            Tok::Colon => ":",
            Tok::At => "@",
            Tok::Assign => "=",
            Tok::EqRegex => "=~",
            Tok::NeqRegex => "!~",
            Tok::Eql => "==",
            Tok::Neq => "!=",
            Tok::Lss => "<",
            Tok::Gtr => ">",
            Tok::Lte => "<=",
            Tok::Gte => ">=",
            Tok::Add => "+",
            Tok::Sub => "-",
            Tok::Mul => "*",
            Tok::Div => "/",
            Tok::Mod => "%",
            Tok::Pow => "^",
        };
        write!(f, "\"{symbol}\"")
    }
}

/// A token and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub pos: usize,
}

/// A lexical error: byte offset and message.
pub(crate) type LexError = (usize, String);

/// Splits `text` into tokens, ending with [`Tok::Eof`].
pub(crate) fn tokenize(text: &str) -> Result<Vec<Token>, LexError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#' {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let two = bytes.get(i + 1).copied();
        let (tok, len) = match c {
            b'(' => (Tok::LParen, 1),
            b')' => (Tok::RParen, 1),
            b'{' => (Tok::LBrace, 1),
            b'}' => (Tok::RBrace, 1),
            b'[' => (Tok::LBracket, 1),
            b']' => (Tok::RBracket, 1),
            b',' => (Tok::Comma, 1),
            b':' if !two.is_some_and(is_ident_start) => (Tok::Colon, 1),
            b'@' => (Tok::At, 1),
            b'+' => (Tok::Add, 1),
            b'-' => (Tok::Sub, 1),
            b'*' => (Tok::Mul, 1),
            b'/' => (Tok::Div, 1),
            b'%' => (Tok::Mod, 1),
            b'^' => (Tok::Pow, 1),
            b'=' => match two {
                Some(b'=') => (Tok::Eql, 2),
                Some(b'~') => (Tok::EqRegex, 2),
                _ => (Tok::Assign, 1),
            },
            b'!' => match two {
                Some(b'=') => (Tok::Neq, 2),
                Some(b'~') => (Tok::NeqRegex, 2),
                _ => {
                    return Err((
                        i,
                        "unexpected character \"!\": expected \"!=\" or \"!~\"".into(),
                    ))
                }
            },
            b'<' => match two {
                Some(b'=') => (Tok::Lte, 2),
                _ => (Tok::Lss, 1),
            },
            b'>' => match two {
                Some(b'=') => (Tok::Gte, 2),
                _ => (Tok::Gtr, 1),
            },
            b'"' | b'\'' | b'`' => {
                let (value, end) = lex_string(text, i)?;
                tokens.push(Token {
                    tok: Tok::Str(value),
                    pos: start,
                });
                i = end;
                continue;
            }
            b'0'..=b'9' => {
                let (tok, end) = lex_number(bytes, i)?;
                tokens.push(Token { tok, pos: start });
                i = end;
                continue;
            }
            b'.' if two.is_some_and(|b| b.is_ascii_digit()) => {
                let (tok, end) = lex_number(bytes, i)?;
                tokens.push(Token { tok, pos: start });
                i = end;
                continue;
            }
            c if is_ident_start(c) => {
                while i < bytes.len() && is_ident_char(bytes[i]) {
                    i += 1;
                }
                tokens.push(Token {
                    tok: Tok::Ident(text[start..i].to_owned()),
                    pos: start,
                });
                continue;
            }
            _ => {
                let found = text[i..].chars().next().unwrap_or('?');
                return Err((i, format!("unexpected character {found:?}")));
            }
        };
        tokens.push(Token { tok, pos: start });
        i += len;
    }
    tokens.push(Token {
        tok: Tok::Eof,
        pos: bytes.len(),
    });
    Ok(tokens)
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_ident_char(c: u8) -> bool {
    is_ident_start(c) || c.is_ascii_digit()
}

/// A byte that may not directly follow a number or a duration (`:` may:
/// `[1h:5m]`).
fn is_glued(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'.'
}

/// Duration units, largest first, with their length in milliseconds.
pub(crate) const DURATION_UNITS: [(&str, i64); 7] = [
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// A number or a duration starting at `start` (a digit, or `.` and a digit).
fn lex_number(bytes: &[u8], start: usize) -> Result<(Tok, usize), LexError> {
    let digits_end = |mut i: usize, hex: bool| {
        while i < bytes.len()
            && (bytes[i].is_ascii_digit() || (hex && bytes[i].is_ascii_hexdigit()))
        {
            i += 1;
        }
        i
    };
    let bad = |end: usize| -> LexError {
        let mut stop = end;
        while stop < bytes.len() && is_glued(bytes[stop]) {
            stop += 1;
        }
        let text = String::from_utf8_lossy(&bytes[start..stop]);
        (start, format!("bad number or duration syntax \"{text}\""))
    };
    let text_of = |end: usize| String::from_utf8_lossy(&bytes[start..end]).into_owned();
    let glued = |i: usize| bytes.get(i).is_some_and(|&b| is_glued(b));

    if bytes[start] == b'0' && matches!(bytes.get(start + 1), Some(b'x' | b'X')) {
        let end = digits_end(start + 2, true);
        if end == start + 2 || glued(end) {
            return Err(bad(end));
        }
        return match u64::from_str_radix(&text_of(end)[2..], 16) {
            Ok(n) => Ok((Tok::Number(n as f64), end)),
            Err(_) => Err((
                start,
                format!("hex number \"{}\" is too large", text_of(end)),
            )),
        };
    }
    let int_end = digits_end(start, false);
    // A duration: digits followed by a unit letter.
    if int_end > start && bytes.get(int_end).is_some_and(|b| b"ywdhms".contains(b)) {
        return lex_duration(bytes, start).ok_or_else(|| bad(start));
    }
    let mut i = int_end;
    if bytes.get(i) == Some(&b'.') {
        i = digits_end(i + 1, false);
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(bytes.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let exp_end = digits_end(j, false);
        if exp_end == j {
            return Err(bad(exp_end));
        }
        i = exp_end;
    }
    if glued(i) {
        return Err(bad(i));
    }
    match text_of(i).parse::<f64>() {
        Ok(n) => Ok((Tok::Number(n), i)),
        Err(_) => Err(bad(i)),
    }
}

/// A whole text as a Prometheus duration in milliseconds (`1h30m`,
/// `250ms`, `0s`, or `0`): the grammar of PromQL's duration literals,
/// which Prometheus's `model.ParseDuration` shares (rule files, the HTTP
/// API's duration parameters). `None` when malformed, out of order or out
/// of range.
#[cfg(feature = "server")]
pub(crate) fn parse_duration_ms(text: &str) -> Option<i64> {
    if text == "0" {
        return Some(0);
    }
    match lex_duration(text.as_bytes(), 0)? {
        (Tok::Duration(ms), end) if end > 0 && end == text.len() => Some(ms),
        _ => None,
    }
}

/// `1h30m`-style durations; `None` when malformed, out of order or out of
/// range. Returns the milliseconds and the end offset.
fn lex_duration(bytes: &[u8], start: usize) -> Option<(Tok, usize)> {
    let mut i = start;
    let mut total: i64 = 0;
    let mut next_unit = 0; // index into DURATION_UNITS of the smallest unit still allowed first
    loop {
        let digits_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == digits_start {
            break;
        }
        let digits = std::str::from_utf8(&bytes[digits_start..i]).ok()?;
        let count: i64 = digits.parse().ok()?;
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = std::str::from_utf8(&bytes[unit_start..i]).ok()?;
        let index = DURATION_UNITS.iter().position(|(name, _)| *name == unit)?;
        if index < next_unit {
            return None;
        }
        next_unit = index + 1;
        total = total.checked_add(count.checked_mul(DURATION_UNITS[index].1)?)?;
    }
    if bytes.get(i).is_some_and(|&b| is_glued(b)) {
        return None;
    }
    Some((Tok::Duration(total), i))
}

/// A quoted string starting at `start`; returns its value and end offset.
fn lex_string(text: &str, start: usize) -> Result<(String, usize), LexError> {
    let bytes = text.as_bytes();
    let quote = bytes[start];
    let mut i = start + 1;
    if quote == b'`' {
        return match text[i..].find('`') {
            Some(len) => Ok((text[i..i + len].to_owned(), i + len + 1)),
            None => Err((start, "unterminated raw string".into())),
        };
    }
    let unterminated = || (start, "unterminated quoted string".to_owned());
    let mut value: Vec<u8> = Vec::new();
    loop {
        let Some(&c) = bytes.get(i) else {
            return Err(unterminated());
        };
        if c == quote {
            i += 1;
            break;
        }
        match c {
            b'\n' => return Err(unterminated()),
            b'\\' => {
                let at = i;
                let Some(&e) = bytes.get(i + 1) else {
                    return Err(unterminated());
                };
                i += 2;
                let simple = match e {
                    b'a' => Some(0x07),
                    b'b' => Some(0x08),
                    b'f' => Some(0x0c),
                    b'n' => Some(b'\n'),
                    b'r' => Some(b'\r'),
                    b't' => Some(b'\t'),
                    b'v' => Some(0x0b),
                    b'\\' => Some(b'\\'),
                    e if e == quote => Some(e),
                    _ => None,
                };
                if let Some(b) = simple {
                    value.push(b);
                    continue;
                }
                let hex_digits = |from: usize, n: usize| -> Option<u32> {
                    let digits = text.get(from..from + n)?;
                    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return None;
                    }
                    u32::from_str_radix(digits, 16).ok()
                };
                let bad_escape = |what: &str| (at, format!("invalid escape sequence: {what}"));
                match e {
                    b'0'..=b'7' => {
                        let digits = text.get(at + 1..at + 4).unwrap_or("");
                        let n = (digits.len() == 3
                            && digits.bytes().all(|b| (b'0'..=b'7').contains(&b)))
                        .then(|| u32::from_str_radix(digits, 8).ok())
                        .flatten()
                        .filter(|n| *n <= 255)
                        .ok_or_else(|| bad_escape("octal escapes are \\NNN, at most \\377"))?;
                        value.push(n as u8);
                        i = at + 4;
                    }
                    b'x' => {
                        let n = hex_digits(i, 2)
                            .ok_or_else(|| bad_escape("\\x needs two hex digits"))?;
                        value.push(n as u8);
                        i += 2;
                    }
                    b'u' | b'U' => {
                        let n = if e == b'u' { 4 } else { 8 };
                        let ch = hex_digits(i, n).and_then(char::from_u32).ok_or_else(|| {
                            bad_escape(&format!(
                                "\\{} needs {n} hex digits of a Unicode scalar value",
                                e as char
                            ))
                        })?;
                        let mut buf = [0; 4];
                        value.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        i += n;
                    }
                    _ => {
                        let shown = text[at..].chars().nth(1).unwrap_or('?');
                        return Err((at, format!("unknown escape sequence \"\\{shown}\"")));
                    }
                }
            }
            _ => {
                value.push(c);
                i += 1;
            }
        }
    }
    match String::from_utf8(value) {
        Ok(s) => Ok((s, i)),
        Err(_) => Err((start, "string is not valid UTF-8 after its escapes".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<Tok> {
        tokenize(text).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn numbers_and_durations() {
        assert_eq!(
            toks("1 .5 1e3 0x1F 2.5E-1"),
            [
                Tok::Number(1.0),
                Tok::Number(0.5),
                Tok::Number(1000.0),
                Tok::Number(31.0),
                Tok::Number(0.25),
                Tok::Eof
            ]
        );
        assert_eq!(
            toks("1h30m 90s 500ms 1d 1w 1y 1m5ms"),
            [
                Tok::Duration(5_400_000),
                Tok::Duration(90_000),
                Tok::Duration(500),
                Tok::Duration(86_400_000),
                Tok::Duration(604_800_000),
                Tok::Duration(31_536_000_000),
                Tok::Duration(60_005),
                Tok::Eof
            ]
        );
        for bad in [
            "5x",
            "1e",
            "1.5m",
            "1m1h",
            "1s1s",
            "0x",
            "0xZ",
            "1a",
            "99999999999999999y",
        ] {
            assert!(tokenize(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn strings_follow_go_escapes() {
        assert_eq!(
            toks(r#""a\"b\n\x41\101\u00e9\U0001F600""#)[0],
            Tok::Str("a\"b\nAAé😀".into())
        );
        assert_eq!(toks(r"'it\'s'")[0], Tok::Str("it's".into()));
        assert_eq!(toks("`a\\.b\nc`")[0], Tok::Str("a\\.b\nc".into()));
        for (bad, at) in [
            (r#""a\.b""#, 2),
            (r#""\'""#, 1),
            ("\"a\nb\"", 0),
            (r#""abc"#, 0),
            ("`abc", 0),
            (r#""\xff""#, 0),
            (r#""\400""#, 1),
            (r#""\ud800""#, 1),
        ] {
            let error = tokenize(bad).unwrap_err();
            assert_eq!(error.0, at, "{bad}: {error:?}");
        }
    }

    #[test]
    fn operators_comments_and_identifiers() {
        assert_eq!(
            toks("a:b{c=~\"x\"} # comment\n>= != !~ == = <"),
            [
                Tok::Ident("a:b".into()),
                Tok::LBrace,
                Tok::Ident("c".into()),
                Tok::EqRegex,
                Tok::Str("x".into()),
                Tok::RBrace,
                Tok::Gte,
                Tok::Neq,
                Tok::NeqRegex,
                Tok::Eql,
                Tok::Assign,
                Tok::Lss,
                Tok::Eof
            ]
        );
        assert_eq!(toks("[1h:]")[2], Tok::Colon);
        assert!(tokenize("a ! b").is_err());
        assert!(tokenize("a $").is_err());
    }
}
