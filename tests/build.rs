//! Builds the guest kernel (see `guest-build`) and tells the tests where it is.

fn main() {
    let kernel = guest_build::build_kernel();
    println!("cargo::rustc-env=VMCHANNEL_KERNEL={}", kernel.display());
}
