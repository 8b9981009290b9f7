//! The host name a Linux guest sets for itself, as libguestfs 1.48 reads it
//! (`check_hostname_linux` in daemon/inspect_fs_unix.ml).

use alloc::string::String;

use vmchannel_proto::FileKind;

use crate::fs::FileSystem;

use super::util::{clip, lkind_is, read_small};

/// Largest /etc/sysconfig/network libguestfs lets Augeas load (`max_augeas_file_size`).
const MAX_AUGEAS_FILE: u64 = 100 * 1000;

/// The first line of /etc/HOSTNAME (old SUSE, Debian) or /etc/hostname that is neither
/// empty nor a `#` comment, else `HOSTNAME` of /etc/sysconfig/network (old Red Hat).
///
/// As in libguestfs, a line of a hostname file is taken as it is (split on `\n` only: no
/// trimming, a `\r` kept), and the sysconfig value is what Augeas's Shellvars lens stores:
/// the word as written, quotes included (`HOSTNAME="web"` gives `"web"`, with the quotes;
/// virt-inspector prints them).
pub(crate) fn detect(fs: &dyn FileSystem) -> Option<String> {
    ["/etc/HOSTNAME", "/etc/hostname"]
        .iter()
        .find_map(|p| from_file(fs, p))
        .or_else(|| from_sysconfig(fs))
        .map(clip)
}

fn from_file(fs: &dyn FileSystem, path: &str) -> Option<String> {
    let text = read_small(fs, path)?;
    text.split(|&b| b == b'\n')
        .find(|l| !l.is_empty() && l[0] != b'#')
        .map(|l| String::from_utf8_lossy(l).into_owned())
}

/// `HOSTNAME` of /etc/sysconfig/network as libguestfs gets it from Augeas: the file must be
/// a regular file (not a link) of at most 100 000 bytes; a value Augeas cannot parse (an
/// unclosed quote), an empty one, or more than one `HOSTNAME` (Augeas's get fails on
/// several matches) gives nothing.
fn from_sysconfig(fs: &dyn FileSystem) -> Option<String> {
    const PATH: &str = "/etc/sysconfig/network";
    if !lkind_is(fs, PATH, FileKind::File) {
        return None;
    }
    match fs.stat(PATH) {
        Ok(st) if st.size <= MAX_AUGEAS_FILE => {}
        _ => return None,
    }
    let text = read_small(fs, PATH)?;
    let mut found: Option<Option<String>> = None;
    for line in text.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_start_matches([' ', '\t']);
        let line = match line.strip_prefix("export") {
            Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start_matches([' ', '\t']),
            _ => line,
        };
        let Some(value) = line.strip_prefix("HOSTNAME=") else {
            continue;
        };
        if found.is_some() {
            return None;
        }
        found = Some(shellvars_word(value));
    }
    found.flatten().filter(|v| !v.is_empty())
}

/// The value Augeas's Shellvars lens stores for an assignment's right-hand side `rest`:
/// characters up to an unquoted blank, `;` or end of line (a `\r` is part of the value),
/// with quoted strings (and backslash escapes) kept as written. `None` when a quote is not
/// closed or the value starts with `#`.
fn shellvars_word(rest: &str) -> Option<String> {
    if rest.starts_with('#') {
        // Neither a value nor a comment (which needs a blank before it): Augeas rejects
        // the file.
        return None;
    }
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | ';' => break,
            '"' | '\'' | '`' => {
                out.push(c);
                loop {
                    let d = chars.next()?;
                    out.push(d);
                    if d == c {
                        break;
                    }
                    if d == '\\' && c == '"' {
                        out.push(chars.next()?);
                    }
                }
            }
            '\\' => {
                out.push(c);
                out.extend(chars.next());
            }
            _ => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::testfs::TestFs;

    #[test]
    fn sources_in_order() {
        let fs = TestFs::new()
            .file("/etc/hostname", b"# set by installer\n\nweb01\nignored\n")
            .file("/etc/sysconfig/network", b"HOSTNAME=other\n");
        assert_eq!(detect(&fs).as_deref(), Some("web01"));
        let upper = fs.clone().file("/etc/HOSTNAME", b"old.example.com\n");
        assert_eq!(detect(&upper).as_deref(), Some("old.example.com"));
        let comments_only = TestFs::new().file("/etc/hostname", b"# nothing\n\n").file(
            "/etc/sysconfig/network",
            b"NETWORKING=yes\nHOSTNAME=rhel6.example.com\n",
        );
        assert_eq!(detect(&comments_only).as_deref(), Some("rhel6.example.com"));
        assert_eq!(detect(&TestFs::new()), None);
        let empty = TestFs::new().file("/etc/sysconfig/network", b"HOSTNAME=\n");
        assert_eq!(detect(&empty), None);
    }

    /// libguestfs takes a hostname file's line as it is: blanks around it and a DOS line
    /// end stay (virt-inspector prints them).
    #[test]
    fn hostname_file_lines_are_not_trimmed() {
        let fs = TestFs::new().file("/etc/hostname", b"  web01  \r\n");
        assert_eq!(detect(&fs).as_deref(), Some("  web01  \r"));
        let blank = TestFs::new().file("/etc/hostname", b" \nweb02\n");
        assert_eq!(detect(&blank).as_deref(), Some(" "));
    }

    /// What Augeas stores for HOSTNAME in /etc/sysconfig/network: virt-inspector printed
    /// `&quot;centos6.localdomain&quot;` for CentOS 6's `HOSTNAME="centos6.localdomain"`.
    #[test]
    fn sysconfig_values_as_augeas_stores_them() {
        let net = |text: &[u8]| detect(&TestFs::new().file("/etc/sysconfig/network", text));
        assert_eq!(
            net(b"NETWORKING=yes\nHOSTNAME=\"centos6.localdomain\"\n").as_deref(),
            Some("\"centos6.localdomain\"")
        );
        assert_eq!(net(b"HOSTNAME='a b'\n").as_deref(), Some("'a b'"));
        assert_eq!(net(b"  export HOSTNAME=h1 # old\n").as_deref(), Some("h1"));
        assert_eq!(net(b"HOSTNAME=h2;\n").as_deref(), Some("h2"));
        assert_eq!(
            net(b"HOSTNAME=\"a\\\"b\"x\n").as_deref(),
            Some("\"a\\\"b\"x")
        );
        // Two assignments: Augeas's get matches two nodes and fails.
        assert_eq!(net(b"HOSTNAME=a\nHOSTNAME=b\n"), None);
        assert_eq!(net(b"HOSTNAME=\"open\n"), None);
        assert_eq!(net(b"HOSTNAME=#x\n"), None);
        assert_eq!(net(b"HOSTNAME=dos\r\n").as_deref(), Some("dos\r"));
        assert_eq!(net(b"# HOSTNAME=no\nMYHOSTNAME=no\n"), None);
        // A link is not read; nor is a file too large for libguestfs's Augeas.
        let linked = TestFs::new()
            .file("/etc/network.real", b"HOSTNAME=h\n")
            .link("/etc/sysconfig/network", "../network.real");
        assert_eq!(detect(&linked), None);
        let mut big = alloc::vec![b'#'; 100_001];
        big.extend(b"\nHOSTNAME=h\n");
        assert_eq!(net(&big), None);
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
