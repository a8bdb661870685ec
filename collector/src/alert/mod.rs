//! The alert engine (SPEC §5), pure domain code: rules in, transitions out.
//!
//! - `rules.rs`: the rule model, its TOML form and validation, and
//!   `DEFAULT_RULES`; `template.rs` (placeholders, checked at load) and
//!   `pattern.rs` (globs) serve it.
//! - `fleet.rs`: `FleetState`, the plain snapshot of hosts a caller builds
//!   from the store.
//! - `book.rs`: `AlertBook`, the state kept between evaluations (alerts by
//!   `AlertFingerprint`, silences, acknowledgements, the sequence counter).
//! - `engine.rs`: `evaluate`, the lifecycle, silencing, flap damping and
//!   grouping into `Notification`s with idempotency keys.
//!
//! Invariant: the engine is pure. `evaluate(&rules, &state, &mut book, now)`
//! does no I/O and never reads the clock; persisting the book, delivering
//! notifications (the outbox and sinks) and loading rule files belong to
//! the edges that call it.

pub mod book;
pub mod engine;
pub mod fleet;
pub mod pattern;
pub mod rules;
pub mod template;

pub use book::{AlertBook, AlertFingerprint, AlertState};
pub use engine::{Evaluation, Notification, Transition, evaluate};
pub use fleet::FleetState;
pub use rules::{RuleSet, RulesError};
