//! TODO(skeleton): dispatch.
