//! A bounded reader and a small writer for the few pickle shapes the lab's protocol has:
//! tuples, lists and dicts of strings, integers, `None` and booleans.
//!
//! The reader is no unpickler: it builds [`Value`]s and never names, imports or calls
//! anything. It takes the opcodes that Python 3's `pickle.dumps` emits for those shapes under
//! protocols 2 to 5 (protocol 4, the default since Python 3.8, adds `FRAME`, `MEMOIZE` and
//! `SHORT_BINUNICODE`), and refuses every other one by name: `GLOBAL`, `STACK_GLOBAL`,
//! `REDUCE`, `INST`, `OBJ`, `NEWOBJ`, `BUILD`, `PERSID`, bytes, floats, sets... It also
//! refuses a pickle longer than its limit, a length field past the end of the input (before
//! allocating anything), containers nested deeper than [`MAX_DEPTH`], more than
//! [`MAX_VALUES`] values in all (memo gets included, so aliasing cannot multiply them), an
//! integer wider than 64 bits, and a memo get of a list or dict (a shared or self-containing
//! container, which the protocol never sends).
//!
//! ```
//! use conclave_algorithms::net::pickle::{read, write, Value, ReadError};
//! let join = Value::Tuple(vec![Value::str("JOIN"), Value::None]);
//! assert_eq!(read(&write(&join), 1024), Ok(join));
//! // pickle.dumps(os.system) under protocol 2: a GLOBAL, refused.
//! assert_eq!(read(b"\x80\x02cposix\nsystem\nq\x00.", 1024), Err(ReadError::Forbidden { opcode: b'c', name: "GLOBAL", at: 2 }));
//! ```

/// Containers nested deeper than this are refused (a JOIN is 3 deep).
pub const MAX_DEPTH: usize = 16;
/// More values than this in one pickle are refused (memo gets count their whole value).
pub const MAX_VALUES: usize = 10_000;

/// A value of the protocol's shapes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Str(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    /// Key and value pairs in the pickle's order (Python keeps insertion order).
    Dict(Vec<(Value, Value)>),
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(s.to_string())
    }

    /// How many values this one holds, itself included.
    fn count(&self) -> usize {
        1 + match self {
            Value::Tuple(v) | Value::List(v) => v.iter().map(Value::count).sum(),
            Value::Dict(kv) => kv.iter().map(|(k, v)| k.count() + v.count()).sum(),
            _ => 0,
        }
    }

    /// Containers nested in this one, itself included (a scalar is 0).
    fn depth(&self) -> usize {
        match self {
            Value::Tuple(v) | Value::List(v) => 1 + v.iter().map(Value::depth).max().unwrap_or(0),
            Value::Dict(kv) => {
                1 + kv
                    .iter()
                    .map(|(k, v)| k.depth().max(v.depth()))
                    .max()
                    .unwrap_or(0)
            }
            _ => 0,
        }
    }
}

/// Why a pickle was refused. `at` is the offset of the opcode in the input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("the pickle ends before its STOP opcode")]
    Incomplete,
    #[error("the pickle is longer than {max} bytes")]
    TooLong { max: usize },
    #[error("opcode {opcode:#04x} ({name}) at byte {at} is not allowed: the protocol has only tuples, lists, dicts, str, int, None and bool")]
    Forbidden {
        opcode: u8,
        name: &'static str,
        at: usize,
    },
    #[error("unknown opcode {opcode:#04x} at byte {at}")]
    Unknown { opcode: u8, at: usize },
    #[error("protocol {0} is not one of 2 to 5")]
    Protocol(u8),
    #[error("malformed pickle at byte {at}: {what}")]
    Malformed { at: usize, what: &'static str },
    #[error("containers nested deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("more than {MAX_VALUES} values")]
    TooManyValues,
    #[error("bytes after the STOP opcode")]
    TrailingBytes,
}

/// What sits on the unpickling stack: a value, or a MARK.
enum Slot {
    Mark,
    Value(Value),
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    stack: Vec<Slot>,
    memo: Vec<Option<Value>>,
    values: usize,
}

/// The one value of `input`, a whole pickle of at most `max_len` bytes. Returns
/// [`ReadError::Incomplete`] when `input` is a prefix of a pickle that may yet fit: a
/// reader of a stream reads more and calls again.
pub fn read(input: &[u8], max_len: usize) -> Result<Value, ReadError> {
    let mut r = Reader {
        input,
        pos: 0,
        stack: Vec::new(),
        memo: Vec::new(),
        values: 0,
    };
    let value = r.run().map_err(|e| match e {
        ReadError::Incomplete if input.len() >= max_len => ReadError::TooLong { max: max_len },
        e => e,
    })?;
    if r.pos > max_len {
        return Err(ReadError::TooLong { max: max_len });
    }
    if r.pos != input.len() {
        return Err(ReadError::TrailingBytes);
    }
    Ok(value)
}

/// The names of the opcodes a hostile pickle would use, for the refusal's message.
fn forbidden_name(opcode: u8) -> Option<&'static str> {
    Some(match opcode {
        b'c' => "GLOBAL",
        0x93 => "STACK_GLOBAL",
        b'R' => "REDUCE",
        b'i' => "INST",
        b'o' => "OBJ",
        0x81 => "NEWOBJ",
        0x92 => "NEWOBJ_EX",
        b'b' => "BUILD",
        b'P' => "PERSID",
        b'Q' => "BINPERSID",
        0x82..=0x84 => "EXT",
        b'G' | b'F' => "FLOAT",
        b'B' | b'C' | 0x8e => "BYTES",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        b'S' | b'T' | b'U' => "STRING",
        b'V' => "UNICODE",
        b'I' => "INT",
        b'L' => "LONG",
        0x8b => "LONG4",
        b'p' | b'g' => "PUT/GET (text)",
        b'0' | b'1' | b'2' => "POP/DUP",
        _ => return None,
    })
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], ReadError> {
        if self.input.len() - self.pos < n {
            return Err(ReadError::Incomplete);
        }
        let bytes = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn uint(&mut self, n: usize) -> Result<u64, ReadError> {
        let bytes = self.take(n)?;
        Ok(bytes
            .iter()
            .rev()
            .fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
    }

    fn malformed(&self, at: usize, what: &'static str) -> ReadError {
        ReadError::Malformed { at, what }
    }

    fn push(&mut self, value: Value) -> Result<(), ReadError> {
        if value.depth() > MAX_DEPTH {
            return Err(ReadError::TooDeep);
        }
        self.stack.push(Slot::Value(value));
        Ok(())
    }

    /// Counts `n` more values against [`MAX_VALUES`].
    fn count(&mut self, n: usize) -> Result<(), ReadError> {
        self.values += n;
        if self.values > MAX_VALUES {
            return Err(ReadError::TooManyValues);
        }
        Ok(())
    }

    fn pop(&mut self, at: usize) -> Result<Value, ReadError> {
        match self.stack.pop() {
            Some(Slot::Value(v)) => Ok(v),
            Some(Slot::Mark) => Err(self.malformed(at, "a MARK where a value belongs")),
            None => Err(self.malformed(at, "the stack is empty")),
        }
    }

    /// The values above the topmost MARK, which is removed.
    fn pop_mark(&mut self, at: usize) -> Result<Vec<Value>, ReadError> {
        let Some(mark) = self.stack.iter().rposition(|s| matches!(s, Slot::Mark)) else {
            return Err(self.malformed(at, "no MARK"));
        };
        let items = self
            .stack
            .drain(mark + 1..)
            .map(|s| match s {
                Slot::Value(v) => v,
                Slot::Mark => unreachable!("the topmost mark is at {mark}"),
            })
            .collect();
        self.stack.pop();
        Ok(items)
    }

    fn top_mut(&mut self, at: usize) -> Result<&mut Value, ReadError> {
        match self.stack.last_mut() {
            Some(Slot::Value(v)) => Ok(v),
            _ => Err(ReadError::Malformed {
                at,
                what: "no value on the stack",
            }),
        }
    }

    fn string(&mut self, len: u64, at: usize) -> Result<(), ReadError> {
        // The length is checked against what arrived before anything is allocated.
        let len = usize::try_from(len).map_err(|_| ReadError::Incomplete)?;
        let bytes = self.take(len)?;
        let s = std::str::from_utf8(bytes)
            .map_err(|_| ReadError::Malformed {
                at,
                what: "a string that is not UTF-8",
            })?
            .to_string();
        self.count(1)?;
        self.push(Value::Str(s))
    }

    fn memo_put(&mut self, index: usize, at: usize) -> Result<(), ReadError> {
        if index > MAX_VALUES {
            return Err(self.malformed(at, "a memo index past the value limit"));
        }
        let top = match self.stack.last() {
            Some(Slot::Value(v)) => v.clone(),
            _ => return Err(self.malformed(at, "nothing to memoize")),
        };
        if self.memo.len() <= index {
            self.memo.resize(index + 1, None);
        }
        self.memo[index] = Some(top);
        Ok(())
    }

    fn memo_get(&mut self, index: usize, at: usize) -> Result<(), ReadError> {
        let value = match self.memo.get(index) {
            Some(Some(v)) => v.clone(),
            _ => return Err(self.malformed(at, "a memo get of an index never put")),
        };
        if matches!(value, Value::List(_) | Value::Dict(_)) {
            return Err(self.malformed(at, "a memo get of a list or dict (a shared container)"));
        }
        self.count(value.count())?;
        self.push(value)
    }

    fn run(&mut self) -> Result<Value, ReadError> {
        loop {
            let at = self.pos;
            let opcode = self.take(1)?[0];
            match opcode {
                0x80 => {
                    let protocol = self.take(1)?[0];
                    if !(2..=5).contains(&protocol) {
                        return Err(ReadError::Protocol(protocol));
                    }
                }
                // FRAME: a length hint for buffering; the frame's bytes follow as opcodes.
                0x95 => {
                    self.take(8)?;
                }
                b'.' => {
                    let value = self.pop(at)?;
                    if !self.stack.is_empty() {
                        return Err(self.malformed(at, "values left on the stack at STOP"));
                    }
                    return Ok(value);
                }
                b'(' => {
                    if self
                        .stack
                        .iter()
                        .filter(|s| matches!(s, Slot::Mark))
                        .count()
                        >= MAX_DEPTH
                    {
                        return Err(ReadError::TooDeep);
                    }
                    self.stack.push(Slot::Mark);
                }
                b'N' => self.scalar(Value::None)?,
                0x88 => self.scalar(Value::Bool(true))?,
                0x89 => self.scalar(Value::Bool(false))?,
                b'K' => {
                    let n = self.uint(1)?;
                    self.scalar(Value::Int(n as i64))?
                }
                b'M' => {
                    let n = self.uint(2)?;
                    self.scalar(Value::Int(n as i64))?
                }
                b'J' => {
                    let n = self.uint(4)? as u32 as i32;
                    self.scalar(Value::Int(i64::from(n)))?
                }
                0x8a => self.long1(at)?,
                0x8c => {
                    let len = self.uint(1)?;
                    self.string(len, at)?
                }
                b'X' => {
                    let len = self.uint(4)?;
                    self.string(len, at)?
                }
                0x8d => {
                    let len = self.uint(8)?;
                    self.string(len, at)?
                }
                b')' => self.container(Value::Tuple(Vec::new()))?,
                b']' => self.container(Value::List(Vec::new()))?,
                b'}' => self.container(Value::Dict(Vec::new()))?,
                0x85..=0x87 => {
                    let n = usize::from(opcode - 0x84);
                    if self.stack.len() < n {
                        return Err(self.malformed(at, "a short tuple over too few values"));
                    }
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop(at)?);
                    }
                    items.reverse();
                    self.container(Value::Tuple(items))?
                }
                b't' => {
                    let items = self.pop_mark(at)?;
                    self.container(Value::Tuple(items))?
                }
                b'l' => {
                    let items = self.pop_mark(at)?;
                    self.container(Value::List(items))?
                }
                b'd' => {
                    let items = self.pop_mark(at)?;
                    let pairs = pairs(items).ok_or(self.malformed(at, "an odd dict"))?;
                    self.container(Value::Dict(pairs))?
                }
                b'a' => {
                    let item = self.pop(at)?;
                    self.extend(at, vec![item])?
                }
                b'e' | b'u' => {
                    let items = self.pop_mark(at)?;
                    self.extend(at, items)?
                }
                b's' => {
                    let value = self.pop(at)?;
                    let key = self.pop(at)?;
                    self.extend(at, vec![key, value])?
                }
                0x94 => {
                    let index = self.memo.len();
                    self.memo_put(index, at)?
                }
                b'q' => {
                    let index = self.uint(1)? as usize;
                    self.memo_put(index, at)?
                }
                b'r' => {
                    let index = self.uint(4)? as usize;
                    self.memo_put(index, at)?
                }
                b'h' => {
                    let index = self.uint(1)? as usize;
                    self.memo_get(index, at)?
                }
                b'j' => {
                    let index = self.uint(4)? as usize;
                    self.memo_get(index, at)?
                }
                _ => {
                    return Err(match forbidden_name(opcode) {
                        Some(name) => ReadError::Forbidden { opcode, name, at },
                        None => ReadError::Unknown { opcode, at },
                    })
                }
            }
        }
    }

    fn scalar(&mut self, value: Value) -> Result<(), ReadError> {
        self.count(1)?;
        self.push(value)
    }

    fn container(&mut self, value: Value) -> Result<(), ReadError> {
        self.count(1)?;
        self.push(value)
    }

    /// LONG1: a little-endian two's complement integer of up to 8 bytes here.
    fn long1(&mut self, at: usize) -> Result<(), ReadError> {
        let n = self.uint(1)? as usize;
        if n > 8 {
            return Err(self.malformed(at, "an integer wider than 64 bits"));
        }
        let bytes = self.take(n)?;
        let mut buf = if bytes.last().is_some_and(|&b| b & 0x80 != 0) {
            [0xff; 8]
        } else {
            [0; 8]
        };
        buf[..n].copy_from_slice(bytes);
        self.scalar(Value::Int(i64::from_le_bytes(buf)))
    }

    /// APPEND(S) or SETITEM(S): `items` go into the list or dict under them.
    fn extend(&mut self, at: usize, items: Vec<Value>) -> Result<(), ReadError> {
        let target = self.top_mut(at)?;
        match target {
            Value::List(list) => list.extend(items),
            Value::Dict(dict) => {
                let pairs = pairs(items).ok_or(ReadError::Malformed {
                    at,
                    what: "an odd number of dict items",
                })?;
                dict.extend(pairs);
            }
            _ => {
                return Err(ReadError::Malformed {
                    at,
                    what: "items added to a value that is no list or dict",
                })
            }
        }
        let top = self.stack.pop();
        match top {
            Some(Slot::Value(v)) => self.push(v),
            _ => unreachable!("top_mut found a value"),
        }
    }
}

fn pairs(items: Vec<Value>) -> Option<Vec<(Value, Value)>> {
    // Not `is_multiple_of`: the workspace's rust-version (1.86) predates it.
    if items.len() & 1 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Some(out)
}

/// `value` as a protocol 2 pickle, which any Python 3 reads with `pickle.loads`.
pub fn write(value: &Value) -> Vec<u8> {
    let mut out = vec![0x80, 2];
    write_value(value, &mut out);
    out.push(b'.');
    out
}

fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::None => out.push(b'N'),
        Value::Bool(true) => out.push(0x88),
        Value::Bool(false) => out.push(0x89),
        Value::Int(n) => write_int(*n, out),
        Value::Str(s) => {
            out.push(b'X');
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        Value::Tuple(items) => match items.len() {
            0 => out.push(b')'),
            n @ 1..=3 => {
                items.iter().for_each(|v| write_value(v, out));
                out.push(0x84 + n as u8);
            }
            _ => {
                out.push(b'(');
                items.iter().for_each(|v| write_value(v, out));
                out.push(b't');
            }
        },
        Value::List(items) => {
            out.push(b']');
            if !items.is_empty() {
                out.push(b'(');
                items.iter().for_each(|v| write_value(v, out));
                out.push(b'e');
            }
        }
        Value::Dict(pairs) => {
            out.push(b'}');
            if !pairs.is_empty() {
                out.push(b'(');
                for (k, v) in pairs {
                    write_value(k, out);
                    write_value(v, out);
                }
                out.push(b'u');
            }
        }
    }
}

fn write_int(n: i64, out: &mut Vec<u8>) {
    if (0..=0xff).contains(&n) {
        out.extend_from_slice(&[b'K', n as u8]);
    } else if (0..=0xffff).contains(&n) {
        out.push(b'M');
        out.extend_from_slice(&(n as u16).to_le_bytes());
    } else if let Ok(n) = i32::try_from(n) {
        out.push(b'J');
        out.extend_from_slice(&n.to_le_bytes());
    } else {
        // LONG1 with the fewest bytes that keep the sign.
        let bytes = n.to_le_bytes();
        let mut len = 8;
        while len > 1 {
            let (last, prev) = (bytes[len - 1], bytes[len - 2]);
            if (last == 0 && prev & 0x80 == 0) || (last == 0xff && prev & 0x80 != 0) {
                len -= 1;
            } else {
                break;
            }
        }
        out.extend_from_slice(&[0x8a, len as u8]);
        out.extend_from_slice(&bytes[..len]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(n: i64) -> Value {
        Value::Int(n)
    }

    /// `pickle.dumps(('JOIN', ((120, 4123456), ('127.0.0.1', 50001))))` under Python 3.11's
    /// default protocol (4): FRAME, SHORT_BINUNICODE, MEMOIZE.
    const JOIN_PROTOCOL_4: &[u8] = b"\x80\x04\x95&\x00\x00\x00\x00\x00\x00\x00\x8c\x04JOIN\x94KxJ@\xeb>\x00\x86\x94\x8c\t127.0.0.1\x94MQ\xc3\x86\x94\x86\x94\x86\x94.";

    #[test]
    fn reads_a_join_of_protocol_4() {
        let expected = Value::Tuple(vec![
            Value::str("JOIN"),
            Value::Tuple(vec![
                Value::Tuple(vec![int(120), int(4123456)]),
                Value::Tuple(vec![Value::str("127.0.0.1"), int(50001)]),
            ]),
        ]);
        assert_eq!(read(JOIN_PROTOCOL_4, 1024), Ok(expected.clone()));
        // The same under protocol 2 (Python 3.0 to 3.7 with protocol=2): BINUNICODE, BINPUT.
        let p2 = b"\x80\x02X\x04\x00\x00\x00JOINq\x00KxJ@\xeb>\x00\x86q\x01X\t\x00\x00\x00127.0.0.1q\x02MQ\xc3\x86q\x03\x86q\x04\x86q\x05.";
        assert_eq!(read(p2, 1024), Ok(expected));
    }

    #[test]
    fn every_prefix_is_incomplete_and_a_longer_input_trailing() {
        for n in 0..JOIN_PROTOCOL_4.len() {
            assert_eq!(
                read(&JOIN_PROTOCOL_4[..n], 1024),
                Err(ReadError::Incomplete),
                "{n}"
            );
        }
        let mut longer = JOIN_PROTOCOL_4.to_vec();
        longer.push(b'N');
        assert_eq!(read(&longer, 1024), Err(ReadError::TrailingBytes));
        assert_eq!(
            read(&JOIN_PROTOCOL_4[..20], 20),
            Err(ReadError::TooLong { max: 20 })
        );
    }

    #[test]
    fn writes_what_it_reads() {
        let v = Value::Dict(vec![
            (
                Value::Tuple(vec![int(300), int(2345678)]),
                Value::Tuple(vec![Value::str("127.0.0.1"), int(50003)]),
            ),
            (Value::None, Value::List(vec![Value::Bool(true), int(-1)])),
            (
                Value::Tuple(vec![int(1), int(2), int(3), int(4)]),
                Value::List(vec![int(i64::MIN), int(1 << 40), int(-129), int(70000)]),
            ),
        ]);
        assert_eq!(read(&write(&v), 1024), Ok(v));
    }

    #[test]
    fn refuses_huge_lengths_without_allocating() {
        // BINUNICODE8 announcing 2^63 bytes: incomplete (nothing allocated), then too long.
        let mut p = b"\x80\x04\x8d".to_vec();
        p.extend_from_slice(&(1u64 << 63).to_le_bytes());
        assert_eq!(read(&p, p.len()), Err(ReadError::TooLong { max: p.len() }));
        assert_eq!(read(&p, 4096), Err(ReadError::Incomplete));
    }

    #[test]
    fn refuses_deep_nesting_and_a_memo_bomb() {
        let mut deep = b"\x80\x02".to_vec();
        deep.push(b']');
        // Wrap the top in a 1-tuple, 20 times over.
        deep.extend(std::iter::repeat_n(0x85, 20));
        deep.push(b'.');
        assert_eq!(read(&deep, 1024), Err(ReadError::TooDeep));
        let marks = [b"\x80\x02".as_slice(), &[b'('; 40]].concat();
        assert_eq!(read(&marks, 1024), Err(ReadError::TooDeep));
        // A 3-tuple of a 3-tuple of ... of the same memoized tuple: 3^k values.
        let mut bomb = b"\x80\x02K\x01".to_vec();
        for _ in 0..12 {
            bomb.extend_from_slice(b"q\x00h\x00h\x00\x87");
        }
        bomb.push(b'.');
        assert_eq!(read(&bomb, 1024), Err(ReadError::TooManyValues));
    }

    #[test]
    fn refuses_a_shared_list() {
        // l = []; pickle.dumps((l, l), 2)
        let p = b"\x80\x02]q\x00h\x00\x86q\x01.";
        assert!(matches!(
            read(p, 1024),
            Err(ReadError::Malformed { at: 5, .. })
        ));
    }
}
