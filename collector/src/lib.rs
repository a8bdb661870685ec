//! Census collector: gRPC ingest over mutual TLS, the sled store, and the
//! admin API. `main.rs` (census-collector) and `bin/census.rs` (the admin
//! CLI) are thin wrappers around this library; see ARCHITECTURE.md.

pub mod admin_access;
pub mod admin_api;
pub mod admin_calls;
pub mod agent_api;
pub mod alert;
pub mod alerting;
pub mod backup;
pub mod backup_calls;
pub mod changes;
pub mod cli;
pub mod clock;
pub mod config;
pub mod disk_space;
pub mod error;
pub mod export;
pub mod filter;
pub mod fleet_summary;
pub mod fsutil;
pub mod host_query;
pub mod http_api;
pub mod init;
pub mod inventory_delta;
pub mod metrics;
pub mod notify;
pub mod pki;
pub mod rate_limit;
pub mod secrets;
pub mod self_metrics;
pub mod server;
pub mod software;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod validate;
pub mod wire;

pub use config::Config;
pub use error::{Error, Result};
pub use server::{Collector, run};
