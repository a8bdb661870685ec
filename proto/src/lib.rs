//! The `census.v1` wire schema: message types and gRPC service stubs
//! generated from `proto/census/v1/*.proto` at build time.
//!
//! This crate knows only the schema. Conversions to domain types live in
//! each side's `wire` module.

#![allow(clippy::all)]

pub mod v1 {
    tonic::include_proto!("census.v1");
}
