//! Names: short (8.3) names as Linux's vfat shows them, long names from UTF-16, and the
//! comparison lookups use.
//!
//! Linux is matched with the options the appliance's kernel (Debian's) mounts vfat with by
//! default: `codepage=437`, `iocharset=ascii`, `utf8`, `shortname=mixed`. So short names
//! are decoded as code page 437 and shown as stored (upper case) except where the NT case
//! bits ask for a lower-case base or extension; long names are UTF-16 shown as UTF-8, with
//! unpaired surrogates dropped as Linux's `utf16s_to_utf8s` drops them; and lookups fold
//! ASCII letters only (`iocharset=ascii`'s case table), so `README.TXT` finds `readme.txt`
//! but `ÄPFEL` does not find `äpfel`, as on the appliance's Linux.

use alloc::string::String;

/// NT case bit: the base name is lower case.
pub const CASE_LOWER_BASE: u8 = 0x08;
/// NT case bit: the extension is lower case.
pub const CASE_LOWER_EXT: u8 = 0x10;

/// Code page 437's upper half as Unicode (Linux's `nls_cp437`; the lower half is ASCII).
const CP437_HIGH: [u16; 128] = [
    0x00C7, 0x00FC, 0x00E9, 0x00E2, 0x00E4, 0x00E0, 0x00E5, 0x00E7, //
    0x00EA, 0x00EB, 0x00E8, 0x00EF, 0x00EE, 0x00EC, 0x00C4, 0x00C5, //
    0x00C9, 0x00E6, 0x00C6, 0x00F4, 0x00F6, 0x00F2, 0x00FB, 0x00F9, //
    0x00FF, 0x00D6, 0x00DC, 0x00A2, 0x00A3, 0x00A5, 0x20A7, 0x0192, //
    0x00E1, 0x00ED, 0x00F3, 0x00FA, 0x00F1, 0x00D1, 0x00AA, 0x00BA, //
    0x00BF, 0x2310, 0x00AC, 0x00BD, 0x00BC, 0x00A1, 0x00AB, 0x00BB, //
    0x2591, 0x2592, 0x2593, 0x2502, 0x2524, 0x2561, 0x2562, 0x2556, //
    0x2555, 0x2563, 0x2551, 0x2557, 0x255D, 0x255C, 0x255B, 0x2510, //
    0x2514, 0x2534, 0x252C, 0x251C, 0x2500, 0x253C, 0x255E, 0x255F, //
    0x255A, 0x2554, 0x2569, 0x2566, 0x2560, 0x2550, 0x256C, 0x2567, //
    0x2568, 0x2564, 0x2565, 0x2559, 0x2558, 0x2552, 0x2553, 0x256B, //
    0x256A, 0x2518, 0x250C, 0x2588, 0x2584, 0x258C, 0x2590, 0x2580, //
    0x03B1, 0x00DF, 0x0393, 0x03C0, 0x03A3, 0x03C3, 0x00B5, 0x03C4, //
    0x03A6, 0x0398, 0x03A9, 0x03B4, 0x221E, 0x03C6, 0x03B5, 0x2229, //
    0x2261, 0x00B1, 0x2265, 0x2264, 0x2320, 0x2321, 0x00F7, 0x2248, //
    0x00B0, 0x2219, 0x00B7, 0x221A, 0x207F, 0x00B2, 0x25A0, 0x00A0, //
];

/// Code page 437's lower-case mapping beyond ASCII (`nls_cp437`'s `charset2lower`).
fn cp437_lower(b: u8) -> u8 {
    match b {
        b'A'..=b'Z' => b + 32,
        0x80 => 0x87,
        0x8E => 0x84,
        0x8F => 0x86,
        0x90 => 0x82,
        0x92 => 0x91,
        0x99 => 0x94,
        0x9A => 0x81,
        0xA5 => 0xA4,
        _ => b,
    }
}

fn cp437(b: u8) -> char {
    let u = if b < 0x80 {
        b as u32
    } else {
        CP437_HIGH[(b & 0x7F) as usize] as u32
    };
    char::from_u32(u).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// The 11-byte short name `raw` as Linux's vfat shows it: base and extension with trailing
/// spaces dropped (a NUL ends either), joined by `.` when the extension is not empty, each
/// lowered when its NT case bit in `case` is set; a leading 0x05 stands for 0xE5.
/// Empty when the base and extension are both blank.
pub fn short_name(raw: &[u8; 11], case: u8) -> String {
    let mut work = *raw;
    if work[0] == 0x05 {
        work[0] = 0xE5;
    }
    let part = |bytes: &[u8], lower: bool| -> String {
        let bytes = bytes.split(|&b| b == 0).next().unwrap_or(&[]);
        let end = bytes.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
        bytes[..end]
            .iter()
            .map(|&b| cp437(if lower { cp437_lower(b) } else { b }))
            .collect()
    };
    let mut name = part(&work[..8], case & CASE_LOWER_BASE != 0);
    let ext = part(&work[8..], case & CASE_LOWER_EXT != 0);
    if !ext.is_empty() {
        name.push('.');
        name.push_str(&ext);
    }
    name
}

/// The long-name checksum of a short name (the byte every LFN slot of its run carries).
pub fn checksum(raw: &[u8; 11]) -> u8 {
    raw.iter()
        .fold(0u8, |s, &b| s.rotate_right(1).wrapping_add(b))
}

/// UTF-16 `units` up to the first NUL as UTF-8; unpaired surrogates are dropped (as
/// Linux's `utf16s_to_utf8s` drops them), never a panic.
pub fn utf16_to_string(units: &[u16]) -> String {
    let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
    char::decode_utf16(units[..end].iter().copied())
        .filter_map(Result::ok)
        .collect()
}

/// Whether `a` and `b` are the same name to a lookup: equal after folding ASCII letters
/// (Linux's `nls_strnicmp` with `iocharset=ascii`; other characters compare exactly).
pub fn same_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// A looked-up name as vfat's lookup sees it: trailing dots dropped (`vfat_striptail_len`).
pub fn strip_tail(name: &str) -> &str {
    name.trim_end_matches('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &[u8; 11]) -> [u8; 11] {
        *s
    }

    #[test]
    fn short_names_as_linux_shows_them() {
        assert_eq!(short_name(&raw(b"README  TXT"), 0), "README.TXT");
        assert_eq!(short_name(&raw(b"README  TXT"), 0x18), "readme.txt");
        assert_eq!(short_name(&raw(b"README  TXT"), 0x08), "readme.TXT");
        assert_eq!(short_name(&raw(b"README  TXT"), 0x10), "README.txt");
        assert_eq!(short_name(&raw(b"SUB        "), 0), "SUB");
        assert_eq!(short_name(&raw(b"A B     C  "), 0), "A B.C");
        assert_eq!(short_name(&raw(b"\x05BC     TXT"), 0), "σBC.TXT");
        assert_eq!(short_name(&raw(b"\x8eRGER   TXT"), 0x08), "ärger.TXT");
        assert_eq!(short_name(&raw(b"        TXT"), 0), ".TXT");
        assert_eq!(short_name(&raw(b"           "), 0), "");
        assert_eq!(short_name(&raw(b"AB\0CD   E\0F"), 0), "AB.E");
    }

    #[test]
    fn checksum_matches_the_spec() {
        // mtools' LONGFI~1.TEX for "Long File Name.text" carries 0xcf.
        assert_eq!(checksum(b"LONGFI~1TEX"), 0xcf);
    }

    #[test]
    fn utf16_with_pairs_and_unpaired_surrogates() {
        let s: alloc::vec::Vec<u16> = "a😀é".encode_utf16().collect();
        assert_eq!(utf16_to_string(&s), "a😀é");
        assert_eq!(
            utf16_to_string(&[0x61, 0xD800, 0x62, 0xDC00, 0x63, 0, 0x64]),
            "abc"
        );
        assert_eq!(utf16_to_string(&[0xD83D]), "");
        assert_eq!(utf16_to_string(&[0x41, 0xFFFF]), "A\u{FFFF}");
    }

    #[test]
    fn lookups_fold_ascii_only() {
        assert!(same_name("README.TXT", "readme.txt"));
        assert!(!same_name("ÄPFEL", "äpfel"));
        assert_eq!(strip_tail("a.txt.."), "a.txt");
    }
}
