//! The in-kernel self-test runner behind the `selftest` command line word.
//!
//! Each test returns `Ok` or a reason. The runner prints one line per test and a closing
//! `selftest: N passed, M failed` line, which the host harness and CI read.

use alloc::string::String;
use core::fmt;

/// A named self test.
pub struct SelfTest {
    /// Short name printed in the log.
    pub name: &'static str,
    /// The test; `Err` carries the reason for failure.
    pub run: fn() -> Result<(), String>,
}

/// Totals of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// Tests that returned `Ok`.
    pub passed: usize,
    /// Tests that returned `Err`.
    pub failed: usize,
}

impl Summary {
    /// True when nothing failed and something ran.
    pub fn success(&self) -> bool {
        self.failed == 0 && self.passed > 0
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "selftest: {} passed, {} failed",
            self.passed, self.failed
        )
    }
}

/// Runs the tests whose names `filter` accepts, writing progress lines to `out`.
pub fn run_all(
    tests: &[SelfTest],
    filter: impl Fn(&str) -> bool,
    out: &mut dyn FnMut(fmt::Arguments<'_>),
) -> Summary {
    let mut summary = Summary::default();
    for t in tests.iter().filter(|t| filter(t.name)) {
        match (t.run)() {
            Ok(()) => {
                summary.passed += 1;
                out(format_args!("selftest: {} ... ok\n", t.name));
            }
            Err(why) => {
                summary.failed += 1;
                out(format_args!("selftest: {} ... FAILED: {}\n", t.name, why));
            }
        }
    }
    out(format_args!("{summary}\n"));
    summary
}

/// Turns a failed condition into a test failure with a message.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(alloc::format!($($arg)+));
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn counts_and_prints() {
        let tests = [
            SelfTest {
                name: "a",
                run: || Ok(()),
            },
            SelfTest {
                name: "b",
                run: || Err("broken".to_string()),
            },
            SelfTest {
                name: "c",
                run: || Ok(()),
            },
        ];
        let mut log = String::new();
        let s = run_all(&tests, |_| true, &mut |a| log.push_str(&a.to_string()));
        assert_eq!(
            s,
            Summary {
                passed: 2,
                failed: 1
            }
        );
        assert!(!s.success());
        assert!(log.contains("selftest: b ... FAILED: broken\n"));
        assert!(log.ends_with("selftest: 2 passed, 1 failed\n"));
    }

    #[test]
    fn filter_and_empty_run_is_not_success() {
        let tests = [SelfTest {
            name: "a",
            run: || Ok(()),
        }];
        let s = run_all(&tests, |n| n == "zzz", &mut |_| {});
        assert_eq!(s, Summary::default());
        assert!(!s.success());
    }
}
