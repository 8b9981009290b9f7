//! Tests of the framing: round trips, limits, resync after garbage, split reads.

use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::messages::{Error, ErrorKind, Hello, MAX_READ, PROTOCOL_VERSION, Reply, Request, caps};
use crate::types::{
    Application, DeviceInfo, DirEntry, FileKind, FilesystemInfo, OsInfo, PartitionInfo, Stat,
    Target, Usage,
};

/// A small xorshift64* generator: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let word = self.next().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        self.fill(&mut v);
        v
    }
}

fn hello() -> Hello {
    Hello {
        version: PROTOCOL_VERSION,
        capabilities: caps::ALL,
        max_frame: MAX_FRAME,
        software: "vmchannel-test 0.1".to_string(),
    }
}

fn stat() -> Stat {
    Stat {
        kind: FileKind::Symlink,
        size: 11,
        mode: 0o120777,
        uid: 0,
        gid: 1000,
        mtime: -86_400,
        link_target: Some("/usr/bin/x".to_string()),
    }
}

fn requests() -> Vec<Request> {
    let t = || Target::Os("/dev/sda2".to_string());
    let p = || "/etc/hostname".to_string();
    vec![
        Request::ListDevices,
        Request::ListFilesystems,
        Request::Inspect { applications: true },
        Request::ReadDir {
            target: Target::Device("/dev/sdb1".to_string()),
            path: p(),
        },
        Request::Stat {
            target: t(),
            path: p(),
            follow: true,
        },
        Request::Read {
            target: t(),
            path: p(),
            offset: u64::MAX,
            len: MAX_READ,
        },
        Request::Download {
            target: t(),
            path: p(),
        },
        Request::Checksum {
            target: t(),
            path: p(),
        },
        Request::Usage {
            target: t(),
            path: "/".to_string(),
        },
    ]
}

fn replies() -> Vec<Reply> {
    let fs = FilesystemInfo {
        device: "/dev/sda1".to_string(),
        fstype: "ext4".to_string(),
        label: Some("root".to_string()),
        uuid: None,
    };
    let os = OsInfo {
        root: "/dev/sda1".to_string(),
        os_type: "linux".to_string(),
        distro: Some("debian".to_string()),
        major_version: 12,
        mountpoints: vec![("/dev/sda1".to_string(), "/".to_string())],
        filesystems: vec![fs.clone()],
        applications: vec![Application {
            name: "bash".to_string(),
            epoch: 1,
            version: "5.2".to_string(),
            ..Application::default()
        }],
        ..OsInfo::default()
    };
    vec![
        Reply::Devices(vec![
            DeviceInfo {
                name: "/dev/sda".to_string(),
                size: 1 << 30,
                partition: None,
                table: Some("gpt".to_string()),
            },
            DeviceInfo {
                name: "/dev/sda1".to_string(),
                size: 1 << 29,
                partition: Some(PartitionInfo {
                    number: 1,
                    start: 1 << 20,
                    type_id: "0FC63DAF-8483-4772-8E79-3D69D8477DE4".to_string(),
                    partuuid: None,
                    partlabel: Some("root".to_string()),
                }),
                table: None,
            },
        ]),
        Reply::Filesystems(vec![fs]),
        Reply::Inspection(vec![os]),
        Reply::Entries(vec![DirEntry {
            name: "x".to_string(),
            stat: stat(),
        }]),
        Reply::Stat(stat()),
        Reply::Data((0..=255).collect()),
        Reply::Downloaded {
            size: 300_000,
            sha256: [0xab; 32],
        },
        Reply::Checksum([7; 32]),
        Reply::Usage(Usage {
            block_size: 4096,
            blocks: 1000,
            blocks_free: 10,
            blocks_available: 5,
            inodes: 100,
            inodes_free: 0,
        }),
    ]
}

fn error_kinds() -> Vec<ErrorKind> {
    vec![
        ErrorKind::NotFound,
        ErrorKind::NotADirectory,
        ErrorKind::IsADirectory,
        ErrorKind::Corrupt,
        ErrorKind::Unsupported,
        ErrorKind::TooLarge,
        ErrorKind::BadRequest,
        ErrorKind::Cancelled,
        ErrorKind::Io,
    ]
}

fn client_samples() -> Vec<ClientMessage> {
    let mut v = vec![ClientMessage::Hello(hello())];
    for (id, request) in (1..).zip(requests()) {
        v.push(ClientMessage::Request { id, request });
    }
    v.push(ClientMessage::Cancel { id: u32::MAX });
    v.push(ClientMessage::Sync {
        nonce: 0x0123_4567_89ab_cdef,
    });
    v
}

fn server_samples() -> Vec<ServerMessage> {
    let mut v = vec![ServerMessage::Hello(hello())];
    for (id, reply) in (1..).zip(replies()) {
        v.push(ServerMessage::Response {
            id,
            result: Ok(reply),
        });
    }
    for (id, kind) in (100..).zip(error_kinds()) {
        let message = "it went wrong".to_string();
        v.push(ServerMessage::Response {
            id,
            result: Err(Error { kind, message }),
        });
    }
    v.push(ServerMessage::Chunk {
        id: 3,
        offset: 65536,
        data: vec![1, 2, 3],
    });
    v.push(ServerMessage::Progress {
        id: 3,
        done: 65539,
        total: 1 << 40,
    });
    v.push(ServerMessage::Synced { nonce: 42 });
    v.push(ServerMessage::Garbage {
        skipped: 17,
        message: "bad magic".to_string(),
    });
    v
}

fn drain<T>(dec: &mut Decoder<T>) -> Vec<Decoded<T>> {
    dec.by_ref().collect()
}

fn messages<T>(msgs: &[T]) -> Vec<Decoded<T>>
where
    T: Clone,
{
    msgs.iter().cloned().map(Decoded::Message).collect()
}

fn stream<T: Serialize>(msgs: &[T]) -> Vec<u8> {
    msgs.iter().flat_map(|m| encode(m).unwrap()).collect()
}

#[test]
fn frame_layout() {
    let frame = encode(&ClientMessage::Cancel { id: 5 }).unwrap();
    assert_eq!(frame, b"VMCH\x02\x00\x00\x00\x02\x05");
}

#[test]
fn round_trip_every_variant() {
    let clients = client_samples();
    let servers = server_samples();
    assert_eq!(clients.len(), 1 + 9 + 2);
    assert_eq!(servers.len(), 1 + 9 + 9 + 4);
    for msg in &clients {
        let mut dec = ClientDecoder::new();
        dec.push(&encode(msg).unwrap());
        assert_eq!(drain(&mut dec), vec![Decoded::Message(msg.clone())]);
        assert_eq!(dec.buffered(), 0);
    }
    for msg in &servers {
        let mut dec = ServerDecoder::new();
        dec.push(&encode(msg).unwrap());
        assert_eq!(drain(&mut dec), vec![Decoded::Message(msg.clone())]);
    }
    // And all in one stream.
    let mut dec = ServerDecoder::new();
    dec.push(&stream(&servers));
    assert_eq!(drain(&mut dec), messages(&servers));
}

#[test]
fn one_byte_at_a_time() {
    let msgs = server_samples();
    let bytes = stream(&msgs);
    let mut dec = ServerDecoder::new();
    let mut events = Vec::new();
    for b in &bytes {
        dec.push(core::slice::from_ref(b));
        events.extend(dec.by_ref());
    }
    assert_eq!(events, messages(&msgs));
    assert_eq!(dec.buffered(), 0);
}

#[test]
fn random_splits() {
    let msgs = client_samples();
    let bytes = stream(&msgs);
    let mut rng = Rng(0x1234_5678);
    for _ in 0..200 {
        let mut dec = ClientDecoder::new();
        let mut rest = &bytes[..];
        let mut events = Vec::new();
        while !rest.is_empty() {
            let n = 1 + rng.below(rest.len().min(40));
            let (piece, r) = rest.split_at(n);
            dec.push(piece);
            events.extend(dec.by_ref());
            rest = r;
        }
        assert_eq!(events, messages(&msgs));
    }
}

#[test]
fn garbage_before_between_after() {
    let a = ClientMessage::Sync { nonce: 1 };
    let b = ClientMessage::Cancel { id: 2 };
    let mut bytes = b"hello there".to_vec(); // 11 bytes before
    bytes.extend(encode(&a).unwrap());
    bytes.extend(b"VM\x00garbage VMC VMCHx"); // 20 bytes between, with false magics
    bytes.extend(encode(&b).unwrap());
    bytes.extend(b"trailing junk"); // 13 bytes after

    for piece in [1, 3, 7, bytes.len()] {
        let mut dec = ClientDecoder::new();
        let mut events = Vec::new();
        for chunk in bytes.chunks(piece) {
            dec.push(chunk);
            events.extend(dec.by_ref());
        }
        assert_eq!(
            events,
            vec![
                Decoded::Garbage {
                    skipped: 11,
                    reason: FrameError::BadMagic
                },
                Decoded::Message(a.clone()),
                Decoded::Garbage {
                    skipped: 20,
                    reason: FrameError::BadMagic
                },
                Decoded::Message(b.clone()),
            ],
            "pieces of {piece}"
        );
        // The trailing run is reported at the end of the stream, once.
        dec.finish();
        assert_eq!(
            drain(&mut dec),
            vec![Decoded::Garbage {
                skipped: 13,
                reason: FrameError::BadMagic
            }]
        );
        dec.finish();
        assert_eq!(drain(&mut dec), vec![]);
    }
}

#[test]
fn magic_split_across_pushes() {
    let msg = ClientMessage::Sync { nonce: 7 };
    let frame = encode(&msg).unwrap();
    let mut dec = ClientDecoder::new();
    dec.push(b"xxV");
    dec.push(b"M");
    dec.push(&frame[2..3]);
    assert_eq!(dec.next(), None);
    assert_eq!(dec.buffered(), 3);
    dec.push(&frame[3..]);
    assert_eq!(
        drain(&mut dec),
        vec![
            Decoded::Garbage {
                skipped: 2,
                reason: FrameError::BadMagic
            },
            Decoded::Message(msg),
        ]
    );
}

#[test]
fn oversized_length_is_not_waited_for() {
    let msg = ClientMessage::Cancel { id: 9 };
    let mut dec = ClientDecoder::new();
    // A header announcing 4 GiB - 1.
    dec.push(b"VMCH\xff\xff\xff\xff");
    // Decided at once: nothing is held for it but a possible magic start (none here).
    assert_eq!(dec.buffered(), 0);
    assert_eq!(
        dec.run,
        Some((
            8,
            FrameError::TooLarge {
                size: u64::from(u32::MAX),
                max: MAX_FRAME
            }
        ))
    );
    dec.push(&encode(&msg).unwrap());
    assert_eq!(
        drain(&mut dec),
        vec![
            Decoded::Garbage {
                skipped: 8,
                reason: FrameError::TooLarge {
                    size: 0xffff_ffff,
                    max: MAX_FRAME
                }
            },
            Decoded::Message(msg.clone()),
        ]
    );
    // Without a following frame, `finish` reports it.
    dec.push(b"VMCH\x01\x00\x40\x00"); // MAX_FRAME + 1
    dec.finish();
    assert_eq!(
        drain(&mut dec),
        vec![Decoded::Garbage {
            skipped: 8,
            reason: FrameError::TooLarge {
                size: u64::from(MAX_FRAME) + 1,
                max: MAX_FRAME
            }
        }]
    );
    // Exactly MAX_FRAME is allowed: the decoder waits for it.
    dec.push(b"VMCH\x00\x00\x40\x00");
    assert_eq!(dec.next(), None);
    assert_eq!(dec.run, None);
    // And memory comes with the bytes, not with the announced length.
    dec.push(&[0; 1000]);
    assert_eq!(dec.next(), None);
    assert!(dec.buf.capacity() < 2048, "{}", dec.buf.capacity());
}

#[test]
fn false_magic_with_absurd_length_inside_garbage() {
    let msg = ClientMessage::Sync { nonce: 3 };
    let mut bytes = b"junk VMCH\xff\xff\xff\x7f more junk VMCH\x00\x00\x00\x10!".to_vec();
    let garbage = bytes.len() as u64;
    bytes.extend(encode(&msg).unwrap());
    let mut dec = ClientDecoder::new();
    dec.push(&bytes);
    assert_eq!(
        drain(&mut dec),
        vec![
            Decoded::Garbage {
                skipped: garbage,
                reason: FrameError::BadMagic
            },
            Decoded::Message(msg)
        ]
    );
}

#[test]
fn smaller_limit() {
    let mut dec = ServerDecoder::with_max_frame(16);
    assert_eq!(dec.max_frame(), 16);
    let small = ServerMessage::Synced { nonce: 1 };
    let big = ServerMessage::Chunk {
        id: 1,
        offset: 0,
        data: vec![0; 100],
    };
    let big_frame = encode(&big).unwrap();
    dec.push(&big_frame);
    dec.push(&encode(&small).unwrap());
    assert_eq!(
        drain(&mut dec),
        vec![
            Decoded::Garbage {
                skipped: big_frame.len() as u64,
                reason: FrameError::TooLarge { size: 104, max: 16 }
            },
            Decoded::Message(small),
        ]
    );
    assert!(dec.buf.capacity() <= HEADER_LEN + 16);
    assert_eq!(
        ServerDecoder::with_max_frame(u32::MAX).max_frame(),
        MAX_FRAME
    );
}

#[test]
fn junk_payload_behind_a_valid_header() {
    let a = ClientMessage::Sync { nonce: 1 };
    let b = ClientMessage::Sync { nonce: 2 };
    let mut junk = b"VMCH\x05\x00\x00\x00".to_vec();
    junk.extend([0xff, 1, 2, 3, 4]); // variant index 0xff... is not a varint end
    let mut bytes = encode(&a).unwrap();
    bytes.extend(&junk);
    bytes.extend(encode(&b).unwrap());
    let mut dec = ClientDecoder::new();
    dec.push(&bytes);
    let events = drain(&mut dec);
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0], Decoded::Message(a));
    let Decoded::Garbage {
        skipped,
        reason: FrameError::Malformed(_),
    } = &events[1]
    else {
        panic!("{events:?}")
    };
    assert_eq!(*skipped, junk.len() as u64);
    assert_eq!(events[2], Decoded::Message(b));
}

#[test]
fn trailing_bytes_are_malformed() {
    // Cancel{id: 5} is 2 bytes; announce 3 and add one.
    let mut dec = ClientDecoder::new();
    dec.push(b"VMCH\x03\x00\x00\x00\x02\x05\x00");
    dec.finish();
    assert_eq!(
        drain(&mut dec),
        vec![Decoded::Garbage {
            skipped: 11,
            reason: FrameError::Malformed("1 trailing bytes after the message".to_string())
        }]
    );
    // An empty payload is no message either.
    dec.push(b"VMCH\x00\x00\x00\x00");
    dec.finish();
    assert!(matches!(
        drain(&mut dec)[..],
        [Decoded::Garbage {
            skipped: 8,
            reason: FrameError::Malformed(_)
        }]
    ));
}

#[test]
fn real_frame_hidden_behind_a_false_header() {
    // A false header announcing 30 bytes, and a real frame inside those 30 bytes.
    let msg = ClientMessage::Cancel { id: 77 };
    let frame = encode(&msg).unwrap();
    let mut bytes = b"VMCH\x1e\x00\x00\x00".to_vec();
    bytes.extend(&frame);
    bytes.resize(8 + 30, b'.');
    let mut dec = ClientDecoder::new();
    dec.push(&bytes);
    // Only the false header's 30 bytes complete it: nothing yet after 8 + frame.
    dec.finish();
    let events = drain(&mut dec);
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(matches!(
        events[0],
        Decoded::Garbage {
            skipped: 8,
            reason: FrameError::Malformed(_)
        }
    ));
    assert_eq!(events[1], Decoded::Message(msg));
    assert!(matches!(events[2], Decoded::Garbage { skipped: 20, .. }));
}

#[test]
fn truncated_stream_waits() {
    let msg = ServerMessage::Chunk {
        id: 1,
        offset: 0,
        data: vec![9; 1000],
    };
    let frame = encode(&msg).unwrap();
    let mut dec = ServerDecoder::new();
    for cut in [1, 4, 7, 8, 9, frame.len() - 1] {
        dec.reset();
        dec.push(&frame[..cut]);
        assert_eq!(dec.next(), None, "cut at {cut}");
        assert_eq!(dec.run, None, "cut at {cut}");
        assert_eq!(dec.buffered(), cut);
    }
    dec.push(&frame[frame.len() - 1..]);
    assert_eq!(drain(&mut dec), vec![Decoded::Message(msg)]);
    // At the end of the stream an incomplete frame is reported as truncated.
    dec.push(&frame[..100]);
    dec.finish();
    assert_eq!(
        drain(&mut dec),
        vec![Decoded::Garbage {
            skipped: 100,
            reason: FrameError::Truncated
        }]
    );
}

#[test]
fn big_frame_in_pieces() {
    let data: Vec<u8> = Rng(5).bytes(MAX_FRAME as usize - 16);
    let msg = ServerMessage::Chunk {
        id: 1,
        offset: 0,
        data,
    };
    let frame = encode(&msg).unwrap();
    assert!(frame.len() <= HEADER_LEN + MAX_FRAME as usize);
    let mut dec = ServerDecoder::new();
    let mut events = Vec::new();
    for piece in frame.chunks(10_000) {
        dec.push(piece);
        assert!(dec.buf.capacity() <= HEADER_LEN + MAX_FRAME as usize);
        events.extend(dec.by_ref());
    }
    assert_eq!(events, vec![Decoded::Message(msg)]);
    // The big buffer is given back.
    dec.push(&encode(&ServerMessage::Synced { nonce: 0 }).unwrap());
    assert!(dec.buf.capacity() <= 2 * (CHUNK + HEADER_LEN));
}

#[test]
fn encode_refuses_too_large() {
    let data = vec![0u8; MAX_FRAME as usize];
    let msg = ServerMessage::Chunk {
        id: 1,
        offset: 0,
        data,
    };
    // 1 (variant) + 1 (id) + 1 (offset) + 4 (length varint) + data.
    let size = u64::from(MAX_FRAME) + 7;
    assert_eq!(
        encode(&msg),
        Err(FrameError::TooLarge {
            size,
            max: MAX_FRAME
        })
    );
    let small = ServerMessage::Chunk {
        id: 1,
        offset: 0,
        data: vec![0; 100],
    };
    assert_eq!(
        encode_with_max(&small, 64),
        Err(FrameError::TooLarge { size: 104, max: 64 })
    );
    assert!(encode_with_max(&small, 104).is_ok());
    assert_eq!(
        FrameError::TooLarge {
            size,
            max: MAX_FRAME
        }
        .to_string(),
        "frame payload of 4194311 bytes exceeds the limit of 4194304 bytes"
    );
}

#[test]
fn random_bytes_keep_memory_bounded() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut dec = ServerDecoder::new();
    let mut block = vec![0u8; 1 << 20];
    let mut events = 0usize;
    let mut peak = 0;
    for i in 0..50 {
        rng.fill(&mut block);
        // Vary the piece sizes: one big push, then many small ones.
        if i % 2 == 0 {
            dec.push(&block);
        } else {
            for piece in block.chunks(1 + rng.below(5000)) {
                dec.push(piece);
            }
        }
        peak = peak.max(dec.buf.capacity());
        events += dec.by_ref().count();
    }
    assert!(peak <= HEADER_LEN + MAX_FRAME as usize, "peak {peak}");
    dec.finish();
    events += dec.by_ref().count();
    assert!(events >= 1);
}

#[test]
fn random_bytes_with_a_small_limit() {
    // With a small limit, false headers are rarely waited for long and memory stays tiny.
    let mut rng = Rng(77);
    let mut dec = ClientDecoder::with_max_frame(4096);
    let msg = ClientMessage::Sync { nonce: 5 };
    for _ in 0..200 {
        let n = rng.below(20_000);
        let junk = rng.bytes(n);
        dec.push(&junk);
        // A run of 4 KiB + 8 zero-free bytes flushes any false header waiting.
        dec.push(&[b'.'; 4200]);
        dec.push(&encode(&msg).unwrap());
        let events = drain(&mut dec);
        assert!(dec.buf.capacity() <= HEADER_LEN + 4096);
        assert_eq!(
            events.last(),
            Some(&Decoded::Message(msg.clone())),
            "{events:?}"
        );
    }
}

#[test]
fn nested_failures_stay_linear() {
    // A hostile stream: false headers each announcing a long payload that begins like a
    // Chunk and contains the next false header. Decoding each would be quadratic.
    let mut bytes = Vec::new();
    for _ in 0..20_000 {
        bytes.extend(b"VMCH\x01\x00\x04\x00\x02\x01\x00\xfa\xff\x0f");
    }
    bytes.resize(bytes.len() + (300 << 10), b'.');
    let mut dec = ServerDecoder::new();
    dec.push(&bytes);
    dec.finish();
    let events = drain(&mut dec);
    assert!(
        matches!(events[..], [Decoded::Garbage { .. }]),
        "{events:?}"
    );
    assert_eq!(skipped_total(&events), bytes.len() as u64);
}

fn skipped_total<T>(events: &[Decoded<T>]) -> u64 {
    events
        .iter()
        .map(|e| {
            if let Decoded::Garbage { skipped, .. } = e {
                *skipped
            } else {
                0
            }
        })
        .sum()
}

#[test]
fn reset_drops_everything() {
    let mut dec = ClientDecoder::with_max_frame(100);
    dec.push(b"junk");
    dec.push(&encode(&ClientMessage::Cancel { id: 1 }).unwrap());
    dec.push(b"VMCH\x01");
    dec.reset();
    assert_eq!(dec.next(), None);
    assert_eq!(dec.buffered(), 0);
    assert_eq!(dec.max_frame(), 100);
    dec.finish();
    assert_eq!(dec.next(), None);
}

/// Inputs for the fuzz body: valid streams, garbage, and mutations of both.
fn fuzz_input(rng: &mut Rng, clients: &[Vec<u8>], servers: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![rng.next() as u8];
    for _ in 0..rng.below(8) {
        match rng.below(6) {
            0 => {
                let n = rng.below(64);
                out.extend(rng.bytes(n));
            }
            1 | 2 => out.extend(&clients[rng.below(clients.len())]),
            3 | 4 => out.extend(&servers[rng.below(servers.len())]),
            _ => {
                // A header with a random (often plausible) length.
                out.extend(MAGIC);
                out.extend((rng.below(300) as u32).to_le_bytes());
            }
        }
    }
    for _ in 0..rng.below(4) {
        if out.len() > 1 {
            let i = 1 + rng.below(out.len() - 1);
            match rng.below(3) {
                0 => out[i] ^= 1 << rng.below(8),
                1 => out[i] = rng.next() as u8,
                _ => out.truncate(i),
            }
        }
    }
    out
}

#[test]
fn fuzz_body_over_pseudo_random_inputs() {
    let clients: Vec<Vec<u8>> = client_samples()
        .iter()
        .map(|m| encode(m).unwrap())
        .collect();
    let servers: Vec<Vec<u8>> = server_samples()
        .iter()
        .map(|m| encode(m).unwrap())
        .collect();
    let mut rng = Rng(0xdead_beef);
    for _ in 0..4000 {
        let input = fuzz_input(&mut rng, &clients, &servers);
        fuzz::decoder(&input);
    }
    fuzz::decoder(&[]);
    fuzz::decoder(&[0]);
    fuzz::decoder(b"\x01VMCH\xff\xff\xff\xff");
}

/// Whatever an earlier session left in the stream (a frame cut after any of its bytes,
/// whole frames, a forged header announcing up to the handshake limit), a receiver
/// decoding under [`HANDSHAKE_MAX_FRAME`] finds the frame that follows the preamble.
#[test]
fn the_preamble_ends_any_leftover_of_an_earlier_session() {
    let greeting = ServerMessage::Hello(hello());
    let new_session = [&PREAMBLE[..], &encode(&greeting).unwrap()].concat();
    let chunk = encode(&ServerMessage::Chunk {
        id: 7,
        offset: 0,
        data: vec![0x56; 3000],
    })
    .unwrap();
    let small = encode(&ServerMessage::Synced { nonce: 1 }).unwrap();
    let mut rng = Rng(0x1234_5678);
    let mut leftovers: Vec<Vec<u8>> = Vec::new();
    for cut in 0..=chunk.len() {
        leftovers.push([&small[..], &chunk[..cut]].concat());
    }
    for cut in 0..=small.len() {
        leftovers.push(small[..cut].to_vec());
    }
    // Forged headers at the end of random bytes, announcing every size up to the limit,
    // and a header split after each of its bytes.
    for len in (0..=HANDSHAKE_MAX_FRAME).step_by(7) {
        let n = rng.below(50);
        let mut v = rng.bytes(n);
        v.extend_from_slice(&MAGIC);
        v.extend_from_slice(&len.to_le_bytes());
        let keep = v.len() - rng.below(HEADER_LEN);
        v.truncate(keep);
        leftovers.push(v);
    }
    for old in &leftovers {
        let stream = [&old[..], &new_session[..]].concat();
        let mut d = ServerDecoder::with_max_frame(HANDSHAKE_MAX_FRAME);
        d.push(&stream);
        let found = d.any(|e| e == Decoded::Message(greeting.clone()));
        assert!(
            found,
            "the greeting was swallowed after {} leftover bytes",
            old.len()
        );
    }
    // Without the handshake limit, a cut chunk swallows the greeting: the reason for it.
    let stream = [&chunk[..20], &new_session[..]].concat();
    let mut d = ServerDecoder::new();
    d.push(&stream);
    assert!(d.next().is_none());
}

#[test]
fn raising_the_limit_keeps_what_is_buffered() {
    let big = encode(&ServerMessage::Chunk {
        id: 1,
        offset: 0,
        data: vec![1; 5000],
    })
    .unwrap();
    let mut d = ServerDecoder::with_max_frame(HANDSHAKE_MAX_FRAME);
    d.push(&encode(&ServerMessage::Synced { nonce: 9 }).unwrap());
    assert!(matches!(
        d.next(),
        Some(Decoded::Message(ServerMessage::Synced { nonce: 9 }))
    ));
    d.set_max_frame(MAX_FRAME);
    d.push(&big[..100]);
    d.push(&big[100..]);
    assert!(matches!(
        d.next(),
        Some(Decoded::Message(ServerMessage::Chunk { id: 1, .. }))
    ));
    // Lowering it decides a waiting header again.
    d.push(&big[..100]);
    d.set_max_frame(HANDSHAKE_MAX_FRAME);
    assert_eq!(d.buffered(), 0);
}
