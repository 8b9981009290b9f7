//! Property-style tests: pseudo-random and mutated frames (from the golden vectors) through the
//! decoders: no panic, every decoded call/reply round-trips (the fuzz target's body,
//! `guestfs_proto::fuzz::decoder`), and the memory a decode allocates stays within a small
//! factor of its input (a counting global allocator measures it).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use guestfs_proto::call::decode_call;
use guestfs_proto::frame::{FrameDecoder, Role};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to System; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let n = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
        PEAK.fetch_max(n, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Peak bytes allocated (above what was live before) while running `f`. Tests run on several
/// threads, so this is only an upper bound; the tests that measure run the work in one test.
fn peak_during(f: impl FnOnce()) -> usize {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    f();
    PEAK.load(Ordering::Relaxed).saturating_sub(base)
}

/// The tests share the allocation counters: run them one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn golden_frames() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/calls");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    v.sort();
    v
}

fn mutate(rng: &mut Rng, mut f: Vec<u8>) -> Vec<u8> {
    for _ in 0..1 + rng.below(4) {
        if f.is_empty() {
            break;
        }
        let i = rng.below(f.len());
        match rng.below(7) {
            0 => f[i] ^= 1 << rng.below(8),
            1 => f[i] = 0xff,
            2 => f.truncate(i),
            3 => {
                // A length-looking word anywhere: huge, just over, zero.
                let w = [
                    u32::MAX,
                    0x7fff_ffff,
                    4 << 20,
                    (4 << 20) + 1,
                    0,
                    0xffff_eeee,
                ];
                let w = w[rng.below(w.len())].to_be_bytes();
                let end = (i + 4).min(f.len());
                f[i..end].copy_from_slice(&w[..end - i]);
            }
            4 => {
                let extra: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
                f.splice(i..i, extra);
            }
            5 => {
                // Fix the outer length word to the new size (so the mutation reaches the XDR).
                if f.len() >= 4 {
                    let n = (f.len() - 4) as u32;
                    f[..4].copy_from_slice(&n.to_be_bytes());
                }
            }
            _ => {
                let j = rng.below(f.len());
                f.swap(i, j);
            }
        }
    }
    f
}

#[test]
fn random_and_mutated_frames_never_panic_and_round_trip() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let golden = golden_frames();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..20_000 {
        let input = if round % 4 == 0 {
            (0..rng.below(300)).map(|_| rng.next() as u8).collect()
        } else {
            let mut v = vec![rng.next() as u8];
            for _ in 0..1 + rng.below(3) {
                let g = golden[rng.below(golden.len())].clone();
                v.extend(mutate(&mut rng, g));
            }
            v
        };
        guestfs_proto::fuzz::decoder(&input);
    }
}

#[test]
fn allocation_is_bounded_by_the_input() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let golden = golden_frames();
    let mut rng = Rng(7);
    let mut worst = 0.0f64;
    for _ in 0..3000 {
        let g = golden[rng.below(golden.len())].clone();
        let f = mutate(&mut rng, g);
        if f.len() < 4 {
            continue;
        }
        let peak = peak_during(|| {
            let _ = decode_call(&f[4..]);
        });
        // Worst case is a list of empty strings: 4 input bytes -> a 24-byte Vec header (twice:
        // the typed decode and the path check are not alive at once, but the error path may
        // format a message). Allow 16x + 8 KiB.
        assert!(
            peak <= 16 * f.len() + 8192,
            "decode of {} bytes allocated {peak}",
            f.len()
        );
        worst = worst.max(peak as f64 / f.len() as f64);
    }
    // Huge declared lengths with no bytes behind them allocate nothing of that size.
    for word in [u32::MAX, 0x7fff_ffff, 4 << 20] {
        let mut msg = golden[0][4..44].to_vec(); // a header
        msg.extend_from_slice(&word.to_be_bytes());
        let peak = peak_during(|| {
            let _ = decode_call(&msg);
        });
        assert!(peak < 8192, "length {word:#x}: {peak} bytes");
        let mut d = FrameDecoder::new(Role::Appliance);
        let peak = peak_during(|| {
            d.push(&word.to_be_bytes());
            let _ = d.next_event();
        });
        assert!(peak < 8192, "frame length {word:#x}: {peak} bytes");
    }
    eprintln!("worst allocation/input ratio: {worst:.1}");
}

/// A string list claiming 2^30 items in a 100-byte message: refused before allocating.
#[test]
fn huge_counts_are_refused_before_allocating() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    use guestfs_proto::frame::Header;
    use guestfs_proto::xdr::Encoder;
    let mut e = Encoder::new();
    Header::call(423, 1, 0).encode(&mut e); // internal_lstatnslist(path, names)
    e.string(b"/etc").u32(1 << 30);
    e.u32(0);
    let err = decode_call(e.as_slice()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "daemon failed to decode procedure arguments"
    );
}
