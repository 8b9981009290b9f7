//! The host's processes and a command's outcome, as the end-to-end tests and benches check
//! them: what is still running, and which status a command ended with.

use std::process::Output;

/// One process of the host, from /proc.
#[derive(Debug, Clone)]
pub struct Process {
    /// Its id.
    pub pid: u32,
    /// Its parent's id.
    pub ppid: u32,
    /// Its command line, arguments joined by spaces (lossily decoded).
    pub cmdline: String,
}

/// Every process this one can see, except itself.
pub fn processes() -> Vec<Process> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // After the command name (which may hold spaces and parentheses): state, ppid ...
            let (_, rest) = stat.rsplit_once(") ")?;
            let ppid = rest.split_whitespace().nth(1)?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            Some(Process { pid, ppid, cmdline })
        })
        .filter(|p| p.pid != me)
        .collect()
}

/// Processes whose command line mentions `needle` (a test's private temporary directory,
/// which every VM it starts names in its arguments).
pub fn mentioning(needle: &str) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|p| p.cmdline.contains(needle))
        .map(|p| p.pid)
        .collect()
}

/// Children of this process.
pub fn children() -> Vec<u32> {
    let me = std::process::id();
    processes()
        .into_iter()
        .filter(|p| p.ppid == me)
        .map(|p| p.pid)
        .collect()
}

/// Asserts a command's exit status, quoting its output when it is not the one expected.
#[track_caller]
pub fn assert_status(out: &Output, expected: i32) {
    assert_eq!(
        out.status.code(),
        Some(expected),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
