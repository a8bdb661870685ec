//! TODO(skeleton): render.
