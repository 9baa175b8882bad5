//! The PromQL parser: text to a well-typed [`Expr`].
//!
//! A hand-written recursive-descent parser with precedence climbing for
//! binary operators, over the tokens of the `lex` module. The grammar
//! (Prometheus's, restricted to strata's subset; docs/QUERY.md lists the
//! differences):
//!
//! ```text
//! expr       = unary { binop modifiers expr }      (precedence climbing)
//! binop      = "^"                                 7, right-associative
//!            | "*" | "/" | "%" | "atan2"           5
//!            | "+" | "-"                           4
//!            | "==" | "!=" | ">" | "<" | ">=" | "<="  3
//!            | "and" | "unless"                    2
//!            | "or"                                1   (all but ^ left-assoc)
//! modifiers  = [ "bool" ] [ ("on" | "ignoring") labels
//!                           [ ("group_left" | "group_right") [ labels ] ] ]
//! unary      = ("-" | "+") expr<7> | postfix       (unary minus binds between * and ^)
//! postfix    = primary { "[" duration "]"                       range, on a selector
//!                      | "[" duration ":" [ duration ] "]"      subquery
//!                      | "offset" [ "-" ] duration
//!                      | "@" ( [ "-" | "+" ] number | "start" "(" ")" | "end" "(" ")" ) }
//! primary    = number | string | "(" expr ")" | selector
//!            | function "(" [ expr { "," expr } ] ")"
//!            | aggregation
//! selector   = metric [ "{" matchers "}" ] | "{" matchers "}"
//! matchers   = [ label ("=" | "!=" | "=~" | "!~") string { "," ... } [ "," ] ]
//! aggregation= aggop [ grouping ] "(" [ expr "," ] expr ")" [ grouping ]
//!                                    (trailing commas: in matchers and labels only)
//! grouping   = ("by" | "without") labels
//! labels     = "(" [ label { "," label } [ "," ] ] ")"
//! ```
//!
//! Invariants:
//! - the parser never panics, and its work is linear in the input apart
//!   from compiling the regular expressions it contains;
//! - the tree it returns is at most [`MAX_DEPTH`] nodes deep, and the
//!   parser recurses at most that deep, so printing, comparing and
//!   dropping the tree cannot overflow the stack (the deepest parse takes
//!   about 0.3 MB of stack optimized, 1.2 MB in an unoptimized build);
//! - the tree is well-typed (see [`Expr::value_type`]): every function,
//!   aggregation and operator has operands of the types Prometheus
//!   accepts, otherwise the error says which type was expected and found;
//! - every error carries the byte offset, line and column it concerns.

use std::fmt;

use super::ast::{
    AggOp, Aggregate, At, BinOp, Binary, Cardinality, Expr, Function, Grouping, Subquery,
    ValueType, VectorMatching, VectorSelector,
};
use super::lex::{tokenize, Tok, Token};
use crate::error::InputError;
use crate::index::{MatchOp, Matcher};
use crate::series::{validate_label_name, METRIC_NAME_LABEL};

/// The deepest expression tree (and parser recursion) accepted.
pub const MAX_DEPTH: usize = 256;

/// The largest `@` timestamp, in milliseconds either side of 1970.
const MAX_AT_MS: i64 = 1 << 51;

/// Why a query text is not a valid expression, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset in the query text.
    pub position: usize,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses a PromQL expression of strata's subset.
pub fn parse_expr(text: &str) -> Result<Expr, ParseError> {
    let tokens = tokenize(text).map_err(|(position, message)| error_at(text, position, message))?;
    let mut parser = Parser {
        text,
        tokens,
        i: 0,
        depth: 0,
    };
    let parsed = parser.expr(0)?;
    if parser.peek() != &Tok::Eof {
        let what = if binop(parser.peek()).is_some() || parser.peek() == &Tok::RParen {
            "the end of input"
        } else {
            "an operator or the end of input"
        };
        return Err(parser.unexpected(what));
    }
    Ok(parsed.expr)
}

fn error_at(text: &str, position: usize, message: String) -> ParseError {
    let before = text.get(..position).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    ParseError {
        position,
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
        message,
    }
}

/// A subtree while parsing: where it starts, how deep it is, and whether
/// it was written in parentheses (which forbids `[range]` and `offset`
/// after it, and number folding under `-`).
struct Parsed {
    expr: Expr,
    start: usize,
    height: usize,
    paren: bool,
}

/// `bool`, and `on`/`ignoring` with its position.
type Modifiers = (bool, Option<(usize, VectorMatching)>);

/// What starts at a primary position.
enum Primary {
    Done(Parsed),
    Paren,
    Call(Function),
    Aggregate(AggOp),
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    i: usize,
    depth: usize,
}

/// Keywords that cannot be metric names (aggregation names neither).
const KEYWORDS: [&str; 12] = [
    "and",
    "or",
    "unless",
    "atan2",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
];

fn binop(tok: &Tok) -> Option<BinOp> {
    Some(match tok {
        Tok::Add => BinOp::Add,
        Tok::Sub => BinOp::Sub,
        Tok::Mul => BinOp::Mul,
        Tok::Div => BinOp::Div,
        Tok::Mod => BinOp::Mod,
        Tok::Pow => BinOp::Pow,
        Tok::Eql => BinOp::Eql,
        Tok::Neq => BinOp::Neq,
        Tok::Gtr => BinOp::Gtr,
        Tok::Lss => BinOp::Lss,
        Tok::Gte => BinOp::Gte,
        Tok::Lte => BinOp::Lte,
        Tok::Ident(name) => match name.as_str() {
            "and" => BinOp::And,
            "or" => BinOp::Or,
            "unless" => BinOp::Unless,
            "atan2" => BinOp::Atan2,
            _ => return None,
        },
        _ => return None,
    })
}

fn is_ident(tok: &Tok, word: &str) -> bool {
    matches!(tok, Tok::Ident(name) if name == word)
}

/// Prometheus's special number identifiers, in any case.
fn number_ident(name: &str) -> Option<f64> {
    if name.eq_ignore_ascii_case("inf") {
        Some(f64::INFINITY)
    } else if name.eq_ignore_ascii_case("nan") {
        Some(f64::NAN)
    } else {
        None
    }
}

/// The known function or aggregation name nearest to `name`.
fn nearest_name(name: &str) -> &'static str {
    let names = Function::ALL
        .iter()
        .map(|f| f.name())
        .chain(AggOp::ALL.iter().map(|op| op.name()));
    // Bounded: a huge identifier costs no more than 64 characters.
    let name: Vec<char> = name.chars().take(64).collect();
    names
        .min_by_key(|known| edit_distance(&name, known))
        .unwrap_or("rate")
}

fn edit_distance(a: &[char], b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// The user's pattern and the regex engine's one-line reason.
fn regex_error(pattern: &str, reason: &str) -> String {
    // The engine's message quotes the anchored wrapper over several lines;
    // keep only the reason, and show the pattern as written.
    let reason = match regex::Regex::new(pattern) {
        Err(e) => e.to_string(),
        Ok(_) => reason.to_owned(),
    };
    let reason = reason
        .lines()
        .find_map(|line| line.strip_prefix("error: "))
        .unwrap_or(reason.lines().last().unwrap_or(""))
        .trim()
        .to_owned();
    format!(
        "invalid regular expression {}: {reason}",
        super::ast::FormatString(pattern)
    )
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        self.peek_at(0)
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        let last = self.tokens.len().saturating_sub(1);
        self.tokens
            .get((self.i + ahead).min(last))
            .map_or(&Tok::Eof, |t| &t.tok)
    }

    fn pos(&self) -> usize {
        let last = self.tokens.len().saturating_sub(1);
        self.tokens
            .get(self.i.min(last))
            .map_or(self.text.len(), |t| t.pos)
    }

    fn advance(&mut self) {
        if self.i + 1 < self.tokens.len() {
            self.i += 1;
        }
    }

    #[inline(never)]
    fn error(&self, position: usize, message: impl Into<String>) -> ParseError {
        error_at(self.text, position, message.into())
    }

    /// `expected {what}, found {the current token}`.
    #[inline(never)]
    fn unexpected(&self, what: &str) -> ParseError {
        self.error(
            self.pos(),
            format!("expected {what}, found {}", self.peek()),
        )
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<(), ParseError> {
        if *self.peek() == tok {
            self.advance();
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    /// The height of a new node over `children`, or a depth error.
    #[inline(never)]
    fn height(&self, position: usize, children: &[usize]) -> Result<usize, ParseError> {
        let height = children.iter().max().copied().unwrap_or(0) + 1;
        if height > MAX_DEPTH {
            return Err(self.error(
                position,
                format!("expression nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(height)
    }

    // The recursive functions (`expr`, `unary`, `postfix`, `primary`,
    // `paren`, `call`, `aggregate`, `arguments`) only recurse; checks and
    // error messages live in non-recursive helpers, so that each nesting
    // level costs little stack even in unoptimized builds.

    fn expr(&mut self, min_precedence: u8) -> Result<Parsed, ParseError> {
        self.enter()?;
        let mut lhs = self.unary()?;
        while let Some((op, op_pos, modifiers)) = self.operator(min_precedence)? {
            let next = if op.is_right_assoc() {
                op.precedence()
            } else {
                op.precedence() + 1
            };
            let rhs = self.expr(next)?;
            lhs = self.binary(op, op_pos, lhs, rhs, modifiers)?;
        }
        self.depth -= 1;
        Ok(lhs)
    }

    /// Counts one more level of recursion.
    #[inline(never)]
    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(
                self.pos(),
                format!("expression nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    /// The binary operator at the current token with its modifiers, when
    /// it binds at least as tightly as `min_precedence`.
    #[inline(never)]
    fn operator(
        &mut self,
        min_precedence: u8,
    ) -> Result<Option<(BinOp, usize, Modifiers)>, ParseError> {
        let Some(op) = binop(self.peek()) else {
            return Ok(None);
        };
        if op.precedence() < min_precedence {
            return Ok(None);
        }
        let op_pos = self.pos();
        self.advance();
        let modifiers = self.bin_modifiers(op)?;
        Ok(Some((op, op_pos, modifiers)))
    }

    fn unary(&mut self) -> Result<Parsed, ParseError> {
        let negate = match self.peek() {
            Tok::Sub => true,
            Tok::Add => false,
            _ => return self.postfix(),
        };
        let start = self.pos();
        self.advance();
        let operand = self.expr(super::ast::UNARY_PRECEDENCE + 1)?;
        self.finish_unary(start, negate, operand)
    }

    #[inline(never)]
    fn finish_unary(
        &self,
        start: usize,
        negate: bool,
        operand: Parsed,
    ) -> Result<Parsed, ParseError> {
        let ty = operand.expr.value_type();
        if ty != ValueType::Scalar && ty != ValueType::Vector {
            return Err(self.error(
                operand.start,
                format!("unary expression only allowed on expressions of type scalar or instant vector, got {ty}"),
            ));
        }
        if !negate {
            return Ok(Parsed { start, ..operand });
        }
        if let (Expr::Number(n), false) = (&operand.expr, operand.paren) {
            return Ok(Parsed {
                expr: Expr::Number(-n),
                start,
                height: operand.height,
                paren: false,
            });
        }
        Ok(Parsed {
            height: self.height(start, &[operand.height])?,
            expr: Expr::Neg(Box::new(operand.expr)),
            start,
            paren: false,
        })
    }

    #[inline(never)]
    fn bin_modifiers(&mut self, op: BinOp) -> Result<Modifiers, ParseError> {
        let mut return_bool = false;
        if is_ident(self.peek(), "bool") {
            if !op.is_comparison() {
                return Err(self.error(
                    self.pos(),
                    format!(
                        "bool modifier can only be used on comparison operators, not \"{}\"",
                        op.symbol()
                    ),
                ));
            }
            return_bool = true;
            self.advance();
        }
        let on = match self.peek() {
            Tok::Ident(word) if word == "on" => true,
            Tok::Ident(word) if word == "ignoring" => false,
            _ => return Ok((return_bool, None)),
        };
        let at = self.pos();
        self.advance();
        let labels = self.label_list(if on { "on" } else { "ignoring" })?;
        let card = match self.peek() {
            Tok::Ident(word) if word == "group_left" || word == "group_right" => {
                let left = word == "group_left";
                if op.is_set_op() {
                    return Err(self.error(
                        self.pos(),
                        format!("no grouping allowed for \"{}\" operation", op.symbol()),
                    ));
                }
                self.advance();
                let include = if self.peek() == &Tok::LParen {
                    self.label_list(if left { "group_left" } else { "group_right" })?
                } else {
                    Vec::new()
                };
                if on {
                    if let Some(both) = include.iter().find(|l| labels.contains(l)) {
                        return Err(self.error(
                            at,
                            format!("label \"{both}\" must not occur in on(...) and in the group clause at once"),
                        ));
                    }
                }
                if left {
                    Cardinality::ManyToOne(include)
                } else {
                    Cardinality::OneToMany(include)
                }
            }
            _ => Cardinality::OneToOne,
        };
        Ok((return_bool, Some((at, VectorMatching { on, labels, card }))))
    }

    #[inline(never)]
    fn binary(
        &self,
        op: BinOp,
        op_pos: usize,
        lhs: Parsed,
        rhs: Parsed,
        (return_bool, matching): Modifiers,
    ) -> Result<Parsed, ParseError> {
        let symbol = op.symbol();
        for (side, name) in [(&lhs, "left"), (&rhs, "right")] {
            let ty = side.expr.value_type();
            if ty != ValueType::Scalar && ty != ValueType::Vector {
                return Err(self.error(
                    side.start,
                    format!("binary expression must contain only scalar and instant vector types, found {ty} on the {name} of \"{symbol}\""),
                ));
            }
        }
        let vectors = lhs.expr.value_type() == ValueType::Vector
            && rhs.expr.value_type() == ValueType::Vector;
        let scalars = lhs.expr.value_type() == ValueType::Scalar
            && rhs.expr.value_type() == ValueType::Scalar;
        if scalars && op.is_comparison() && !return_bool {
            return Err(self.error(
                op_pos,
                format!(
                    "comparisons between scalars must use the bool modifier: \"{symbol} bool\""
                ),
            ));
        }
        if op.is_set_op() && !vectors {
            return Err(self.error(
                op_pos,
                format!("set operator \"{symbol}\" needs instant vectors on both sides"),
            ));
        }
        let matching = match matching {
            Some((at, m)) if !vectors => {
                if !m.labels.is_empty() || m.card != Cardinality::OneToOne {
                    return Err(
                        self.error(at, "vector matching only allowed between instant vectors")
                    );
                }
                None
            }
            Some((_, m)) if !m.on && m.labels.is_empty() && m.card == Cardinality::OneToOne => None,
            other => other.map(|(_, m)| m),
        };
        Ok(Parsed {
            height: self.height(op_pos, &[lhs.height, rhs.height])?,
            start: lhs.start,
            paren: false,
            expr: Expr::Binary(Box::new(Binary {
                op,
                lhs: lhs.expr,
                rhs: rhs.expr,
                return_bool,
                matching,
            })),
        })
    }

    /// `( label, ... )` after the keyword `what`.
    #[inline(never)]
    fn label_list(&mut self, what: &str) -> Result<Vec<String>, ParseError> {
        self.expect(Tok::LParen, &format!("\"(\" after {what}"))?;
        let mut labels = Vec::new();
        loop {
            match self.peek().clone() {
                Tok::RParen => {
                    self.advance();
                    return Ok(labels);
                }
                Tok::Ident(name) => {
                    self.label_name(&name)?;
                    labels.push(name);
                    self.advance();
                    match self.peek() {
                        Tok::Comma => self.advance(),
                        Tok::RParen => {}
                        _ => {
                            return Err(self.unexpected(&format!(
                                "\",\" or \")\" in the label list of {what}"
                            )))
                        }
                    }
                }
                _ => {
                    return Err(self.unexpected(&format!(
                        "a label name or \")\" in the label list of {what}"
                    )))
                }
            }
        }
    }

    /// Checks a label name at the current token.
    fn label_name(&self, name: &str) -> Result<(), ParseError> {
        validate_label_name(name).map_err(|_| {
            self.error(
                self.pos(),
                format!("invalid label name \"{name}\": must match [a-zA-Z_][a-zA-Z0-9_]*"),
            )
        })
    }

    fn postfix(&mut self) -> Result<Parsed, ParseError> {
        let e = self.primary()?;
        self.postfix_ops(e)
    }

    /// Ranges, subqueries, `offset` and `@` after a primary expression.
    #[inline(never)]
    fn postfix_ops(&mut self, mut e: Parsed) -> Result<Parsed, ParseError> {
        // Modifiers seen on the current node (reset when a subquery wraps it).
        let mut offset_seen = false;
        let mut at_seen = false;
        loop {
            match self.peek() {
                Tok::LBracket => {
                    e = self.range(e, offset_seen || at_seen)?;
                    offset_seen = false;
                    at_seen = false;
                }
                Tok::Ident(word) if word == "offset" => {
                    let at = self.pos();
                    self.advance();
                    let negative = self.peek() == &Tok::Sub;
                    if negative {
                        self.advance();
                    }
                    let Tok::Duration(ms) = *self.peek() else {
                        return Err(self.unexpected("a duration after offset"));
                    };
                    self.advance();
                    if offset_seen {
                        return Err(self.error(at, "offset may not be set multiple times"));
                    }
                    offset_seen = true;
                    *self.modifiers(&mut e, at, "offset")?.1 = if negative { -ms } else { ms };
                }
                Tok::At => {
                    let at = self.pos();
                    self.advance();
                    let value = self.at_value()?;
                    if at_seen {
                        return Err(self.error(at, "@ may not be set multiple times"));
                    }
                    at_seen = true;
                    *self.modifiers(&mut e, at, "@")?.0 = Some(value);
                }
                _ => return Ok(e),
            }
        }
    }

    /// The `@` and offset fields of a selector or subquery.
    #[inline(never)]
    fn modifiers<'e>(
        &self,
        e: &'e mut Parsed,
        at: usize,
        what: &str,
    ) -> Result<(&'e mut Option<At>, &'e mut i64), ParseError> {
        if !e.paren {
            match &mut e.expr {
                Expr::Vector(s) | Expr::Matrix { selector: s, .. } => {
                    return Ok((&mut s.at, &mut s.offset_ms))
                }
                Expr::Subquery(sq) => return Ok((&mut sq.at, &mut sq.offset_ms)),
                _ => {}
            }
        }
        Err(self.error(
            at,
            format!(
                "{what} modifier must follow a vector selector, a range selector or a subquery"
            ),
        ))
    }

    #[inline(never)]
    fn at_value(&mut self) -> Result<At, ParseError> {
        let pinned = match self.peek() {
            Tok::Ident(word) if word == "start" => Some(At::Start),
            Tok::Ident(word) if word == "end" => Some(At::End),
            _ => None,
        };
        if let Some(at) = pinned {
            self.advance();
            self.expect(Tok::LParen, "\"(\" after start or end")?;
            self.expect(Tok::RParen, "\")\"")?;
            return Ok(at);
        }
        let start = self.pos();
        let sign = match self.peek() {
            Tok::Sub => -1.0,
            Tok::Add => 1.0,
            _ => 0.0,
        };
        if sign != 0.0 {
            self.advance();
        }
        let seconds = match self.peek() {
            Tok::Number(n) => *n,
            Tok::Ident(word) if number_ident(word).is_some() => number_ident(word).unwrap_or(0.0),
            _ => return Err(self.unexpected("a timestamp, start() or end() after \"@\"")),
        };
        self.advance();
        let ms = (seconds * 1000.0 * if sign == 0.0 { 1.0 } else { sign }).round();
        // Within ±2^51 ms (±71,000 years) the printed seconds read back to
        // the same millisecond through f64; beyond, they might not.
        if !ms.is_finite() || ms.abs() > MAX_AT_MS as f64 {
            return Err(self.error(
                start,
                format!(
                    "timestamp out of bounds for the @ modifier (at most {} seconds either side of 1970)",
                    MAX_AT_MS / 1000
                ),
            ));
        }
        Ok(At::Timestamp(ms as i64))
    }

    /// `[range]` or `[range:step]` after `e`.
    #[inline(never)]
    fn range(&mut self, e: Parsed, modified: bool) -> Result<Parsed, ParseError> {
        let open = self.pos();
        self.advance();
        let Tok::Duration(range_ms) = *self.peek() else {
            return Err(self.unexpected("a duration for the range"));
        };
        if range_ms == 0 {
            return Err(self.error(self.pos(), "range must be greater than 0"));
        }
        self.advance();
        if self.peek() == &Tok::Colon {
            self.advance();
            let step_ms = match *self.peek() {
                Tok::Duration(0) => {
                    return Err(self.error(self.pos(), "subquery step must be greater than 0"))
                }
                Tok::Duration(ms) => {
                    self.advance();
                    Some(ms)
                }
                _ => None,
            };
            self.expect(
                Tok::RBracket,
                "a step duration or \"]\" to close the subquery",
            )?;
            let ty = e.expr.value_type();
            if ty != ValueType::Vector {
                return Err(self.error(
                    e.start,
                    format!("subquery is only allowed on an instant vector, got {ty}"),
                ));
            }
            return Ok(Parsed {
                height: self.height(open, &[e.height])?,
                start: e.start,
                paren: false,
                expr: Expr::Subquery(Box::new(Subquery {
                    expr: e.expr,
                    range_ms,
                    step_ms,
                    offset_ms: 0,
                    at: None,
                })),
            });
        }
        self.expect(
            Tok::RBracket,
            "\"]\" to close the range, or \":\" for a subquery",
        )?;
        let Expr::Vector(selector) = e.expr else {
            return Err(self.error(
                open,
                "ranges are only allowed on vector selectors (use [range:step] for a subquery)",
            ));
        };
        if e.paren {
            return Err(self.error(
                open,
                "ranges are only allowed on vector selectors, not on an expression in parentheses",
            ));
        }
        if modified {
            return Err(self.error(
                open,
                "no offset or @ modifiers allowed before the range: write foo[5m] offset 1m",
            ));
        }
        Ok(Parsed {
            height: self.height(open, &[e.height])?,
            start: e.start,
            paren: false,
            expr: Expr::Matrix { selector, range_ms },
        })
    }

    fn primary(&mut self) -> Result<Parsed, ParseError> {
        match self.primary_kind()? {
            Primary::Done(parsed) => Ok(parsed),
            Primary::Paren => self.paren(),
            Primary::Call(func) => self.call(func),
            Primary::Aggregate(op) => self.aggregate(op),
        }
    }

    /// Parses a leaf, or says which recursive form starts here.
    #[inline(never)]
    fn primary_kind(&mut self) -> Result<Primary, ParseError> {
        let start = self.pos();
        let leaf = |expr| {
            Primary::Done(Parsed {
                expr,
                start,
                height: 1,
                paren: false,
            })
        };
        match self.peek().clone() {
            Tok::Number(n) => {
                self.advance();
                Ok(leaf(Expr::Number(n)))
            }
            Tok::Str(s) => {
                self.advance();
                Ok(leaf(Expr::String(s)))
            }
            Tok::LParen => Ok(Primary::Paren),
            Tok::LBrace => Ok(leaf(Expr::Vector(Box::new(self.selector(None)?)))),
            Tok::Ident(name) => {
                if let Some(n) = number_ident(&name) {
                    self.advance();
                    return Ok(leaf(Expr::Number(n)));
                }
                if let Some(op) = AggOp::from_name(&name) {
                    return Ok(Primary::Aggregate(op));
                }
                if KEYWORDS.contains(&name.as_str()) {
                    return Err(self.unexpected("an expression"));
                }
                if self.peek_at(1) == &Tok::LParen {
                    return match Function::from_name(&name) {
                        Some(func) => Ok(Primary::Call(func)),
                        None => Err(self.error(
                            start,
                            format!(
                                "unknown function \"{name}\"; did you mean \"{}\"?",
                                nearest_name(&name)
                            ),
                        )),
                    };
                }
                Ok(leaf(Expr::Vector(Box::new(self.selector(Some(name))?))))
            }
            _ => Err(self.unexpected("an expression")),
        }
    }

    fn paren(&mut self) -> Result<Parsed, ParseError> {
        let start = self.pos();
        self.advance();
        let inner = self.expr(0)?;
        self.close_paren(start, inner)
    }

    #[inline(never)]
    fn close_paren(&mut self, start: usize, inner: Parsed) -> Result<Parsed, ParseError> {
        if self.peek() != &Tok::RParen {
            let opened = self.error(start, "");
            return Err(self.unexpected(&format!(
                "\")\" to close the \"(\" at {}:{}",
                opened.line, opened.column
            )));
        }
        self.advance();
        Ok(Parsed {
            start,
            paren: true,
            ..inner
        })
    }

    /// A selector; the current token is the metric name (when `name`) or `{`.
    #[inline(never)]
    fn selector(&mut self, name: Option<String>) -> Result<VectorSelector, ParseError> {
        let start = self.pos();
        if name.is_some() {
            self.advance();
            if self.peek() != &Tok::LBrace {
                return Ok(VectorSelector::new(name.as_deref(), Vec::new()));
            }
        }
        self.advance(); // `{`
        let mut matchers = Vec::new();
        loop {
            let label = match self.peek().clone() {
                Tok::RBrace => {
                    self.advance();
                    break;
                }
                Tok::Ident(label) => label,
                _ => return Err(self.unexpected("a label name or \"}\" in the label matchers")),
            };
            self.label_name(&label)?;
            if name.is_some() && label == METRIC_NAME_LABEL {
                return Err(self.error(self.pos(), "metric name must not be set twice"));
            }
            self.advance();
            let op = match self.peek() {
                Tok::Assign => MatchOp::Equal,
                Tok::Neq => MatchOp::NotEqual,
                Tok::EqRegex => MatchOp::Regex,
                Tok::NeqRegex => MatchOp::NotRegex,
                _ => {
                    return Err(self.unexpected(&format!(
                        "one of \"=\", \"!=\", \"=~\", \"!~\" after label \"{label}\""
                    )))
                }
            };
            self.advance();
            let Tok::Str(value) = self.peek().clone() else {
                return Err(self.unexpected(&format!("a quoted value for label \"{label}\"")));
            };
            let matcher = Matcher::new(&label, op, &value).map_err(|e| match e {
                InputError::BadRegex { pattern, reason } => {
                    self.error(self.pos(), regex_error(&pattern, &reason))
                }
                other => self.error(self.pos(), other.to_string()),
            })?;
            matchers.push(matcher);
            self.advance();
            match self.peek() {
                Tok::Comma => self.advance(),
                Tok::RBrace => {}
                _ => return Err(self.unexpected("\",\" or \"}\" in the label matchers")),
            }
        }
        if name.is_none() && matchers.iter().all(|m| m.matches("")) {
            return Err(self.error(
                start,
                "vector selector must contain at least one matcher that rejects the empty string (e.g. {job=\"x\"}, not {job=~\".*\"})",
            ));
        }
        Ok(VectorSelector::new(name.as_deref(), matchers))
    }

    /// Arguments up to and including `)`; the current token is `(`.
    fn arguments(&mut self, of: &'static str, max: usize) -> Result<Vec<Parsed>, ParseError> {
        self.advance();
        let mut args = Vec::new();
        loop {
            if self.peek() == &Tok::RParen {
                self.advance();
                return Ok(args);
            }
            args.push(self.expr(0)?);
            self.after_argument(of, max, args.len())?;
        }
    }

    /// Consumes the `,` after argument number `count`, or checks for `)`;
    /// `max` decides what the error asks for.
    #[inline(never)]
    fn after_argument(&mut self, of: &str, max: usize, count: usize) -> Result<(), ParseError> {
        match self.peek() {
            Tok::Comma if self.peek_at(1) == &Tok::RParen => Err(self.error(
                self.pos(),
                format!("trailing commas are not allowed in the argument list of {of}"),
            )),
            Tok::Comma => {
                self.advance();
                Ok(())
            }
            Tok::RParen => Ok(()),
            _ if count >= max => {
                Err(self.unexpected(&format!("\")\" to close the argument list of {of}")))
            }
            _ => Err(self.unexpected(&format!("\",\" or \")\" in the argument list of {of}"))),
        }
    }

    fn call(&mut self, func: Function) -> Result<Parsed, ParseError> {
        let start = self.pos();
        self.advance();
        let args = self.arguments(func.name(), func.signature().args.len())?;
        self.finish_call(start, func, args)
    }

    /// Checks the arguments' count and types.
    #[inline(never)]
    fn finish_call(
        &self,
        start: usize,
        func: Function,
        args: Vec<Parsed>,
    ) -> Result<Parsed, ParseError> {
        let name = func.name();
        let sig = func.signature();
        if args.len() < sig.required || args.len() > sig.args.len() {
            let expected = if sig.required == sig.args.len() {
                format!("{}", sig.required)
            } else {
                format!("{} to {}", sig.required, sig.args.len())
            };
            let plural = if sig.args.len() == 1 { "" } else { "s" };
            return Err(self.error(
                start,
                format!(
                    "function \"{name}\" takes {expected} argument{plural}, got {}",
                    args.len()
                ),
            ));
        }
        for (i, (arg, &want)) in args.iter().zip(sig.args).enumerate() {
            let got = arg.expr.value_type();
            if got != want {
                let hint = if want == ValueType::Matrix && got == ValueType::Vector {
                    " (add a range, as in foo[5m], or a subquery, as in (expr)[1h:1m])"
                } else {
                    ""
                };
                return Err(self.error(
                    arg.start,
                    format!(
                        "expected type {want} in argument {} of {name}, got {got}{hint}",
                        i + 1
                    ),
                ));
            }
        }
        if func == Function::LabelReplace {
            self.check_label_replace(&args)?;
        }
        let heights: Vec<usize> = args.iter().map(|a| a.height).collect();
        Ok(Parsed {
            height: self.height(start, &heights)?,
            start,
            paren: false,
            expr: Expr::Call {
                func,
                args: args.into_iter().map(|a| a.expr).collect(),
            },
        })
    }

    /// `label_replace(v, dst, replacement, src, regex)`: the destination
    /// must be a label name and the regex must compile (Prometheus finds
    /// both only when evaluating).
    #[inline(never)]
    fn check_label_replace(&self, args: &[Parsed]) -> Result<(), ParseError> {
        if let Some(Parsed {
            expr: Expr::String(dst),
            start,
            ..
        }) = args.get(1)
        {
            if validate_label_name(dst).is_err() {
                return Err(self.error(
                    *start,
                    format!("invalid destination label name \"{dst}\" in label_replace"),
                ));
            }
        }
        if let Some(Parsed {
            expr: Expr::String(pattern),
            start,
            ..
        }) = args.get(4)
        {
            if let Err(e) = Matcher::new("x", MatchOp::Regex, pattern) {
                let reason = match e {
                    InputError::BadRegex { reason, .. } => reason,
                    other => other.to_string(),
                };
                return Err(self.error(*start, regex_error(pattern, &reason)));
            }
        }
        Ok(())
    }

    fn grouping(&mut self) -> Result<Option<Grouping>, ParseError> {
        Ok(match self.peek() {
            Tok::Ident(word) if word == "by" => {
                self.advance();
                Some(Grouping::By(self.label_list("by")?))
            }
            Tok::Ident(word) if word == "without" => {
                self.advance();
                Some(Grouping::Without(self.label_list("without")?))
            }
            _ => None,
        })
    }

    fn aggregate(&mut self, op: AggOp) -> Result<Parsed, ParseError> {
        let start = self.pos();
        let before = self.aggregate_head(op)?;
        let wanted = if op.param_type().is_some() { 2 } else { 1 };
        let args = self.arguments(op.name(), wanted)?;
        self.finish_aggregate(start, op, before, args)
    }

    /// The name and a grouping before the arguments, up to `(`.
    #[inline(never)]
    fn aggregate_head(&mut self, op: AggOp) -> Result<Option<Grouping>, ParseError> {
        let name = op.name();
        self.advance();
        let before = self.grouping()?;
        if self.peek() != &Tok::LParen {
            let what = if before.is_some() {
                format!("\"(\" to open the argument list of {name}")
            } else {
                format!("\"(\", by or without after the aggregation {name}")
            };
            return Err(self.unexpected(&what));
        }
        Ok(before)
    }

    /// A grouping after the arguments, and the checks.
    #[inline(never)]
    fn finish_aggregate(
        &mut self,
        start: usize,
        op: AggOp,
        before: Option<Grouping>,
        mut args: Vec<Parsed>,
    ) -> Result<Parsed, ParseError> {
        let name = op.name();
        let wanted = if op.param_type().is_some() { 2 } else { 1 };
        let after_pos = self.pos();
        let after = self.grouping()?;
        let extra_pos = self.pos();
        let extra = if after.is_some() {
            self.grouping()?
        } else {
            None
        };
        let twice =
            |at: usize| self.error(at, format!("{name} may have only one by or without clause"));
        let grouping = match (before, after) {
            _ if extra.is_some() => return Err(twice(extra_pos)),
            (Some(_), Some(_)) => return Err(twice(after_pos)),
            (Some(g), None) | (None, Some(g)) => g,
            (None, None) => Grouping::By(Vec::new()),
        };
        if args.len() != wanted {
            let what = if wanted == 2 {
                "a parameter and an instant vector"
            } else {
                "one instant vector"
            };
            return Err(self.error(
                start,
                format!(
                    "aggregation {name} takes {what}, got {} argument(s)",
                    args.len()
                ),
            ));
        }
        let expr = args
            .pop()
            .ok_or_else(|| self.error(start, "missing argument"))?;
        let param = args.pop();
        if let (Some(param), Some(want)) = (&param, op.param_type()) {
            let got = param.expr.value_type();
            if got != want {
                return Err(self.error(
                    param.start,
                    format!("expected type {want} for the parameter of {name}, got {got}"),
                ));
            }
            if let Expr::String(label) = &param.expr {
                if validate_label_name(label).is_err() {
                    return Err(self.error(
                        param.start,
                        format!("invalid label name \"{label}\" for count_values"),
                    ));
                }
            }
        }
        let got = expr.expr.value_type();
        if got != ValueType::Vector {
            return Err(self.error(
                expr.start,
                format!("expected type instant vector in aggregation {name}, got {got}"),
            ));
        }
        let heights = [expr.height, param.as_ref().map_or(0, |p| p.height)];
        Ok(Parsed {
            height: self.height(start, &heights)?,
            start,
            paren: false,
            expr: Expr::Aggregate(Box::new(Aggregate {
                op,
                param: param.map(|p| p.expr),
                expr: expr.expr,
                grouping,
            })),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(text: &str) -> String {
        match parse_expr(text) {
            Ok(expr) => expr.to_string(),
            Err(e) => panic!("{text}: {e}"),
        }
    }

    /// Valid expressions and their canonical form ("" when the input is
    /// already canonical). Every canonical form parses back to the same
    /// tree.
    const VALID: &[(&str, &str)] = &[
        // KPI shapes.
        (
            r#"sum by (route) (rate(http_requests_total{code=~"5.."}[5m])) / sum by (route) (rate(http_requests_total[5m])) > 0.05"#,
            "",
        ),
        (
            "histogram_quantile(0.95, sum by (le) (rate(gateway_request_duration_seconds_bucket[5m])))",
            "",
        ),
        ("max_over_time(rate(x[5m])[1h:1m])", ""),
        ("time() - heartbeat_last_seen_timestamp > 60", ""),
        (r#"label_replace(up, "host", "$1", "instance", "(.*):.*")"#, ""),
        ("increase(scheduler_job_failures_total[1h])", ""),
        ("avg_over_time(spawn_queue_depth[10m])", ""),
        ("sum(rate(http_requests_total[5m])) by (job)", "sum by (job) (rate(http_requests_total[5m]))"),
        // Literals.
        ("1", ""),
        ("1.5", ""),
        (".5", "0.5"),
        ("1e3", "1000"),
        ("1.5e-7", ""),
        ("0x1F", "31"),
        ("Inf", ""),
        ("-inf", "-Inf"),
        ("NaN", ""),
        ("nan", "NaN"),
        ("-1", ""),
        ("- -1", "1"),
        ("+1", "1"),
        ("-(1)", ""),
        ("1e300", ""),
        ("\"a string\"", ""),
        ("'single'", "\"single\""),
        ("`raw \\d`", "\"raw \\\\d\""),
        (r#""tab\there""#, ""),
        // Selectors.
        ("up", ""),
        ("node:cpu:rate5m", ""),
        ("rate", ""),
        (r#"up{job="api"}"#, ""),
        (r#"up{job="api",}"#, r#"up{job="api"}"#),
        (r#"up{}"#, "up"),
        (r#"{__name__="up"}"#, ""),
        (r#"{__name__=~"http_.*", code!="200"}"#, ""),
        (r#"x{a="1", b!="2", c=~"3", d!~"4"}"#, ""),
        (r#"x{by="on"}"#, ""),
        (r#"x{a='q"uote'}"#, r#"x{a="q\"uote"}"#),
        ("up offset 5m", ""),
        ("up offset -1h30m", ""),
        ("up offset 0s", "up"),
        ("up @ 1609746000", ""),
        ("up @ 1609746000.5", "up @ 1609746000.500"),
        ("up @ -1.25", "up @ -1.250"),
        ("up @ 2251799813685.248", ""),
        ("up @ -2251799813685.248", ""),
        ("up @ start()", ""),
        ("up @ end() offset 1d", ""),
        ("up offset 1d @ end()", "up @ end() offset 1d"),
        ("up[5m]", ""),
        ("up[90s]", "up[1m30s]"),
        ("up[500ms]", ""),
        ("up[1y]", ""),
        ("up[1w]", ""),
        ("up[24h]", "up[1d]"),
        ("up[5m] offset 1m @ 100", "up[5m] @ 100 offset 1m"),
        // Subqueries.
        ("up[1h:]", ""),
        ("up offset 5m[1h:1m]", ""),
        ("rate(up[5m])[1h:1m] offset 10m", ""),
        ("(a + b)[30m:5m]", ""),
        ("min_over_time((a > 1)[1h:])", ""),
        ("max_over_time((-up)[1h:])", ""),
        // Functions.
        ("quantile_over_time(0.9, x[5m])", ""),
        ("absent(nonexistent{job=\"x\"})", ""),
        ("absent_over_time(up[1h])", ""),
        ("round(x)", ""),
        ("round(x, 0.5)", ""),
        ("clamp(x, 0, 1)", ""),
        ("clamp_min(x, 0)", ""),
        ("clamp_max(x, 1)", ""),
        ("abs(ceil(floor(x)))", ""),
        ("timestamp(up)", ""),
        ("vector(1)", ""),
        ("scalar(up)", ""),
        ("time()", ""),
        ("deriv(x[10m]) + idelta(x[1m]) + delta(x[1m]) + irate(x[1m])", ""),
        ("resets(x[1h]) + changes(x[1h])", ""),
        ("stddev_over_time(x[1h]) * last_over_time(x[1h]) - count_over_time(x[1h]) / sum_over_time(x[1h])", ""),
        // Aggregations.
        ("sum(x)", ""),
        ("sum by () (x)", "sum(x)"),
        ("sum without () (x)", ""),
        ("avg without (instance, job) (x)", ""),
        ("min(x) by (a)", "min by (a) (x)"),
        ("max by (on, by) (x)", ""),
        ("count(x)", ""),
        ("stddev(x) + stdvar(x)", ""),
        ("topk(5, x)", ""),
        ("bottomk by (job) (3, x)", ""),
        ("quantile(0.99, x)", ""),
        ("count_values(\"value\", x)", ""),
        ("topk(scalar(y), x)", ""),
        // Operators and modifiers.
        ("a + on (job) b", "a + on(job) b"),
        ("a * ignoring(instance) group_left(version) b", ""),
        ("a / on(job) group_right b", "a / on(job) group_right() b"),
        ("a + ignoring() b", "a + b"),
        ("a + on() b", ""),
        ("a > bool 1", ""),
        ("1 == bool 2", ""),
        ("a == bool on(x) b", ""),
        ("a and b or c unless d", "a and b or c unless d"),
        ("a and on(job) b", ""),
        ("a atan2 b", ""),
        ("a % 2 ^ 3", ""),
        ("2 ^ 3 ^ 2", ""),
        ("(2 ^ 3) ^ 2", ""),
        ("-a ^ 2", ""),
        ("(-a) ^ 2", ""),
        ("-1 ^ 2", ""),
        ("(-1) ^ 2", ""),
        ("a - (b - c)", ""),
        ("(a - b) - c", "a - b - c"),
        ("a * -b", ""),
        ("+a", "a"),
        ("- -a", "--a"),
        ("-(a + b)", ""),
        ("((a))", "a"),
        ("1 + 2 * 3", ""),
        ("(1 + 2) * 3", ""),
        ("a # comment\n + b", "a + b"),
    ];

    #[test]
    fn valid_expressions_have_their_canonical_form() {
        assert!(VALID.len() >= 60);
        for &(text, expected) in VALID {
            let expected = if expected.is_empty() { text } else { expected };
            let shown = canonical(text);
            assert_eq!(shown, expected, "canonical form of {text}");
            assert_eq!(
                parse_expr(&shown),
                parse_expr(text),
                "{text} -> {shown} parses differently"
            );
        }
    }

    fn binary(op: BinOp, lhs: Expr, rhs: Expr) -> Expr {
        Expr::Binary(Box::new(Binary {
            op,
            lhs,
            rhs,
            return_bool: false,
            matching: None,
        }))
    }

    fn metric(name: &str) -> Expr {
        Expr::Vector(Box::new(VectorSelector::new(Some(name), Vec::new())))
    }

    fn num(n: f64) -> Expr {
        Expr::Number(n)
    }

    fn neg(e: Expr) -> Expr {
        Expr::Neg(Box::new(e))
    }

    #[test]
    fn precedence_and_associativity() {
        use BinOp::*;
        let (a, b, c) = (metric("a"), metric("b"), metric("c"));
        let cases = [
            (
                "a + b * c",
                binary(Add, a.clone(), binary(Mul, b.clone(), c.clone())),
            ),
            (
                "a * b + c",
                binary(Add, binary(Mul, a.clone(), b.clone()), c.clone()),
            ),
            (
                "a - b - c",
                binary(Sub, binary(Sub, a.clone(), b.clone()), c.clone()),
            ),
            (
                "a / b % c",
                binary(Mod, binary(Div, a.clone(), b.clone()), c.clone()),
            ),
            (
                "a ^ b ^ c",
                binary(Pow, a.clone(), binary(Pow, b.clone(), c.clone())),
            ),
            (
                "a * b ^ c",
                binary(Mul, a.clone(), binary(Pow, b.clone(), c.clone())),
            ),
            (
                "a atan2 b + c",
                binary(Add, binary(Atan2, a.clone(), b.clone()), c.clone()),
            ),
            ("-a ^ b", neg(binary(Pow, a.clone(), b.clone()))),
            ("-a * b", binary(Mul, neg(a.clone()), b.clone())),
            ("a ^ -b", binary(Pow, a.clone(), neg(b.clone()))),
            (
                "a ^ -b ^ c",
                binary(Pow, a.clone(), neg(binary(Pow, b.clone(), c.clone()))),
            ),
            ("-1 ^ 2", neg(binary(Pow, num(1.0), num(2.0)))),
            ("-1 * 2", binary(Mul, num(-1.0), num(2.0))),
            ("2 ^ -1", binary(Pow, num(2.0), num(-1.0))),
            (
                "a + b > c",
                binary(Gtr, binary(Add, a.clone(), b.clone()), c.clone()),
            ),
            (
                "a > b and c",
                binary(And, binary(Gtr, a.clone(), b.clone()), c.clone()),
            ),
            (
                "a or b and c",
                binary(Or, a.clone(), binary(And, b.clone(), c.clone())),
            ),
            (
                "a or b unless c",
                binary(Or, a.clone(), binary(Unless, b.clone(), c.clone())),
            ),
            (
                "a and b unless c",
                binary(Unless, binary(And, a.clone(), b.clone()), c.clone()),
            ),
            (
                "a or b or c",
                binary(Or, binary(Or, a.clone(), b.clone()), c.clone()),
            ),
            (
                "a == b != c",
                binary(Neq, binary(Eql, a.clone(), b.clone()), c.clone()),
            ),
            (
                "(a + b) * c",
                binary(Mul, binary(Add, a.clone(), b.clone()), c.clone()),
            ),
            ("-(a)", neg(a.clone())),
            ("- -a", neg(neg(a.clone()))),
            ("-(1)", neg(num(1.0))),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_expr(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn tree_shapes() {
        let Ok(Expr::Aggregate(agg)) =
            parse_expr(r#"topk by (job) (3, rate(x{a=~"b|c"}[5m] offset -1m @ end()))"#)
        else {
            panic!("not an aggregation");
        };
        assert_eq!(agg.op, AggOp::Topk);
        assert_eq!(agg.param, Some(num(3.0)));
        assert_eq!(agg.grouping, Grouping::By(vec!["job".into()]));
        let Expr::Call { func, args } = &agg.expr else {
            panic!("not a call");
        };
        assert_eq!(*func, Function::Rate);
        let Expr::Matrix { selector, range_ms } = &args[0] else {
            panic!("not a range selector");
        };
        assert_eq!(*range_ms, 300_000);
        assert_eq!(selector.offset_ms, -60_000);
        assert_eq!(selector.at, Some(At::End));
        let matchers: Vec<String> = selector.matchers.iter().map(ToString::to_string).collect();
        assert_eq!(matchers, [r#"__name__="x""#, r#"a=~"b|c""#]);
        assert!(selector.matchers[1].matches("c") && !selector.matchers[1].matches("bc"));

        let Ok(Expr::Binary(b)) = parse_expr("a * on(x) group_left(y, z) b") else {
            panic!("not a binary expression");
        };
        assert_eq!(
            b.matching,
            Some(VectorMatching {
                on: true,
                labels: vec!["x".into()],
                card: Cardinality::ManyToOne(vec!["y".into(), "z".into()]),
            })
        );

        let Ok(Expr::Subquery(sq)) = parse_expr("rate(x[5m])[1h:] @ 1.5") else {
            panic!("not a subquery");
        };
        assert_eq!(
            (sq.range_ms, sq.step_ms, sq.at),
            (3_600_000, None, Some(At::Timestamp(1500)))
        );
        assert_eq!(sq.expr.value_type(), ValueType::Vector);

        assert_eq!(
            parse_expr("1 < bool 2").map(|e| e.value_type()),
            Ok(ValueType::Scalar)
        );
        assert_eq!(
            parse_expr("x[5m]").map(|e| e.value_type()),
            Ok(ValueType::Matrix)
        );
        assert_eq!(
            parse_expr("\"s\"").map(|e| e.value_type()),
            Ok(ValueType::String)
        );
        assert_eq!(
            parse_expr("1 + x").map(|e| e.value_type()),
            Ok(ValueType::Vector)
        );
    }

    /// Invalid expressions: the byte offset of the error and a fragment of
    /// its message.
    const INVALID: &[(&str, usize, &str)] = &[
        ("", 0, "expected an expression, found end of input"),
        ("rate(foo[5m]", 12, r#"expected ")" to close the argument list of rate, found end of input"#),
        ("rate(foo[5m]]", 12, r#"expected ")" to close the argument list of rate, found "]""#),
        ("rate(foo)", 5, "expected type range vector in argument 1 of rate, got instant vector"),
        ("rate(foo[5m], 1)", 0, "function \"rate\" takes 1 argument, got 2"),
        ("round(a, 1, 2)", 0, "takes 1 to 2 arguments, got 3"),
        ("clamp(a, 1)", 0, "takes 3 arguments, got 2"),
        ("rat(foo[5m])", 0, "unknown function \"rat\"; did you mean \"rate\"?"),
        ("histogram_quantil(0.9, x)", 0, "did you mean \"histogram_quantile\""),
        ("summ(x)", 0, "did you mean \"sum\""),
        ("histogram_quantile(x, y)", 19, "expected type scalar in argument 1"),
        ("label_replace(up, \"host\", \"$1\", \"instance\", \"(.*\")", 44, r#"invalid regular expression "(.*": unclosed group"#),
        ("label_replace(up, \"1x\", \"$1\", \"instance\", \"(.*)\")", 18, "invalid destination label name"),
        ("up{a=~\"(\"}", 6, r#"invalid regular expression "(""#),
        ("a and 1", 2, "set operator \"and\" needs instant vectors on both sides"),
        ("1 or 2", 2, "set operator \"or\""),
        ("a + bool b", 4, "bool modifier can only be used on comparison operators"),
        ("1 > 2", 2, "comparisons between scalars must use the bool modifier"),
        ("a and on(x) group_left b", 12, "no grouping allowed for \"and\" operation"),
        ("1 + on(x) a", 4, "vector matching only allowed between instant vectors"),
        ("a + on(x) group_left(x) b", 4, "label \"x\" must not occur in on(...)"),
        ("x[5m] + 1", 0, "binary expression must contain only scalar and instant vector types, found range vector on the left"),
        ("1 + \"a\"", 4, "found string on the right"),
        ("-x[5m]", 1, "unary expression only allowed on expressions of type scalar or instant vector, got range vector"),
        ("(x)[5m]", 3, "not on an expression in parentheses"),
        ("rate(x[5m])[5m]", 11, "ranges are only allowed on vector selectors"),
        ("x offset 5m[5m]", 11, "no offset or @ modifiers allowed before the range"),
        ("x[5m][1h:]", 0, "subquery is only allowed on an instant vector, got range vector"),
        ("1[1h:]", 0, "subquery is only allowed on an instant vector, got scalar"),
        ("x offset 5m offset 1m", 12, "offset may not be set multiple times"),
        ("x @ 1 @ 2", 6, "@ may not be set multiple times"),
        ("(x) offset 5m", 4, "offset modifier must follow a vector selector"),
        ("sum(x) offset 5m", 7, "offset modifier must follow"),
        ("x offset 5", 9, "expected a duration after offset, found number 5"),
        ("x @ foo", 4, "expected a timestamp, start() or end()"),
        ("x @ Inf", 4, "timestamp out of bounds"),
        ("x @ -3e12", 4, "timestamp out of bounds for the @ modifier (at most 2251799813685 seconds"),
        ("x[0s]", 2, "range must be greater than 0"),
        ("x[1h:0s]", 5, "subquery step must be greater than 0"),
        ("x[5]", 2, "expected a duration for the range, found number 5"),
        ("x[5m", 4, "expected \"]\" to close the range, or \":\" for a subquery, found end of input"),
        ("x[1h:1m", 7, "a step duration or \"]\" to close the subquery"),
        ("{}", 0, "at least one matcher that rejects the empty string"),
        ("{a=~\".*\"}", 0, "at least one matcher"),
        ("up{__name__=\"x\"}", 3, "metric name must not be set twice"),
        ("up{a=b}", 5, "expected a quoted value for label \"a\", found identifier \"b\""),
        ("up{a}", 4, r#"expected one of "=", "!=", "=~", "!~" after label "a", found "}""#),
        ("up{a=\"b\" c=\"d\"}", 9, r#"expected "," or "}" in the label matchers"#),
        ("up{a:b=\"c\"}", 3, "invalid label name \"a:b\""),
        ("up{a=\"b\"", 8, "expected \",\" or \"}\""),
        ("sum(x) by (a) by (b)", 14, "only one by or without clause"),
        ("sum by (a) (x) without (b)", 15, "only one by or without clause"),
        ("sum x", 4, "expected \"(\", by or without after the aggregation sum"),
        ("sum by (a:b) (x)", 8, "invalid label name"),
        ("sum by (a b) (x)", 10, "expected \",\" or \")\" in the label list of by"),
        ("topk(x)", 0, "aggregation topk takes a parameter and an instant vector, got 1 argument(s)"),
        ("sum(1, x)", 0, "aggregation sum takes one instant vector"),
        ("topk(\"a\", x)", 5, "expected type scalar for the parameter of topk, got string"),
        ("count_values(1, x)", 13, "expected type string for the parameter of count_values"),
        ("count_values(\"a-b\", x)", 13, "invalid label name \"a-b\" for count_values"),
        ("sum(x[5m])", 4, "expected type instant vector in aggregation sum, got range vector"),
        ("(a + b", 6, "expected \")\" to close the \"(\" at 1:1, found end of input"),
        ("rate(x[5m],)", 10, "trailing commas are not allowed in the argument list of rate"),
        ("sum(x,)", 5, "trailing commas are not allowed in the argument list of sum"),
        ("a +", 3, "expected an expression, found end of input"),
        ("a b", 2, "expected an operator or the end of input, found identifier \"b\""),
        ("a )", 2, "expected the end of input, found \")\""),
        ("by", 0, "expected an expression, found identifier \"by\""),
        ("a + offset", 4, "expected an expression"),
        ("5x", 0, "bad number or duration syntax \"5x\""),
        ("1m1h", 0, "bad number or duration syntax"),
        ("\"abc", 0, "unterminated quoted string"),
        ("\"a\\qb\"", 2, "unknown escape sequence \"\\q\""),
        ("a $ b", 2, "unexpected character '$'"),
        ("a !b", 2, "expected \"!=\" or \"!~\""),
        ("vector(\"a\")", 7, "expected type scalar in argument 1 of vector, got string"),
        ("scalar(1)", 7, "expected type instant vector in argument 1 of scalar, got scalar"),
        ("time(1)", 0, "function \"time\" takes 0 arguments, got 1"),
        ("abs(x y)", 6, "expected \")\" to close the argument list of abs, found identifier \"y\""),
        ("a\n  + rate(x)", 11, "expected type range vector"),
    ];

    #[test]
    fn invalid_expressions_say_where_and_what() {
        assert!(INVALID.len() >= 40);
        for &(text, position, fragment) in INVALID {
            let error = match parse_expr(text) {
                Err(e) => e,
                Ok(expr) => panic!("{text:?} parsed as {expr}"),
            };
            assert_eq!(error.position, position, "{text:?}: {error}");
            assert!(error.message.contains(fragment), "{text:?}: {error}");
        }
    }

    #[test]
    fn error_display_names_line_and_column() {
        let error = parse_expr("rate(foo[5m]]").unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"1:13: expected ")" to close the argument list of rate, found "]""#
        );
        let error = parse_expr("sum(\n  rate(x)\n)").unwrap_err();
        assert_eq!((error.line, error.column, error.position), (2, 8, 12));
        // Columns count characters, offsets count bytes.
        let error = parse_expr("{a=\"é\"} + ~").unwrap_err();
        assert_eq!((error.position, error.column), (11, 11));
    }

    #[test]
    fn nesting_is_bounded() {
        let deep_parens = format!("{}a{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(parse_expr(&deep_parens)
            .unwrap_err()
            .message
            .contains("nests deeper"));
        let long_chain = vec!["a"; 100_000].join(" + ");
        assert!(parse_expr(&long_chain)
            .unwrap_err()
            .message
            .contains("nests deeper"));
        let unary = format!("{}a", "-".repeat(100_000));
        assert!(parse_expr(&unary)
            .unwrap_err()
            .message
            .contains("nests deeper"));
        let calls = format!("{}x{}", "abs(".repeat(1000), ")".repeat(1000));
        assert!(parse_expr(&calls)
            .unwrap_err()
            .message
            .contains("nests deeper"));
        // Just under the limit is fine, and so is a long flat list.
        let ok = vec!["a"; MAX_DEPTH].join(" + ");
        assert!(parse_expr(&ok).is_ok());
        let numbers = format!("{}1{}", "(".repeat(200), ")".repeat(200));
        assert_eq!(parse_expr(&numbers), Ok(num(1.0)));
    }

    /// Random well-typed trees from a seed, built by hand so that the
    /// types line up (a proptest strategy per type would be mutually
    /// recursive).
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            // splitmix64
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<T: Clone>(&mut self, items: &[T]) -> T {
            items[self.below(items.len())].clone()
        }

        fn labels(&mut self) -> Vec<String> {
            let n = self.below(3);
            (0..n)
                .map(|_| self.pick(&["job", "le", "on", "by"]).to_owned())
                .collect()
        }

        fn modifiers(&mut self) -> (i64, Option<At>) {
            let offset = self.pick(&[0, 0, 300_000, -60_000, 5_400_000, 1, 31_536_000_000]);
            let at = self.pick(&[
                None,
                None,
                Some(At::Start),
                Some(At::End),
                Some(At::Timestamp(1_609_746_000_000)),
                Some(At::Timestamp(-1_250)),
                Some(At::Timestamp(1_500)),
            ]);
            let span = 2 * MAX_AT_MS as u64 + 1;
            let random = (self.next() % span) as i64 - MAX_AT_MS;
            let at = if self.below(4) == 0 {
                Some(At::Timestamp(random))
            } else {
                at
            };
            (offset, at)
        }

        fn selector(&mut self) -> VectorSelector {
            let name = self.pick(&[
                None,
                Some("up"),
                Some("node:cpu"),
                Some("rate"),
                Some("start"),
                Some("inf_x"),
            ]);
            let mut matchers = Vec::new();
            if name.is_none() {
                matchers.push(Matcher::equal("job", "api"));
            }
            for _ in 0..self.below(3) {
                let label = self.pick(&["code", "by", "le", "offset"]);
                let op = self.pick(&[
                    MatchOp::Equal,
                    MatchOp::NotEqual,
                    MatchOp::Regex,
                    MatchOp::NotRegex,
                ]);
                let value = self.pick(&[
                    "api",
                    "5..",
                    "a\"b",
                    "new\nline",
                    "é",
                    "",
                    "x|y",
                    r"back\slash",
                    "\u{1}ctl",
                    "'",
                ]);
                if let Ok(m) = Matcher::new(label, op, value) {
                    matchers.push(m);
                }
            }
            let mut selector = VectorSelector::new(name, matchers);
            (selector.offset_ms, selector.at) = self.modifiers();
            selector
        }

        fn scalar(&mut self, depth: usize) -> Expr {
            if depth == 0 || self.below(3) == 0 {
                return match self.below(5) {
                    0 => Expr::Call {
                        func: Function::Time,
                        args: Vec::new(),
                    },
                    _ => num(self.pick(&[
                        0.0,
                        1.0,
                        2.5,
                        1e300,
                        1.5e-7,
                        f64::NAN,
                        f64::INFINITY,
                        f64::NEG_INFINITY,
                        -1.0,
                        -0.0,
                        0.001,
                        123_456_789.0,
                        1e15,
                        -2.5e-300,
                    ])),
                };
            }
            match self.below(4) {
                0 => {
                    let op = self.pick(&[
                        BinOp::Add,
                        BinOp::Sub,
                        BinOp::Mul,
                        BinOp::Div,
                        BinOp::Mod,
                        BinOp::Pow,
                        BinOp::Atan2,
                    ]);
                    binary(op, self.scalar(depth - 1), self.scalar(depth - 1))
                }
                1 => {
                    let op = self.pick(&[
                        BinOp::Eql,
                        BinOp::Neq,
                        BinOp::Gtr,
                        BinOp::Lss,
                        BinOp::Gte,
                        BinOp::Lte,
                    ]);
                    let mut e = binary(op, self.scalar(depth - 1), self.scalar(depth - 1));
                    if let Expr::Binary(b) = &mut e {
                        b.return_bool = true;
                    }
                    e
                }
                2 => neg(self.scalar(depth - 1)),
                _ => Expr::Call {
                    func: Function::Scalar,
                    args: vec![self.vector(depth - 1)],
                },
            }
        }

        fn matrix(&mut self, depth: usize) -> Expr {
            let range_ms = self.pick(&[300_000, 3_600_000, 90_000, 500, 86_400_000 + 1]);
            if depth == 0 || self.below(2) == 0 {
                return Expr::Matrix {
                    selector: Box::new(self.selector()),
                    range_ms,
                };
            }
            let (offset_ms, at) = self.modifiers();
            Expr::Subquery(Box::new(Subquery {
                expr: self.vector(depth - 1),
                range_ms,
                step_ms: self.pick(&[None, Some(60_000), Some(1)]),
                offset_ms,
                at,
            }))
        }

        fn vector(&mut self, depth: usize) -> Expr {
            if depth == 0 || self.below(4) == 0 {
                return Expr::Vector(Box::new(self.selector()));
            }
            let d = depth - 1;
            let call = |func, args| Expr::Call { func, args };
            match self.below(9) {
                0 => {
                    let func = self.pick(&Function::ALL);
                    let sig = func.signature();
                    let args = sig
                        .args
                        .iter()
                        .take(if sig.required < sig.args.len() {
                            sig.required + self.below(2)
                        } else {
                            sig.args.len()
                        })
                        .enumerate()
                        .map(|(i, ty)| match ty {
                            ValueType::Scalar => self.scalar(d),
                            ValueType::Vector => self.vector(d),
                            ValueType::Matrix => self.matrix(d),
                            ValueType::String => {
                                Expr::String(["dst", "$1", "src", "(.*)"][(i + 3) % 4].to_owned())
                            }
                        })
                        .collect();
                    if sig.returns == ValueType::Vector {
                        call(func, args)
                    } else {
                        call(Function::Vector, vec![self.scalar(d)])
                    }
                }
                1 => call(Function::Rate, vec![self.matrix(d)]),
                2 | 3 => {
                    let op = self.pick(&AggOp::ALL);
                    let param = op.param_type().map(|ty| match ty {
                        ValueType::String => Expr::String("value".into()),
                        _ => self.scalar(d),
                    });
                    let grouping = if self.below(2) == 0 {
                        Grouping::By(self.labels())
                    } else {
                        Grouping::Without(self.labels())
                    };
                    Expr::Aggregate(Box::new(Aggregate {
                        op,
                        param,
                        expr: self.vector(d),
                        grouping,
                    }))
                }
                4 => neg(self.vector(d)),
                5 => {
                    let op = self.pick(&[BinOp::And, BinOp::Or, BinOp::Unless]);
                    let mut e = binary(op, self.vector(d), self.vector(d));
                    if let (Expr::Binary(b), true) = (&mut e, self.below(2) == 0) {
                        b.matching = Some(VectorMatching {
                            on: true,
                            labels: self.labels(),
                            card: Cardinality::OneToOne,
                        });
                    }
                    e
                }
                _ => {
                    let op = self.pick(&[
                        BinOp::Add,
                        BinOp::Sub,
                        BinOp::Mul,
                        BinOp::Div,
                        BinOp::Mod,
                        BinOp::Pow,
                        BinOp::Atan2,
                        BinOp::Eql,
                        BinOp::Neq,
                        BinOp::Gtr,
                        BinOp::Lss,
                        BinOp::Gte,
                        BinOp::Lte,
                    ]);
                    let (lhs, rhs) = match self.below(3) {
                        0 => (self.vector(d), self.scalar(d)),
                        1 => (self.scalar(d), self.vector(d)),
                        _ => (self.vector(d), self.vector(d)),
                    };
                    let vectors = lhs.value_type() == ValueType::Vector
                        && rhs.value_type() == ValueType::Vector;
                    let mut e = binary(op, lhs, rhs);
                    if let Expr::Binary(b) = &mut e {
                        b.return_bool = op.is_comparison() && self.below(2) == 0;
                        if vectors && self.below(2) == 0 {
                            let on = self.below(2) == 0;
                            let labels = if on {
                                vec!["job".to_owned()]
                            } else {
                                self.labels()
                            };
                            let card = match self.below(3) {
                                0 => Cardinality::OneToOne,
                                1 => Cardinality::ManyToOne(vec!["le".into()]),
                                _ => Cardinality::OneToMany(Vec::new()),
                            };
                            if on || !labels.is_empty() || card != Cardinality::OneToOne {
                                b.matching = Some(VectorMatching { on, labels, card });
                            }
                        }
                    }
                    e
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]

        #[test]
        fn generated_trees_print_and_parse_back(seed: u64, depth in 0usize..7) {
            let mut gen = Gen(seed);
            let expr = match gen.below(3) {
                0 => gen.scalar(depth),
                1 => gen.matrix(depth),
                _ => gen.vector(depth),
            };
            let text = expr.to_string();
            proptest::prop_assert_eq!(parse_expr(&text), Ok(expr), "{}", text);
        }

        #[test]
        fn arbitrary_text_never_panics(text in r#"[a-z_:(){}\[\]"'`,=~!<>+\-*/%^@ 0-9.#\n\\é]{0,80}"#) {
            if let Ok(expr) = parse_expr(&text) {
                let shown = expr.to_string();
                proptest::prop_assert_eq!(parse_expr(&shown), Ok(expr), "{} -> {}", text, shown);
            }
        }

        #[test]
        fn arbitrary_unicode_never_panics(text: String) {
            if let Ok(expr) = parse_expr(&text) {
                let shown = expr.to_string();
                proptest::prop_assert_eq!(parse_expr(&shown), Ok(expr), "{} -> {}", text, shown);
            }
        }

        #[test]
        fn mutated_kpis_never_panic(index in 0usize..VALID.len(), cut in 0usize..200, insert in r#"[()\[\]{}:,"a1 -]{0,3}"#) {
            let (text, _) = VALID[index];
            let cut = (0..=cut.min(text.len())).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
            let mutated = format!("{}{insert}{}", &text[..cut], &text[cut..]);
            if let Ok(expr) = parse_expr(&mutated) {
                let shown = expr.to_string();
                proptest::prop_assert_eq!(parse_expr(&shown), Ok(expr), "{} -> {}", mutated, shown);
            }
        }
    }
}
