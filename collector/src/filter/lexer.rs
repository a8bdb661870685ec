//! Turns filter text into tokens, each with the 1-based character column
//! where it starts. Context-free: keywords (`and`, `not`, `ago`, ...) are
//! identifiers here and recognised, case-insensitively, by the parser.
//!
//! Invariant: never panics; every error's column lies within the input
//! (or one past its end).

use super::ast::Op;
use super::error::ParseError;

/// Words the parser gives a meaning, in any letter case; never field names.
const KEYWORDS: [&str; 10] = ["and", "or", "not", "in", "has", "true", "false", "now", "ago", "from"];

pub(crate) fn is_keyword(word: &str) -> bool {
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(word))
}

/// The longest run of digits a number may have; longer ones are refused
/// before any arithmetic can overflow.
const MAX_DIGITS: usize = 30;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind<'s> {
    /// A name or keyword: `os`, `used_percent`, `and`.
    Ident(&'s str),
    /// A double-quoted string, escapes resolved.
    Str(String),
    /// A `/regular expression/`, with `\/` resolved to `/`.
    Regex(String),
    Number(Number<'s>),
    LParen,
    RParen,
    Comma,
    Dot,
    Compare(Op),
    Tilde,
    End,
}

/// A number as written, `1.5` of `1.5GiB`, and the unit glued to it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Number<'s> {
    /// Digits with at most one decimal point, e.g. "1.5".
    pub digits: &'s str,
    /// What follows the digits without a space: "GiB", "%", "d", or "".
    pub unit: &'s str,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token<'s> {
    pub kind: TokenKind<'s>,
    /// 1-based character column of the token's first character.
    pub column: usize,
}

impl TokenKind<'_> {
    /// How an error message names the token: "identifier `Ubuntu`".
    pub fn describe(&self) -> String {
        match self {
            TokenKind::Ident(s) if is_keyword(s) => format!("keyword `{s}`"),
            TokenKind::Ident(s) => format!("identifier `{s}`"),
            TokenKind::Str(s) => format!("string {}", super::ast::quoted(s)),
            TokenKind::Regex(r) => format!("regular expression /{r}/"),
            TokenKind::Number(n) if n.unit.is_empty() => format!("number {}", n.digits),
            TokenKind::Number(n) => format!("`{}{}`", n.digits, n.unit),
            TokenKind::LParen => "`(`".into(),
            TokenKind::RParen => "`)`".into(),
            TokenKind::Comma => "`,`".into(),
            TokenKind::Dot => "`.`".into(),
            TokenKind::Compare(op) => format!("`{op}`"),
            TokenKind::Tilde => "`~`".into(),
            TokenKind::End => "the end of the filter".into(),
        }
    }
}

/// Splits `input` into tokens, ending with `End` (at one past the last
/// column).
pub(crate) fn tokenize(input: &str) -> Result<Vec<Token<'_>>, ParseError> {
    let chars: Vec<(usize, char)> = input.char_indices().collect();
    let mut lexer = Lexer { input, chars, i: 0 };
    let mut tokens = Vec::new();
    loop {
        let token = lexer.next_token()?;
        let end = token.kind == TokenKind::End;
        tokens.push(token);
        if end {
            return Ok(tokens);
        }
    }
}

struct Lexer<'s> {
    input: &'s str,
    chars: Vec<(usize, char)>,
    /// Index into `chars`; the column is `i + 1`.
    i: usize,
}

impl<'s> Lexer<'s> {
    fn peek_at(&self, i: usize) -> Option<char> {
        self.chars.get(i).map(|(_, c)| *c)
    }

    fn peek(&self) -> Option<char> {
        self.peek_at(self.i)
    }

    fn byte_offset(&self, i: usize) -> usize {
        self.chars.get(i).map_or(self.input.len(), |(b, _)| *b)
    }

    fn slice(&self, from: usize, to: usize) -> &'s str {
        &self.input[self.byte_offset(from)..self.byte_offset(to)]
    }

    fn take_while(&mut self, pred: impl Fn(char) -> bool) {
        while self.peek().is_some_and(&pred) {
            self.i += 1;
        }
    }

    fn next_token(&mut self) -> Result<Token<'s>, ParseError> {
        self.take_while(char::is_whitespace);
        let start = self.i;
        let column = start + 1;
        let token = |kind| Ok(Token { kind, column });
        let Some(c) = self.peek() else {
            return token(TokenKind::End);
        };
        self.i += 1;
        let next = self.peek();
        let two = |lexer: &mut Self, kind| {
            lexer.i += 1;
            token(kind)
        };
        match c {
            '(' => token(TokenKind::LParen),
            ')' => token(TokenKind::RParen),
            ',' => token(TokenKind::Comma),
            '.' => token(TokenKind::Dot),
            '~' => token(TokenKind::Tilde),
            '=' if next == Some('=') => two(self, TokenKind::Compare(Op::Eq)),
            '=' => token(TokenKind::Compare(Op::Eq)),
            '!' if next == Some('=') => two(self, TokenKind::Compare(Op::Ne)),
            '<' if next == Some('=') => two(self, TokenKind::Compare(Op::Le)),
            '<' => token(TokenKind::Compare(Op::Lt)),
            '>' if next == Some('=') => two(self, TokenKind::Compare(Op::Ge)),
            '>' => token(TokenKind::Compare(Op::Gt)),
            '"' => self.string(column).map(|s| Token { kind: TokenKind::Str(s), column }),
            '/' => self.regex(column).map(|r| Token { kind: TokenKind::Regex(r), column }),
            '0'..='9' => self.number(start).map(|n| Token { kind: TokenKind::Number(n), column }),
            c if c.is_ascii_alphabetic() || c == '_' => {
                self.take_while(|c| c.is_ascii_alphanumeric() || c == '_');
                token(TokenKind::Ident(self.slice(start, self.i)))
            }
            '!' => Err(ParseError::new(column, "unexpected `!`: write `not` to negate, `!=` for \"not equal\"")),
            '&' => Err(ParseError::new(column, "unexpected `&`: write `and`")),
            '|' => Err(ParseError::new(column, "unexpected `|`: write `or`")),
            '\'' => Err(ParseError::new(column, "strings are written in double quotes: \"...\"")),
            c => Err(ParseError::new(column, format!("unexpected character `{}`", c.escape_debug()))),
        }
    }

    /// After the opening quote at `column`.
    fn string(&mut self, column: usize) -> Result<String, ParseError> {
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(ParseError::new(column, "unterminated string: add the closing `\"`"));
            };
            self.i += 1;
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let escaped = match self.peek() {
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        other => {
                            let shown = other.map(|c| c.escape_debug().to_string()).unwrap_or_default();
                            return Err(ParseError::new(
                                self.i,
                                format!("unknown escape `\\{shown}` in a string: use \\\" \\\\ \\n \\t or \\r"),
                            ));
                        }
                    };
                    self.i += 1;
                    out.push(escaped);
                }
                c => out.push(c),
            }
        }
    }

    /// After the opening slash at `column`. Only `\/` is an escape of the
    /// filter language; every other backslash belongs to the regex.
    fn regex(&mut self, column: usize) -> Result<String, ParseError> {
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(ParseError::new(column, "unterminated regular expression: add the closing `/`"));
            };
            self.i += 1;
            match c {
                '/' => return Ok(out),
                '\\' => match self.peek() {
                    Some('/') => {
                        self.i += 1;
                        out.push('/');
                    }
                    Some(next) => {
                        self.i += 1;
                        out.push('\\');
                        out.push(next);
                    }
                    None => out.push('\\'),
                },
                c => out.push(c),
            }
        }
    }

    /// From the first digit at index `start`: digits, an optional fraction,
    /// and a unit glued to them (`8GiB`, `90%`, `7d`).
    fn number(&mut self, start: usize) -> Result<Number<'s>, ParseError> {
        self.take_while(|c| c.is_ascii_digit());
        if self.peek() == Some('.') && self.peek_at(self.i + 1).is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
            self.take_while(|c| c.is_ascii_digit());
            if self.peek() == Some('.') && self.peek_at(self.i + 1).is_some_and(|c| c.is_ascii_digit()) {
                return Err(ParseError::new(start + 1, "write versions and addresses in double quotes, e.g. \"3.0.13\" or \"10.0.0.5\""));
            }
        }
        let digits = self.slice(start, self.i);
        if digits.len() > MAX_DIGITS {
            return Err(ParseError::new(start + 1, format!("number with more than {MAX_DIGITS} digits")));
        }
        let unit_start = self.i;
        if self.peek() == Some('%') {
            self.i += 1;
        } else {
            self.take_while(|c| c.is_ascii_alphabetic());
        }
        Ok(Number { digits, unit: self.slice(unit_start, self.i) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(input: &str) -> Vec<TokenKind<'_>> {
        tokenize(input).unwrap().into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn splits_a_filter_into_tokens() {
        use TokenKind::*;
        assert_eq!(
            kinds(r#"fs("/").used_percent>=90% and x ~ /a\/b\d/"#),
            vec![
                Ident("fs"),
                LParen,
                Str("/".into()),
                RParen,
                Dot,
                Ident("used_percent"),
                Compare(Op::Ge),
                Number(super::Number { digits: "90", unit: "%" }),
                Ident("and"),
                Ident("x"),
                Tilde,
                Regex(r"a/b\d".into()),
                End,
            ]
        );
        assert_eq!(
            kinds("1.5GiB == 2"),
            vec![
                Number(super::Number { digits: "1.5", unit: "GiB" }),
                Compare(Op::Eq),
                Number(super::Number { digits: "2", unit: "" }),
                End
            ]
        );
        assert_eq!(kinds(r#""a\"b\\c\n""#), vec![Str("a\"b\\c\n".into()), End]);
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let tokens = tokenize("\"é\" x").unwrap();
        assert_eq!(tokens.iter().map(|t| t.column).collect::<Vec<_>>(), [1, 5, 6]);
        assert_eq!(tokenize("é").unwrap_err().column, 1, "only ASCII letters start a name");
    }

    #[test]
    fn errors_point_at_their_column() {
        let cases = [
            ("a = \"open", 5, "unterminated string"),
            ("a ~ /open", 5, "unterminated regular expression"),
            ("a = \"x\\q\"", 7, "unknown escape"),
            ("ip = 10.0.0.5", 6, "double quotes"),
            ("a ! b", 3, "`not`"),
            ("a && b", 3, "`and`"),
            ("a || b", 3, "`or`"),
            ("a = 'x'", 5, "double quotes"),
            ("a # b", 3, "unexpected character `#`"),
            ("n = 1234567890123456789012345678901", 5, "digits"),
        ];
        for (input, column, message) in cases {
            let e = tokenize(input).unwrap_err();
            assert_eq!(e.column, column, "{input}: {e}");
            assert!(e.message.contains(message), "{input}: {e}");
        }
    }
}
