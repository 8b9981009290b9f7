//! The ACPI tables a hardware-reduced machine needs to be powered off and reset: RSDP, XSDT,
//! FADT (HW_REDUCED_ACPI, sleep control/status and reset registers in port space) and a DSDT
//! whose only content is `\_S5`; and an MCFG naming the PCI bus's ECAM window. Firecracker and Cloud Hypervisor give PVH guests the same.
//! No crate writes these few fixed tables (acpi_tables in Cloud Hypervisor is not published
//! with a stable API), so they are built here, byte by byte, with their checksums.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::layout::ports::{ACPI_RESET, ACPI_RESET_VALUE, ACPI_SLEEP_CONTROL, ACPI_SLEEP_STATUS};
use crate::layout::{ECAM_BASE, ECAM_SIZE};

/// The SLP_TYP value `\_S5` announces; a write of it with SLP_EN powers the VM off.
pub const S5_SLEEP_TYPE: u8 = 5;
/// SLP_EN in the hardware-reduced sleep control register.
pub const SLEEP_ENABLE: u8 = 1 << 5;

const OEM_ID: &[u8; 6] = b"VMCHAN";
const OEM_TABLE_ID: &[u8; 8] = b"VMCHVMM ";
const SDT_HEADER: usize = 36;
const XSDT_OFFSET: u64 = 0x40;
const FADT_OFFSET: u64 = 0x80;
const DSDT_OFFSET: u64 = 0x200;
const MCFG_OFFSET: u64 = 0x240;

/// Whether a write of `value` to the sleep control register asks for S5 (power off).
pub fn is_power_off(value: u8) -> bool {
    value & SLEEP_ENABLE != 0 && (value >> 2) & 7 == S5_SLEEP_TYPE
}

fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b)))
}

/// A system description table with its header filled in and checksummed.
fn table(signature: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(SDT_HEADER + body.len());
    t.extend_from_slice(signature);
    t.extend_from_slice(&((SDT_HEADER + body.len()) as u32).to_le_bytes());
    t.push(revision);
    t.push(0); // checksum, below
    t.extend_from_slice(OEM_ID);
    t.extend_from_slice(OEM_TABLE_ID);
    t.extend_from_slice(&1u32.to_le_bytes()); // OEM revision
    t.extend_from_slice(b"VMCH"); // creator id
    t.extend_from_slice(&1u32.to_le_bytes()); // creator revision
    t.extend_from_slice(body);
    t[9] = checksum(&t);
    t
}

/// A Generic Address Structure for an I/O port of `bits` width.
fn gas_io(port: u16, bits: u8) -> [u8; 12] {
    let mut g = [0u8; 12];
    g[0] = 1; // system I/O
    g[1] = bits;
    g[3] = 1; // byte access
    g[4..12].copy_from_slice(&u64::from(port).to_le_bytes());
    g
}

fn rsdp(xsdt: u64) -> Vec<u8> {
    let mut r = Vec::with_capacity(36);
    r.extend_from_slice(b"RSD PTR ");
    r.push(0); // checksum of the first 20 bytes
    r.extend_from_slice(OEM_ID);
    r.push(2); // revision: ACPI 2.0+, XSDT present
    r.extend_from_slice(&0u32.to_le_bytes()); // no RSDT
    r.extend_from_slice(&36u32.to_le_bytes());
    r.extend_from_slice(&xsdt.to_le_bytes());
    r.push(0); // extended checksum
    r.extend_from_slice(&[0; 3]);
    r[8] = checksum(&r[..20]);
    r[32] = checksum(&r);
    r
}

fn fadt(dsdt: u64) -> Vec<u8> {
    // ACPI 6.x FADT: 276 bytes in all; the body starts after the 36-byte header.
    let mut f = vec![0u8; 276 - SDT_HEADER];
    let at = |off: usize| off - SDT_HEADER;
    // DSDT (32-bit) at 40 and X_DSDT at 140.
    f[at(40)..at(44)].copy_from_slice(&(dsdt as u32).to_le_bytes());
    f[at(140)..at(148)].copy_from_slice(&dsdt.to_le_bytes());
    // Flags at 112: HW_REDUCED_ACPI (20), RESET_REG_SUP (10).
    let flags: u32 = (1 << 20) | (1 << 10);
    f[at(112)..at(116)].copy_from_slice(&flags.to_le_bytes());
    // RESET_REG at 116, RESET_VALUE at 128.
    f[at(116)..at(128)].copy_from_slice(&gas_io(ACPI_RESET, 8));
    f[at(128)] = ACPI_RESET_VALUE;
    // Minor version at 131; IA-PC boot architecture flags at 109 stay 0.
    f[at(131)] = 0;
    // SLEEP_CONTROL_REG at 244, SLEEP_STATUS_REG at 256.
    f[at(244)..at(256)].copy_from_slice(&gas_io(ACPI_SLEEP_CONTROL, 8));
    f[at(256)..at(268)].copy_from_slice(&gas_io(ACPI_SLEEP_STATUS, 8));
    // Hypervisor vendor identity at 268.
    f[at(268)..at(276)].copy_from_slice(b"VMCHVMM ");
    table(b"FACP", 6, &f)
}

fn dsdt() -> Vec<u8> {
    // Name (\_S5_, Package (0x02) { 5, 0 }): NameOp, NameString, PackageOp, PkgLength,
    // NumElements, BytePrefix 5, BytePrefix 0.
    let aml = [
        0x08,
        b'_',
        b'S',
        b'5',
        b'_',
        0x12,
        0x06,
        0x02,
        0x0a,
        S5_SLEEP_TYPE,
        0x0a,
        0x00,
    ];
    table(b"DSDT", 2, &aml)
}

/// The MCFG: one allocation, segment 0, the buses [`ECAM_SIZE`] covers, at [`ECAM_BASE`].
fn mcfg() -> Vec<u8> {
    let mut body = vec![0u8; 8]; // reserved
    body.extend_from_slice(&ECAM_BASE.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes()); // PCI segment group
    body.push(0); // start bus
    body.push(((ECAM_SIZE >> 20) - 1) as u8); // end bus
    body.extend_from_slice(&[0; 4]);
    table(b"MCFG", 1, &body)
}

/// Writes the tables at `base` and returns the RSDP's address.
pub fn write_tables(mem: &GuestMemoryMmap, base: u64) -> Result<u64, vm_memory::GuestMemoryError> {
    let xsdt_addr = base + XSDT_OFFSET;
    let fadt_addr = base + FADT_OFFSET;
    let dsdt_addr = base + DSDT_OFFSET;
    let mcfg_addr = base + MCFG_OFFSET;
    let mut entries = fadt_addr.to_le_bytes().to_vec();
    entries.extend_from_slice(&mcfg_addr.to_le_bytes());
    let xsdt = table(b"XSDT", 1, &entries);
    mem.write_slice(&rsdp(xsdt_addr), GuestAddress(base))?;
    mem.write_slice(&xsdt, GuestAddress(xsdt_addr))?;
    mem.write_slice(&fadt(dsdt_addr), GuestAddress(fadt_addr))?;
    mem.write_slice(&dsdt(), GuestAddress(dsdt_addr))?;
    mem.write_slice(&mcfg(), GuestAddress(mcfg_addr))?;
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(b: &[u8]) -> u8 {
        b.iter().fold(0u8, |a, x| a.wrapping_add(*x))
    }

    #[test]
    fn tables_checksum_and_fit_their_slots() {
        let r = rsdp(0x1234);
        assert_eq!((r.len(), sum(&r[..20]), sum(&r)), (36, 0, 0));
        let f = fadt(0x5678);
        assert_eq!((f.len(), sum(&f)), (276, 0));
        assert!(FADT_OFFSET + f.len() as u64 <= DSDT_OFFSET);
        let d = dsdt();
        assert_eq!(sum(&d), 0);
        assert!(DSDT_OFFSET + d.len() as u64 <= MCFG_OFFSET);
        let m = mcfg();
        assert_eq!((m.len(), sum(&m)), (60, 0));
        assert_eq!(u64::from_le_bytes(m[44..52].try_into().unwrap()), ECAM_BASE);
        assert_eq!((m[54], m[55]), (0, 0));
        assert_eq!(
            u32::from_le_bytes(d[4..8].try_into().unwrap()) as usize,
            d.len()
        );
        // HW_REDUCED_ACPI and the sleep control register where the kernel looks for them.
        assert_ne!(
            u32::from_le_bytes(f[112..116].try_into().unwrap()) & (1 << 20),
            0
        );
        assert_eq!(f[244], 1);
        assert_eq!(u64::from_le_bytes(f[248..256].try_into().unwrap()), 0x3c0);
    }

    #[test]
    fn only_s5_with_slp_en_powers_off() {
        assert!(is_power_off((S5_SLEEP_TYPE << 2) | SLEEP_ENABLE));
        assert!(!is_power_off(S5_SLEEP_TYPE << 2));
        assert!(!is_power_off((3 << 2) | SLEEP_ENABLE));
    }
}
