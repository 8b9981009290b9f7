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
        line(
            "OS",
            format!(
                "{} {distro} {}.{}{osinfo}",
                os.name.as_deref().unwrap_or("unknown"),
                os.major_version,
                os.minor_version
            ),
        );
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
            let names: Vec<&str> = apps.iter().take(8).map(|a| a.name.as_str()).collect();
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
