//! Boots the kernel under QEMU and prints its serial log.
//!
//! `cargo run -p vmchannel-tests --bin qemu-boot -- [--machine pc|q35|microvm] [--kvm] [CMDLINE...]`
//!
//! Exits 0 when the guest powered off cleanly or passed its self tests, 1 otherwise.

use std::process::ExitCode;

use vmchannel_tests::kernel_image;
use vmchannel_tests::outcome::SELFTEST_PASSED;
use vmchannel_tests::qemu::{Accel, Machine, QemuBoot};

fn main() -> ExitCode {
    let mut machine = Machine::Pc;
    let mut accel = Accel::Tcg;
    let mut words = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--kvm" => accel = Accel::Kvm,
            "--machine" => {
                machine = match args.next().as_deref() {
                    Some("pc") => Machine::Pc,
                    Some("q35") => Machine::Q35,
                    Some("microvm") => Machine::Microvm,
                    other => {
                        eprintln!("qemu-boot: --machine takes pc, q35 or microvm, not {other:?}");
                        return ExitCode::from(2);
                    }
                }
            }
            "-h" | "--help" => {
                println!("usage: qemu-boot [--machine pc|q35|microvm] [--kvm] [CMDLINE...]");
                return ExitCode::SUCCESS;
            }
            _ => words.push(arg),
        }
    }
    let boot = QemuBoot::new(kernel_image(), machine, accel, &words.join(" "));
    eprintln!("qemu-boot: {boot} ({})", kernel_image().display());
    let outcome = match boot.run() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("qemu-boot: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", outcome.serial);
    eprint!("{}", outcome.vmm_stderr);
    eprintln!(
        "qemu-boot: exit status {:?} after {:.1?}",
        outcome.status, outcome.elapsed
    );
    match outcome.status {
        Some(0) | Some(SELFTEST_PASSED) => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}
