//! Builds the guest kernel (see `guest-build`) so `vmch run` boots this tree's kernel by default.

fn main() {
    let kernel = guest_build::build_kernel();
    println!("cargo::rustc-env=VMCHANNEL_KERNEL={}", kernel.display());
}
