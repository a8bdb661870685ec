//! The alert engine (SPEC §5), pure domain code.
pub mod pattern;
pub mod rules;
pub mod template;
