//! Recursive-descent parser and type checker: tokens to an [`Expr`] whose
//! every literal has its field's type. The grammar is in docs/filters.md;
//! each `fn` below is one of its rules.
//!
//! Invariants: never panics on any input; every error names the column of
//! the token at fault (a value of the wrong type is pointed at, not its
//! field); input, nesting and condition counts are bounded before they
//! can cost anything ([`MAX_INPUT_BYTES`], [`MAX_DEPTH`], [`MAX_ATOMS`]).

use super::ast::{Condition, Expr, Literal, Op, Pattern, Test, TimeLiteral, parse_date, quoted};
use super::error::ParseError;
use super::fields::{self, COLLECTIONS, Collection, FIELDS, FieldDef, FieldRef, Key};
use super::lexer::{Number, Token, TokenKind, is_keyword, tokenize};
use super::units::{Inexact, duration_unit, duration_unit_names, scale, size_unit, size_unit_names};
use super::value::Type;
use crate::alert::pattern::Glob;

/// The longest filter accepted, in bytes.
pub const MAX_INPUT_BYTES: usize = 4096;
/// How deeply parentheses and `not` may nest.
pub const MAX_DEPTH: usize = 64;
/// How many conditions (atoms) one filter may hold.
pub const MAX_ATOMS: usize = 256;
/// How many values an `in (...)` list may hold.
pub const MAX_LIST: usize = 256;
/// Compiled size limit of one regular expression (the regex crate's
/// `size_limit` and `dfa_size_limit`).
const REGEX_SIZE_LIMIT: usize = 256 * 1024;
const REGEX_NEST_LIMIT: u32 = 32;

pub(crate) fn parse_filter(text: &str) -> Result<Expr, ParseError> {
    let mut parser = Parser::new(text)?;
    if parser.peek().kind == TokenKind::End {
        return Err(ParseError::new(1, "empty filter: expected a condition such as os.id = \"debian\""));
    }
    let expr = parser.or()?;
    parser.expect_end("`and`, `or` or the end of the filter")?;
    Ok(expr)
}

pub(crate) fn parse_field(text: &str) -> Result<FieldRef, ParseError> {
    let mut parser = Parser::new(text)?;
    let field = parser.field()?;
    parser.expect_end("the end of the field name")?;
    Ok(match field.bare_call {
        // `software("openssl")` as a column shows versions; `fs("/")`,
        // which has no default field, its mount point.
        Some(c) => FieldRef { def: c.default_field.and_then(fields::lookup).unwrap_or(field.field.def), key: field.field.key },
        None => field.field,
    })
}

/// A field as written, before an operator decides which field a bare
/// collection call stands for.
struct ParsedField {
    field: FieldRef,
    column: usize,
    /// `software("openssl")` without a member field: the collection.
    bare_call: Option<&'static Collection>,
}

struct Parser<'s> {
    tokens: Vec<Token<'s>>,
    pos: usize,
    depth: usize,
    atoms: usize,
}

impl<'s> Parser<'s> {
    fn new(text: &'s str) -> Result<Parser<'s>, ParseError> {
        if text.len() > MAX_INPUT_BYTES {
            let boundary = (0..=MAX_INPUT_BYTES).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
            let column = text[..boundary].chars().count() + 1;
            return Err(ParseError::new(column, format!("filter longer than {MAX_INPUT_BYTES} bytes")));
        }
        Ok(Parser { tokens: tokenize(text)?, pos: 0, depth: 0, atoms: 0 })
    }

    fn peek(&self) -> &Token<'s> {
        // The token list always ends with `End`, and `advance` never moves past it.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn peek_second(&self) -> &Token<'s> {
        &self.tokens[(self.pos + 1).min(self.tokens.len() - 1)]
    }

    fn advance(&mut self) -> Token<'s> {
        let token = self.peek().clone();
        if token.kind != TokenKind::End {
            self.pos += 1;
        }
        token
    }

    fn at_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek().kind, TokenKind::Ident(w) if w.eq_ignore_ascii_case(keyword))
    }

    fn unexpected(&self, expected: &str) -> ParseError {
        let token = self.peek();
        ParseError::new(token.column, format!("expected {expected}, found {}", token.kind.describe()))
    }

    fn expect_end(&self, expected: &str) -> Result<(), ParseError> {
        if self.peek().kind == TokenKind::End { Ok(()) } else { Err(self.unexpected(expected)) }
    }

    /// One more level of nesting, opened by the token at `column`.
    fn enter(&mut self, column: usize) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError::new(column, format!("parentheses and `not` nest deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    /// or = and { "or" and }
    fn or(&mut self) -> Result<Expr, ParseError> {
        self.chain("or", Self::and, Expr::Or)
    }

    /// and = not { "and" not }
    fn and(&mut self) -> Result<Expr, ParseError> {
        self.chain("and", Self::not, Expr::And)
    }

    /// `operand { keyword operand }`, grouped when there are several.
    fn chain(
        &mut self,
        keyword: &str,
        operand: fn(&mut Self) -> Result<Expr, ParseError>,
        group: fn(Vec<Expr>) -> Expr,
    ) -> Result<Expr, ParseError> {
        let mut items = vec![operand(self)?];
        while self.at_keyword(keyword) {
            self.advance();
            items.push(operand(self)?);
        }
        Ok(if items.len() == 1 { items.remove(0) } else { group(items) })
    }

    /// not = "not" not | primary
    fn not(&mut self) -> Result<Expr, ParseError> {
        if !self.at_keyword("not") {
            return self.primary();
        }
        let column = self.advance().column;
        self.enter(column)?;
        let inner = self.not()?;
        self.depth -= 1;
        Ok(Expr::Not(Box::new(inner)))
    }

    /// primary = "(" or ")" | condition
    fn primary(&mut self) -> Result<Expr, ParseError> {
        if self.peek().kind != TokenKind::LParen {
            return self.condition();
        }
        let column = self.advance().column;
        self.enter(column)?;
        let inner = self.or()?;
        if self.peek().kind != TokenKind::RParen {
            return Err(self.unexpected(&format!("`and`, `or` or `)` closing the `(` of column {column}")));
        }
        self.advance();
        self.depth -= 1;
        Ok(inner)
    }

    /// condition = "has" field
    ///           | field [ compare value | "~" pattern | ["not"] "in" list ]
    fn condition(&mut self) -> Result<Expr, ParseError> {
        self.atoms += 1;
        if self.atoms > MAX_ATOMS {
            return Err(ParseError::new(self.peek().column, format!("more than {MAX_ATOMS} conditions in one filter")));
        }
        if self.at_keyword("has") {
            self.advance();
            let field = self.field()?.field;
            return Ok(Expr::Condition(Condition { field, test: Test::Present }));
        }
        let parsed = self.field()?;
        let token = self.peek().clone();
        let negated_in = self.at_keyword("not") && matches!(self.peek_second().kind, TokenKind::Ident(w) if w.eq_ignore_ascii_case("in"));
        let condition = match token.kind {
            TokenKind::Compare(op) => {
                self.advance();
                let field = self.compared(parsed)?;
                if op.is_ordering() && matches!(field.ty(), Type::Text | Type::Bool) {
                    return Err(ParseError::new(
                        token.column,
                        format!("{field} is {}: compare it with = != ~ or in, not {op}", described(field.ty())),
                    ));
                }
                let literal = self.literal(&field)?;
                Condition { field, test: Test::Compare(op, literal) }
            }
            TokenKind::Tilde => {
                self.advance();
                let field = self.compared(parsed)?;
                if !matches!(field.ty(), Type::Text | Type::Version) {
                    return Err(ParseError::new(token.column, format!("{field} is {}: ~ matches text only", described(field.ty()))));
                }
                let pattern = self.pattern()?;
                Condition { field, test: Test::Matches(pattern) }
            }
            TokenKind::Ident(w) if w.eq_ignore_ascii_case("in") || negated_in => {
                self.advance();
                if negated_in {
                    self.advance();
                }
                let field = self.compared(parsed)?;
                let list = self.list(&field)?;
                let condition = Condition { field, test: Test::In(list) };
                if negated_in {
                    return Ok(Expr::Not(Box::new(Expr::Condition(condition))));
                }
                condition
            }
            TokenKind::End | TokenKind::RParen => self.bare(parsed)?,
            TokenKind::Ident(w) if w.eq_ignore_ascii_case("and") || w.eq_ignore_ascii_case("or") => self.bare(parsed)?,
            _ => {
                return Err(self.unexpected(&format!("an operator (= != < <= > >= ~ in) after {}", parsed.field)));
            }
        };
        Ok(Expr::Condition(condition))
    }

    /// A field alone: a boolean is tested for true, a collection call for
    /// presence; anything else must be compared.
    fn bare(&self, parsed: ParsedField) -> Result<Condition, ParseError> {
        if parsed.bare_call.is_some() {
            return Ok(Condition { field: parsed.field, test: Test::Present });
        }
        let field = parsed.field;
        if field.ty() == Type::Bool {
            return Ok(Condition { field, test: Test::Compare(Op::Eq, Literal::Bool(true)) });
        }
        Err(ParseError::new(
            parsed.column,
            format!(
                "{field} is {}: compare it (e.g. {field} {}) or test it with `has {field}`",
                described(field.ty()),
                example(field.ty())
            ),
        ))
    }

    /// The field a comparison reads: a bare collection call stands for its
    /// default field (`software("x") < "3"` compares versions).
    fn compared(&self, parsed: ParsedField) -> Result<FieldRef, ParseError> {
        let Some(c) = parsed.bare_call else {
            return Ok(parsed.field);
        };
        let key = parsed.field.key;
        match c.default_field.and_then(fields::lookup) {
            Some(def) => Ok(FieldRef { def, key }),
            None => {
                let call = format!("{}({})", c.name, quoted(&key.as_ref().map(Key::pattern).unwrap_or_default()));
                let members: Vec<&str> = members(c).map(|f| &f.name[c.name.len() + 1..]).collect();
                Err(ParseError::new(
                    parsed.column,
                    format!("compare a field of {call}, e.g. {call}.{}; {call} alone tests that the host has it", members.join(" / ")),
                ))
            }
        }
    }

    /// field = name { "." name } [ "(" string ")" { "." name } ]
    fn field(&mut self) -> Result<ParsedField, ParseError> {
        let column = self.peek().column;
        let mut path = self.name("a field name")?;
        while self.peek().kind == TokenKind::Dot {
            self.advance();
            path.push('.');
            path.push_str(&self.name("a field name after `.`")?);
        }
        if self.peek().kind != TokenKind::LParen {
            let def = lookup_or_suggest(&path, column)?;
            return Ok(ParsedField { field: FieldRef { def, key: None }, column, bare_call: None });
        }
        let Some(c) = fields::collection(&path) else {
            let known: Vec<&str> = COLLECTIONS.iter().map(|c| c.name).collect();
            let hint = fields::closest(&path, known.iter().copied()).map(|s| format!("did you mean {s}(...)? ")).unwrap_or_default();
            return Err(ParseError::new(column, format!("`{path}` takes no key: {hint}keys select members of {}", known.join(", "))));
        };
        self.advance();
        let key = match &self.peek().kind {
            TokenKind::Str(s) => Key::new(s, c),
            _ => return Err(self.unexpected(&format!("the key as a quoted string, e.g. {}(\"{}\")", c.name, c.example_key))),
        };
        self.advance();
        if self.peek().kind != TokenKind::RParen {
            return Err(self.unexpected("`)` after the key"));
        }
        self.advance();
        if self.peek().kind != TokenKind::Dot {
            let def = fields::lookup(c.key_field).expect("every collection's key field is in the catalogue (tested)");
            return Ok(ParsedField { field: FieldRef { def, key: Some(key) }, column, bare_call: Some(c) });
        }
        let mut member = c.name.to_string();
        while self.peek().kind == TokenKind::Dot {
            self.advance();
            member.push('.');
            member.push_str(&self.name("a field name after `.`")?);
        }
        let def = lookup_or_suggest(&member, column)?;
        Ok(ParsedField { field: FieldRef { def, key: Some(key) }, column, bare_call: None })
    }

    /// One identifier that is not a keyword.
    fn name(&mut self, expected: &str) -> Result<String, ParseError> {
        match self.peek().kind {
            TokenKind::Ident(w) if !is_keyword(w) => {
                self.advance();
                Ok(w.to_ascii_lowercase())
            }
            _ => Err(self.unexpected(expected)),
        }
    }

    /// list = "(" value { "," value } ")"
    fn list(&mut self, field: &FieldRef) -> Result<Vec<Literal>, ParseError> {
        if self.peek().kind != TokenKind::LParen {
            return Err(self.unexpected("`(` opening the list of values"));
        }
        self.advance();
        let mut values = vec![self.literal(field)?];
        while self.peek().kind == TokenKind::Comma {
            self.advance();
            if values.len() == MAX_LIST {
                return Err(ParseError::new(self.peek().column, format!("more than {MAX_LIST} values in one list")));
            }
            values.push(self.literal(field)?);
        }
        if self.peek().kind != TokenKind::RParen {
            return Err(self.unexpected("`,` or `)` closing the list"));
        }
        self.advance();
        Ok(values)
    }

    /// pattern = string | regex
    fn pattern(&mut self) -> Result<Pattern, ParseError> {
        let token = self.peek().clone();
        match token.kind {
            TokenKind::Str(s) => {
                self.advance();
                Ok(Pattern::Glob(Glob::new(&s)))
            }
            TokenKind::Regex(source) => {
                self.advance();
                regex::RegexBuilder::new(&source)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .dfa_size_limit(REGEX_SIZE_LIMIT)
                    .nest_limit(REGEX_NEST_LIMIT)
                    .build()
                    .map(Pattern::Regex)
                    .map_err(|e| ParseError::new(token.column, regex_error(&e)))
            }
            _ => Err(self.unexpected("a quoted glob such as \"web-*\" or a /regular expression/")),
        }
    }

    /// A value of the field's type.
    fn literal(&mut self, field: &FieldRef) -> Result<Literal, ParseError> {
        let ty = field.ty();
        let token = self.peek().clone();
        let wrong =
            |what: &str| ParseError::new(token.column, format!("{field} is {}: expected {}, found {what}", described(ty), expected(ty)));
        let literal = match (&token.kind, ty) {
            (TokenKind::Str(s), Type::Text | Type::Version) => Literal::Text(s.clone()),
            (TokenKind::Str(s), Type::Time) => Literal::Time(TimeLiteral::At(parse_date(s).ok_or_else(|| {
                ParseError::new(
                    token.column,
                    format!("{} is not a date: write \"2025-01-31\" or \"2025-01-31T12:00:00Z\" (UTC)", quoted(s)),
                )
            })?)),
            (TokenKind::Ident(w), Type::Bool) if w.eq_ignore_ascii_case("true") || w.eq_ignore_ascii_case("false") => {
                Literal::Bool(w.eq_ignore_ascii_case("true"))
            }
            (TokenKind::Ident(w), Type::Time) if w.eq_ignore_ascii_case("now") => Literal::Time(TimeLiteral::Now),
            (TokenKind::Number(n), Type::Integer) if n.unit.is_empty() => {
                Literal::Integer(n.digits.parse().map_err(|_| wrong(&format!("number {} (a whole number fits in 63 bits)", n.digits)))?)
            }
            (TokenKind::Number(n), Type::Percent) if n.unit.is_empty() || n.unit == "%" => {
                Literal::Percent(n.digits.parse().map_err(|_| wrong(&token.kind.describe()))?)
            }
            (TokenKind::Number(n), Type::Size) => Literal::Size(self.quantity(n, token.column, field, Quantity::Size)?),
            (TokenKind::Number(n), Type::Duration) => Literal::Duration(
                i64::try_from(self.quantity(n, token.column, field, Quantity::Duration)?).map_err(|_| wrong("a duration too long"))?,
            ),
            (TokenKind::Number(n), Type::Time) => {
                let ms =
                    i64::try_from(self.quantity(n, token.column, field, Quantity::Duration)?).map_err(|_| wrong("a duration too long"))?;
                self.advance();
                return if self.at_keyword("ago") {
                    self.advance();
                    Ok(Literal::Time(TimeLiteral::Ago(ms)))
                } else if self.at_keyword("from") && matches!(self.peek_second().kind, TokenKind::Ident(w) if w.eq_ignore_ascii_case("now"))
                {
                    self.advance();
                    self.advance();
                    Ok(Literal::Time(TimeLiteral::FromNow(ms)))
                } else {
                    Err(self.unexpected(&format!("`ago` or `from now` after {}{}", n.digits, n.unit)))
                };
            }
            (TokenKind::Number(n), Type::Text | Type::Version) => {
                return Err(wrong(&format!("{} (quote it: \"{}{}\")", token.kind.describe(), n.digits, n.unit)));
            }
            (TokenKind::Ident(w), Type::Text | Type::Version) if !is_keyword(w) => {
                return Err(wrong(&format!("{} (quote it: \"{w}\")", token.kind.describe())));
            }
            (other, _) => return Err(wrong(&other.describe())),
        };
        self.advance();
        Ok(literal)
    }

    /// A number with a size or duration unit, exactly; `0` needs no unit.
    fn quantity(&self, n: &Number<'_>, column: usize, field: &FieldRef, kind: Quantity) -> Result<u64, ParseError> {
        let (unit, names, example) = match kind {
            Quantity::Size => (size_unit(n.unit), size_unit_names(), "8GiB"),
            Quantity::Duration => (duration_unit(n.unit).and_then(|m| u64::try_from(m).ok()), duration_unit_names(), "7d"),
        };
        let multiplier = match unit {
            Some(m) => m,
            None if n.unit.is_empty() && n.digits.bytes().all(|b| b == b'0' || b == b'.') => 1,
            None if n.unit.is_empty() => {
                return Err(ParseError::new(
                    column,
                    format!("{field} is {}: write a unit, e.g. {example} (units: {names})", described(field.ty())),
                ));
            }
            None => return Err(ParseError::new(column, format!("unknown unit `{}` for {field}: units are {names}", n.unit))),
        };
        scale(n.digits, multiplier).map_err(|e| {
            let why = match e {
                Inexact::Fraction => "is not a whole number of bytes or milliseconds",
                Inexact::TooLarge => "is too large",
            };
            ParseError::new(column, format!("{}{} {why}", n.digits, n.unit))
        })
    }
}

#[derive(Clone, Copy)]
enum Quantity {
    Size,
    Duration,
}

fn members(c: &Collection) -> impl Iterator<Item = &'static FieldDef> + '_ {
    FIELDS.iter().filter(move |f| f.collection().is_some_and(|fc| fc.name == c.name))
}

/// The catalogue entry of `name`, or an error at `column` naming the
/// closest known field.
fn lookup_or_suggest(name: &str, column: usize) -> Result<&'static FieldDef, ParseError> {
    if let Some(def) = fields::lookup(name) {
        return Ok(def);
    }
    // Under a collection, compare the member part alone: `software.openssl`
    // is a package name far from any member field, not a typo of one.
    let message = match name.split_once('.').and_then(|(prefix, member)| Some((fields::collection(prefix)?, member))) {
        Some((c, member)) => {
            let names: Vec<&str> = members(c).map(|f| &f.name[c.name.len() + 1..]).collect();
            match fields::closest(member, names.iter().copied()) {
                Some(best) => {
                    let def = fields::lookup(&format!("{}.{best}", c.name)).expect("a member of the catalogue");
                    format!("unknown field `{name}`; did you mean `{}`?", def.keyed_example())
                }
                None => format!(
                    "unknown field `{name}`: {} has the fields {}; to select one, write {}(\"{member}\")",
                    c.name,
                    names.join(", "),
                    c.name
                ),
            }
        }
        None => match fields::closest(name, FIELDS.iter().map(|f| f.name)) {
            Some(best) => format!("unknown field `{name}`; did you mean `{best}`?"),
            None => format!("unknown field `{name}` (docs/filters.md lists every field)"),
        },
    };
    Err(ParseError::new(column, message))
}

fn described(ty: Type) -> &'static str {
    match ty {
        Type::Text => "text",
        Type::Version => "a version",
        Type::Integer => "an integer",
        Type::Size => "a size",
        Type::Percent => "a percentage",
        Type::Duration => "a duration",
        Type::Time => "a time",
        Type::Bool => "true or false",
    }
}

fn expected(ty: Type) -> &'static str {
    match ty {
        Type::Text => "a quoted string",
        Type::Version => "a quoted version such as \"3.0.13\"",
        Type::Integer => "a whole number",
        Type::Size => "a size such as 8GiB",
        Type::Percent => "a percentage such as 90%",
        Type::Duration => "a duration such as 7d",
        Type::Time => "a time such as 1h ago, 30d from now, now or \"2025-01-31\"",
        Type::Bool => "true or false",
    }
}

fn example(ty: Type) -> &'static str {
    match ty {
        Type::Text => "= \"...\"",
        Type::Version => "< \"3.0.13\"",
        Type::Integer => "> 4",
        Type::Size => "< 8GiB",
        Type::Percent => "> 90%",
        Type::Duration => "> 7d",
        Type::Time => "> 1h ago",
        Type::Bool => "= true",
    }
}

/// The regex crate's message without its multi-line caret drawing.
fn regex_error(e: &regex::Error) -> String {
    match e {
        regex::Error::CompiledTooBig(limit) => format!("regular expression too large once compiled (limit {limit} bytes)"),
        other => {
            let text = other.to_string();
            let reason = text.lines().rev().find_map(|l| l.trim().strip_prefix("error: ")).unwrap_or(text.trim());
            format!("invalid regular expression: {reason}")
        }
    }
}
