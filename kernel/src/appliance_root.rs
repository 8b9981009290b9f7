//! libguestfs's appliance root disk, which the kernel hides from the guest's disks.
//!
//! When libguestfs launches the kernel as its appliance (see `vmch libguestfs-appliance`), it
//! attaches the appliance's `root` image as the last disk and names it on the command line as
//! `root=UUID=...` (the UUID of its ext superblock). That disk is ours, not the user's: the
//! disk list libguestfs's daemon reports (`/dev/sda`, ...) must not include it.

use vmchannel_inspect::disk::BlockDevice;

/// Where an ext superblock's magic and UUID are, from the start of the device.
const MAGIC_AT: u64 = 0x438;
const UUID_AT: u64 = 0x468;

/// The UUID in `root=UUID=xxxxxxxx-xxxx-...` among the command line's words, if any.
pub fn root_uuid(cmdline: &str) -> Option<[u8; 16]> {
    let text = cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("root=UUID="))?;
    let hex: alloc::vec::Vec<u8> = text.bytes().filter(|b| *b != b'-').collect();
    if hex.len() != 32 || text.len() != 36 {
        return None;
    }
    let mut uuid = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = core::str::from_utf8(pair).ok()?;
        uuid[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(uuid)
}

/// Whether `dev` starts with an ext superblock whose UUID is `uuid`.
pub fn is_appliance_root(dev: &dyn BlockDevice, uuid: &[u8; 16]) -> bool {
    let mut magic = [0u8; 2];
    let mut found = [0u8; 16];
    dev.read_at(MAGIC_AT, &mut magic).is_ok()
        && magic == [0x53, 0xef]
        && dev.read_at(UUID_AT, &mut found).is_ok()
        && &found == uuid
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn finds_the_uuid_on_libguestfs_command_lines() {
        let line = "panic=1 console=ttyS0 root=UUID=ba886741-d0f6-4bb8-9659-60de24d65696 selinux=0";
        let u = root_uuid(line).unwrap();
        assert_eq!(u[0], 0xba);
        assert_eq!(u[15], 0x96);
        assert_eq!(root_uuid("root=/dev/sda1"), None);
        assert_eq!(root_uuid("root=UUID=ba886741"), None);
        assert_eq!(
            root_uuid("root=UUID=zz886741-d0f6-4bb8-9659-60de24d65696"),
            None
        );
        assert_eq!(root_uuid(""), None);
    }

    #[test]
    fn knows_the_root_by_magic_and_uuid() {
        let uuid = [7u8; 16];
        let mut disk = vec![0u8; 4096];
        disk[0x438..0x43a].copy_from_slice(&[0x53, 0xef]);
        disk[0x468..0x478].copy_from_slice(&uuid);
        assert!(is_appliance_root(&disk, &uuid));
        assert!(!is_appliance_root(&disk, &[8u8; 16]));
        disk[0x438] = 0;
        assert!(!is_appliance_root(&disk, &uuid), "no magic");
        assert!(!is_appliance_root(&vec![0u8; 100], &uuid), "too small");
    }
}
