//! The fuzz body over registry hives (kernel/fuzz `hive`, and this module's tests).

use super::Hive;
use crate::store::Bytes;

/// Reads everything a hive `d` holds, opened strictly and leniently, reading every value as
/// every type (a bounded walk); the data read never exceeds the hive's size. Never panics on
/// any input: the body of the `hive` fuzz target, and of the tests over random hives.
pub fn exercise(d: &[u8]) {
    for lenient in [false, true] {
        let store = Bytes(d);
        let h = match if lenient {
            Hive::open_lenient(&store)
        } else {
            Hive::open(&store)
        } {
            Ok(h) => h,
            Err(_) => continue,
        };
        let _ = h.base_block().is_dirty();
        let Ok(root) = h.root() else { continue };
        let mut keys = 0;
        let _ = h.walk(&root, &mut |path| {
            keys += 1;
            let k = &path[path.len() - 1];
            let _ = h.key_name(k);
            if let Ok(values) = h.values(k) {
                for v in values.iter().take(64) {
                    if let Ok(data) = h.value_data(v) {
                        assert_eq!(data.len(), v.data_len() as usize);
                        assert!(data.len() <= d.len());
                    }
                    let _ = h.value_string(v);
                    let _ = h.value_multi_strings(v);
                    let _ = h.value_dword(v);
                    let _ = h.value_qword(v);
                    let _ = h.value(k, &v.name);
                }
            }
            let _ = h.child(k, "Microsoft");
            Ok(keys < 2000)
        });
        let _ = h.path_str(&root, "Microsoft\\Windows NT\\CurrentVersion");
    }
}
