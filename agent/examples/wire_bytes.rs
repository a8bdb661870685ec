//! Benchmark (not a test): steady-state bytes on the wire per host per hour,
//! inventory deltas against full snapshots, on the machine running it.
//!
//! `cargo run --release -p census-agent --example wire_bytes [SECONDS]`
//!
//! Collects the real inventory twice, SECONDS apart (default 60), encodes
//! the reports the agent would send at the default intervals (heartbeat
//! 1 min, inventory 1 h, full snapshot 24 h, health 15 s in 1-min batches)
//! and prints protobuf payload bytes per hour. Transport framing (gRPC
//! prefix, HTTP/2 frames, HPACK headers, TLS records) comes on top and is
//! estimated, not measured, in docs/BENCHMARKS.md.

use std::time::Duration;

use census_agent::{collect, delta, health, wire};
use census_proto::v1 as pb;
use prost::Message;

fn report(seq: u64, body: pb::report::Body) -> usize {
    pb::Report { seq, created_at_unix_ms: census_agent::now_unix_ms(), body: Some(body) }.encoded_len()
}

fn main() {
    let secs: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(60);
    let root = std::path::Path::new("/");
    let snapshot = || {
        let (inv, _) = collect::inventory(root, &[]);
        let mut w = wire::inventory(&inv);
        delta::canonicalize(&mut w);
        w
    };
    let mut sampler = health::Sampler::new(root);
    let mounts = collect::health_mounts(root);
    let _ = sampler.sample(census_agent::now_unix_ms(), &mounts);

    let a = snapshot();
    std::thread::sleep(Duration::from_secs(secs));
    let b = snapshot();
    let mut samples = Vec::new();
    for _ in 0..4 {
        let (s, _) = sampler.sample(census_agent::now_unix_ms(), &mounts);
        samples.push(wire::health_sample(&s));
    }

    let seq = 1_000_000;
    let full = report(seq, pb::report::Body::Inventory(b.clone()));
    let d = delta::diff(&a, &b, seq - 1);
    let changed: Vec<&str> = {
        let c = d.changed.clone().unwrap_or_default();
        let mut v = Vec::new();
        macro_rules! name {
            ($($f:ident),*) => { $( if c.$f.is_some() { v.push(stringify!($f)); } )* };
        }
        name!(identity, os, cpu, memory, filesystems, network, hardware, netconfig, users, services, os_state);
        v
    };
    let delta_bytes = if delta::is_empty(&d, &a) { 0 } else { report(seq, pb::report::Body::InventoryDelta(d.clone())) };
    let heartbeat =
        report(seq, pb::report::Body::Heartbeat(pb::Heartbeat { agent_uptime_s: 86_400, agent_version: census_agent::VERSION.into() }));
    let batch = report(
        seq,
        pb::report::Body::Health(pb::HealthBatch { samples: samples.clone(), dropped_batches_total: 0, dropped_samples_total: 0 }),
    );

    // Heartbeats go only when nothing else was queued for a minute: none
    // while health batches flow, 60 an hour when they do not.
    let heartbeats_per_hour = 60 * heartbeat;
    let with_full = full;
    let with_deltas = delta_bytes + full / 24;
    println!("packages: {}", b.software.as_ref().map_or(0, |s| s.packages.len()));
    println!("full snapshot report: {full} B");
    println!(
        "delta after {secs} s: {delta_bytes} B (sections changed: {changed:?}; packages +{} -{})",
        d.packages_added.len(),
        d.packages_removed.len()
    );
    println!("heartbeat report: {heartbeat} B");
    println!("health batch of 4 samples: {batch} B ({} B/h)", batch * 60);
    println!("per hour beyond health, full snapshots hourly: {with_full} B ({:.1} KiB)", with_full as f64 / 1024.0);
    println!("per hour beyond health, deltas + daily full: {with_deltas} B ({:.1} KiB)", with_deltas as f64 / 1024.0);
    println!("  + heartbeats if no health flows: {heartbeats_per_hour} B/h");
}
