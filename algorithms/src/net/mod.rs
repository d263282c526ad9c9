//! The wire format of real nodes: length-prefixed, versioned frames over TCP, each carrying
//! one [`Envelope`] encoded with postcard, optionally authenticated with an HMAC-SHA256 tag
//! under a shared cluster key (feature `net`).
//!
//! This module holds the format and a sans-IO codec for it ([`FrameEncoder`],
//! [`FrameDecoder`]), the cluster key ([`ClusterKey`], loaded from `--cluster-key-file`), and
//! thin tokio helpers ([`read_frame`], [`write_frame`], [`handshake`]). It makes no decision
//! about roles: a bad frame is an error value ([`FrameError`]) that the runtime logs before
//! closing the connection; no input makes the codec panic, and no byte of a rejected frame
//! reaches an algorithm.
//!
//! ```
//! use conclave_algorithms::bully::BullyMsg;
//! use conclave_algorithms::net::{ClusterKey, Envelope, FrameDecoder, FrameEncoder, Hello, WireConfig};
//!
//! let key = ClusterKey::from_bytes(b"sixteen byte key, or longer").unwrap();
//! let config = WireConfig::new(Some(key));
//! // Node a's sending half, and node b's receiving half, of one connection.
//! let (a_nonce, b_nonce) = ([1; 16], [2; 16]);
//! let mut a_out = FrameEncoder::new(&config);
//! let mut b_in = FrameDecoder::<BullyMsg>::new(&config, b_nonce);
//!
//! let hello = Hello::new("lab", "a", a_nonce);
//! b_in.push(a_out.encode(&Envelope::<BullyMsg>::Hello(hello.clone())).unwrap());
//! assert_eq!(b_in.pull().unwrap(), Some(Envelope::Hello(hello)));
//!
//! a_out.set_peer_nonce(b_nonce); // learnt from b's Hello
//! let election = Envelope::Msg { from: "a".to_string(), msg: BullyMsg::Election };
//! let frame = a_out.encode(&election).unwrap().to_vec();
//! b_in.push(&frame);
//! assert_eq!(b_in.pull().unwrap(), Some(election));
//!
//! // The same bytes again (a replay) fail: the tag covers the frame's sequence number.
//! b_in.push(&frame);
//! assert!(b_in.pull().is_err());
//! ```
//!
//! # The format, for a compatible peer
//!
//! A connection is a TCP stream of frames. Each side's first frame is a `Hello`; the two sides
//! send theirs at once, without waiting for the other's. A frame is:
//!
//! | bytes | field |
//! | --- | --- |
//! | 4 | `len`: big-endian u32, the number of bytes that follow (header, payload and tag) |
//! | 1 | version: 1 ([`VERSION`]) |
//! | 1 | flags: bit 0 set = the frame ends in a tag; every other bit must be 0 |
//! | `len - 2` (`- 32` if tagged) | payload: one [`Envelope`] in postcard |
//! | 32 | tag, when bit 0 of the flags is set: HMAC-SHA256, below |
//!
//! A receiver rejects a frame, and closes the connection, when: `len` exceeds its maximum
//! ([`DEFAULT_MAX_FRAME_LEN`] = 65,536 unless configured; checked as soon as the 4 length
//! bytes arrive, so nothing is allocated on the peer's word); `len` is below 2, or below 34
//! for a tagged frame; the version is not 1 (checked as soon as that byte arrives, as are the
//! flags); a flag bit other than bit 0 is set; the frame is untagged and this node has a
//! cluster key, or tagged and it has none; the tag is wrong; the payload is not exactly one
//! `Envelope` (trailing bytes included); the first frame is not a `Hello`, or a later one is;
//! a `Msg` names another sender than the `Hello` did; any frame follows a `Leave`; the
//! stream ends in the middle of a frame. After the first error a [`FrameDecoder`] stays
//! failed.
//!
//! ## Payload (postcard)
//!
//! Postcard (<https://postcard.jamesmunns.com/wire-format>) writes unsigned integers (u16 and
//! wider) as LEB128 varints, signed ones zigzagged first, `u8` as one raw byte, a string or a
//! `Vec` as a varint length then its UTF-8 bytes or elements, a fixed array as its elements
//! alone, `Option` as a byte 0 or 1 then the value, an enum as the varint index of its variant
//! then the variant's fields in order, a struct as its fields in order. An `Envelope` is:
//!
//! | variant | index | fields |
//! | --- | --- | --- |
//! | `Hello` | 0 | `cluster`: string, `node`: string, `nonce`: 16 raw bytes, `version`: string |
//! | `Msg` | 1 | `from`: string (the sender's member name), `msg`: the algorithm's message |
//! | `Leave` | 2 | none |
//! | `Heartbeat` | 3 | none |
//!
//! The message is the algorithm's own type in postcard: `BullyMsg::Election` is the single
//! byte `00`, `BullyMsg::HeartbeatAck { processes: vec![Pid(0), Pid(300)] }` is
//! `04 02 00 ac 02` (variant 4, two elements, 0 and 300 as varints).
//!
//! An untagged `Hello { cluster: "c", node: "a", nonce: [0; 16], version: "0.1.0" }` is
//! `00 00 00 1d 01 00` then the payload `00 01 63 01 61`, sixteen `00`, `05 30 2e 31 2e 30`.
//!
//! `from` is the member's name rather than its [`Pid`](crate::Pid): a Pid is an index into a
//! node's own member list, which two nodes may order differently, and a name is what the
//! `Hello` already carries (the receiver checks the two agree). The few bytes it costs do not
//! matter at election traffic rates. `Leave` tells the peer that the sender is leaving on
//! purpose (its last messages came before it), so the peer need not treat the closed
//! connection as a crash. `Heartbeat` says only that the sender is alive: the runtime's
//! failure detector sends it for algorithms that assume one (its sender is the one that said
//! `Hello`); it never reaches an algorithm.
//!
//! ## Authentication (when a cluster key is set)
//!
//! Each side draws a fresh random 16-byte nonce per connection ([`random_nonce`]) and sends it
//! in its `Hello`. Each side numbers the frames it sends on the connection 0, 1, 2, ... (its
//! `Hello` is 0); the number is not sent. The tag of frame number `seq` is
//!
//! ```text
//! HMAC-SHA256(key, nonce || seq as 8 bytes big-endian || every byte of the frame before the tag)
//! ```
//!
//! where the frame's bytes start with its 4 length bytes, and `nonce` is the *receiver's*
//! nonce (from the receiver's `Hello`) for every frame after the `Hello`, and the *sender's
//! own* nonce (the one inside it) for the `Hello` itself, which is sent before the receiver's
//! nonce is known. The receiver checks each tag in constant time against its own nonce and
//! the number of frames it has received so far. So a frame recorded on one connection fails
//! on any other (another nonce), and a frame dropped, repeated or reordered fails on the same
//! one (another number). A `Hello` carrying the receiver's own nonce is refused, which defeats
//! a peer reflecting a node's frames back to it.
//!
//! A `Hello`'s tag proves its sender knew the key at some time, not that it is live: a
//! recorded `Hello` can be replayed, but nothing after it can be, since every later frame is
//! tagged under the receiver's fresh nonce. A runtime should therefore take a peer as
//! authenticated, and up, from its first frame after the `Hello`, not from the `Hello`.
//!
//! The key is the content of the key file, less one trailing `\n` or `\r\n`
//! ([`ClusterKey::load`]), at least 16 bytes. An untagged peer, or a stray process with a
//! higher priority but without the key, cannot get a single message accepted.

pub mod conform;
pub mod discovery;
pub mod flags;
mod frame;
pub mod gcd_wire;
mod host;
mod io;
mod key;
pub mod lab;
pub mod pickle;
pub mod ports;
pub mod report;
pub mod runtime;

pub use frame::{EncodeError, FrameDecoder, FrameEncoder, FrameError};
pub use io::{handshake, read_frame, write_frame, WireError};
pub use key::{ClusterKey, KeyError, MIN_KEY_LEN};

use serde::{Deserialize, Serialize};

/// The frame format's version byte.
pub const VERSION: u8 = 1;
/// Bit 0 of the flags byte: the frame ends in a [`TAG_LEN`]-byte HMAC-SHA256 tag.
pub const FLAG_TAGGED: u8 = 0b0000_0001;
/// The length of the tag of a tagged frame.
pub const TAG_LEN: usize = 32;
/// The bytes of a frame before its payload: 4 of length, the version, the flags.
pub const HEADER_LEN: usize = 6;
/// The largest `len` (bytes after the length prefix) a peer may announce, unless configured.
pub const DEFAULT_MAX_FRAME_LEN: u32 = 64 * 1024;

/// A per-connection random number, sent in [`Hello`] and bound into the peer's tags.
pub type Nonce = [u8; 16];

/// A fresh nonce from the operating system's random source.
pub fn random_nonce() -> std::io::Result<Nonce> {
    let mut nonce = [0; 16];
    getrandom::fill(&mut nonce)
        .map_err(|e| std::io::Error::other(format!("cannot draw a random nonce: {e}")))?;
    Ok(nonce)
}

/// What travels in one frame. `M` is the algorithm's message type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Envelope<M> {
    /// The first frame each side sends on a connection.
    Hello(Hello),
    /// A message of the algorithm, from the member named `from` (the one that said `Hello`).
    Msg { from: String, msg: M },
    /// The sender leaves on purpose and sends nothing more on this connection.
    Leave,
    /// The sender is alive (the runtime's failure detector; see [`runtime`]).
    Heartbeat,
}

impl<M> Envelope<M> {
    /// The variant's name, for log lines.
    pub fn kind(&self) -> &'static str {
        match self {
            Envelope::Hello(_) => "Hello",
            Envelope::Msg { .. } => "Msg",
            Envelope::Leave => "Leave",
            Envelope::Heartbeat => "Heartbeat",
        }
    }
}

/// Who is speaking: the payload of a connection's first frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The cluster's name; a peer of another cluster is refused by [`handshake`].
    pub cluster: String,
    /// The sender's member name.
    pub node: String,
    /// The sender's nonce for this connection.
    pub nonce: Nonce,
    /// The sender's software version, for log lines (the format's version is [`VERSION`]).
    pub version: String,
}

impl Hello {
    /// A Hello with this crate's version.
    pub fn new(cluster: &str, node: &str, nonce: Nonce) -> Self {
        Hello {
            cluster: cluster.to_string(),
            node: node.to_string(),
            nonce,
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// What both halves of a connection need to agree on with the peer: the largest frame and
/// the cluster key, if any.
#[derive(Clone, Debug)]
pub struct WireConfig {
    /// The largest `len` a frame may announce (bytes after the 4 length bytes), sent or
    /// received.
    pub max_frame_len: u32,
    /// With a key, every frame is tagged and untagged frames are refused; without one,
    /// tagged frames are refused.
    pub key: Option<ClusterKey>,
}

impl WireConfig {
    /// Frames of at most [`DEFAULT_MAX_FRAME_LEN`], tagged when a key is given.
    pub fn new(key: Option<ClusterKey>) -> Self {
        WireConfig {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            key,
        }
    }
    /// The same with another maximum frame length.
    pub fn with_max_frame_len(mut self, max_frame_len: u32) -> Self {
        self.max_frame_len = max_frame_len;
        self
    }
}
