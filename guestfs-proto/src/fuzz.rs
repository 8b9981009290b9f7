//! The fuzz targets' bodies, here so that the property tests run them too (see
//! `fuzz/fuzz_targets/` and `tests/property.rs`).

use crate::call::{DecodeError, decode_call, encode_call};
use crate::frame::{Chunk, Event, FrameDecoder, Role, split_message};
use crate::procs::PROCEDURES;
use crate::reply::{decode_reply, encode_reply};

/// Feeds `data` (cut in two at a point given by its first byte) to an appliance-side and a
/// host-side [`FrameDecoder`]; every appliance-side frame goes through [`decode_call`] (a
/// decoded call must re-encode and decode back to itself; a refused one must have an error
/// reply that decodes) and [`Chunk::decode`]; every host-side frame through `decode_reply` for
/// a procedure picked by its length (a decoded value must re-encode and decode back).
pub fn decoder(data: &[u8]) {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let cut = (cut as usize * rest.len()) / 255;
    let (a, b) = rest.split_at(cut.min(rest.len()));
    for role in [Role::Appliance, Role::Host] {
        let mut d = FrameDecoder::new(role);
        for piece in [a, b] {
            d.push(piece);
            while let Some(ev) = d.next_event() {
                match ev {
                    Ok(Event::Frame(f)) if role == Role::Appliance => appliance_frame(&f),
                    Ok(Event::Frame(f)) => host_frame(&f),
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }
    }
}

fn appliance_frame(f: &[u8]) {
    let _ = Chunk::decode(f);
    match decode_call(f) {
        Ok(m) => {
            let re = encode_call(&m.call, m.header.serial);
            let again = decode_call(&re[4..]).expect("a re-encoded call decodes");
            assert_eq!(again.call, m.call, "call round trip");
        }
        Err(e @ DecodeError::Call { .. }) => {
            let r = e.reply().expect("an error reply");
            split_message(&r[4..]).expect("the error reply decodes");
        }
        Err(DecodeError::Frame(_)) => {}
    }
}

fn host_frame(f: &[u8]) {
    let info = &PROCEDURES[f.len() % PROCEDURES.len()];
    if let Ok(r) = decode_reply(info, f)
        && let Ok(ret) = r.result
    {
        let re = encode_reply(info, r.header.serial, &ret).expect("a decoded value fits");
        let again = decode_reply(info, &re[4..]).expect("a re-encoded reply decodes");
        // NaN percentages (lvm structs) are not equal to themselves: compare the bytes.
        let re2 = encode_reply(info, r.header.serial, &again.result.expect("ok")).unwrap();
        assert_eq!(re, re2, "reply round trip");
    }
}
