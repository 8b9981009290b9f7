//! Boots the real kernel under QEMU: self tests on every machine, clean power-off, the kernel
//! command line, the memory map, and deliberately broken kernels caught as failures.

use std::time::Duration;

use vmchannel_tests::hosts::{require_qemu, require_qemu_kvm};
use vmchannel_tests::kernel_image;
use vmchannel_tests::outcome::{Outcome, SELFTEST_FAILED};
use vmchannel_tests::qemu::{Accel, Machine, QemuBoot};

fn boot(machine: Machine, accel: Accel, cmdline: &str) -> Outcome {
    QemuBoot::new(kernel_image(), machine, accel, cmdline)
        .run()
        .expect("QEMU runs")
}

fn selftest(machine: Machine, accel: Accel) {
    let outcome = boot(machine, accel, "selftest");
    match outcome.expect_selftest_passed() {
        Ok(passed) => eprintln!(
            "{}: {passed} self tests passed, ready in {:?} us",
            outcome.description,
            outcome.ready_us()
        ),
        Err(failure) => panic!("{failure}"),
    }
}

#[test]
fn selftest_pc_tcg() {
    if require_qemu("selftest_pc_tcg") {
        selftest(Machine::Pc, Accel::Tcg);
    }
}

#[test]
fn selftest_q35_tcg() {
    if require_qemu("selftest_q35_tcg") {
        selftest(Machine::Q35, Accel::Tcg);
    }
}

#[test]
fn selftest_microvm_tcg() {
    if require_qemu("selftest_microvm_tcg") {
        selftest(Machine::Microvm, Accel::Tcg);
    }
}

/// One KVM boot per machine: pc and q35 spend ~2.6 s in firmware here, microvm much less.
#[test]
fn selftest_every_machine_kvm() {
    if require_qemu_kvm("selftest_every_machine_kvm") {
        for machine in Machine::ALL {
            selftest(machine, Accel::Kvm);
        }
    }
}

#[test]
fn clean_power_off_exits_zero_through_acpi() {
    if !require_qemu("clean_power_off_exits_zero_through_acpi") {
        return;
    }
    for machine in Machine::ALL {
        let o = boot(machine, Accel::Tcg, "");
        if let Err(f) = o.expect_powered_off() {
            panic!("{f}");
        }
        assert!(
            o.serial.contains("powering off"),
            "{}",
            o.failure("no power-off message")
        );
        assert!(o.ready_us().is_some(), "{}", o.failure("no ready line"));
    }
}

#[test]
fn loglevel_and_selftest_filter_come_from_the_command_line() {
    if !require_qemu("loglevel_and_selftest_filter_come_from_the_command_line") {
        return;
    }
    let quiet = boot(Machine::Pc, Accel::Tcg, "selftest=heap,clock loglevel=off");
    assert_eq!(
        quiet
            .expect_selftest_passed()
            .map_err(|f| f.to_string())
            .unwrap(),
        2
    );
    assert!(
        !quiet.serial.contains("ready in"),
        "{}",
        quiet.failure("log lines printed at loglevel=off")
    );
    let verbose = boot(Machine::Pc, Accel::Tcg, "selftest=boot_info loglevel=debug");
    assert_eq!(
        verbose
            .expect_selftest_passed()
            .map_err(|f| f.to_string())
            .unwrap(),
        1
    );
    assert!(
        verbose.serial.contains("DEBUG"),
        "{}",
        verbose.failure("no debug lines at loglevel=debug")
    );
    assert!(
        verbose.serial.contains("TSC "),
        "{}",
        verbose.failure("no TSC calibration line")
    );
}

#[test]
fn heap_is_sized_from_the_memory_map() {
    if !require_qemu("heap_is_sized_from_the_memory_map") {
        return;
    }
    let heap_mib = |mem: u32| {
        let o = QemuBoot::new(kernel_image(), Machine::Pc, Accel::Tcg, "selftest=heap")
            .memory_mib(mem)
            .run()
            .expect("QEMU runs");
        o.expect_selftest_passed()
            .map_err(|f| f.to_string())
            .unwrap();
        let at = o.serial.find("heap ").expect("heap in ready line") + 5;
        o.serial[at..]
            .split_once(" MiB")
            .unwrap()
            .0
            .parse::<u64>()
            .unwrap()
    };
    let (small, large) = (heap_mib(64), heap_mib(512));
    assert!(
        (60..64).contains(&small),
        "64 MiB guest got a {small} MiB heap"
    );
    assert!(
        (500..512).contains(&large),
        "512 MiB guest got a {large} MiB heap"
    );
}

/// A broken kernel must never pass: each crash mode is caught, and the failure shows the log.
fn assert_caught(cmdline: &str, timeout: Duration, evidence: &str) {
    let o = QemuBoot::new(kernel_image(), Machine::Pc, Accel::Tcg, cmdline)
        .timeout(timeout)
        .run()
        .expect("QEMU runs");
    let failure = o
        .expect_selftest_passed()
        .expect_err("a crashing kernel must not pass");
    let text = failure.to_string();
    assert!(
        text.contains("--- serial log ---") && text.contains(evidence),
        "{cmdline}: {text}"
    );
    eprintln!("caught as expected: {}", failure.reason);
}

#[test]
fn broken_kernel_panic_is_caught() {
    if require_qemu("broken_kernel_panic_is_caught") {
        assert_caught("crash=panic", Duration::from_secs(30), "KERNEL PANIC");
    }
}

#[test]
fn broken_kernel_fault_is_caught_with_registers() {
    if require_qemu("broken_kernel_fault_is_caught_with_registers") {
        assert_caught(
            "crash=pagefault",
            Duration::from_secs(30),
            "EXCEPTION: #PF page fault (vector 14)",
        );
        assert_caught(
            "crash=pagefault",
            Duration::from_secs(30),
            "CR2 0x0000000100000000",
        );
    }
}

#[test]
fn broken_kernel_triple_fault_is_caught() {
    if require_qemu("broken_kernel_triple_fault_is_caught") {
        // With -no-reboot QEMU exits 0 on a triple fault: only the missing summary tells.
        assert_caught(
            "crash=triple",
            Duration::from_secs(30),
            "crash=triple requested",
        );
    }
}

#[test]
fn broken_kernel_hang_is_caught_by_the_timeout() {
    if require_qemu("broken_kernel_hang_is_caught_by_the_timeout") {
        assert_caught("crash=hang", Duration::from_secs(5), "timed out");
    }
}

#[test]
fn unknown_crash_mode_fails_through_debug_exit() {
    if require_qemu("unknown_crash_mode_fails_through_debug_exit") {
        let o = boot(Machine::Pc, Accel::Tcg, "crash=bogus");
        assert_eq!(
            o.status,
            Some(SELFTEST_FAILED),
            "{}",
            o.failure("expected the failure exit code")
        );
    }
}
