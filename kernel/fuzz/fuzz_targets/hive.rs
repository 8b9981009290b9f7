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

fuzz_target!(|data: &[u8]| vmchannel_inspect::hive::fuzz::exercise(data));
