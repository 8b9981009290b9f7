//! What one boot produced, and the verdicts tests draw from it.

use std::fmt;
use std::time::Duration;

/// QEMU's exit status when the kernel writes 0x10 (success) to isa-debug-exit.
pub const SELFTEST_PASSED: i32 = 33;
/// QEMU's exit status when the kernel writes 0x11 (failure) to isa-debug-exit.
pub const SELFTEST_FAILED: i32 = 35;

/// The result of running a VM to its end (or to the timeout).
#[derive(Debug, Clone)]
pub struct Outcome {
    /// What was run, for messages.
    pub description: String,
    /// The process exit status; `None` if killed by a signal or by the timeout.
    pub status: Option<i32>,
    /// True when the harness killed the VM at its deadline.
    pub timed_out: bool,
    /// Everything the guest wrote to COM1.
    pub serial: String,
    /// What the VMM itself printed (warnings, register dumps).
    pub vmm_stderr: String,
    /// Wall time from spawn to exit.
    pub elapsed: Duration,
}

/// A boot that did not do what the test wanted; its Display shows the whole serial log.
#[derive(Debug, thiserror::Error)]
#[error(
    "{description}: {reason}\n--- serial log ---\n{serial}--- vmm stderr ---\n{vmm_stderr}--- end ---"
)]
pub struct BootFailure {
    /// What was run.
    pub description: String,
    /// Why it counts as a failure.
    pub reason: String,
    /// The guest's serial output.
    pub serial: String,
    /// The VMM's stderr.
    pub vmm_stderr: String,
}

impl Outcome {
    /// A failure for this outcome with `reason`.
    pub fn failure(&self, reason: impl fmt::Display) -> BootFailure {
        BootFailure {
            description: self.description.clone(),
            reason: reason.to_string(),
            serial: self.serial.clone(),
            vmm_stderr: self.vmm_stderr.clone(),
        }
    }

    /// The `selftest: N passed, M failed` line, parsed.
    pub fn selftest_summary(&self) -> Option<(usize, usize)> {
        self.serial.lines().rev().find_map(|line| {
            let rest = line.trim().strip_prefix("selftest: ")?;
            let (passed, failed) = rest.split_once(" passed, ")?;
            let failed = failed.strip_suffix(" failed")?;
            Some((passed.parse().ok()?, failed.parse().ok()?))
        })
    }

    /// Passes only a complete, successful self-test run: exit status 33 *and* a summary line
    /// with no failures. A hang, a panic, a triple fault or a lost summary all fail.
    pub fn expect_selftest_passed(&self) -> Result<usize, BootFailure> {
        if self.timed_out {
            return Err(self.failure(format!("timed out after {:.1?}", self.elapsed)));
        }
        let summary = self.selftest_summary();
        match (self.status, summary) {
            (Some(SELFTEST_PASSED), Some((passed, 0))) if passed > 0 => Ok(passed),
            (status, summary) => Err(self.failure(format!(
                "exit status {status:?}, self-test summary {summary:?}"
            ))),
        }
    }

    /// Passes only a clean power-off: exit status 0 before the deadline.
    pub fn expect_powered_off(&self) -> Result<(), BootFailure> {
        match (self.timed_out, self.status) {
            (false, Some(0)) => Ok(()),
            _ => Err(self.failure(format!(
                "expected a clean power-off (status 0), got status {:?}{}",
                self.status,
                if self.timed_out {
                    " after the timeout"
                } else {
                    ""
                }
            ))),
        }
    }

    /// Microseconds from PVH entry to ready, from the kernel's `ready in N us` log line.
    pub fn ready_us(&self) -> Option<u64> {
        let at = self.serial.find("ready in ")? + "ready in ".len();
        self.serial[at..].split_once(" us")?.0.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: Option<i32>, serial: &str) -> Outcome {
        Outcome {
            description: "test".into(),
            status,
            timed_out: false,
            serial: serial.into(),
            vmm_stderr: String::new(),
            elapsed: Duration::from_millis(5),
        }
    }

    #[test]
    fn success_needs_status_and_clean_summary() {
        let ok = "x ready in 812 us; y\nselftest: a ... ok\nselftest: 5 passed, 0 failed\n";
        assert_eq!(outcome(Some(33), ok).expect_selftest_passed().unwrap(), 5);
        assert_eq!(outcome(Some(33), ok).ready_us(), Some(812));
        assert!(outcome(Some(0), ok).expect_selftest_passed().is_err());
        assert!(
            outcome(Some(33), "selftest: 4 passed, 1 failed\n")
                .expect_selftest_passed()
                .is_err()
        );
        assert!(
            outcome(Some(33), "selftest: 0 passed, 0 failed\n")
                .expect_selftest_passed()
                .is_err()
        );
        assert!(
            outcome(Some(33), "no summary\n")
                .expect_selftest_passed()
                .is_err()
        );
        let mut hung = outcome(None, ok);
        hung.timed_out = true;
        assert!(hung.expect_selftest_passed().is_err());
    }

    #[test]
    fn power_off_needs_status_zero_in_time() {
        assert!(outcome(Some(0), "").expect_powered_off().is_ok());
        assert!(outcome(Some(33), "").expect_powered_off().is_err());
        assert!(outcome(None, "").expect_powered_off().is_err());
        let mut late = outcome(Some(0), "");
        late.timed_out = true;
        assert!(late.expect_powered_off().is_err());
    }

    #[test]
    fn failure_display_carries_the_serial_log() {
        let f = outcome(Some(35), "KERNEL PANIC: boom\n")
            .expect_selftest_passed()
            .unwrap_err();
        let text = f.to_string();
        assert!(text.contains("KERNEL PANIC: boom"), "{text}");
        assert!(text.contains("exit status Some(35)"), "{text}");
    }
}
