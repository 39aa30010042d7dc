//! Shared by the lab test binaries (`lab_*.rs`, `ssh_*.rs`): bring up a
//! small lab for one test and take it down again.
//!
//! These tests need root and create network namespaces, so a plain
//! `cargo test` must not run them: they are `#[ignore]`d, and also do
//! nothing (printing that they were skipped) unless FAULTLINE_LAB_TESTS=1.
//! `.ci/lab.sh` runs them with both.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

/// One lab per machine: tests in one binary take turns.
static LAB_LOCK: Mutex<()> = Mutex::new(());

pub fn faultline() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_faultline"))
}

/// Runs `faultline args...`.
pub fn run(args: &[&str]) -> Output {
    Command::new(faultline())
        .args(args)
        .output()
        .expect("the faultline binary runs")
}

pub fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Whether lab tests were asked for; prints why not otherwise.
pub fn enabled(test: &str) -> bool {
    if std::env::var("FAULTLINE_LAB_TESTS").as_deref() == Ok("1") {
        return true;
    }
    eprintln!("SKIPPED {test}: set FAULTLINE_LAB_TESTS=1 (needs root; creates network namespaces; run by .ci/lab.sh)");
    false
}

/// A lab of `hosts` hosts in a temporary folder, taken down on drop.
pub struct TestLab {
    pub dir: tempfile::TempDir,
    _guard: MutexGuard<'static, ()>,
}

impl TestLab {
    pub fn up(hosts: usize) -> TestLab {
        let guard = LAB_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::Builder::new()
            .prefix("faultline-labtest-")
            .tempdir()
            .expect("temp dir");
        let out = run(&[
            "lab",
            "up",
            "--hosts",
            &hosts.to_string(),
            "--dir",
            dir.path().to_str().unwrap(),
        ]);
        assert!(out.status.success(), "lab up failed:\n{}", text(&out));
        TestLab { dir, _guard: guard }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn dir_str(&self) -> &str {
        self.dir.path().to_str().expect("temp paths are UTF-8")
    }

    pub fn addr(&self, i: usize) -> String {
        format!("10.77.0.{}", 10 + i)
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        let out = run(&["lab", "down", "--dir", self.dir_str()]);
        if !out.status.success() {
            eprintln!("lab down failed:\n{}", text(&out));
            if !std::thread::panicking() {
                panic!("lab down failed");
            }
        }
    }
}

/// Runs `script` as root on the lab host at `addr` over SSH (the lab's own
/// key and known_hosts) and returns what it printed, trimmed.
pub fn on_host(lab: &TestLab, addr: &str, script: &str) -> String {
    let out = Command::new("ssh")
        .args(["-i", &format!("{}/id_ed25519", lab.dir_str())])
        .args([
            "-o",
            &format!("UserKnownHostsFile={}/known_hosts", lab.dir_str()),
        ])
        .args(["-o", "BatchMode=yes", &format!("root@{addr}")])
        .arg(script)
        .output()
        .expect("ssh runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
