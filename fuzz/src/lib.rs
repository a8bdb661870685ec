//! Mutation fuzzing that runs inside `cargo test` (cargo-fuzz needs a
//! nightly toolchain and libFuzzer, which CI does not have; this needs
//! neither). A target is a function over bytes that must not panic and must
//! not hang; `run` feeds it its seed corpus (the crate's fixtures) and
//! structure-aware mutations of it: truncation, byte flips, insertions of
//! bytes that matter to parsers (separators, quotes, huge numbers,
//! non-UTF-8), deletions, duplicated lines and splices of two seeds.
//!
//! Bounded for CI: `CENSUS_FUZZ_CASES` cases (default 300) and at most
//! `CENSUS_FUZZ_SECONDS` seconds (default 2) per target, whichever ends
//! first. A longer run: `CENSUS_FUZZ_CASES=200000 CENSUS_FUZZ_SECONDS=120
//! cargo test --release -p census-agent --test fuzz -- --nocapture`.
//! Each target prints its executions and time; a failing input is shrunk
//! by proptest and printed.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// A seed is cut to this size: parsers are fuzzed on many small inputs
/// rather than a few huge ones.
const MAX_SEED_BYTES: usize = 64 * 1024;
/// One execution taking longer than this is reported as a hang.
const MAX_CASE_TIME: Duration = Duration::from_secs(5);

/// Byte strings that parsers split, quote or count on.
const INTERESTING: &[&[u8]] = &[
    b"\n",
    b"\r\n",
    b"\0",
    b":",
    b"=",
    b" ",
    b"\t",
    b"\"",
    b"'",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b"-1",
    b"18446744073709551616",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"1e308",
    b"NaN",
    b"\xff\xfe",
    b"\xc3",
    b"\xe2\x82",
    b"%",
    b"\\",
    b"0x",
    b"..",
    b"/",
];

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Cases per target (`CENSUS_FUZZ_CASES`).
pub fn cases() -> u32 {
    u32::try_from(env_number("CENSUS_FUZZ_CASES", 300)).unwrap_or(u32::MAX)
}

/// Time budget per target (`CENSUS_FUZZ_SECONDS`).
pub fn budget() -> Duration {
    Duration::from_secs(env_number("CENSUS_FUZZ_SECONDS", 2))
}

/// Every regular file under `dir`, recursively, in path order (at most
/// 500 files, each cut to `MAX_SEED_BYTES`).
pub fn seeds_under(dir: &Path) -> Vec<Vec<u8>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() => files.push(path),
                _ => {}
            }
        }
    }
    files.sort();
    files.truncate(500);
    files
        .iter()
        .filter_map(|f| std::fs::read(f).ok())
        .map(|mut b| {
            b.truncate(MAX_SEED_BYTES);
            b
        })
        .collect()
}

/// One change to an input; positions are taken modulo its length.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    InsertInteresting(usize, usize),
    Delete(usize, usize),
    DuplicateLine(usize),
    Splice { seed: usize, at: usize, from: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1..=255u8).prop_map(|(at, mask)| Mutation::Flip(at, mask)),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..16)).prop_map(|(at, b)| Mutation::Insert(at, b)),
        (any::<usize>(), 0..INTERESTING.len()).prop_map(|(at, i)| Mutation::InsertInteresting(at, i)),
        (any::<usize>(), 1..64usize).prop_map(|(at, len)| Mutation::Delete(at, len)),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), any::<usize>(), any::<usize>(), 1..512usize).prop_map(|(seed, at, from, len)| Mutation::Splice {
            seed,
            at,
            from,
            len
        }),
    ]
}

fn apply(input: &mut Vec<u8>, m: &Mutation, seeds: &[Vec<u8>]) {
    let pos = |at: usize, len: usize| if len == 0 { 0 } else { at % (len + 1) };
    match m {
        Mutation::Truncate(at) => input.truncate(pos(*at, input.len())),
        Mutation::Flip(at, mask) => {
            if !input.is_empty() {
                let i = at % input.len();
                input[i] ^= mask;
            }
        }
        Mutation::Insert(at, bytes) => {
            let i = pos(*at, input.len());
            input.splice(i..i, bytes.iter().copied());
        }
        Mutation::InsertInteresting(at, which) => {
            let i = pos(*at, input.len());
            input.splice(i..i, INTERESTING[*which].iter().copied());
        }
        Mutation::Delete(at, len) => {
            let i = pos(*at, input.len());
            let end = (i + len).min(input.len());
            input.drain(i..end);
        }
        Mutation::DuplicateLine(at) => {
            let lines: Vec<&[u8]> = input.split_inclusive(|&b| b == b'\n').collect();
            if !lines.is_empty() {
                let i = at % lines.len();
                let copy = lines[i].to_vec();
                let offset: usize = lines[..i].iter().map(|l| l.len()).sum();
                input.splice(offset..offset, copy);
            }
        }
        Mutation::Splice { seed, at, from, len } => {
            if let Some(other) = seeds.get(seed % seeds.len().max(1)) {
                let start = pos(*from, other.len());
                let end = (start + len).min(other.len());
                let i = pos(*at, input.len());
                input.splice(i..i, other[start..end].iter().copied());
            }
        }
    }
}

/// Mutated seeds, nine times in ten, else raw random bytes.
fn strategy(seeds: &[Vec<u8>]) -> impl Strategy<Value = Vec<u8>> {
    let seeds = seeds.to_vec();
    prop_oneof![
        9 => (0..seeds.len(), proptest::collection::vec(mutation(), 1..8)).prop_map(move |(i, ms)| {
            let mut input = seeds[i].clone();
            for m in &ms {
                apply(&mut input, m, &seeds);
            }
            input
        }),
        1 => proptest::collection::vec(any::<u8>(), 0..256),
    ]
}

/// What one target did.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub executions: u64,
    pub elapsed: Duration,
}

/// Runs `target` on every seed, then on mutated seeds (plus raw random
/// bytes) until the case count or the time budget is used up. Panics, with
/// the shrunk input, if the target panicked or one execution took longer
/// than `MAX_CASE_TIME`.
pub fn run(name: &str, seeds: Vec<Vec<u8>>, target: impl Fn(&[u8])) -> Outcome {
    assert!(!seeds.is_empty(), "fuzz target {name} has no seeds: its fixtures moved?");
    let started = Instant::now();
    let executions = AtomicU64::new(0);
    let execute = |input: &[u8]| -> Result<(), TestCaseError> {
        let t = Instant::now();
        target(input);
        executions.fetch_add(1, Ordering::Relaxed);
        let took = t.elapsed();
        if took > MAX_CASE_TIME {
            return Err(TestCaseError::fail(format!("{name}: one input took {took:?} (a hang?)")));
        }
        Ok(())
    };
    for seed in &seeds {
        execute(seed).unwrap_or_else(|e| panic!("{name}: a seed fails: {e}"));
    }
    let budget = budget();
    let mut remaining = cases();
    // Runs of at most CHUNK cases, each with a fresh random seed, until the
    // case count or the budget is spent: a run cannot be stopped midway,
    // and generating the unused cases of one huge run would cost time.
    const CHUNK: u32 = 256;
    while remaining > 0 && started.elapsed() < budget {
        let chunk = remaining.min(CHUNK);
        remaining -= chunk;
        let config = Config { cases: chunk, failure_persistence: None, max_shrink_iters: 4096, ..Config::default() };
        let mut runner = TestRunner::new(config);
        let result = runner.run(&strategy(&seeds), |input| {
            // Over budget: the rest of this chunk passes without running.
            if started.elapsed() > budget {
                return Ok(());
            }
            execute(&input)
        });
        if let Err(e) = result {
            panic!("fuzz target {name} failed: {e}");
        }
    }
    let outcome = Outcome { executions: executions.load(Ordering::Relaxed), elapsed: started.elapsed() };
    eprintln!("fuzz {name}: {} executions in {:.2?} ({} seeds)", outcome.executions, outcome.elapsed, seeds.len());
    outcome
}

/// Bytes as text the way the readers hand it to parsers (lossy UTF-8).
pub fn lossy(input: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_stay_in_bounds() {
        let seeds = vec![b"a: 1\nb: 2\n".to_vec(), Vec::new()];
        let mut runner = TestRunner::new(Config { cases: 2000, failure_persistence: None, ..Config::default() });
        runner
            .run(&(0..2usize, proptest::collection::vec(mutation(), 0..16)), |(i, ms)| {
                let mut input = seeds[i].clone();
                for m in &ms {
                    apply(&mut input, m, &seeds);
                }
                Ok(())
            })
            .expect("no mutation panics on any input");
    }

    #[test]
    fn a_panicking_target_is_reported() {
        let caught = std::panic::catch_unwind(|| {
            run("always-fails-on-x", vec![b"abc".to_vec()], |input| assert!(!input.contains(&b'x'), "found x"));
        });
        // Random insertions find an 'x' within the default case count.
        assert!(caught.is_err(), "the harness must report a target that panics");
    }
}
