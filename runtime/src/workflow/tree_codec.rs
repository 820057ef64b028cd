//! A compact binary form of the located YAML tree ([`Node`]), for the parse memo.
//!
//! Every node is written as
//!
//! ```text
//! node  := tag:u8  line:varint  column:varint  len:varint  raw:str  payload
//! str   := byte-length:varint  UTF-8 bytes
//! tag 0  Null                  payload: nothing
//! tag 1  Bool(false)           payload: nothing
//! tag 2  Bool(true)            payload: nothing
//! tag 3  Int                   payload: 16 bytes, little-endian two's complement
//! tag 4  Float                 payload: 8 bytes, the little-endian IEEE-754 bits
//! tag 5  Str                   payload: str
//! tag 6  Seq                   payload: count:varint  node*
//! tag 7  Map                   payload: count:varint  (key:node value:node)*
//! ```
//!
//! with varints in LEB128. [`decode`] treats its input as untrusted: it checks every length
//! against what is left, every string for UTF-8, nesting against [`MAX_DEPTH`], and that the
//! tree ends exactly where the bytes do. Anything else is `None`, never a panic.

use super::diagnostic::Span;
use super::node::{Node, Value};

/// Deepest nesting [`decode`] accepts. The parser stops at 32 levels, so a genuine tree
/// never comes near it; the limit keeps a forged one from exhausting the stack.
const MAX_DEPTH: usize = 64;

/// The fewest bytes a node can take (a tag, three one-byte varints and an empty `raw`),
/// which bounds how many elements a count can honestly claim.
const MIN_NODE_BYTES: usize = 5;

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const INT: u8 = 3;
const FLOAT: u8 = 4;
const STR: u8 = 5;
const SEQ: u8 = 6;
const MAP: u8 = 7;

/// Appends `node` to `out`.
pub(crate) fn encode(node: &Node, out: &mut Vec<u8>) {
    let tag = match &node.value {
        Value::Null => NULL,
        Value::Bool(false) => FALSE,
        Value::Bool(true) => TRUE,
        Value::Int(_) => INT,
        Value::Float(_) => FLOAT,
        Value::Str(_) => STR,
        Value::Seq(_) => SEQ,
        Value::Map(_) => MAP,
    };
    out.push(tag);
    for n in [node.span.line, node.span.column, node.span.len] {
        put_varint(out, n as u64);
    }
    put_str(out, &node.raw);
    match &node.value {
        Value::Null | Value::Bool(_) => {}
        Value::Int(i) => out.extend_from_slice(&i.to_le_bytes()),
        Value::Float(f) => out.extend_from_slice(&f.to_bits().to_le_bytes()),
        Value::Str(s) => put_str(out, s),
        Value::Seq(items) => {
            put_varint(out, items.len() as u64);
            for item in items {
                encode(item, out);
            }
        }
        Value::Map(entries) => {
            put_varint(out, entries.len() as u64);
            for (key, value) in entries {
                encode(key, out);
                encode(value, out);
            }
        }
    }
}

/// The tree that `bytes` encode, or `None` if they are not exactly one well-formed tree.
pub(crate) fn decode(bytes: &[u8]) -> Option<Node> {
    let mut reader = Reader { bytes, at: 0 };
    let node = reader.node(0)?;
    (reader.at == bytes.len()).then_some(node)
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let slice = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(slice)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn varint(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    fn usize(&mut self) -> Option<usize> {
        usize::try_from(self.varint()?).ok()
    }

    fn string(&mut self) -> Option<String> {
        let len = self.usize()?;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).ok().map(str::to_owned)
    }

    /// A count of elements of at least `min_bytes` each, refused if what is left could not
    /// hold them (so a forged count cannot make us allocate).
    fn count(&mut self, min_bytes: usize) -> Option<usize> {
        let n = self.usize()?;
        (n <= self.remaining() / min_bytes).then_some(n)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn node(&mut self, depth: usize) -> Option<Node> {
        if depth > MAX_DEPTH {
            return None;
        }
        let tag = self.byte()?;
        let span = Span {
            line: self.usize()?,
            column: self.usize()?,
            len: self.usize()?,
        };
        let raw = self.string()?;
        let value = match tag {
            NULL => Value::Null,
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            INT => Value::Int(i128::from_le_bytes(self.array()?)),
            FLOAT => Value::Float(f64::from_bits(u64::from_le_bytes(self.array()?))),
            STR => Value::Str(self.string()?),
            SEQ => {
                let n = self.count(MIN_NODE_BYTES)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.node(depth + 1)?);
                }
                Value::Seq(items)
            }
            MAP => {
                let n = self.count(2 * MIN_NODE_BYTES)?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    let key = self.node(depth + 1)?;
                    let value = self.node(depth + 1)?;
                    entries.push((key, value));
                }
                Value::Map(entries)
            }
            _ => return None,
        };
        Some(Node { value, span, raw })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::node;

    fn round_trip(source: &str) {
        let tree = node::parse(source).expect("parses");
        let mut bytes = Vec::new();
        encode(&tree, &mut bytes);
        assert_eq!(decode(&bytes).as_ref(), Some(&tree), "{source}");
    }

    #[test]
    fn every_kind_of_value_round_trips_with_its_span_and_spelling() {
        round_trip("");
        round_trip(
            "name: ci\n\
             a: ~\nb: null\nc:\nd: true\ne: false\n\
             f: 0x1F\ng: -170141183460469231731687303715884105728\nh: 1.50\ni: -0.0\nj: .inf\n\
             k: 'quoted'\nl: \"esc\\taped ✓\"\nm: |\n  block\n  text\n\
             n: [1, [2, {x: y}], []]\no: {}\n\
             base: &b {p: 1}\nuse: *b\n",
        );
    }

    #[test]
    fn a_float_keeps_its_exact_bits() {
        let source = "x: 0.1\ny: 1e308\nz: 5e-324\n";
        let tree = node::parse(source).expect("parses");
        let mut bytes = Vec::new();
        encode(&tree, &mut bytes);
        let back = decode(&bytes).expect("decodes");
        let bits = |n: &Node| match &n.value {
            Value::Map(entries) => entries
                .iter()
                .map(|(_, v)| match v.value {
                    Value::Float(f) => f.to_bits(),
                    _ => panic!("not a float: {v:?}"),
                })
                .collect::<Vec<_>>(),
            _ => panic!("not a map"),
        };
        assert_eq!(bits(&back), bits(&tree));
        assert_eq!(bits(&back)[0], 0.1f64.to_bits());
    }

    #[test]
    fn every_truncation_and_every_flipped_bit_is_refused_or_decodes_without_panicking() {
        let tree = node::parse("steps:\n  a: {task: x.wasm, args: [1, two]}\n").expect("parses");
        let mut bytes = Vec::new();
        encode(&tree, &mut bytes);
        for len in 0..bytes.len() {
            assert_eq!(decode(&bytes[..len]), None, "a prefix of {len} bytes");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert_eq!(decode(&extra), None, "a trailing byte");
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut flipped = bytes.clone();
                flipped[i] ^= 1 << bit;
                // Some flips still spell a well-formed tree (a different line number, say);
                // the memo's payload digest catches those. Decoding must only never panic.
                let _ = decode(&flipped);
            }
        }
    }

    #[test]
    fn forged_counts_and_nesting_are_refused_without_allocating_or_recursing_deeply() {
        // A sequence claiming u64::MAX elements in a 20-byte input.
        let mut huge = vec![SEQ, 1, 1, 1, 0];
        put_varint(&mut huge, u64::MAX);
        assert_eq!(decode(&huge), None);
        // 10,000 nested one-element sequences.
        let mut deep = Vec::new();
        for _ in 0..10_000 {
            deep.extend_from_slice(&[SEQ, 1, 1, 1, 0, 1]);
        }
        deep.extend_from_slice(&[NULL, 1, 1, 1, 0]);
        assert_eq!(decode(&deep), None);
        // An unknown tag, and a string that is not UTF-8.
        assert_eq!(decode(&[9, 1, 1, 1, 0]), None);
        assert_eq!(decode(&[STR, 1, 1, 1, 0, 2, 0xff, 0xfe]), None);
    }
}
