//! The vmchannel kernel binary: boots through PVH (see `bootloader`) into [`kernel::arch`].
//!
//! Built for `x86_64-unknown-none`; on the host the binary only explains that.
#![cfg_attr(bare, no_std)]
#![cfg_attr(bare, no_main)]

#[cfg(bare)]
mod guest {
    use core::panic::PanicInfo;

    bootloader::entry_point!(kernel_main);

    fn kernel_main(start_info_paddr: u32) -> ! {
        kernel::arch::boot::boot(start_info_paddr)
    }

    #[panic_handler]
    fn panic(info: &PanicInfo<'_>) -> ! {
        kernel::arch::serial::emergency_write(format_args!("\nKERNEL PANIC: {info}\n"));
        kernel::arch::virtio::emergency_write(format_args!("\nKERNEL PANIC: {info}\n"));
        kernel::arch::power::exit(false)
    }
}

#[cfg(not(bare))]
fn main() {
    eprintln!(
        "the vmchannel kernel runs as a guest: build it with \
         `cargo build --release -p kernel --target x86_64-unknown-none` and boot it with a PVH loader"
    );
    std::process::exit(2);
}
