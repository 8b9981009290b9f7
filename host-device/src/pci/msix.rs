//! The MSI-X table and pending bit array (PBA), as the guest sees them in BAR0.
//!
//! Each table entry is 16 bytes: message address low and high, message data, vector control
//! (bit 0 masks the vector; the other bits are reserved and read as zero). The PBA holds one bit
//! per vector, 64 to a little-endian quadword; it is read-only to the guest. Both are accessed at
//! byte granularity, so any access width or alignment behaves like the corresponding byte
//! accesses and nothing the guest does can index out of bounds.
//!
//! Whether a vector may fire also depends on the MSI-X enable and function mask bits of the
//! capability in configuration space; that decision lives in [`super::interrupt`].

/// The largest table the MSI-X capability can describe (table size field is 11 bits).
pub(super) const MAX_VECTORS: u16 = 2048;
/// Bytes per table entry.
pub(super) const ENTRY_SIZE: u64 = 16;
/// "No vector": the value of a vector register that is not mapped to a table entry.
pub(super) const NO_VECTOR: u16 = 0xffff;

/// The vector control bit that masks an entry.
const CTRL_MASKED: u32 = 1;

/// One MSI-X table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct MsixEntry {
    /// The message address (low and high dwords).
    pub addr: u64,
    /// The message data.
    pub data: u32,
    /// Vector control bit 0.
    pub masked: bool,
}

impl Default for MsixEntry {
    /// Entries start masked (PCI spec: the mask bit resets to 1).
    fn default() -> Self {
        MsixEntry {
            addr: 0,
            data: 0,
            masked: true,
        }
    }
}

impl MsixEntry {
    fn to_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..8].copy_from_slice(&self.addr.to_le_bytes());
        b[8..12].copy_from_slice(&self.data.to_le_bytes());
        let ctrl = if self.masked { CTRL_MASKED } else { 0 };
        b[12..16].copy_from_slice(&ctrl.to_le_bytes());
        b
    }

    fn from_bytes(b: [u8; 16]) -> Self {
        let mut addr = [0u8; 8];
        addr.copy_from_slice(&b[0..8]);
        MsixEntry {
            addr: u64::from_le_bytes(addr),
            data: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            masked: b[12] & (CTRL_MASKED as u8) != 0,
        }
    }
}

/// The MSI-X table and its pending bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct MsixTable {
    entries: Vec<MsixEntry>,
    pba: Vec<u64>,
}

impl MsixTable {
    /// A table of `vectors` entries (clamped to [`MAX_VECTORS`]), all masked, none pending.
    pub fn new(vectors: u16) -> Self {
        let n = usize::from(vectors.min(MAX_VECTORS));
        MsixTable {
            entries: vec![MsixEntry::default(); n],
            pba: vec![0; n.div_ceil(64)],
        }
    }

    /// The number of entries.
    pub fn len(&self) -> u16 {
        // At most MAX_VECTORS, so this never saturates.
        u16::try_from(self.entries.len()).unwrap_or(MAX_VECTORS)
    }

    /// Entry `vector`, if it exists.
    pub fn entry(&self, vector: u16) -> Option<MsixEntry> {
        self.entries.get(usize::from(vector)).copied()
    }

    /// Replaces entry `vector` (ignored if it does not exist).
    pub fn set_entry(&mut self, vector: u16, entry: MsixEntry) {
        if let Some(e) = self.entries.get_mut(usize::from(vector)) {
            *e = entry;
        }
    }

    /// Reads the table at byte `offset` within it; bytes outside it read as zero.
    pub fn read_table(&self, offset: u64, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b = 0;
            let Some(off) = offset.checked_add(i as u64) else {
                break;
            };
            let Ok(idx) = usize::try_from(off / ENTRY_SIZE) else {
                break;
            };
            if let Some(e) = self.entries.get(idx) {
                *b = e.to_bytes()[(off % ENTRY_SIZE) as usize];
            }
        }
    }

    /// Writes the table at byte `offset` within it; bytes outside it are ignored.
    pub fn write_table(&mut self, offset: u64, data: &[u8]) {
        for (i, &v) in data.iter().enumerate() {
            let Some(off) = offset.checked_add(i as u64) else {
                break;
            };
            let Ok(idx) = usize::try_from(off / ENTRY_SIZE) else {
                break;
            };
            if let Some(e) = self.entries.get_mut(idx) {
                let mut bytes = e.to_bytes();
                bytes[(off % ENTRY_SIZE) as usize] = v;
                *e = MsixEntry::from_bytes(bytes);
            }
        }
    }

    /// Reads the PBA at byte `offset` within it; bytes outside it read as zero.
    pub fn read_pba(&self, offset: u64, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b = 0;
            let Some(off) = offset.checked_add(i as u64) else {
                break;
            };
            let Ok(word) = usize::try_from(off / 8) else {
                break;
            };
            if let Some(w) = self.pba.get(word) {
                *b = w.to_le_bytes()[(off % 8) as usize];
            }
        }
    }

    /// Whether `vector` is pending.
    pub fn pending(&self, vector: u16) -> bool {
        let v = usize::from(vector);
        self.pba
            .get(v / 64)
            .is_some_and(|w| w & (1u64 << (v % 64)) != 0)
    }

    /// Sets or clears the pending bit of `vector` (ignored if it does not exist).
    pub fn set_pending(&mut self, vector: u16, pending: bool) {
        if usize::from(vector) >= self.entries.len() {
            return;
        }
        let v = usize::from(vector);
        if let Some(w) = self.pba.get_mut(v / 64) {
            if pending {
                *w |= 1u64 << (v % 64);
            } else {
                *w &= !(1u64 << (v % 64));
            }
        }
    }

    /// Clears every pending bit.
    pub fn clear_pending(&mut self) {
        self.pba.iter_mut().for_each(|w| *w = 0);
    }

    /// Clears the pending bit of every unmasked entry that has one and hands its message to
    /// `deliver`, in vector order.
    pub fn take_unmasked_pending(&mut self, mut deliver: impl FnMut(u64, u32)) {
        for (w, word) in self.pba.iter_mut().enumerate() {
            let mut bits = *word;
            while bits != 0 {
                let bit = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let Some(e) = self.entries.get(w * 64 + bit) else {
                    continue;
                };
                if !e.masked {
                    *word &= !(1u64 << bit);
                    deliver(e.addr, e.data);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_start_masked_and_round_trip_bytes() {
        let mut t = MsixTable::new(3);
        assert_eq!(t.len(), 3);
        let mut b = [0u8; 4];
        t.read_table(12, &mut b);
        assert_eq!(b, [1, 0, 0, 0]);
        t.write_table(16, &0xfee0_0000u32.to_le_bytes());
        t.write_table(20, &0x1u32.to_le_bytes());
        t.write_table(24, &0x4041u32.to_le_bytes());
        t.write_table(28, &0xffff_fffeu32.to_le_bytes());
        let e = t.entry(1).unwrap();
        assert_eq!(e.addr, 0x1_fee0_0000);
        assert_eq!(e.data, 0x4041);
        assert!(!e.masked);
        // Reserved vector-control bits read as zero.
        t.read_table(28, &mut b);
        assert_eq!(b, [0; 4]);
        // Beyond the table: reads zero, writes ignored.
        t.write_table(48, &[0xff; 16]);
        let mut big = [0xaau8; 20];
        t.read_table(40, &mut big);
        assert_eq!(&big[8..], &[0; 12]);
        t.read_table(u64::MAX, &mut b);
        t.write_table(u64::MAX - 1, &[1, 2, 3]);
    }

    #[test]
    fn pending_bits() {
        let mut t = MsixTable::new(70);
        assert_eq!(t.pba.len(), 2);
        t.set_pending(65, true);
        t.set_pending(70, true); // does not exist
        assert!(t.pending(65));
        assert!(!t.pending(70));
        let mut b = [0u8; 8];
        t.read_pba(8, &mut b);
        assert_eq!(u64::from_le_bytes(b), 2);
        let mut got = Vec::new();
        t.take_unmasked_pending(|a, d| got.push((a, d)));
        assert!(got.is_empty(), "masked entries stay pending");
        t.set_entry(
            65,
            MsixEntry {
                addr: 8,
                data: 9,
                masked: false,
            },
        );
        t.take_unmasked_pending(|a, d| got.push((a, d)));
        assert_eq!(got, vec![(8, 9)]);
        assert!(!t.pending(65));
    }
}
