//! Evaluation of a parsed filter over one host.
//!
//! Semantics (docs/filters.md, "Missing data and any-match"):
//! - a condition holds when *some* value of its field satisfies it
//!   (any-match over interfaces, packages, filesystems, ...); a field with
//!   no value on the host (section not reported, package absent) satisfies
//!   nothing, so the condition is false;
//! - `and`, `or`, `not` are plain two-valued logic, so a filter and
//!   `not (filter)` partition every set of hosts (property-tested).
//!
//! Invariant: evaluation allocates nothing and reads no clock.

use super::ast::{Condition, Expr, Literal, Op, Test};
use super::fields::Context;
use super::value::Value;
use crate::store::HostView;

impl Expr {
    pub(crate) fn eval(&self, host: &HostView, ctx: &Context) -> bool {
        match self {
            Expr::Or(items) => items.iter().any(|e| e.eval(host, ctx)),
            Expr::And(items) => items.iter().all(|e| e.eval(host, ctx)),
            Expr::Not(inner) => !inner.eval(host, ctx),
            Expr::Condition(c) => c.holds(host, ctx),
        }
    }

    /// `eval`, except that a condition `decided` answers for is taken
    /// from it (an index answered it for this host beforehand).
    pub(crate) fn eval_with(&self, host: &HostView, ctx: &Context, decided: &dyn Fn(&Condition) -> Option<bool>) -> bool {
        match self {
            Expr::Or(items) => items.iter().any(|e| e.eval_with(host, ctx, decided)),
            Expr::And(items) => items.iter().all(|e| e.eval_with(host, ctx, decided)),
            Expr::Not(inner) => !inner.eval_with(host, ctx, decided),
            Expr::Condition(c) => decided(c).unwrap_or_else(|| c.holds(host, ctx)),
        }
    }

    /// Every condition of the tree, left to right.
    pub(crate) fn conditions<'e>(&'e self, out: &mut Vec<&'e Condition>) {
        match self {
            Expr::Or(items) | Expr::And(items) => items.iter().for_each(|e| e.conditions(out)),
            Expr::Not(inner) => inner.conditions(out),
            Expr::Condition(c) => out.push(c),
        }
    }
}

impl Condition {
    /// Whether the condition holds on this host.
    pub fn holds(&self, host: &HostView, ctx: &Context) -> bool {
        let now = ctx.now_unix_ms;
        match &self.test {
            Test::Present => self.field.any(host, ctx, |_| true),
            Test::Compare(op, literal) => self.field.any(host, ctx, |v| satisfies(v, *op, literal, now)),
            Test::In(list) => self.field.any(host, ctx, |v| list.iter().any(|l| satisfies(v, Op::Eq, l, now))),
            Test::Matches(pattern) => self.field.any(host, ctx, |v| match v {
                Value::Text(s) | Value::Version(s, _) => pattern.matches(s),
                _ => false,
            }),
        }
    }
}

/// `value <op> literal`. Versions compare in their own ecosystem's order
/// (so `=` means "the same version", as dpkg says `1.0` and `1.00` are);
/// relative times are resolved against `now`. The parser guarantees the
/// literal has the value's type; a mismatch would be false.
fn satisfies(value: Value<'_>, op: Op, literal: &Literal, now_unix_ms: i64) -> bool {
    let ordering = match (value, literal) {
        (Value::Text(a), Literal::Text(b)) => a.cmp(b.as_str()),
        (Value::Version(a, ecosystem), Literal::Text(b)) => ecosystem.compare(a, b),
        (Value::Integer(a), Literal::Integer(b)) => a.cmp(b),
        (Value::Size(a), Literal::Size(b)) => a.cmp(b),
        (Value::Duration(a), Literal::Duration(b)) => a.cmp(b),
        (Value::Time(a), Literal::Time(t)) => a.cmp(&t.resolve(now_unix_ms)),
        (Value::Bool(a), Literal::Bool(b)) => a.cmp(b),
        (Value::Percent(a), Literal::Percent(b)) => match a.partial_cmp(b) {
            Some(ordering) => ordering,
            None => return false,
        },
        _ => return false,
    };
    op.holds(ordering)
}
