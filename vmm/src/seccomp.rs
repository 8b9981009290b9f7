//! Seccomp-BPF confinement of the VMM's threads, as Firecracker and Cloud Hypervisor do it: once
//! the VM is built, each thread installs a filter (on itself only) that allows the system calls
//! it makes while the guest runs, and nothing else.
//!
//! - the vCPU thread ([`ThreadKind::Vcpu`]): `KVM_RUN` and the register reads of a crash dump,
//!   the VM ioctls a device register write can lead to (ioeventfds, irqfds, MSI routes), writes
//!   (COM1, eventfds, stderr) and the allocator's and Rust runtime's calls;
//! - the event-loop thread ([`ThreadKind::EventLoop`]): epoll, the port sockets (accept, send,
//!   receive, close), disk reads, eventfd reads and writes, the same VM ioctls;
//! - the thread that called [`crate::Vm::run`] ([`ThreadKind::Main`]): waiting (futexes), kicking
//!   the vCPU (`tgkill`), the stop eventfd, tearing the VM down (close, munmap, unlink of the
//!   port sockets) and exiting. [`ThreadKind::MainRebuild`] also allows building another VM
//!   (opening files and `/dev/kvm`, making sockets, the build-time KVM ioctls, starting threads),
//!   which `vmch run` needs to reboot the guest; it is the union of every list.
//!
//! A call outside the list raises SIGSYS (`SeccompAction::Trap`); the handler
//! ([`install_sigsys_handler`]) writes one line to stderr naming the thread and the system call
//! number, and exits with [`EXIT_SECCOMP`] (Firecracker's status for the same event). The
//! lists were found with `strace -f` on real workloads; docs/SECCOMP.md says why each call is
//! there.

use std::cell::Cell;
use std::collections::BTreeMap;

use libc::{c_int, c_void, siginfo_t};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Exit status when a thread makes a system call its filter forbids (the one Firecracker uses).
pub const EXIT_SECCOMP: i32 = 148;

/// Whether the VMM's threads are confined, and how much the calling thread keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeccompMode {
    /// No filters (for debugging: `vmch run --seccomp=off`).
    Off,
    /// Every thread is filtered.
    On {
        /// Whether the thread that calls [`crate::Vm::run`] may build another VM afterwards
        /// (a reboot). Without it, that thread may only wait, tear down and exit.
        rebuild: bool,
    },
}

impl Default for SeccompMode {
    fn default() -> Self {
        SeccompMode::On { rebuild: false }
    }
}

/// Why a filter could not be built or installed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// seccompiler refused the rules (a bug in the lists).
    #[error("building the {0} seccomp filter: {1}")]
    Build(&'static str, seccompiler::BackendError),
    /// The kernel refused the filter.
    #[error("installing the seccomp filter on thread {0}: {1}")]
    Install(&'static str, seccompiler::Error),
    /// The SIGSYS handler could not be installed.
    #[error("installing the SIGSYS handler: {0}")]
    Handler(std::io::Error),
}

/// Which thread a filter is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadKind {
    /// A vCPU thread.
    Vcpu,
    /// The backend (event-loop) thread.
    EventLoop,
    /// The thread that runs the VM and waits for it, when it will not build another.
    Main,
    /// The thread that runs the VM and may build the next one (reboot).
    MainRebuild,
}

impl ThreadKind {
    fn label(self) -> &'static str {
        match self {
            ThreadKind::Vcpu => "vcpu",
            ThreadKind::EventLoop => "event-loop",
            ThreadKind::Main => "main",
            ThreadKind::MainRebuild => "main (rebuild)",
        }
    }
}

/// The KVM and terminal ioctl numbers the filters allow, computed from the kernel's
/// definitions (linux/kvm.h) and the kvm-bindings structures.
#[allow(missing_docs)]
mod ioctls {
    use kvm_bindings::{
        kvm_cpuid2, kvm_fpu, kvm_ioeventfd, kvm_irq_level, kvm_irq_routing, kvm_irqfd, kvm_msi,
        kvm_msrs, kvm_pit_config, kvm_regs, kvm_sregs, kvm_userspace_memory_region,
    };
    use vmm_sys_util::{ioctl_io_nr, ioctl_ior_nr, ioctl_iow_nr, ioctl_iowr_nr};

    const KVMIO: u32 = 0xAE;

    // /dev/kvm and the VM, while it is built.
    ioctl_io_nr!(KVM_GET_API_VERSION, KVMIO, 0x00);
    ioctl_io_nr!(KVM_CREATE_VM, KVMIO, 0x01);
    ioctl_io_nr!(KVM_GET_VCPU_MMAP_SIZE, KVMIO, 0x04);
    ioctl_iowr_nr!(KVM_GET_SUPPORTED_CPUID, KVMIO, 0x05, kvm_cpuid2);
    ioctl_io_nr!(KVM_CREATE_VCPU, KVMIO, 0x41);
    ioctl_iow_nr!(
        KVM_SET_USER_MEMORY_REGION,
        KVMIO,
        0x46,
        kvm_userspace_memory_region
    );
    ioctl_io_nr!(KVM_SET_TSS_ADDR, KVMIO, 0x47);
    ioctl_io_nr!(KVM_CREATE_IRQCHIP, KVMIO, 0x60);
    ioctl_iow_nr!(KVM_CREATE_PIT2, KVMIO, 0x77, kvm_pit_config);
    ioctl_iow_nr!(KVM_SET_REGS, KVMIO, 0x82, kvm_regs);
    ioctl_iow_nr!(KVM_SET_SREGS, KVMIO, 0x84, kvm_sregs);
    ioctl_iow_nr!(KVM_SET_MSRS, KVMIO, 0x89, kvm_msrs);
    ioctl_iow_nr!(KVM_SET_FPU, KVMIO, 0x8d, kvm_fpu);
    ioctl_iow_nr!(KVM_SET_CPUID2, KVMIO, 0x90, kvm_cpuid2);

    // The VM while the guest runs: interrupts and queue notifications.
    ioctl_iow_nr!(KVM_IRQ_LINE, KVMIO, 0x61, kvm_irq_level);
    ioctl_iow_nr!(KVM_SET_GSI_ROUTING, KVMIO, 0x6a, kvm_irq_routing);
    ioctl_iow_nr!(KVM_IRQFD, KVMIO, 0x76, kvm_irqfd);
    ioctl_iow_nr!(KVM_IOEVENTFD, KVMIO, 0x79, kvm_ioeventfd);
    ioctl_iow_nr!(KVM_SIGNAL_MSI, KVMIO, 0xa5, kvm_msi);

    // The vCPU while it runs, and the registers a crash report prints.
    ioctl_io_nr!(KVM_RUN, KVMIO, 0x80);
    ioctl_ior_nr!(KVM_GET_REGS, KVMIO, 0x81, kvm_regs);
    ioctl_ior_nr!(KVM_GET_SREGS, KVMIO, 0x83, kvm_sregs);
}

/// The VM ioctls a device can issue while the guest runs: a BAR moved (ioeventfds), an MSI-X
/// vector programmed or raised (routes, irqfds, `KVM_SIGNAL_MSI` past the route limit), a
/// legacy interrupt line.
fn runtime_vm_ioctls() -> Vec<u64> {
    vec![
        ioctls::KVM_IOEVENTFD(),
        ioctls::KVM_IRQFD(),
        ioctls::KVM_SET_GSI_ROUTING(),
        ioctls::KVM_SIGNAL_MSI(),
        ioctls::KVM_IRQ_LINE(),
    ]
}

fn vcpu_ioctls() -> Vec<u64> {
    let mut v = vec![
        ioctls::KVM_RUN(),
        ioctls::KVM_GET_REGS(),
        ioctls::KVM_GET_SREGS(),
    ];
    v.extend(runtime_vm_ioctls());
    v
}

fn event_loop_ioctls() -> Vec<u64> {
    let mut v = runtime_vm_ioctls();
    // UnixStream::set_nonblocking on an accepted connection.
    v.push(libc::FIONBIO);
    v
}

fn build_ioctls() -> Vec<u64> {
    let mut v = vec![
        ioctls::KVM_GET_API_VERSION(),
        ioctls::KVM_CREATE_VM(),
        ioctls::KVM_GET_VCPU_MMAP_SIZE(),
        ioctls::KVM_GET_SUPPORTED_CPUID(),
        ioctls::KVM_CREATE_VCPU(),
        ioctls::KVM_SET_USER_MEMORY_REGION(),
        ioctls::KVM_SET_TSS_ADDR(),
        ioctls::KVM_CREATE_IRQCHIP(),
        ioctls::KVM_CREATE_PIT2(),
        ioctls::KVM_SET_REGS(),
        ioctls::KVM_SET_SREGS(),
        ioctls::KVM_SET_MSRS(),
        ioctls::KVM_SET_FPU(),
        ioctls::KVM_SET_CPUID2(),
    ];
    v.extend(vcpu_ioctls());
    v.extend(event_loop_ioctls());
    v
}

/// What every thread does whatever its job: the allocator (mmap, munmap, mremap, mprotect for
/// a growing arena, madvise, brk), locks and channels (futex), returning from a signal handler
/// (the kick, SIGINT/SIGTERM), thread exit (sigaltstack, rt_sigprocmask, munmap of the stacks),
/// stderr (panic messages, the log, the SIGSYS line), closing descriptors, the clock when the
/// vDSO falls back to the system call, and the first `HashMap` of a thread (getrandom).
/// fcntl only as `F_GETFD`/`F_GETFL` (see [`FCNTL_QUERIES`]): a debug build's std checks that
/// a descriptor is open before it closes it.
const COMMON: &[i64] = &[
    libc::SYS_fcntl,
    libc::SYS_brk,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_mprotect,
    libc::SYS_madvise,
    libc::SYS_futex,
    libc::SYS_sched_yield,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigprocmask,
    libc::SYS_sigaltstack,
    libc::SYS_write,
    libc::SYS_close,
    libc::SYS_clock_gettime,
    libc::SYS_getrandom,
    libc::SYS_gettid,
    libc::SYS_getpid,
    libc::SYS_exit,
    libc::SYS_exit_group,
];

/// The vCPU thread: `KVM_RUN` (ioctl, filtered by number), COM1 and eventfd writes (in
/// COMMON), a new irqfd when the guest programs an MSI-X vector (eventfd2). When KVM refuses
/// a queue's ioeventfd, the notify write reaches the device on this thread (`pci.rs`), which
/// then does the queue's work itself: disk reads and socket writes.
const VCPU: &[i64] = &[
    libc::SYS_ioctl,
    libc::SYS_eventfd2,
    libc::SYS_read,
    libc::SYS_readv,
    libc::SYS_pread64,
    libc::SYS_preadv,
    libc::SYS_writev,
    libc::SYS_sendto,
    libc::SYS_sendmsg,
];

/// The event-loop thread: epoll, the port sockets, disk reads, eventfd reads, new irqfds.
const EVENT_LOOP: &[i64] = &[
    libc::SYS_ioctl,
    libc::SYS_epoll_wait,
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_ctl,
    libc::SYS_read,
    libc::SYS_readv,
    libc::SYS_pread64,
    libc::SYS_preadv,
    libc::SYS_writev,
    libc::SYS_accept4,
    libc::SYS_recvfrom,
    libc::SYS_recvmsg,
    libc::SYS_sendto,
    libc::SYS_sendmsg,
    libc::SYS_shutdown,
    libc::SYS_eventfd2,
];

/// The waiting thread: kicking the vCPU out of `KVM_RUN` (tgkill), removing the port sockets at
/// the end (unlink), sleeping.
const MAIN: &[i64] = &[
    libc::SYS_tgkill,
    libc::SYS_unlink,
    libc::SYS_unlinkat,
    libc::SYS_nanosleep,
    libc::SYS_clock_nanosleep,
];

/// Building another VM: files (/dev/kvm, the kernel, disks, the serial log), sockets (server
/// and client ports, mode 0600), eventfds and epoll, signal handlers, thread start-up (clone3,
/// clone, rseq, set_robust_list, sched_getaffinity, prctl for the name and no_new_privs) and the
/// next threads' own filters (seccomp).
const REBUILD: &[i64] = &[
    libc::SYS_openat,
    libc::SYS_open,
    libc::SYS_read,
    libc::SYS_pread64,
    libc::SYS_lseek,
    libc::SYS_fstat,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_fcntl,
    libc::SYS_ioctl,
    libc::SYS_socket,
    libc::SYS_bind,
    libc::SYS_listen,
    libc::SYS_connect,
    libc::SYS_chmod,
    libc::SYS_fchmod,
    libc::SYS_fchmodat,
    libc::SYS_eventfd2,
    libc::SYS_epoll_create1,
    libc::SYS_epoll_ctl,
    libc::SYS_rt_sigaction,
    libc::SYS_clone,
    libc::SYS_clone3,
    libc::SYS_rseq,
    libc::SYS_set_robust_list,
    libc::SYS_sched_getaffinity,
    libc::SYS_prctl,
    libc::SYS_seccomp,
];

/// The fcntl commands every thread may use: queries only.
const FCNTL_QUERIES: &[u64] = &[libc::F_GETFD as u64, libc::F_GETFL as u64];

/// Rules allowing `nr` only when its argument `arg` is one of `values`.
fn arg_rules(arg: u8, values: &[u64]) -> Result<Vec<SeccompRule>, seccompiler::BackendError> {
    values
        .iter()
        .map(|&v| {
            SeccompRule::new(vec![SeccompCondition::new(
                arg,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::Eq,
                v,
            )?])
        })
        .collect()
}

fn ioctl_rules(requests: &[u64]) -> Result<Vec<SeccompRule>, seccompiler::BackendError> {
    let mut requests = requests.to_vec();
    requests.sort_unstable();
    requests.dedup();
    arg_rules(1, &requests)
}

fn syscalls(kind: ThreadKind) -> (Vec<i64>, Vec<u64>) {
    let mut calls: Vec<i64> = COMMON.to_vec();
    let ioctls = match kind {
        ThreadKind::Vcpu => {
            calls.extend(VCPU);
            vcpu_ioctls()
        }
        ThreadKind::EventLoop => {
            calls.extend(EVENT_LOOP);
            event_loop_ioctls()
        }
        ThreadKind::Main => {
            calls.extend(MAIN);
            Vec::new()
        }
        ThreadKind::MainRebuild => {
            // The threads started after this filter inherit it: it must allow theirs too.
            calls.extend(VCPU);
            calls.extend(EVENT_LOOP);
            calls.extend(MAIN);
            calls.extend(REBUILD);
            build_ioctls()
        }
    };
    calls.sort_unstable();
    calls.dedup();
    (calls, ioctls)
}

/// The filter for one kind of thread, compiled to BPF. Build it before starting the thread
/// (compiling allocates freely); install it with [`apply`].
pub fn filter(kind: ThreadKind) -> Result<BpfProgram, SeccompError> {
    let err = |e| SeccompError::Build(kind.label(), e);
    let (calls, ioctls) = syscalls(kind);
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for nr in calls {
        let chain = if nr == libc::SYS_ioctl {
            ioctl_rules(&ioctls).map_err(err)?
        } else if nr == libc::SYS_fcntl && kind != ThreadKind::MainRebuild {
            // Building a VM sets descriptor flags; running one only queries them.
            arg_rules(1, FCNTL_QUERIES).map_err(err)?
        } else {
            Vec::new()
        };
        rules.insert(nr, chain);
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Trap,
        SeccompAction::Allow,
        TargetArch::x86_64,
    )
    .map_err(err)?;
    filter.try_into().map_err(err)
}

thread_local! {
    /// The name the SIGSYS handler reports for this thread (set by [`apply`]). Constant
    /// initialisation and no destructor: reading it in a signal handler is a plain TLS load.
    static THREAD_NAME: Cell<&'static str> = const { Cell::new("(unnamed)") };
}

/// Installs `program` on the calling thread only (no TSYNC), after setting no_new_privs.
/// `name` is what a SIGSYS report calls this thread.
pub fn apply(name: &'static str, program: &BpfProgram) -> Result<(), SeccompError> {
    THREAD_NAME.with(|n| n.set(name));
    seccompiler::apply_filter(program).map_err(|e| SeccompError::Install(name, e))
}

/// Appends the decimal digits of `n` to `buf` at `len`; returns the new length.
fn push_decimal(buf: &mut [u8], mut len: usize, n: i64) -> usize {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let negative = n < 0;
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if negative {
        len = push(buf, len, b"-");
    }
    push(buf, len, &digits[i..])
}

fn push(buf: &mut [u8], len: usize, bytes: &[u8]) -> usize {
    let n = bytes.len().min(buf.len() - len);
    buf[len..len + n].copy_from_slice(&bytes[..n]);
    len + n
}

/// The line the SIGSYS handler writes, built without allocating.
fn report_line(buf: &mut [u8], thread: &str, syscall: i64) -> usize {
    let mut len = push(buf, 0, b"vmch run: seccomp: thread ");
    len = push(buf, len, thread.as_bytes());
    len = push(buf, len, b" made forbidden system call ");
    len = push_decimal(buf, len, syscall);
    len = push(
        buf,
        len,
        b" (see docs/SECCOMP.md; vmch run --seccomp=off to debug)\n",
    );
    len
}

/// The SIGSYS handler: reports the thread and the call on fd 2 and exits with
/// [`EXIT_SECCOMP`]. Only async-signal-safe work: a stack buffer, write(2), _exit(2).
extern "C" fn on_sigsys(_: c_int, info: *mut siginfo_t, _: *mut c_void) {
    // For SIGSYS the siginfo_t holds the `_sigsys` member: `_call_addr` (a pointer) at byte
    // 16, then `int _syscall` at byte 24, as Firecracker reads it.
    // SAFETY: the kernel passes a valid siginfo_t (128 bytes) to an SA_SIGINFO handler.
    let syscall = unsafe { *(info.cast::<u8>().add(24).cast::<c_int>()) };
    let thread = THREAD_NAME.with(|n| n.get());
    let mut buf = [0u8; 256];
    let len = report_line(&mut buf, thread, i64::from(syscall));
    // SAFETY: write(2) is async-signal-safe and `buf[..len]` is a live buffer; the filters
    // allow write on every thread.
    unsafe { libc::write(libc::STDERR_FILENO, buf.as_ptr().cast(), len) };
    // SAFETY: _exit(2) is async-signal-safe and ends the process at once, without running
    // atexit handlers or destructors that could make further system calls.
    unsafe { libc::_exit(EXIT_SECCOMP) };
}

/// Installs the process-wide SIGSYS handler that turns a trapped call into a report and an
/// exit with [`EXIT_SECCOMP`]. Call it before any filter is applied.
pub fn install_sigsys_handler() -> Result<(), SeccompError> {
    vmm_sys_util::signal::register_signal_handler(libc::SIGSYS, on_sigsys)
        .map_err(|e| SeccompError::Handler(std::io::Error::from_raw_os_error(e.errno())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Set in the re-run test binary: which scenario the child runs.
    const CHILD_ENV: &str = "VMM_SECCOMP_TEST_CHILD";

    #[test]
    fn ioctl_numbers_match_the_kernel() {
        // Values from linux/kvm.h as compiled for x86-64 (strace decodes the same numbers).
        assert_eq!(ioctls::KVM_RUN(), 0xae80);
        assert_eq!(ioctls::KVM_CREATE_VM(), 0xae01);
        assert_eq!(ioctls::KVM_GET_REGS(), 0x8090_ae81);
        assert_eq!(ioctls::KVM_GET_SREGS(), 0x8138_ae83);
        assert_eq!(ioctls::KVM_IRQFD(), 0x4020_ae76);
        assert_eq!(ioctls::KVM_IOEVENTFD(), 0x4040_ae79);
        assert_eq!(ioctls::KVM_SET_GSI_ROUTING(), 0x4008_ae6a);
        assert_eq!(ioctls::KVM_SIGNAL_MSI(), 0x4020_aea5);
        assert_eq!(ioctls::KVM_IRQ_LINE(), 0x4008_ae61);
        assert_eq!(ioctls::KVM_SET_USER_MEMORY_REGION(), 0x4020_ae46);
    }

    #[test]
    fn every_filter_compiles() {
        for kind in [
            ThreadKind::Vcpu,
            ThreadKind::EventLoop,
            ThreadKind::Main,
            ThreadKind::MainRebuild,
        ] {
            let prog = filter(kind).unwrap();
            assert!(
                !prog.is_empty() && prog.len() < 4096,
                "{kind:?}: {}",
                prog.len()
            );
        }
    }

    #[test]
    fn the_vcpu_filter_refuses_what_a_vcpu_never_does() {
        let (calls, ioctls) = syscalls(ThreadKind::Vcpu);
        for nr in [
            libc::SYS_socket,
            libc::SYS_connect,
            libc::SYS_execve,
            libc::SYS_openat,
            libc::SYS_open,
            libc::SYS_clone,
            libc::SYS_clone3,
            libc::SYS_fork,
            libc::SYS_ptrace,
            libc::SYS_unlink,
        ] {
            assert!(!calls.contains(&nr), "vCPU filter allows {nr}");
        }
        assert!(
            !ioctls.contains(&build_ioctls()[1]),
            "KVM_CREATE_VM allowed"
        );
    }

    #[test]
    fn the_report_line_names_the_thread_and_the_call() {
        let mut buf = [0u8; 256];
        let len = report_line(&mut buf, "vmch-vcpu0", 41);
        let line = std::str::from_utf8(&buf[..len]).unwrap();
        assert!(
            line.starts_with("vmch run: seccomp: thread vmch-vcpu0 made forbidden system call 41 "),
            "{line}"
        );
        assert!(line.ends_with('\n'));
        let len = push_decimal(&mut buf, 0, -12345);
        assert_eq!(&buf[..len], b"-12345");
    }

    /// Re-runs this test binary with only `test` selected and `scenario` in the environment:
    /// the child installs a filter, which cannot be taken back, so the harness stays clean.
    fn run_child(test: &str, scenario: &str) -> std::process::Output {
        Command::new(std::env::current_exe().unwrap())
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, scenario)
            // A backtrace needs the executable and getcwd, which no filter allows: the panic
            // below must print only its message, as it does for a user without the variable.
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap()
    }

    /// In the child: installs the handler and the vCPU filter on a thread, proves allowed
    /// calls work (stderr, allocation, a futex through join, a panic's message), then makes the
    /// forbidden call `scenario` names.
    fn child_body(scenario: &str) {
        install_sigsys_handler().unwrap();
        let prog = filter(ThreadKind::Vcpu).unwrap();
        let scenario = scenario.to_string();
        let t = std::thread::Builder::new()
            .name("vmch-vcpu0".into())
            .spawn(move || {
                apply("vmch-vcpu0", &prog).unwrap();
                // Allowed: stderr, the allocator (small and large), a nested panic's report.
                eprintln!("child: filter on");
                let big = vec![7u8; 64 << 20];
                assert_eq!(big[12345], 7);
                drop(big);
                let caught = std::panic::catch_unwind(|| panic!("a panic under the filter"));
                assert!(caught.is_err());
                eprintln!("child: allowed calls worked");
                match scenario.as_str() {
                    "socket" => {
                        // SAFETY: a plain system call with no memory arguments.
                        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
                        eprintln!("child: socket returned {fd}");
                    }
                    "open" => {
                        let r = std::fs::File::open("/etc/hostname");
                        eprintln!("child: open returned {r:?}");
                    }
                    "none" => {}
                    other => panic!("unknown scenario {other}"),
                }
            })
            .unwrap();
        t.join().unwrap();
        // The main thread has no filter: it can still open files.
        std::fs::File::open("/proc/self/status").unwrap();
        eprintln!("child: done");
    }

    #[test]
    fn the_vcpu_filter_allows_its_calls_and_traps_socket() {
        if let Ok(s) = std::env::var(CHILD_ENV) {
            return child_body(&s);
        }
        let out = run_child(
            "seccomp::tests::the_vcpu_filter_allows_its_calls_and_traps_socket",
            "socket",
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("child: allowed calls worked"), "{stderr}");
        assert!(stderr.contains("a panic under the filter"), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "vmch run: seccomp: thread vmch-vcpu0 made forbidden system call {} ",
                libc::SYS_socket
            )),
            "{stderr}"
        );
        assert!(!stderr.contains("child: socket returned"), "{stderr}");
        assert!(!stderr.contains("child: done"), "{stderr}");
        assert_eq!(out.status.code(), Some(EXIT_SECCOMP), "{stderr}");
    }

    #[test]
    fn the_vcpu_filter_traps_opening_a_file() {
        if let Ok(s) = std::env::var(CHILD_ENV) {
            return child_body(&s);
        }
        let out = run_child(
            "seccomp::tests::the_vcpu_filter_traps_opening_a_file",
            "open",
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("made forbidden system call {} ", libc::SYS_openat)),
            "{stderr}"
        );
        assert!(!stderr.contains("child: open returned"), "{stderr}");
        assert_eq!(out.status.code(), Some(EXIT_SECCOMP), "{stderr}");
    }

    #[test]
    fn a_filtered_thread_that_stays_in_its_list_lives() {
        if let Ok(s) = std::env::var(CHILD_ENV) {
            return child_body(&s);
        }
        let out = run_child(
            "seccomp::tests::a_filtered_thread_that_stays_in_its_list_lives",
            "none",
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("child: done"), "{stderr}");
        assert!(!stderr.contains("forbidden"), "{stderr}");
        assert!(out.status.success(), "{stderr}");
    }
}
