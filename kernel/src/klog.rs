//! The kernel's `log` backend: timestamped lines to a byte sink (COM1 in the guest).

use core::fmt;

/// Where log lines go and where their timestamps come from.
pub struct Logger {
    /// Writes formatted text; must not allocate or log.
    pub write: fn(fmt::Arguments<'_>),
    /// Nanoseconds since boot.
    pub now_ns: fn() -> u64,
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let ns = (self.now_ns)();
            (self.write)(format_args!(
                "[{:5}.{:06}] {:<5} {}: {}\n",
                ns / 1_000_000_000,
                (ns / 1000) % 1_000_000,
                record.level(),
                record.target(),
                record.args()
            ));
        }
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    static OUT: Mutex<String> = Mutex::new(String::new());

    #[test]
    fn formats_timestamp_level_and_target() {
        let logger = Logger {
            write: |a| OUT.lock().unwrap().push_str(&a.to_string()),
            now_ns: || 1_234_567_890,
        };
        log::set_max_level(log::LevelFilter::Info);
        log::Log::log(
            &logger,
            &log::Record::builder()
                .args(format_args!("hello {}", 7))
                .level(log::Level::Warn)
                .target("kernel::boot")
                .build(),
        );
        log::Log::log(
            &logger,
            &log::Record::builder()
                .args(format_args!("hidden"))
                .level(log::Level::Debug)
                .build(),
        );
        assert_eq!(
            *OUT.lock().unwrap(),
            "[    1.234567] WARN  kernel::boot: hello 7\n"
        );
    }
}
