//! The host name a Linux guest sets for itself.

use alloc::string::String;

use crate::fs::FileSystem;

use super::util::{clip, key_values, lossy_lines, read_small, shell_unquote};

/// The first non-empty, non-comment line of /etc/HOSTNAME (old SUSE, Debian) or
/// /etc/hostname, else `HOSTNAME=` of /etc/sysconfig/network (old Red Hat); trimmed.
pub(crate) fn detect(fs: &dyn FileSystem) -> Option<String> {
    ["/etc/HOSTNAME", "/etc/hostname"]
        .iter()
        .find_map(|p| from_file(fs, p))
        .or_else(|| from_sysconfig(fs))
        .map(clip)
}

fn from_file(fs: &dyn FileSystem, path: &str) -> Option<String> {
    let text = read_small(fs, path)?;
    lossy_lines(&text)
        .map(|l| String::from(l.trim()))
        .find(|l| !l.is_empty() && !l.starts_with('#'))
}

fn from_sysconfig(fs: &dyn FileSystem) -> Option<String> {
    let text = read_small(fs, "/etc/sysconfig/network")?;
    key_values(&text)
        .filter(|(k, _)| k == "HOSTNAME")
        .map(|(_, v)| String::from(shell_unquote(&v).trim()))
        .last()
        .filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::testfs::TestFs;

    #[test]
    fn sources_in_order() {
        let fs = TestFs::new()
            .file(
                "/etc/hostname",
                b"# set by installer\n\n  web01  \nignored\n",
            )
            .file("/etc/sysconfig/network", b"HOSTNAME=other\n");
        assert_eq!(detect(&fs).as_deref(), Some("web01"));
        let upper = fs.clone().file("/etc/HOSTNAME", b"old.example.com\n");
        assert_eq!(detect(&upper).as_deref(), Some("old.example.com"));
        let comments_only = TestFs::new().file("/etc/hostname", b"# nothing\n\n").file(
            "/etc/sysconfig/network",
            b"NETWORKING=yes\nHOSTNAME=\"rhel5.example.com\"\n",
        );
        assert_eq!(detect(&comments_only).as_deref(), Some("rhel5.example.com"));
        assert_eq!(detect(&TestFs::new()), None);
        let empty = TestFs::new().file("/etc/sysconfig/network", b"HOSTNAME=\n");
        assert_eq!(detect(&empty), None);
    }

    #[test]
    fn odd_files() {
        let bytes = TestFs::new().file("/etc/hostname", b"h\xffst\n");
        assert_eq!(detect(&bytes).as_deref(), Some("h\u{fffd}st"));
        let broken = TestFs::new()
            .broken("/etc/hostname", 10)
            .file("/etc/HOSTNAME", b"");
        assert_eq!(detect(&broken), None);
        let dir = TestFs::new().dir("/etc/hostname");
        assert_eq!(detect(&dir), None);
        let linked = TestFs::new().link("/etc/hostname", "/etc/hostname");
        assert_eq!(detect(&linked), None);
    }
}
