//! Signals: Ctrl-C (SIGINT) and SIGTERM stop the VM cleanly, and a real-time signal kicks the
//! vCPU thread out of `KVM_RUN`.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::thread::JoinHandle;

use libc::{c_int, c_void, siginfo_t};
use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::signal::{Killable, SIGRTMIN, register_signal_handler};

static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);
static STOP_FD: AtomicI32 = AtomicI32::new(-1);

/// Which signal ended the run, if any (SIGINT or SIGTERM).
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_stop(num: c_int, _: *mut siginfo_t, _: *mut c_void) {
    STOP_SIGNAL.store(num, Ordering::SeqCst);
    STOP_REQUESTED.store(true, Ordering::SeqCst);
    let fd = STOP_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let one = 1u64;
        // SAFETY: write(2) is async-signal-safe; `one` is a live 8-byte buffer and `fd` is the
        // stop eventfd, which stays open for the whole run (it is cleared before closing).
        unsafe { libc::write(fd, (&raw const one).cast(), 8) };
    }
}

extern "C" fn on_kick(_: c_int, _: *mut siginfo_t, _: *mut c_void) {}

/// The signal that kicks the vCPU thread.
pub fn kick_signal() -> c_int {
    SIGRTMIN()
}

/// Installs the handlers: SIGINT and SIGTERM write to `stop`; the kick signal does nothing but
/// interrupt `KVM_RUN`.
pub fn install(stop: &EventFd) -> std::io::Result<()> {
    STOP_FD.store(stop.as_raw_fd(), Ordering::SeqCst);
    for num in [libc::SIGINT, libc::SIGTERM] {
        register_signal_handler(num, on_stop)
            .map_err(|e| std::io::Error::from_raw_os_error(e.errno()))?;
    }
    register_signal_handler(kick_signal(), on_kick)
        .map_err(|e| std::io::Error::from_raw_os_error(e.errno()))
}

/// Stops the handlers from writing to the eventfd (before it is closed).
pub fn uninstall() {
    STOP_FD.store(-1 as RawFd, Ordering::SeqCst);
}

/// Whether SIGINT or SIGTERM arrived, and which.
pub fn stop_signal() -> Option<c_int> {
    STOP_REQUESTED
        .load(Ordering::SeqCst)
        .then(|| STOP_SIGNAL.load(Ordering::SeqCst))
}

/// Sends the kick signal to the vCPU thread.
pub fn kick<T>(thread: &JoinHandle<T>) {
    if let Err(e) = thread.kill(kick_signal()) {
        log::debug!("kicking the vCPU thread: {e}");
    }
}
