//! What several of vmch's integration tests share: running the built `vmch` and reading its
//! output. Included by each test with `mod support;` (each is a binary of its own).
#![allow(dead_code)]

use std::process::{Command, Output};

/// Runs `vmch SUBCOMMAND [backend] ARGS` and waits for it.
pub fn vmch(sub: &str, backend: &[&str], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vmch"))
        .arg(sub)
        .args(backend)
        .args(args)
        .output()
        .expect("vmch runs")
}

/// Output bytes as text (lossily).
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
