//! Device names as libguestfs gives them: `/dev/sda`, `/dev/sdb`, ... `/dev/sdz`,
//! `/dev/sdaa`, and partitions `/dev/sda1`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// The name of the `index`th disk (0 -> `/dev/sda`, 26 -> `/dev/sdaa`).
pub fn disk_name(index: usize) -> String {
    // Bijective base 26, as Linux's sd driver names disks.
    let mut letters = Vec::new();
    let mut n = index + 1;
    while n > 0 {
        n -= 1;
        letters.push(b'a' + (n % 26) as u8);
        n /= 26;
    }
    letters.reverse();
    format!("/dev/sd{}", String::from_utf8_lossy(&letters))
}

/// The name of partition `number` of disk `disk` (`/dev/sda`, 1 -> `/dev/sda1`).
pub fn partition_name(disk: &str, number: u32) -> String {
    format!("{disk}{number}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_like_linux() {
        assert_eq!(disk_name(0), "/dev/sda");
        assert_eq!(disk_name(25), "/dev/sdz");
        assert_eq!(disk_name(26), "/dev/sdaa");
        assert_eq!(disk_name(27), "/dev/sdab");
        assert_eq!(disk_name(701), "/dev/sdzz");
        assert_eq!(disk_name(702), "/dev/sdaaa");
        assert_eq!(partition_name("/dev/sdb", 5), "/dev/sdb5");
    }
}
