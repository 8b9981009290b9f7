//! Is this filesystem the root of a Linux installation? libguestfs's `check_filesystem`
//! tests, looked at on the filesystem alone (nothing else mounted).

use vmchannel_proto::FileKind;

use crate::fs::FileSystem;

use super::util::lkind_is;

/// Whether `fs` is a Linux root filesystem: /etc is a directory, /bin is a directory or a
/// symlink to `usr/bin` (or `/usr/bin`), and /etc/fstab or /etc/hosts is a regular file.
///
/// As in libguestfs the tests that come first win: a GRUB /boot, and the BSD, Hurd and
/// Minix roots (which would also pass the Linux test) are not Linux roots. A separate /usr
/// (bin, lib, share but no etc) is not a root either. Nothing here follows symlinks except
/// reading /bin's target.
pub fn is_linux_root(fs: &dyn FileSystem) -> bool {
    let dir = |p: &str| lkind_is(fs, p, FileKind::Directory);
    let file = |p: &str| lkind_is(fs, p, FileKind::File);

    // GRUB /boot.
    if file("/grub/menu.lst") || file("/grub/grub.conf") || file("/grub2/grub.cfg") {
        return false;
    }
    let etc_bin = dir("/etc") && dir("/bin");
    // FreeBSD, NetBSD, OpenBSD, Minix roots.
    if etc_bin
        && file("/etc/fstab")
        && (file("/etc/freebsd-update.conf")
            || (file("/netbsd") && file("/etc/release"))
            || (file("/bsd") && file("/etc/motd"))
            || (file("/service/vm") && file("/etc/version")))
    {
        return false;
    }
    // Hurd.
    if file("/hurd/console") && file("/hurd/hello") && file("/hurd/null") {
        return false;
    }
    dir("/etc")
        && (dir("/bin") || bin_links_to_usr(fs))
        && (file("/etc/fstab") || file("/etc/hosts"))
}

/// /bin is a symlink to `usr/bin` (usr-merged systems); `/usr/bin` accepted too.
fn bin_links_to_usr(fs: &dyn FileSystem) -> bool {
    let Ok(st) = fs.lstat("/bin") else {
        return false;
    };
    if st.kind != FileKind::Symlink {
        return false;
    }
    let target = match st.link_target {
        Some(t) => t,
        None => match fs.read_link("/bin") {
            Ok(t) => t,
            Err(_) => return false,
        },
    };
    matches!(target.trim_end_matches('/'), "usr/bin" | "/usr/bin")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::testfs::TestFs;

    #[test]
    fn linux_roots() {
        let base = TestFs::new().dir("/etc").file("/etc/fstab", b"");
        assert!(is_linux_root(&base.clone().dir("/bin")));
        assert!(is_linux_root(&base.clone().link("/bin", "usr/bin")));
        assert!(is_linux_root(&base.clone().link("/bin", "/usr/bin/")));
        assert!(!is_linux_root(&base.clone().link("/bin", "usr/sbin")));
        assert!(!is_linux_root(&base.clone()));
        let hosts = TestFs::new()
            .dir("/etc")
            .file("/etc/hosts", b"")
            .dir("/bin");
        assert!(is_linux_root(&hosts));
        // /etc/fstab must be a regular file, not a link or a directory.
        let linked = TestFs::new()
            .dir("/etc")
            .link("/etc/fstab", "x")
            .dir("/bin");
        assert!(!is_linux_root(&linked));
        let etc_link = TestFs::new()
            .link("/etc", "e")
            .dir("/e")
            .file("/e/fstab", b"")
            .dir("/bin");
        assert!(!is_linux_root(&etc_link));
    }

    #[test]
    fn not_roots() {
        let usr = TestFs::new()
            .dir("/bin")
            .dir("/lib")
            .dir("/share")
            .dir("/local")
            .dir("/src");
        assert!(!is_linux_root(&usr));
        let boot = TestFs::new()
            .file("/vmlinuz", b"")
            .file("/grub/grub.conf", b"");
        assert!(!is_linux_root(&boot));
        let grub_root = TestFs::new()
            .dir("/etc")
            .dir("/bin")
            .file("/etc/fstab", b"")
            .file("/grub2/grub.cfg", b"");
        assert!(!is_linux_root(&grub_root));
        let freebsd = TestFs::new()
            .dir("/etc")
            .dir("/bin")
            .file("/etc/fstab", b"")
            .file("/etc/freebsd-update.conf", b"");
        assert!(!is_linux_root(&freebsd));
        assert!(!is_linux_root(&TestFs::new()));
    }
}
