//! Test support for the version modules: run the machine's own package tools
//! (`dpkg`, `rpm`, `vercmp`) as oracles, and a small seeded generator so that
//! generated cases are the same on every run. Compiled only for tests.

use std::process::{Command, Stdio};

/// SplitMix64: a tiny, well-mixed, seeded generator; no dependency needed.
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`; `n` must not be 0.
    pub fn below(&mut self, n: usize) -> usize {
        let n = u64::try_from(n).expect("usize fits in u64");
        usize::try_from(self.next_u64() % n).expect("below n, which was a usize")
    }

    /// A string of `0..max_len` bytes drawn from `alphabet` (ASCII).
    pub fn string(&mut self, alphabet: &[u8], max_len: usize) -> String {
        (0..self.below(max_len + 1)).map(|_| char::from(alphabet[self.below(alphabet.len())])).collect()
    }
}

/// What a finished oracle process said.
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Whether `program` can be run here at all (it is installed).
pub fn available(program: &str, args: &[&str]) -> bool {
    output(program, args).is_some_and(|out| out.code == Some(0))
}

/// Runs `program` and returns its output, or None when it cannot be started.
pub fn output(program: &str, args: &[&str]) -> Option<Output> {
    let out = Command::new(program).args(args).stdin(Stdio::null()).output().ok()?;
    Some(Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Runs `program` for its exit code only.
pub fn exit_code(program: &str, args: &[&str]) -> Option<i32> {
    output(program, args)?.code
}
