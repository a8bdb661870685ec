//! The host filter language, shared by the CLI (`census hosts --filter`),
//! the HTTP API and the web UI:
//!
//! ```text
//! os.id = "ubuntu" and memory.total < 8GiB and software("openssl") < "3.0.13" and last_seen > 1h ago
//! ```
//!
//! Pure domain code: text → tokens (`lexer`) → a type-checked tree
//! (`parser`, `ast`) over the field catalogue (`fields`), evaluated per
//! host (`eval`) without allocation. docs/filters.md is the user's
//! reference: grammar, every field, units, and the semantics of missing
//! data and multi-valued fields.
//!
//! Invariants: parsing never panics and bounds its input
//! ([`MAX_INPUT_BYTES`], [`MAX_DEPTH`], [`MAX_ATOMS`]); a parsed filter
//! prints (`Display`) as text that parses back to the same tree; a filter
//! and `not (filter)` partition any set of hosts; evaluation reads no
//! clock (`now` is an argument).

mod ast;
mod error;
mod eval;
mod fields;
mod lexer;
mod parser;
mod units;
mod value;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

pub use ast::{Condition, Expr, Literal, Op, Pattern, Test, TimeLiteral};
pub use error::ParseError;
pub use fields::{COLLECTIONS, Collection, Context, FIELDS, FieldDef, FieldRef, Key, catalogue_markdown, collections_markdown, lookup};
pub use parser::{MAX_ATOMS, MAX_DEPTH, MAX_INPUT_BYTES, MAX_LIST};
pub use value::{Type, Value, sort_cmp};

use crate::store::HostView;

/// A parsed, type-checked filter: parse once, match many hosts.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    expr: Expr,
}

impl Filter {
    pub fn parse(text: &str) -> Result<Filter, ParseError> {
        parser::parse_filter(text).map(|expr| Filter { expr })
    }

    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// Whether the host matches at `now_unix_ms`; a host is online while
    /// it was seen at most `offline_after_ms` ago.
    pub fn matches(&self, host: &HostView, now_unix_ms: i64, offline_after_ms: i64) -> bool {
        self.matches_in(host, &Context { now_unix_ms, offline_after_ms })
    }

    pub fn matches_in(&self, host: &HostView, ctx: &Context) -> bool {
        self.expr.eval(host, ctx)
    }

    /// `matches_in`, with the conditions `decided` answers for (`Some`)
    /// taken from it: an index evaluated them for this host beforehand
    /// (`host_query`). The same boolean logic, so the answer is the same
    /// as long as `decided` agrees with `Condition::holds`.
    pub fn matches_with(&self, host: &HostView, ctx: &Context, decided: &dyn Fn(&Condition) -> Option<bool>) -> bool {
        self.expr.eval_with(host, ctx, decided)
    }

    /// Every condition of the filter, left to right.
    pub fn conditions(&self) -> Vec<&Condition> {
        let mut out = Vec::new();
        self.expr.conditions(&mut out);
        out
    }
}

/// The canonical text, which parses back to the same filter.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)
    }
}

impl FromStr for Filter {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Filter, ParseError> {
        Filter::parse(text)
    }
}
