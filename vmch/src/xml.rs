//! virt-inspector's XML.
//!
//! The same elements, in the same order, with the same omissions as libguestfs's
//! `virt-inspector` (guestfs-tools `inspector/inspector.c`), and the same layout as the libxml2
//! text writer it uses: an `<?xml version="1.0"?>` declaration and two spaces of indentation
//! per level. The writer is written here rather than taken from an XML crate because the point
//! is byte-for-byte agreement with libxml2's output (its escaping and indentation), which is a
//! few lines; an XML crate would need as many to be bent into that shape.
//!
//! Checked against libguestfs 1.48's output (docs/BENCHMARKS.md), Linux and Windows alike.

use std::fmt::Write as _;

use crate::report::{App, Inspection, OperatingSystem};

/// Escapes text content as libxml2's writer does: `&`, `<`, `>`, `"` and CR.
fn text(s: &str) -> String {
    escape(s, false)
}

/// Escapes an attribute value as libxml2's writer does: as text, plus LF and tab.
fn attr(s: &str) -> String {
    escape(s, true)
}

fn escape(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

struct Writer {
    out: String,
    depth: usize,
}

impl Writer {
    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
    }

    fn start(&mut self, name: &str) {
        self.indent();
        let _ = writeln!(self.out, "<{name}>");
        self.depth += 1;
    }

    fn start_with(&mut self, name: &str, key: &str, value: &str) {
        self.indent();
        let _ = writeln!(self.out, "<{name} {key}=\"{}\">", attr(value));
        self.depth += 1;
    }

    fn end(&mut self, name: &str) {
        self.depth -= 1;
        self.indent();
        let _ = writeln!(self.out, "</{name}>");
    }

    fn element(&mut self, name: &str, value: &str) {
        self.indent();
        let _ = writeln!(self.out, "<{name}>{}</{name}>", text(value));
    }

    fn element_with(&mut self, name: &str, key: &str, key_value: &str, value: &str) {
        self.indent();
        let _ = writeln!(
            self.out,
            "<{name} {key}=\"{}\">{}</{name}>",
            attr(key_value),
            text(value)
        );
    }

    fn optional(&mut self, name: &str, value: &Option<String>) {
        if let Some(v) = value {
            self.element(name, v);
        }
    }
}

/// Renders the inspection as virt-inspector does.
pub fn render(inspection: &Inspection) -> String {
    let mut w = Writer {
        out: String::from("<?xml version=\"1.0\"?>\n"),
        depth: 0,
    };
    if inspection.operatingsystems.is_empty() {
        w.out.push_str("<operatingsystems/>\n");
        return w.out;
    }
    w.start("operatingsystems");
    for os in &inspection.operatingsystems {
        operating_system(&mut w, os);
    }
    w.end("operatingsystems");
    w.out
}

fn operating_system(w: &mut Writer, os: &OperatingSystem) {
    w.start("operatingsystem");
    w.element("root", &os.root);
    w.optional("name", &os.name);
    w.optional("arch", &os.arch);
    w.optional("distro", &os.distro);
    w.optional("product_name", &os.product_name);
    w.optional("product_variant", &os.product_variant);
    w.element("major_version", &os.major_version.to_string());
    w.element("minor_version", &os.minor_version.to_string());
    w.optional("package_format", &os.package_format);
    w.optional("package_management", &os.package_management);
    w.optional("windows_systemroot", &os.windows_systemroot);
    w.optional(
        "windows_current_control_set",
        &os.windows_current_control_set,
    );
    w.optional("hostname", &os.hostname);
    w.optional("osinfo", &os.osinfo);
    if !os.mountpoints.is_empty() {
        w.start("mountpoints");
        for m in &os.mountpoints {
            w.element_with("mountpoint", "dev", &m.dev, &m.path);
        }
        w.end("mountpoints");
    }
    if !os.filesystems.is_empty() {
        w.start("filesystems");
        for f in &os.filesystems {
            w.start_with("filesystem", "dev", &f.dev);
            w.optional("type", &f.fstype);
            w.optional("label", &f.label);
            w.optional("uuid", &f.uuid);
            w.end("filesystem");
        }
        w.end("filesystems");
    }
    if !os.drive_mappings.is_empty() {
        w.start("drive_mappings");
        for d in &os.drive_mappings {
            w.element_with("drive_mapping", "name", &d.name, &d.dev);
        }
        w.end("drive_mappings");
    }
    if let Some(apps) = &os.applications
        && !apps.is_empty()
    {
        w.start("applications");
        for a in apps {
            application(w, a);
        }
        w.end("applications");
    }
    if let Some(icon) = &os.icon {
        // libxml2's base64 writer: lines of 72 characters separated by CRLF.
        w.indent();
        w.out.push_str("<icon>");
        for (i, line) in icon.as_bytes().chunks(72).enumerate() {
            if i > 0 {
                w.out.push_str("\r\n");
            }
            w.out.push_str(&String::from_utf8_lossy(line));
        }
        w.out.push_str("</icon>\n");
    }
    w.end("operatingsystem");
}

fn application(w: &mut Writer, a: &App) {
    w.start("application");
    w.element("name", &a.name);
    w.optional("display_name", &a.display_name);
    if let Some(e) = a.epoch {
        w.element("epoch", &e.to_string());
    }
    w.optional("version", &a.version);
    w.optional("release", &a.release);
    w.optional("arch", &a.arch);
    w.optional("install_path", &a.install_path);
    w.optional("publisher", &a.publisher);
    w.optional("url", &a.url);
    w.optional("source_package", &a.source_package);
    w.optional("summary", &a.summary);
    w.optional("description", &a.description);
    w.end("application");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Filesystem, Mountpoint};

    #[test]
    fn renders_virt_inspector_layout_with_escaping_and_omissions() {
        let os = OperatingSystem {
            root: "/dev/sda2".into(),
            name: Some("linux".into()),
            arch: Some("x86_64".into()),
            distro: Some("debian".into()),
            product_name: Some("12.5".into()),
            product_variant: None,
            major_version: 12,
            minor_version: 5,
            package_format: Some("deb".into()),
            package_management: Some("apt".into()),
            windows_systemroot: None,
            windows_current_control_set: None,
            hostname: None,
            osinfo: Some("debian12".into()),
            mountpoints: vec![Mountpoint {
                dev: "/dev/sda2".into(),
                path: "/".into(),
            }],
            filesystems: vec![Filesystem {
                dev: "/dev/sda\"1".into(),
                fstype: Some("ext4".into()),
                label: None,
                uuid: Some("u".into()),
            }],
            drive_mappings: vec![],
            applications: Some(vec![App {
                name: "a&b".into(),
                display_name: None,
                epoch: Some(1),
                version: Some("1<2".into()),
                release: None,
                arch: Some("amd64".into()),
                install_path: None,
                publisher: None,
                url: None,
                source_package: Some("ab".into()),
                summary: None,
                description: Some("x > \"y\"".into()),
            }]),
            icon: Some("A".repeat(100)),
        };
        let xml = render(&Inspection {
            backend: None,
            operatingsystems: vec![os],
        });
        let expected = r#"<?xml version="1.0"?>
<operatingsystems>
  <operatingsystem>
    <root>/dev/sda2</root>
    <name>linux</name>
    <arch>x86_64</arch>
    <distro>debian</distro>
    <product_name>12.5</product_name>
    <major_version>12</major_version>
    <minor_version>5</minor_version>
    <package_format>deb</package_format>
    <package_management>apt</package_management>
    <osinfo>debian12</osinfo>
    <mountpoints>
      <mountpoint dev="/dev/sda2">/</mountpoint>
    </mountpoints>
    <filesystems>
      <filesystem dev="/dev/sda&quot;1">
        <type>ext4</type>
        <uuid>u</uuid>
      </filesystem>
    </filesystems>
    <applications>
      <application>
        <name>a&amp;b</name>
        <epoch>1</epoch>
        <version>1&lt;2</version>
        <arch>amd64</arch>
        <source_package>ab</source_package>
        <description>x &gt; &quot;y&quot;</description>
      </application>
    </applications>
    <icon>AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r
AAAAAAAAAAAAAAAAAAAAAAAAAAAA</icon>
  </operatingsystem>
</operatingsystems>
"#
        .replace("\\r\n", "\r\n");
        assert_eq!(xml, expected);
        assert_eq!(
            render(&Inspection {
                backend: None,
                operatingsystems: vec![]
            }),
            "<?xml version=\"1.0\"?>\n<operatingsystems/>\n"
        );
    }
}
