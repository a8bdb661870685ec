//! TODO(skeleton): outbox.
