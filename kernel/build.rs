//! Links the guest binary with `linker.ld` when building for the bare-metal target, and
//! exposes `cfg(bare)` so the library compiles for the host (tests) and for the guest.
use std::env;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(bare)");
    println!("cargo::rerun-if-changed=linker.ld");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        let dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        println!("cargo::rustc-cfg=bare");
        println!("cargo::rustc-link-arg-bins=-T{dir}/linker.ld");
        println!("cargo::rustc-link-arg-bins=--no-dynamic-linker");
    }
}
