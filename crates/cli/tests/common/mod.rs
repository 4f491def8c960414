//! Helpers shared by the CLI integration tests: run the real binary, wait
//! on conditions with deadlines, count output lines.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

pub fn trawl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trawl"))
}

/// Poll `cond` every 20 ms until it holds or `deadline` passes.
pub fn wait_until(what: &str, deadline: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn line_count(path: &Path) -> usize {
    std::fs::read(path)
        .map(|b| b.iter().filter(|c| **c == b'\n').count())
        .unwrap_or(0)
}
