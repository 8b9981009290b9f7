//! Nothing left behind, however `vmch` ends: VM processes, temporary directories and partial
//! downloads are registered here while they exist, and a signal (SIGINT, SIGTERM, SIGHUP)
//! sent to `vmch` alone, as a supervisor or `timeout` sends it, kills the VMs, removes the
//! files and exits with 128 + the signal's number.
//!
//! Three layers, because no single one covers every ending:
//! - [`install_signal_handlers`]: a thread that waits for the signals and then runs the
//!   cleanup ([`terminate`]) before exiting. Ordinary endings (errors, panics that unwind)
//!   clean up through `Drop` as before.
//! - [`tie_to_parent`], run in each VM process between fork and exec: Linux's parent-death
//!   signal, so a VM dies even when `vmch` is killed with SIGKILL or crashes. The signal is
//!   sent when the *thread* that started the child ends, so a VM belongs to the thread that
//!   launched it (the CLI's threads live as long as their appliances).
//! - [`sweep_stale`]: the temporary directories of a `vmch` that was killed outright (SIGKILL
//!   leaves no chance to remove them) carry its process id in their name, and the next `vmch`
//!   removes those whose process is gone.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Mutex;

/// Prefix of every temporary directory `vmch` makes (followed by its process id and a dash).
pub const TEMP_PREFIX: &str = "vmch-";

/// What to undo if `vmch` is stopped by a signal.
#[derive(Debug)]
enum Item {
    /// A VM process, killed (SIGKILL) and reaped.
    Process(u32),
    /// A temporary directory, removed with what it holds.
    Dir(PathBuf),
    /// A partial file, removed.
    File(PathBuf),
}

struct Registry {
    next: u64,
    items: BTreeMap<u64, Item>,
    /// Set once a signal is being handled: nothing new may start.
    terminating: bool,
    /// Set once the run's output is in place ([`persist`]): the run is over, and a signal
    /// from then on ends the process with this status rather than undoing anything.
    outcome: Option<i32>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next: 0,
    items: BTreeMap::new(),
    terminating: false,
    outcome: None,
});

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// A registration, removed when dropped (the thing it names was cleaned up the ordinary way).
#[derive(Debug)]
pub struct Registered(u64);

impl Drop for Registered {
    fn drop(&mut self) {
        registry().items.remove(&self.0);
    }
}

/// Why something could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    /// `vmch` is being stopped by a signal.
    #[error("vmch is stopping (signal received)")]
    Stopping,
    /// The signal handling thread could not be set up.
    #[error("installing the signal handlers: {0}")]
    Signals(#[source] io::Error),
}

fn register(item: Item) -> Result<Registered, CleanupError> {
    let mut r = registry();
    if r.terminating {
        return Err(CleanupError::Stopping);
    }
    let id = r.next;
    r.next += 1;
    r.items.insert(id, item);
    Ok(Registered(id))
}

/// Registers a running VM process: killed if a signal stops `vmch`. If one already is, the
/// process is killed at once and [`CleanupError::Stopping`] returned.
pub fn process(child: &mut Child) -> Result<Registered, CleanupError> {
    register(Item::Process(child.id())).inspect_err(|_| kill_and_reap(child))
}

/// Kills `child` unless it already exited, and reaps it.
fn kill_and_reap(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// Registers a temporary directory: removed if a signal stops `vmch`.
pub fn dir(path: &Path) -> Result<Registered, CleanupError> {
    register(Item::Dir(path.to_owned()))
}

/// A temporary directory registered for cleanup from the moment it exists until it is gone:
/// made under the registry's lock (a signal finds it either not yet made or registered), and
/// removed before its registration is dropped (a signal in between would find it unregistered
/// and end the process before the removal).
#[derive(Debug)]
pub struct RegisteredDir {
    dir: Option<tempfile::TempDir>,
    registration: Option<Registered>,
}

impl RegisteredDir {
    /// Its path.
    pub fn path(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), |d| d.path())
    }
}

impl Drop for RegisteredDir {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
        drop(self.registration.take());
    }
}

/// Why a temporary directory could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TempDirError {
    /// `vmch` is being stopped by a signal.
    #[error(transparent)]
    Stopping(CleanupError),
    /// Creating it failed.
    #[error(transparent)]
    Create(io::Error),
}

/// Makes a temporary directory whose name starts with `prefix` (see [`temp_prefix`]) and
/// registers it in one step with respect to a signal.
pub fn temp_dir(prefix: &str) -> Result<RegisteredDir, TempDirError> {
    let mut r = registry();
    if r.terminating {
        return Err(TempDirError::Stopping(CleanupError::Stopping));
    }
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(TempDirError::Create)?;
    let id = r.next;
    r.next += 1;
    r.items.insert(id, Item::Dir(dir.path().to_owned()));
    Ok(RegisteredDir {
        dir: Some(dir),
        registration: Some(Registered(id)),
    })
}

/// Registers a partial file: removed if a signal stops `vmch`.
pub fn file(path: &Path) -> Result<Registered, CleanupError> {
    register(Item::File(path.to_owned()))
}

/// Kills and reaps a registered VM process and drops its registration in one step, so the
/// signal thread never signals a process id that was already reaped (and maybe reused).
pub fn stop_process(child: &mut Child, registration: Option<Registered>) {
    let mut r = registry();
    kill_and_reap(child);
    if let Some(registration) = registration {
        r.items.remove(&registration.0);
        // Removed under this lock already: its Drop (which would lock again) must not run.
        std::mem::forget(registration);
    }
}

/// Renames the finished temporary file `tmp` (registered as `registration`) to `dest`, as
/// the run's one output, in one step with respect to a signal: either the signal comes first
/// and the file is removed as partial (the rename does not happen), or the rename does and
/// the run counts as over, so a signal after it ends the process with status 0, the output
/// in place. For a program's final output (the CLI's `download`).
pub fn persist(
    tmp: tempfile::NamedTempFile,
    registration: Registered,
    dest: &Path,
) -> Result<(), tempfile::PersistError> {
    let mut r = registry();
    if r.terminating {
        // The signal's thread is cleaning up and will remove the file; do not publish it.
        return Err(tempfile::PersistError {
            error: io::Error::other(CleanupError::Stopping),
            file: tmp,
        });
    }
    tmp.persist(dest)?;
    r.items.remove(&registration.0);
    r.outcome = Some(0);
    // Removed under this lock already: its Drop (which would lock again) must not run.
    std::mem::forget(registration);
    Ok(())
}

/// Undoes everything registered: kills and reaps the VMs, removes the directories and files.
/// Afterwards nothing new can be registered. Returns how many items were cleaned.
pub fn clean_all() -> usize {
    clean_all_outcome().0
}

/// [`clean_all`], and the run's outcome if it was already over ([`persist`]).
fn clean_all_outcome() -> (usize, Option<i32>) {
    let mut r = registry();
    r.terminating = true;
    let outcome = r.outcome;
    let items = std::mem::take(&mut r.items);
    // Processes first: a VM may still be writing into its directory.
    for item in items.values() {
        if let Item::Process(pid) = item
            && let Ok(pid) = i32::try_from(*pid)
        {
            // A child this process started and has not reaped (reaping happens under this
            // same lock, in `stop_process`), so the id still names that child.
            // SAFETY: kill(2) and waitpid(2) on that child; no memory of ours is passed.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
    }
    for item in items.values() {
        match item {
            Item::Dir(p) => {
                let _ = std::fs::remove_dir_all(p);
            }
            Item::File(p) => {
                let _ = std::fs::remove_file(p);
            }
            Item::Process(_) => {}
        }
    }
    (items.len(), outcome)
}

/// The signal being handled, 0 while none.
static SIGNALLED: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Cleans up ([`clean_all`]) and exits with 128 + `signal`, as a shell reports a process
/// killed by it, or with 0 when the run was already over (its output in place, [`persist`]). The other threads see their VMs die first: so that none of them reports
/// that as a failure or exits with its own status meanwhile, they call
/// [`hold_if_stopping`] before reporting (stdout and stderr are not locked here: a thread
/// blocked writing to a stalled pipe holds them, and the signal must still end the process).
pub fn terminate(signal: i32) -> ! {
    SIGNALLED.store(signal, std::sync::atomic::Ordering::SeqCst);
    let (_, outcome) = clean_all_outcome();
    // SAFETY: _exit ends the process at once, without atexit handlers that another
    // thread's exit could be running concurrently.
    unsafe { libc::_exit(outcome.unwrap_or(128 + signal)) }
}

/// True once a signal is being handled ([`terminate`]).
pub fn stopping() -> bool {
    SIGNALLED.load(std::sync::atomic::Ordering::SeqCst) != 0
}

/// Never returns while a signal is being handled: the signal's thread ends the process
/// (with 128 + the signal). Call it before reporting a failure, which may be only the VM
/// that thread killed.
pub fn hold_if_stopping() {
    while stopping() {
        std::thread::park();
    }
}

/// What `main` returns through: `code`, unless a signal is being handled ([`hold_if_stopping`]).
pub fn finish<T>(code: T) -> T {
    hold_if_stopping();
    code
}

/// Starts the thread that turns SIGINT, SIGTERM and SIGHUP into [`terminate`]. Call it once,
/// early, in a program that launches appliances.
pub fn install_signal_handlers() -> Result<(), CleanupError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(CleanupError::Signals)?;
    std::thread::Builder::new()
        .name("vmch-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                terminate(signal);
            }
        })
        .map_err(CleanupError::Signals)?;
    Ok(())
}

/// Makes the calling process (a VM child, between fork and exec) receive `signal` when the
/// thread that forked it ends, and exit at once if that already happened. Only
/// async-signal-safe calls: it runs in the forked child.
///
/// `parent` is the process id of `vmch` (taken before the fork).
pub fn tie_to_parent(signal: i32, parent: u32) -> io::Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes the signal number as its only argument and
    // touches no memory of ours; getppid and _exit are async-signal-safe.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong) != 0 {
            return Err(io::Error::last_os_error());
        }
        // The parent may have died between fork and prctl: then nobody would signal us.
        if libc::getppid() as u32 != parent {
            libc::_exit(1);
        }
    }
    Ok(())
}

/// The prefix of this process's temporary directories: `vmch-<pid>-`.
pub fn temp_prefix() -> String {
    format!("{TEMP_PREFIX}{}-", std::process::id())
}

/// Removes the temporary directories (in `tmp`) of `vmch` processes that no longer exist and
/// that belong to this user. Returns how many were removed.
pub fn sweep_stale(tmp: &Path) -> usize {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return 0;
    };
    // SAFETY: geteuid has no arguments and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(TEMP_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<i32>().ok())
            .filter(|&pid| pid > 0)
        else {
            continue;
        };
        // Only directories (not links) of ours.
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != uid {
            continue;
        }
        // SAFETY: kill with signal 0 only checks whether the process exists.
        let gone = unsafe { libc::kill(pid, 0) } != 0
            && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone && std::fs::remove_dir_all(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_directories_of_dead_processes_are_swept_and_live_ones_kept() {
        let tmp = tempfile::tempdir().unwrap();
        // A process that has exited: its id is free (unless reused at once, which the
        // kernel avoids by cycling through the id space).
        let mut dead = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = dead.id();
        dead.wait().unwrap();
        let stale = tmp.path().join(format!("{TEMP_PREFIX}{dead_pid}-abc"));
        std::fs::create_dir_all(stale.join("inner")).unwrap();
        std::fs::write(stale.join("inner/serial.log"), b"x").unwrap();
        let live = tmp.path().join(temp_prefix() + "def");
        std::fs::create_dir(&live).unwrap();
        let unrelated = tmp.path().join("vmch-notapid-x");
        std::fs::create_dir(&unrelated).unwrap();
        assert_eq!(sweep_stale(tmp.path()), 1);
        assert!(!stale.exists());
        assert!(live.exists());
        assert!(unrelated.exists());
    }

    #[test]
    fn registrations_end_with_their_guards() {
        let tmp = tempfile::tempdir().unwrap();
        let before = registry().items.len();
        let g = dir(tmp.path()).unwrap();
        assert_eq!(registry().items.len(), before + 1);
        drop(g);
        assert_eq!(registry().items.len(), before);
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let g = process(&mut child).unwrap();
        stop_process(&mut child, Some(g));
        assert_eq!(registry().items.len(), before);
        assert!(child.try_wait().unwrap().is_some());
    }
}
