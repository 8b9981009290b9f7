//! Varints and the record format: a header (its own size as a varint, then one serial type
//! per column as varints) and a body with the values in order.

use alloc::format;

use super::{SqliteError, corrupt};

/// An SQLite varint at `at`: its value and length (1 to 9 bytes; the ninth byte gives all
/// 8 of its bits). `None` when `b` ends first.
pub(super) fn varint(b: &[u8], at: usize) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for i in 0..9 {
        let byte = *b.get(at.checked_add(i)?)?;
        if i == 8 {
            return Some(((v << 8) | u64::from(byte), 9));
        }
        v = (v << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// One column's value in a record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// NULL (serial type 0; also a column past the record's end).
    Null,
    /// An integer (serial types 1-6, 8, 9).
    Integer(i64),
    /// A float (serial type 7).
    Real(f64),
    /// Text in the database's encoding (serial types 13 and up, odd);
    /// [`super::Database::decode_text`] decodes it.
    Text(&'a [u8]),
    /// A blob (serial types 12 and up, even).
    Blob(&'a [u8]),
}

impl Value<'_> {
    /// "NULL", "an integer", "a float", "text" or "a blob", for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Integer(_) => "an integer",
            Value::Real(_) => "a float",
            Value::Text(_) => "text",
            Value::Blob(_) => "a blob",
        }
    }
}

/// How many body bytes a serial type takes.
fn serial_size(t: u64) -> Result<u64, SqliteError> {
    Ok(match t {
        0 | 8 | 9 => 0,
        1..=4 => t,
        5 => 6,
        6 | 7 => 8,
        10 | 11 => return Err(corrupt(format!("reserved serial type {t} in a record"))),
        _ => (t - 12) / 2,
    })
}

/// One row's record, its header checked against the payload when made.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    payload: &'a [u8],
    /// Where the header's serial types start (after the header-size varint).
    types_at: usize,
    /// The header's size, where the body starts.
    header_len: usize,
}

impl<'a> Record<'a> {
    /// Checks that the header fits the payload and that the values it announces fit the body.
    pub fn new(payload: &'a [u8]) -> Result<Record<'a>, SqliteError> {
        let (h, n) = varint(payload, 0).ok_or_else(|| corrupt("record header size cut off"))?;
        if h > payload.len() as u64 {
            return Err(corrupt(format!(
                "record header of {h} bytes is longer than its {}-byte payload",
                payload.len()
            )));
        }
        let header_len = h as usize;
        if header_len < n {
            return Err(corrupt(format!("record header size {h} is too small")));
        }
        let record = Record {
            payload,
            types_at: n,
            header_len,
        };
        let mut body: u64 = 0;
        let mut at = n;
        while at < header_len {
            let (t, k) = record.serial_type(at)?;
            body = body.saturating_add(serial_size(t)?);
            at += k;
        }
        if body > (payload.len() - header_len) as u64 {
            return Err(corrupt(format!(
                "record body of {body} bytes is longer than the {} bytes after its header",
                payload.len() - header_len
            )));
        }
        Ok(record)
    }

    fn serial_type(&self, at: usize) -> Result<(u64, usize), SqliteError> {
        varint(&self.payload[..self.header_len], at)
            .ok_or_else(|| corrupt("a serial type runs past the record header"))
    }

    /// How many columns the record holds.
    pub fn len(&self) -> usize {
        let mut at = self.types_at;
        let mut n = 0;
        while let Ok((_, k)) = self.serial_type(at) {
            at += k;
            n += 1;
            if at >= self.header_len {
                break;
            }
        }
        n
    }

    /// Whether the record holds no column.
    pub fn is_empty(&self) -> bool {
        self.types_at >= self.header_len
    }

    /// Column `i` as stored in the record (NULL past the record's last column, as SQLite
    /// reads a row written before an `ALTER TABLE ADD COLUMN`). A rowid alias column is
    /// stored as NULL: see [`super::Table::value`].
    pub fn column(&self, i: usize) -> Result<Value<'a>, SqliteError> {
        let mut at = self.types_at;
        let mut body = self.header_len;
        for _ in 0..i {
            if at >= self.header_len {
                return Ok(Value::Null);
            }
            let (t, k) = self.serial_type(at)?;
            body += serial_size(t)? as usize;
            at += k;
        }
        if at >= self.header_len {
            return Ok(Value::Null);
        }
        let (t, _) = self.serial_type(at)?;
        let size = serial_size(t)? as usize;
        // `new` checked that every value fits the payload.
        let v = &self.payload[body..body + size];
        let int = |v: &[u8]| {
            let mut x: i64 = if v[0] & 0x80 != 0 { -1 } else { 0 };
            for &b in v {
                x = (x << 8) | i64::from(b);
            }
            x
        };
        Ok(match t {
            0 => Value::Null,
            1..=6 => Value::Integer(int(v)),
            7 => Value::Real(f64::from_bits(u64::from_be_bytes(
                v.try_into().unwrap_or([0; 8]),
            ))),
            8 => Value::Integer(0),
            9 => Value::Integer(1),
            t if t % 2 == 0 => Value::Blob(v),
            _ => Value::Text(v),
        })
    }
}
