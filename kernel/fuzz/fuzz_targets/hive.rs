//! cargo-fuzz target: Windows registry hives (`vmchannel_inspect::hive`).
//!
//! Input: the hive file. Opens it strictly and leniently (hivex's unsafe mode), walks the
//! key tree (bounded), and reads every value in every form; checks that no value's data is
//! longer than the file (big-data segments are used once each).
//!
//! Run on stable, from `kernel/fuzz` (the fixtures make good seeds):
//! `mkdir -p corpus/hive seeds/hive && cp ../../inspect/src/hive/testdata/*.hive seeds/hive`
//! `cargo fuzz run hive --sanitizer none -a corpus/hive seeds/hive -- -max_len=300000`
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmchannel_inspect::hive::Hive;
use vmchannel_inspect::store::Bytes;

fuzz_target!(|data: &[u8]| {
    let store = Bytes(data);
    for hive in [Hive::open(&store), Hive::open_lenient(&store)] {
        let Ok(h) = hive else { continue };
        let _ = h.base_block().is_dirty();
        let Ok(root) = h.root() else { continue };
        let mut keys = 0;
        let _ = h.walk(&root, &mut |path| {
            keys += 1;
            let k = &path[path.len() - 1];
            let _ = h.key_name(k);
            if let Ok(values) = h.values(k) {
                for v in values.iter().take(64) {
                    if let Ok(d) = h.value_data(v) {
                        assert_eq!(d.len(), v.data_len() as usize);
                        assert!(d.len() <= data.len());
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
});
