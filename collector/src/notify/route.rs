//! TODO(skeleton): route.
