//! The agent on a port: splitting, replies in order, flush, oversize, back-pressure,
//! shutdown, disconnects, garbage.

use alloc::vec::Vec;

use serde_json::{Value, json};

use super::*;
use crate::power::PowerAction;
use crate::rtc::RtcError;
use crate::virtio_console::control::{HostMessage, encode_host};
use crate::virtio_console::ports::{DEFAULT_RX_CAPACITY, DEFAULT_TX_CAPACITY};

struct NoClock;

impl WallTime for NoClock {
    fn unix_ns(&self) -> Result<i64, RtcError> {
        Err(RtcError::Absent)
    }
}

struct Rig {
    mp: Multiport,
    h: PortHandle,
    agent: GuestAgent,
    power: PowerRequests,
}

impl Rig {
    fn new() -> Self {
        let mut mp = Multiport::new(2);
        mp.device_ready(true);
        mp.handle_control(&encode_host(&HostMessage::PortAdd(1)))
            .unwrap();
        mp.port_set_up(1, true);
        let h = mp.open(1).unwrap();
        mp.handle_control(&encode_host(&HostMessage::PortOpen(1, true)))
            .unwrap();
        let power = PowerRequests::new();
        let agent = GuestAgent::new(Rc::new(Config {
            host_name: "rig".into(),
            clock: Rc::new(NoClock),
            power: power.clone(),
        }));
        Rig {
            mp,
            h,
            agent,
            power,
        }
    }

    /// Delivers `bytes` (as much as the port takes) and polls until the agent is idle.
    fn send(&mut self, bytes: &[u8]) {
        let mut off = 0;
        while off < bytes.len() {
            let n = self.mp.rx_space(1).min(bytes.len() - off);
            assert!(n > 0, "the agent stopped reading");
            self.mp.deliver(1, &bytes[off..off + n]);
            off += n;
            while self.agent.poll(&mut self.mp, self.h) {}
        }
        while self.agent.poll(&mut self.mp, self.h) {}
    }

    /// Everything the agent wrote so far.
    fn output(&mut self) -> Vec<u8> {
        self.mp.take_tx(1, usize::MAX)
    }

    /// The agent's replies so far, one JSON value per line; delimited replies are marked
    /// by wrapping them in `{"delimited": reply}`.
    fn replies(&mut self) -> Vec<Value> {
        let out = self.output();
        assert!(out.is_empty() || out.ends_with(b"\n"), "a reply was cut");
        out.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|line| match line.strip_prefix(&[reply::SENTINEL]) {
                Some(rest) => {
                    json!({ "delimited": serde_json::from_slice::<Value>(rest).unwrap() })
                }
                None => serde_json::from_slice(line).unwrap(),
            })
            .collect()
    }
}

fn sync(id: i64) -> Vec<u8> {
    format!(r#"{{"execute":"guest-sync","arguments":{{"id":{id}}}}}"#).into_bytes()
}

#[test]
fn several_requests_per_read_and_split_across_reads() {
    let mut rig = Rig::new();
    let mut stream = Vec::new();
    for id in 0..50 {
        stream.extend(sync(id));
        if id % 3 == 0 {
            stream.extend_from_slice(b"\r\n");
        }
    }
    // Odd-sized reads cut requests anywhere.
    for chunk in stream.chunks(7) {
        rig.send(chunk);
    }
    let ids: Vec<Value> = rig
        .replies()
        .into_iter()
        .map(|r| r["return"].clone())
        .collect();
    assert_eq!(ids, (0..50).map(Value::from).collect::<Vec<_>>());
}

#[test]
fn every_command_over_the_port() {
    let mut rig = Rig::new();
    rig.send(
        br#"{"execute":"guest-ping"}{"execute":"guest-info"}{"execute":"guest-get-osinfo"}
{"execute":"guest-get-host-name"}{"execute":"guest-get-time"}{"execute":"guest-get-users"}
{"execute":"guest-sync-delimited","arguments":{"id":77}}{"execute":"guest-sync","arguments":{"id":78}}"#,
    );
    let r = rig.replies();
    assert_eq!(r.len(), 8, "{r:?}");
    assert_eq!(r[0], json!({"return": {}}));
    assert_eq!(
        r[1]["return"]["supported_commands"]
            .as_array()
            .unwrap()
            .len(),
        9
    );
    assert_eq!(r[2]["return"]["id"], json!("vmchannel"));
    assert_eq!(r[3], json!({"return": {"host-name": "rig"}}));
    assert_eq!(r[4]["error"]["class"], json!("GenericError"));
    assert_eq!(r[5], json!({"return": []}));
    assert_eq!(r[6], json!({"delimited": {"return": 77}}));
    assert_eq!(r[7], json!({"return": 78}));
}

#[test]
fn sync_delimited_starts_with_the_sentinel_byte() {
    let mut rig = Rig::new();
    rig.send(br#"{"execute":"guest-sync-delimited","arguments":{"id":5}}"#);
    assert_eq!(rig.output(), b"\xff{\"return\":5}\n");
}

#[test]
fn flush_byte_discards_the_partial_request() {
    let mut rig = Rig::new();
    rig.send(br#"{"execute":"guest-shutdown","argu"#);
    rig.send(b"\xff");
    assert!(rig.output().is_empty(), "a flush is silent");
    // A client's usual resync: 0xFF, then guest-sync-delimited.
    rig.send(b"\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":1}}");
    assert_eq!(rig.replies(), [json!({"delimited": {"return": 1}})]);
    assert_eq!(
        rig.power.pending(),
        None,
        "the cut-off shutdown must not run"
    );
}

#[test]
fn bad_json_and_non_objects_get_one_error_each() {
    let mut rig = Rig::new();
    rig.send(b"{\"execute\":guest-ping}\n42 [1] }}} {\"execute\":\"guest-ping\"}");
    let r = rig.replies();
    let descs: Vec<&str> = r
        .iter()
        .map(|v| v["error"]["desc"].as_str().unwrap_or("ok"))
        .collect();
    assert_eq!(r.len(), 5, "{r:?}");
    assert!(descs[0].starts_with("JSON parse error, "), "{descs:?}");
    assert_eq!(descs[1], "QMP input must be a JSON object");
    assert_eq!(descs[2], "QMP input must be a JSON object");
    assert!(descs[3].starts_with("JSON parse error, "), "{descs:?}");
    assert_eq!(r[4], json!({"return": {}}));
}

#[test]
fn oversized_request_gets_one_error_and_the_next_one_is_served() {
    let mut rig = Rig::new();
    let mut big = br#"{"execute":"guest-sync","arguments":{"id":1,"pad":""#.to_vec();
    big.extend(core::iter::repeat_n(b'a', 3 * MAX_REQUEST));
    big.extend_from_slice(br#""}}"#);
    rig.send(&big);
    rig.send(&sync(2));
    let r = rig.replies();
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(
        r[0]["error"]["desc"],
        json!(format!(
            "JSON parse error, request longer than {MAX_REQUEST} bytes"
        ))
    );
    assert_eq!(r[1], json!({"return": 2}));
    // The largest request accepted is exactly the limit.
    let mut fits = br#"{"execute":"guest-ping","id":""#.to_vec();
    fits.extend(core::iter::repeat_n(b'b', MAX_REQUEST - fits.len() - 2));
    fits.extend_from_slice(br#""}"#);
    assert_eq!(fits.len(), MAX_REQUEST);
    rig.send(&fits);
    assert_eq!(rig.replies()[0]["return"], json!({}));
}

#[test]
fn shutdown_is_recorded_not_answered_and_ends_the_service() {
    for (mode, action) in [
        ("powerdown", PowerAction::PowerOff),
        ("halt", PowerAction::Halt),
        ("reboot", PowerAction::Reboot),
    ] {
        let mut rig = Rig::new();
        rig.send(&sync(1));
        rig.send(
            format!(
                r#"{{"execute":"guest-shutdown","arguments":{{"mode":"{mode}"}}}}{{"execute":"guest-ping"}}"#
            )
            .as_bytes(),
        );
        assert_eq!(rig.power.pending(), Some(action));
        assert!(rig.agent.stopped());
        // The reply before the shutdown went out; nothing after it is served.
        assert_eq!(rig.replies(), [json!({"return": 1})]);
        rig.send(&sync(3));
        assert!(rig.output().is_empty());
    }
}

#[test]
fn a_host_that_does_not_read_stops_the_agent_reading() {
    let mut rig = Rig::new();
    // Each `{}` costs 3 bytes in and about 60 out. Nobody takes the output.
    let flood: Vec<u8> = b"{}".repeat(4096);
    let mut delivered = 0usize;
    loop {
        let room = rig.mp.rx_space(1);
        if room == 0 {
            break;
        }
        let n = room.min(flood.len());
        rig.mp.deliver(1, &flood[..n]);
        delivered += n;
        while rig.agent.poll(&mut rig.mp, rig.h) {}
        assert!(
            delivered < 64 * DEFAULT_RX_CAPACITY,
            "the agent never stopped"
        );
    }
    // The port's transmit buffer is full, the agent holds at most one round of replies, and
    // the rest waits in the port's receive buffer.
    assert!(rig.agent.pending() <= OUT_HIGH + 256);
    assert!(!rig.agent.poll(&mut rig.mp, rig.h));
    let out = rig.output();
    assert_eq!(out.len(), DEFAULT_TX_CAPACITY);
    // Once the host reads, it flows again.
    assert!(rig.agent.poll(&mut rig.mp, rig.h));
}

#[test]
fn one_poll_does_bounded_work() {
    let mut rig = Rig::new();
    let requests: Vec<u8> = sync(1).repeat(4000);
    rig.mp.deliver(1, &requests);
    assert!(rig.agent.poll(&mut rig.mp, rig.h));
    let answered = rig.replies().len();
    let per_request = sync(1).len();
    assert!(answered > 0);
    assert!(
        answered <= MAX_ROUNDS * READ_STEP / per_request + 1,
        "{answered} answered in one poll"
    );
}

#[test]
fn a_disconnect_drops_the_partial_request_and_unsent_replies() {
    let mut rig = Rig::new();
    rig.send(br#"{"execute":"guest-sync","arguments":{"id":"#);
    rig.mp
        .handle_control(&encode_host(&HostMessage::PortOpen(1, false)))
        .unwrap();
    rig.agent.event(&PortEvent::HostDisconnected(1));
    rig.mp
        .handle_control(&encode_host(&HostMessage::PortOpen(1, true)))
        .unwrap();
    // Had the old fragment survived, this would complete it into an odd request.
    rig.send(b"9}}");
    rig.send(&sync(4));
    let r = rig.replies();
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(
        r[0]["error"]["desc"]
            .as_str()
            .unwrap()
            .starts_with("JSON parse error")
    );
    assert_eq!(r[1], json!({"return": 4}));
}

#[test]
fn garbage_never_panics_and_every_reply_is_one_json_line() {
    let mut rig = Rig::new();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let alphabet = b"{}[]\":,\\ \n\xffabcexut-019.";
    for round in 0..200 {
        let mut bytes = Vec::new();
        for _ in 0..512 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let b = if round % 2 == 0 {
                alphabet[(seed % alphabet.len() as u64) as usize]
            } else {
                seed as u8
            };
            bytes.push(b);
        }
        rig.send(&bytes);
        for line in rig
            .output()
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
        {
            let line = line.strip_prefix(&[reply::SENTINEL]).unwrap_or(line);
            let v: Value = serde_json::from_slice(line).expect("a JSON reply");
            assert!(v.get("return").is_some() || v.get("error").is_some(), "{v}");
        }
    }
    // The splitter ends in a known state after a flush: service goes on.
    rig.send(b"\xff");
    rig.send(&sync(8));
    let last = rig.replies();
    assert_eq!(last.last(), Some(&json!({"return": 8})));
}

#[test]
fn host_name_from_the_command_line() {
    assert_eq!(host_name(&Cmdline::new("loglevel=debug")), "vmchannel");
    assert_eq!(host_name(&Cmdline::new("hostname=")), "vmchannel");
    assert_eq!(host_name(&Cmdline::new("hostname=\"box 1\" x")), "box 1");
}
