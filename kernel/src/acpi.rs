//! Just enough ACPI to power the machine off and reset it: RSDP -> RSDT/XSDT -> FADT -> DSDT
//! `\_S5` for the power-off, the FADT's reset register for the reset.
//!
//! QEMU's pc and q35 machines use the fixed-hardware PM1 control register; microvm is
//! hardware-reduced and uses the FADT's sleep control register. Both need `SLP_TYP` for S5,
//! which only the DSDT's `\_S5` package holds. A full AML interpreter (the `aml` crate) is far
//! more than this needs, so the package is located by its name and decoded by hand, as small
//! kernels commonly do. Every table is length-checked and checksummed before use.

use alloc::vec;
use alloc::vec::Vec;

/// Largest table accepted (QEMU's DSDT is a few KiB).
pub const MAX_TABLE: usize = 1 << 20;
const SDT_HEADER: usize = 36;

/// Why the power-off method could not be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AcpiError {
    /// No valid RSDP at the loader's address or in the BIOS areas.
    #[error("no ACPI RSDP found")]
    NoRsdp,
    /// Physical memory at this address could not be read.
    #[error("cannot read physical memory at {0:#x}")]
    Unreadable(u64),
    /// A table failed its checksum.
    #[error("ACPI table {0} has a bad checksum")]
    BadChecksum(&'static str),
    /// A table's length is impossible or larger than [`MAX_TABLE`].
    #[error("ACPI table {0} has a bad length")]
    BadLength(&'static str),
    /// The RSDT/XSDT lists no FADT.
    #[error("no FADT in the ACPI tables")]
    NoFadt,
    /// The DSDT has no decodable `\_S5` package.
    #[error("no \\_S5 sleep type in the DSDT")]
    NoS5,
    /// The FADT names no usable sleep register.
    #[error("the FADT has no usable sleep control register")]
    NoSleepRegister,
    /// The FADT has no reset register (ACPI 1.0 table, RESET_REG_SUP clear, or a register
    /// outside memory and I/O space).
    #[error("the FADT has no usable reset register")]
    NoResetRegister,
}

/// Reads guest-physical memory.
pub trait PhysMemory {
    /// Fills `buf` from physical address `paddr`; `false` if the range is not readable.
    fn read(&self, paddr: u64, buf: &mut [u8]) -> bool;
}

/// The address space of a register (ACPI Generic Address Structure space ids 0 and 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressSpace {
    /// System memory (MMIO).
    Memory,
    /// System I/O ports.
    Io,
}

/// One register write that, performed in order with any others, powers the machine off or
/// resets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisterWrite {
    /// Memory or port I/O.
    pub space: AddressSpace,
    /// Address or port number.
    pub address: u64,
    /// Access width: 8, 16 or 32 bits.
    pub width: u8,
    /// The value to write.
    pub value: u32,
}

/// How to enter S5 (soft off) on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PowerOff {
    /// The writes, in order.
    pub writes: Vec<RegisterWrite>,
}

fn sum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

/// Validates an RSDP candidate at `paddr`; returns its (revision, RSDT, XSDT).
fn read_rsdp(mem: &dyn PhysMemory, paddr: u64) -> Option<(u8, u32, u64)> {
    let mut b = [0u8; 36];
    if !mem.read(paddr, &mut b[..20]) || &b[..8] != b"RSD PTR " || sum(&b[..20]) != 0 {
        return None;
    }
    let revision = b[15];
    let rsdt = u32_at(&b, 16)?;
    if revision >= 2 && mem.read(paddr, &mut b) && sum(&b) == 0 {
        return Some((revision, rsdt, u64_at(&b, 24)?));
    }
    Some((revision, rsdt, 0))
}

/// Finds the RSDP: the loader's `hint` first, then the EBDA's first KiB and 0xE0000..0x100000.
pub fn find_rsdp(mem: &dyn PhysMemory, hint: Option<u64>) -> Result<u64, AcpiError> {
    if let Some(p) = hint.filter(|&p| read_rsdp(mem, p).is_some()) {
        return Ok(p);
    }
    let mut ebda = [0u8; 2];
    let ebda = if mem.read(0x40e, &mut ebda) {
        u64::from(u16::from_le_bytes(ebda)) << 4
    } else {
        0
    };
    let areas = [(ebda, ebda + 1024), (0xe_0000, 0x10_0000)];
    for (start, end) in areas.into_iter().filter(|(s, _)| *s != 0) {
        if let Some(p) = (start..end)
            .step_by(16)
            .find(|&p| read_rsdp(mem, p).is_some())
        {
            return Ok(p);
        }
    }
    Err(AcpiError::NoRsdp)
}

/// Reads a whole system description table, checking length and checksum.
fn read_table(mem: &dyn PhysMemory, paddr: u64, name: &'static str) -> Result<Vec<u8>, AcpiError> {
    let mut header = [0u8; SDT_HEADER];
    if !mem.read(paddr, &mut header) {
        return Err(AcpiError::Unreadable(paddr));
    }
    let len = u32_at(&header, 4).unwrap_or(0) as usize;
    if !(SDT_HEADER..=MAX_TABLE).contains(&len) {
        return Err(AcpiError::BadLength(name));
    }
    let mut table = vec![0u8; len];
    if !mem.read(paddr, &mut table) {
        return Err(AcpiError::Unreadable(paddr));
    }
    if sum(&table) != 0 {
        return Err(AcpiError::BadChecksum(name));
    }
    Ok(table)
}

/// Finds the FADT through the XSDT (preferred) or RSDT.
fn find_fadt(mem: &dyn PhysMemory, rsdp: u64) -> Result<Vec<u8>, AcpiError> {
    find_table(mem, rsdp, b"FACP", "FADT")?.ok_or(AcpiError::NoFadt)
}

/// Finds the table with `signature` through the XSDT (preferred) or RSDT; `None` when the
/// root lists none.
fn find_table(
    mem: &dyn PhysMemory,
    rsdp: u64,
    signature: &[u8; 4],
    name: &'static str,
) -> Result<Option<Vec<u8>>, AcpiError> {
    let (_, rsdt, xsdt) = read_rsdp(mem, rsdp).ok_or(AcpiError::NoRsdp)?;
    let (root, entry_size, root_name) = if xsdt != 0 {
        (xsdt, 8, "XSDT")
    } else {
        (u64::from(rsdt), 4, "RSDT")
    };
    let table = read_table(mem, root, root_name)?;
    for entry in table[SDT_HEADER..].chunks_exact(entry_size) {
        let addr = if entry_size == 8 {
            u64_at(entry, 0)
        } else {
            u32_at(entry, 0).map(u64::from)
        };
        let Some(addr) = addr.filter(|&a| a != 0) else {
            continue;
        };
        let mut sig = [0u8; 4];
        if mem.read(addr, &mut sig) && &sig == signature {
            return read_table(mem, addr, name).map(Some);
        }
    }
    Ok(None)
}

/// A PCI Express enhanced configuration (ECAM) window, from the MCFG table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ecam {
    /// Physical address of bus `start_bus`'s configuration space.
    pub base: u64,
    /// First bus the window covers.
    pub start_bus: u8,
    /// Last bus the window covers.
    pub end_bus: u8,
}

impl Ecam {
    /// Bytes the window spans (1 MiB per bus).
    pub fn size(&self) -> u64 {
        (u64::from(self.end_bus) - u64::from(self.start_bus) + 1) << 20
    }
}

/// The ECAM window of PCI segment 0 that the MCFG table announces, if there is an MCFG with
/// one (the RSDP at `rsdp`: callers pass the loader's, as finding it by scanning the BIOS
/// area costs milliseconds under nested KVM).
pub fn ecam(mem: &dyn PhysMemory, rsdp: u64) -> Result<Option<Ecam>, AcpiError> {
    let Some(mcfg) = find_table(mem, rsdp, b"MCFG", "MCFG")? else {
        return Ok(None);
    };
    // The header, 8 reserved bytes, then 16-byte allocations: base, segment, start and end
    // bus, 4 reserved.
    let found = mcfg
        .get(SDT_HEADER + 8..)
        .unwrap_or(&[])
        .chunks_exact(16)
        .find_map(|a| {
            let base = u64_at(a, 0)?;
            let segment = u16::from_le_bytes([a[8], a[9]]);
            let (start_bus, end_bus) = (a[10], a[11]);
            (segment == 0 && base != 0 && start_bus <= end_bus).then_some(Ecam {
                base,
                start_bus,
                end_bus,
            })
        });
    Ok(found)
}

/// Decodes one AML integer constant at the start of `b`: (value, bytes used).
fn aml_integer(b: &[u8]) -> Option<(u8, usize)> {
    match *b.first()? {
        0x00 => Some((0, 1)),          // ZeroOp
        0x01 => Some((1, 1)),          // OneOp
        0x0a => Some((*b.get(1)?, 2)), // BytePrefix
        0x0b => Some((*b.get(1)?, 3)), // WordPrefix (low byte; SLP_TYP is 3 bits)
        0x0c => Some((*b.get(1)?, 5)), // DWordPrefix
        _ => None,
    }
}

/// Finds `Name(_S5, Package(){ SLP_TYPa, SLP_TYPb, ... })` in AML and returns the two values.
pub fn s5_sleep_types(aml: &[u8]) -> Option<(u8, u8)> {
    let mut from = 0;
    while let Some(pos) = aml[from..]
        .windows(4)
        .position(|w| w == b"_S5_")
        .map(|p| p + from)
    {
        from = pos + 4;
        // NameOp (0x08) precedes the name, possibly with a root prefix '\'.
        let named = pos >= 1
            && (aml[pos - 1] == 0x08
                || (pos >= 2 && aml[pos - 1] == b'\\' && aml[pos - 2] == 0x08));
        if !named || aml.get(pos + 4) != Some(&0x12) {
            continue;
        }
        // PackageOp, PkgLength (1 + bits 7..6 bytes), NumElements, elements.
        let Some(&lead) = aml.get(pos + 5) else {
            continue;
        };
        let mut at = pos + 5 + 1 + usize::from(lead >> 6) + 1;
        let Some((a, used)) = aml.get(at..).and_then(aml_integer) else {
            continue;
        };
        at += used;
        let b = aml.get(at..).and_then(aml_integer).map_or(a, |(v, _)| v);
        return Some((a, b));
    }
    None
}

/// Generic Address Structure at `off` in the FADT: (space, address, width) if usable.
fn gas(fadt: &[u8], off: usize) -> Option<(AddressSpace, u64, u8)> {
    let g = fadt.get(off..off + 12)?;
    let space = match g[0] {
        0 => AddressSpace::Memory,
        1 => AddressSpace::Io,
        _ => return None,
    };
    let addr = u64_at(g, 4)?;
    (addr != 0).then_some((space, addr, g[1]))
}

/// FADT flag RESET_REG_SUP: the reset register is supported.
const FADT_RESET_REG_SUP: u32 = 1 << 10;
/// Offsets of the FADT's flags, RESET_REG (a Generic Address Structure) and RESET_VALUE.
const FADT_FLAGS: usize = 112;
const FADT_RESET_REG: usize = 116;
const FADT_RESET_VALUE: usize = 128;

/// Works out how to reset the machine from the tables reachable from `rsdp`: the FADT's
/// RESET_VALUE written to its RESET_REG (QEMU's pc and q35: port 0xCF9, value 6; microvm: a
/// GED register in memory; the bundled VMM: a port of its own).
pub fn reset_method(mem: &dyn PhysMemory, rsdp: u64) -> Result<RegisterWrite, AcpiError> {
    let fadt = find_fadt(mem, rsdp)?;
    let flags = u32_at(&fadt, FADT_FLAGS).unwrap_or(0);
    if flags & FADT_RESET_REG_SUP == 0 {
        return Err(AcpiError::NoResetRegister);
    }
    let (space, address, _) = gas(&fadt, FADT_RESET_REG).ok_or(AcpiError::NoResetRegister)?;
    let value = *fadt
        .get(FADT_RESET_VALUE)
        .ok_or(AcpiError::NoResetRegister)?;
    // The specification fixes the reset register's width at 8 bits.
    Ok(RegisterWrite {
        space,
        address,
        width: 8,
        value: u32::from(value),
    })
}

/// Works out how to enter S5 from the tables reachable from `rsdp`.
pub fn power_off_method(mem: &dyn PhysMemory, rsdp: u64) -> Result<PowerOff, AcpiError> {
    let fadt = find_fadt(mem, rsdp)?;
    let x_dsdt = if fadt.len() >= 148 {
        u64_at(&fadt, 140).unwrap_or(0)
    } else {
        0
    };
    let dsdt = if x_dsdt != 0 {
        x_dsdt
    } else {
        u64::from(u32_at(&fadt, 40).unwrap_or(0))
    };
    let dsdt = read_table(mem, dsdt, "DSDT")?;
    let (typ_a, typ_b) = s5_sleep_types(&dsdt[SDT_HEADER..]).ok_or(AcpiError::NoS5)?;

    let hw_reduced = u32_at(&fadt, FADT_FLAGS).is_some_and(|flags| flags & (1 << 20) != 0);
    let mut writes = Vec::new();
    if hw_reduced {
        let (space, address, _) = gas(&fadt, 244).ok_or(AcpiError::NoSleepRegister)?;
        let value = (u32::from(typ_a & 7) << 2) | (1 << 5);
        writes.push(RegisterWrite {
            space,
            address,
            width: 8,
            value,
        });
    } else {
        let width = match fadt.get(89) {
            Some(&4) => 32,
            _ => 16,
        };
        let pm1 = |x_off: usize, off: usize| {
            gas(&fadt, x_off).map(|(s, a, _)| (s, a)).or_else(|| {
                u32_at(&fadt, off)
                    .filter(|&p| p != 0)
                    .map(|p| (AddressSpace::Io, u64::from(p)))
            })
        };
        let (space, address) = pm1(172, 64).ok_or(AcpiError::NoSleepRegister)?;
        let slp = |t: u8| (u32::from(t & 7) << 10) | (1 << 13);
        writes.push(RegisterWrite {
            space,
            address,
            width,
            value: slp(typ_a),
        });
        if fadt.len() >= 196
            && let Some((space, address)) = pm1(184, 68)
        {
            writes.push(RegisterWrite {
                space,
                address,
                width,
                value: slp(typ_b),
            });
        }
    }
    Ok(PowerOff { writes })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Mem(Vec<u8>);
    impl PhysMemory for Mem {
        fn read(&self, paddr: u64, buf: &mut [u8]) -> bool {
            let Some(src) = (paddr as usize)
                .checked_add(buf.len())
                .and_then(|e| self.0.get(paddr as usize..e))
            else {
                return false;
            };
            buf.copy_from_slice(src);
            true
        }
    }

    fn table(sig: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut t = vec![0u8; SDT_HEADER];
        t[..4].copy_from_slice(sig);
        t.extend_from_slice(body);
        let len = t.len() as u32;
        t[4..8].copy_from_slice(&len.to_le_bytes());
        t[9] = 0u8.wrapping_sub(sum(&t));
        t
    }

    /// Machine memory with an RSDP at 0xf5a20, RSDT or XSDT at 0x1000, FADT at 0x2000,
    /// DSDT at 0x3000, shaped like QEMU's pc machine or microvm.
    fn machine(xsdt: bool, hw_reduced: bool, s5: &[u8]) -> Mem {
        machine_with(xsdt, hw_reduced, s5, |_| {})
    }

    /// As [`machine`], with `edit` applied to the FADT's body (offsets from the table's start)
    /// before its checksum is set.
    fn machine_with(xsdt: bool, hw_reduced: bool, s5: &[u8], edit: impl FnOnce(&mut [u8])) -> Mem {
        let mut m = vec![0u8; 0x10_0000];
        let mut rsdp = vec![0u8; 36];
        rsdp[..8].copy_from_slice(b"RSD PTR ");
        rsdp[15] = if xsdt { 2 } else { 0 };
        rsdp[16..20].copy_from_slice(&0x1000u32.to_le_bytes());
        rsdp[20..24].copy_from_slice(&36u32.to_le_bytes());
        if xsdt {
            rsdp[24..32].copy_from_slice(&0x1000u64.to_le_bytes());
        }
        rsdp[8] = 0u8.wrapping_sub(sum(&rsdp[..20]));
        rsdp[32] = 0u8.wrapping_sub(sum(&rsdp));
        m[0xf_5a20..0xf_5a20 + 36].copy_from_slice(&rsdp);
        let root = if xsdt {
            table(
                b"XSDT",
                &[0x2000u64.to_le_bytes(), 0x9000u64.to_le_bytes()].concat(),
            )
        } else {
            table(
                b"RSDT",
                &[0x9000u32.to_le_bytes(), 0x2000u32.to_le_bytes()].concat(),
            )
        };
        m[0x1000..0x1000 + root.len()].copy_from_slice(&root);
        m[0x9000..0x9004].copy_from_slice(b"APIC");
        let mut body = vec![0u8; 276 - SDT_HEADER];
        let at = |o: usize| o - SDT_HEADER;
        body[at(40)..at(44)].copy_from_slice(&0x3000u32.to_le_bytes());
        body[at(89)] = 2;
        if hw_reduced {
            body[at(112)..at(116)].copy_from_slice(&(1u32 << 20).to_le_bytes());
            body[at(244)] = 0; // memory
            body[at(245)] = 8;
            body[at(248)..at(256)].copy_from_slice(&0xfea0_0004u64.to_le_bytes());
        } else {
            body[at(64)..at(68)].copy_from_slice(&0x604u32.to_le_bytes());
        }
        let mut whole = vec![0u8; SDT_HEADER];
        whole.extend_from_slice(&body);
        edit(&mut whole);
        let fadt = table(b"FACP", &whole[SDT_HEADER..]);
        m[0x2000..0x2000 + fadt.len()].copy_from_slice(&fadt);
        let mut aml = vec![0x10, 0x05, b'\\', b'_', b'S', b'B', b'_'];
        aml.extend_from_slice(s5);
        let dsdt = table(b"DSDT", &aml);
        m[0x3000..0x3000 + dsdt.len()].copy_from_slice(&dsdt);
        Mem(m)
    }

    const S5_ZERO: &[u8] = &[
        0x08, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00,
    ];
    const S5_FIVE: &[u8] = &[
        0x08, b'\\', b'_', b'S', b'5', b'_', 0x12, 0x07, 0x02, 0x0a, 0x05, 0x0a, 0x05,
    ];

    #[test]
    fn pc_style_pm1_control() {
        let mem = machine(false, false, S5_ZERO);
        let rsdp = find_rsdp(&mem, None).unwrap();
        assert_eq!(rsdp, 0xf_5a20);
        let p = power_off_method(&mem, rsdp).unwrap();
        assert_eq!(
            p.writes,
            vec![RegisterWrite {
                space: AddressSpace::Io,
                address: 0x604,
                width: 16,
                value: 0x2000
            }]
        );
    }

    #[test]
    fn microvm_style_sleep_control_through_xsdt() {
        let mem = machine(true, true, S5_FIVE);
        let p = power_off_method(&mem, find_rsdp(&mem, Some(0xf_5a20)).unwrap()).unwrap();
        assert_eq!(
            p.writes,
            vec![RegisterWrite {
                space: AddressSpace::Memory,
                address: 0xfea0_0004,
                width: 8,
                value: (5 << 2) | (1 << 5)
            }]
        );
    }

    #[test]
    fn bad_hint_falls_back_to_scanning() {
        let mem = machine(false, false, S5_ZERO);
        assert_eq!(find_rsdp(&mem, Some(0x500)), Ok(0xf_5a20));
        assert_eq!(
            find_rsdp(&Mem(vec![0; 0x10_0000]), None),
            Err(AcpiError::NoRsdp)
        );
    }

    #[test]
    fn corrupt_tables_are_refused() {
        let mut mem = machine(false, false, S5_ZERO);
        mem.0[0x2000 + 50] ^= 1;
        assert_eq!(
            power_off_method(&mem, 0xf_5a20),
            Err(AcpiError::BadChecksum("FADT"))
        );
        let mut mem = machine(false, false, S5_ZERO);
        mem.0[0x3000 + 4..0x3000 + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            power_off_method(&mem, 0xf_5a20),
            Err(AcpiError::BadLength("DSDT"))
        );
        let mem = machine(false, false, &[0x08, b'_', b'S', b'4', b'_']);
        assert_eq!(power_off_method(&mem, 0xf_5a20), Err(AcpiError::NoS5));
    }

    /// Sets RESET_REG_SUP and a reset register in `space` at `address` with `value`.
    fn reset_reg(fadt: &mut [u8], space: u8, address: u64, value: u8) {
        let flags = u32::from_le_bytes(fadt[112..116].try_into().unwrap()) | (1 << 10);
        fadt[112..116].copy_from_slice(&flags.to_le_bytes());
        fadt[116] = space;
        fadt[117] = 8;
        fadt[120..128].copy_from_slice(&address.to_le_bytes());
        fadt[128] = value;
    }

    #[test]
    fn reset_register_in_io_and_memory_space() {
        // q35: port 0xCF9, value 6.
        let mem = machine_with(false, false, S5_ZERO, |f| reset_reg(f, 1, 0xcf9, 6));
        assert_eq!(
            reset_method(&mem, 0xf_5a20),
            Ok(RegisterWrite {
                space: AddressSpace::Io,
                address: 0xcf9,
                width: 8,
                value: 6
            })
        );
        // microvm: a GED register in memory, on a hardware-reduced machine.
        let mem = machine_with(true, true, S5_FIVE, |f| reset_reg(f, 0, 0xfea0_0002, 0x42));
        assert_eq!(
            reset_method(&mem, 0xf_5a20),
            Ok(RegisterWrite {
                space: AddressSpace::Memory,
                address: 0xfea0_0002,
                width: 8,
                value: 0x42
            })
        );
    }

    #[test]
    fn no_usable_reset_register() {
        // The flag is clear: the register is not to be used even if filled in.
        let mem = machine_with(false, false, S5_ZERO, |f| {
            reset_reg(f, 1, 0xcf9, 6);
            f[113] &= !(1 << 2);
        });
        assert_eq!(
            reset_method(&mem, 0xf_5a20),
            Err(AcpiError::NoResetRegister)
        );
        // PCI configuration space (id 2) is not supported; address 0 is no register.
        let mem = machine_with(false, false, S5_ZERO, |f| reset_reg(f, 2, 0xcf9, 6));
        assert_eq!(
            reset_method(&mem, 0xf_5a20),
            Err(AcpiError::NoResetRegister)
        );
        let mem = machine_with(false, false, S5_ZERO, |f| reset_reg(f, 1, 0, 6));
        assert_eq!(
            reset_method(&mem, 0xf_5a20),
            Err(AcpiError::NoResetRegister)
        );
        // A corrupt FADT is refused before its registers are looked at.
        let mut mem = machine_with(false, false, S5_ZERO, |f| reset_reg(f, 1, 0xcf9, 6));
        mem.0[0x2000 + 120] ^= 0x10;
        assert_eq!(
            reset_method(&mem, 0xf_5a20),
            Err(AcpiError::BadChecksum("FADT"))
        );
    }

    #[test]
    fn s5_decoding_edge_cases() {
        assert_eq!(s5_sleep_types(S5_ZERO), Some((0, 0)));
        assert_eq!(s5_sleep_types(&S5_FIVE[..11]), Some((5, 5)));
        // Truncated after the name, or not a package: no answer, no panic.
        assert_eq!(s5_sleep_types(&S5_FIVE[..8]), None);
        assert_eq!(s5_sleep_types(b"\x08_S5_\x0a\x05"), None);
        assert_eq!(s5_sleep_types(b"_S5_"), None);
        // A reference to _S5_ (not a definition) before the real one is skipped.
        let mut aml = b"\x70_S5_".to_vec();
        aml.extend_from_slice(S5_FIVE);
        assert_eq!(s5_sleep_types(&aml), Some((5, 5)));
    }

    #[test]
    fn ecam_from_the_mcfg_when_there_is_one() {
        let mut m = machine(true, false, S5_ZERO);
        assert_eq!(ecam(&m, 0xf_5a20).unwrap(), None, "no MCFG: no ECAM");
        // As QEMU's q35: one allocation, segment 0, buses 0-255 at 0xb000_0000.
        let mut body = vec![0u8; 8];
        body.extend_from_slice(&0xb000_0000u64.to_le_bytes());
        body.extend_from_slice(&[0, 0, 0, 0xff, 0, 0, 0, 0]);
        let mcfg = table(b"MCFG", &body);
        m.0[0x9000..0x9000 + mcfg.len()].copy_from_slice(&mcfg);
        let found = ecam(&m, 0xf_5a20).unwrap().unwrap();
        assert_eq!(
            found,
            Ecam {
                base: 0xb000_0000,
                start_bus: 0,
                end_bus: 0xff
            }
        );
        assert_eq!(found.size(), 256 << 20);
        // A broken checksum is an error, not a window.
        m.0[0x9000 + SDT_HEADER + 8] ^= 1;
        assert!(ecam(&m, 0xf_5a20).is_err());
    }
}
