//! The OS architecture, from the ELF header of a well-known binary.

use vmchannel_proto::FileKind;

use crate::fs::FileSystem;

/// The binaries libguestfs looks at, in order.
const BINARIES: &[&str] = &["/bin/bash", "/bin/ls", "/bin/echo", "/bin/rm", "/bin/sh"];

/// The architecture of the first of [`BINARIES`] that is a regular file (links followed) with
/// an ELF header this knows; `None` when there is none. Reads 64 bytes of each candidate.
pub(crate) fn detect(fs: &dyn FileSystem) -> Option<&'static str> {
    BINARIES.iter().find_map(|path| {
        match fs.stat(path) {
            Ok(st) if st.kind == FileKind::File => {}
            _ => return None,
        }
        let mut header = [0u8; 64];
        let n = match fs.read_at(path, 0, &mut header) {
            Ok(n) => n.min(header.len()),
            Err(e) => {
                log::debug!("inspect: {path}: {e}");
                return None;
            }
        };
        elf_arch(header.get(..n)?)
    })
}

/// The architecture named by an ELF header, as libguestfs names it (`file_architecture`):
/// `x86_64`, `i386`, `aarch64`, `arm`, `riscv64`, `ppc64le`, `s390x` ...
pub(crate) fn elf_arch(h: &[u8]) -> Option<&'static str> {
    if h.get(..4)? != b"\x7fELF" {
        return None;
    }
    let class64 = match *h.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let little = match *h.get(5)? {
        1 => true,
        2 => false,
        _ => return None,
    };
    let m = [*h.get(18)?, *h.get(19)?];
    let machine = if little {
        u16::from_le_bytes(m)
    } else {
        u16::from_be_bytes(m)
    };
    Some(match machine {
        2 | 18 => "sparc",
        3 | 6 => "i386",
        20 => "ppc",
        21 if little => "ppc64le",
        21 => "ppc64",
        22 if class64 => "s390x",
        22 => "s390",
        40 => "arm",
        43 => "sparc64",
        50 => "ia64",
        62 => "x86_64",
        183 => "aarch64",
        243 if class64 => "riscv64",
        243 => "riscv32",
        258 if class64 => "loongarch64",
        258 => "loongarch32",
        _ => return None,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::inspect::testfs::TestFs;

    /// A 64-byte ELF header for `machine`.
    pub(crate) fn elf(class: u8, data: u8, machine: u16) -> alloc::vec::Vec<u8> {
        let mut h = alloc::vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = class;
        h[5] = data;
        h[6] = 1;
        let m = if data == 1 {
            machine.to_le_bytes()
        } else {
            machine.to_be_bytes()
        };
        h[18..20].copy_from_slice(&m);
        h
    }

    #[test]
    fn machines() {
        assert_eq!(elf_arch(&elf(2, 1, 0x3e)), Some("x86_64"));
        assert_eq!(elf_arch(&elf(1, 1, 3)), Some("i386"));
        assert_eq!(elf_arch(&elf(2, 1, 0xb7)), Some("aarch64"));
        assert_eq!(elf_arch(&elf(1, 1, 0x28)), Some("arm"));
        assert_eq!(elf_arch(&elf(2, 1, 0xf3)), Some("riscv64"));
        assert_eq!(elf_arch(&elf(2, 1, 0x15)), Some("ppc64le"));
        assert_eq!(elf_arch(&elf(2, 2, 0x15)), Some("ppc64"));
        assert_eq!(elf_arch(&elf(2, 2, 0x16)), Some("s390x"));
        assert_eq!(elf_arch(&elf(2, 1, 0x9999)), None);
        assert_eq!(elf_arch(&elf(3, 1, 0x3e)), None);
        assert_eq!(elf_arch(&elf(2, 0, 0x3e)), None);
        assert_eq!(elf_arch(b""), None);
        assert_eq!(elf_arch(b"\x7fELF\x02\x01"), None);
        assert_eq!(elf_arch(&elf(2, 1, 0x3e)[..19]), None);
        assert_eq!(elf_arch(&elf(2, 1, 0x3e)[..20]), Some("x86_64"));
        assert_eq!(elf_arch(b"#!/bin/sh\n"), None);
    }

    #[test]
    fn first_usable_binary() {
        let fs = TestFs::new()
            .file("/bin/bash", b"#!/not/elf")
            .broken("/bin/ls", 64)
            .fifo("/bin/echo")
            .link("/bin/rm", "nowhere")
            .link("/bin/sh", "busybox")
            .file("/bin/busybox", &elf(2, 1, 0xb7));
        assert_eq!(detect(&fs), Some("aarch64"));
        let looped = TestFs::new().link("/bin/sh", "/bin/sh");
        assert_eq!(detect(&looped), None);
        assert_eq!(detect(&TestFs::new()), None);
        let short = TestFs::new().file("/bin/ls", b"\x7fEL");
        assert_eq!(detect(&short), None);
    }
}
