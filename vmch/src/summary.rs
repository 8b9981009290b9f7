//! The readable summary `vmch inspect` prints by default.

use std::fmt::Write as _;

use crate::report::Inspection;

/// Renders the inspection for a person to read.
pub fn render(inspection: &Inspection) -> String {
    let mut out = String::new();
    for (i, os) in inspection.operatingsystems.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        // Debian's product name is a bare version ("12.7", as libguestfs reads it from
        // /etc/debian_version): put the distribution before it.
        let title = match (&os.product_name, &os.distro) {
            (Some(p), Some(d)) if p.starts_with(|c: char| c.is_ascii_digit()) => format!("{d} {p}"),
            (Some(p), _) => p.clone(),
            (None, Some(d)) => format!("{d} {}.{}", os.major_version, os.minor_version),
            (None, None) => "unknown operating system".into(),
        };
        let _ = writeln!(out, "{}: {title}", os.root);
        let mut line = |key: &str, value: String| {
            let _ = writeln!(out, "  {key:<14}{value}");
        };
        let distro = os.distro.as_deref().unwrap_or("unknown");
        let osinfo = os
            .osinfo
            .as_deref()
            .map(|o| format!(" ({o})"))
            .unwrap_or_default();
        let variant = os
            .product_variant
            .as_deref()
            .map(|v| format!(" {v}"))
            .unwrap_or_default();
        line(
            "OS",
            format!(
                "{} {distro} {}.{}{variant}{osinfo}",
                os.name.as_deref().unwrap_or("unknown"),
                os.major_version,
                os.minor_version
            ),
        );
        if let Some(root) = &os.windows_systemroot {
            let ccs = os
                .windows_current_control_set
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            line("System root", format!("{root}{ccs}"));
        }
        if let Some(arch) = &os.arch {
            line("Architecture", arch.clone());
        }
        if let Some(h) = &os.hostname {
            line("Hostname", h.clone());
        }
        if let Some(format) = &os.package_format {
            let manager = os
                .package_management
                .as_deref()
                .map(|m| format!(", managed by {m}"))
                .unwrap_or_default();
            let count = os
                .applications
                .as_ref()
                .map(|a| format!(": {} installed", a.len()))
                .unwrap_or_default();
            line("Packages", format!("{format}{manager}{count}"));
        }
        for (j, m) in os.mountpoints.iter().enumerate() {
            let key = if j == 0 { "Mountpoints" } else { "" };
            line(key, format!("{:<12} {}", m.path, m.dev));
        }
        for (j, d) in os.drive_mappings.iter().enumerate() {
            let key = if j == 0 { "Drives" } else { "" };
            line(key, format!("{:<12} {}", format!("{}:", d.name), d.dev));
        }
        for (j, f) in os.filesystems.iter().enumerate() {
            let key = if j == 0 { "Filesystems" } else { "" };
            let mut v = format!("{:<12} {}", f.dev, f.fstype.as_deref().unwrap_or("unknown"));
            if let Some(l) = &f.label {
                let _ = write!(v, " label={l}");
            }
            if let Some(u) = &f.uuid {
                let _ = write!(v, " uuid={u}");
            }
            line(key, v);
        }
        if let Some(apps) = &os.applications {
            // Windows's names are registry keys (often GUIDs): show what people see.
            let names: Vec<&str> = apps
                .iter()
                .take(8)
                .map(|a| a.display_name.as_deref().unwrap_or(&a.name))
                .collect();
            if !names.is_empty() {
                let more = if apps.len() > names.len() {
                    ", ..."
                } else {
                    ""
                };
                line("Applications", format!("{}{more}", names.join(", ")));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{App, DriveMapping, Mountpoint, OperatingSystem};

    #[test]
    fn windows_systems_read_as_people_know_them() {
        let app = |name: &str, display: Option<&str>| App {
            name: name.into(),
            display_name: display.map(Into::into),
            epoch: None,
            version: None,
            release: None,
            arch: None,
            install_path: None,
            publisher: None,
            url: None,
            source_package: None,
            summary: None,
            description: None,
        };
        let os = OperatingSystem {
            root: "/dev/sda2".into(),
            name: Some("windows".into()),
            arch: Some("x86_64".into()),
            distro: Some("windows".into()),
            product_name: Some("Windows Server 2022 Datacenter".into()),
            product_variant: Some("Server".into()),
            major_version: 10,
            minor_version: 0,
            package_format: None,
            package_management: None,
            windows_systemroot: Some("/Windows".into()),
            windows_current_control_set: Some("ControlSet001".into()),
            hostname: Some("WEB01".into()),
            osinfo: Some("win2k22".into()),
            mountpoints: vec![Mountpoint {
                dev: "/dev/sda2".into(),
                path: "/".into(),
            }],
            filesystems: vec![],
            drive_mappings: vec![DriveMapping {
                name: "C".into(),
                dev: "/dev/sda2".into(),
            }],
            applications: Some(vec![
                app(
                    "{23170F69-40C1-2702-2301-000001000000}",
                    Some("7-Zip 23.01"),
                ),
                app("Notepad++", None),
            ]),
            icon: None,
        };
        let text = render(&Inspection {
            backend: None,
            operatingsystems: vec![os],
        });
        assert_eq!(
            text,
            "/dev/sda2: Windows Server 2022 Datacenter\n\
             \x20 OS            windows windows 10.0 Server (win2k22)\n\
             \x20 System root   /Windows (ControlSet001)\n\
             \x20 Architecture  x86_64\n\
             \x20 Hostname      WEB01\n\
             \x20 Mountpoints   /            /dev/sda2\n\
             \x20 Drives        C:           /dev/sda2\n\
             \x20 Applications  7-Zip 23.01, Notepad++\n"
        );
    }
}
