//! The sans-IO codec: [`FrameEncoder`] turns envelopes into frames in a reused buffer,
//! [`FrameDecoder`] turns bytes, pushed as they arrive, into checked envelopes.

use super::{
    ClusterKey, Envelope, Hello, Nonce, WireConfig, FLAG_TAGGED, HEADER_LEN, TAG_LEN, VERSION,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;

/// Why a received frame was refused. Each message is fit for a log line; the connection is
/// to be closed after any of them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("connection closed in the middle of a frame ({pending} bytes of it received)")]
    Truncated { pending: usize },
    #[error("frame announces {len} bytes, more than the maximum of {max}")]
    Oversized { len: u32, max: u32 },
    #[error("frame announces {len} bytes, fewer than the {min} its header and tag need")]
    TooShort { len: u32, min: u32 },
    #[error("frame has version {0}, this node speaks version {VERSION}")]
    UnknownVersion(u8),
    #[error("frame has unknown flags {0:#010b} (only bit 0, tagged, is defined)")]
    BadFlags(u8),
    #[error("frame has no tag, and this node requires a cluster key")]
    MissingTag,
    #[error("frame has a tag, and this node has no cluster key")]
    UnexpectedTag,
    #[error("frame {seq} has a wrong tag (another key, connection or position)")]
    BadTag { seq: u64 },
    #[error("frame payload is undecodable: {0}")]
    Undecodable(String),
    #[error("first frame is a {got}, expected a Hello")]
    ExpectedHello { got: &'static str },
    #[error("frame {seq} is a second Hello")]
    UnexpectedHello { seq: u64 },
    #[error("Hello carries this node's own nonce (a reflected connection)")]
    ReflectedNonce,
    #[error("message from {from:?} on the connection of {hello:?}")]
    SenderMismatch { hello: String, from: String },
    #[error("frame {seq} follows the peer's Leave")]
    AfterLeave { seq: u64 },
}

/// Why an envelope could not be turned into a frame. The encoder is unchanged by a failed
/// `encode`: the connection may go on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("the first frame on a connection must be a Hello, not a {got}")]
    HelloFirst { got: &'static str },
    #[error("a Hello was already sent on this connection")]
    HelloAgain,
    #[error("cannot tag a frame before the peer's Hello gave its nonce")]
    PeerNonceUnknown,
    #[error("nothing may be sent after Leave")]
    AfterLeave,
    #[error("a {kind} frame of {len} bytes exceeds the maximum of {max}")]
    Oversized {
        kind: &'static str,
        len: usize,
        max: u32,
    },
    #[error("cannot encode a {kind}: {reason}")]
    Unencodable { kind: &'static str, reason: String },
}

/// The sending half of a connection: numbers the frames it writes and tags them under the
/// cluster key, if any. The first envelope must be this node's [`Hello`]; with a key, a
/// later one needs the peer's nonce first ([`FrameEncoder::set_peer_nonce`]).
#[derive(Clone, Debug)]
pub struct FrameEncoder {
    max_frame_len: u32,
    key: Option<ClusterKey>,
    peer_nonce: Option<Nonce>,
    sent: u64,
    left: bool,
    buf: Vec<u8>,
}

impl FrameEncoder {
    pub fn new(config: &WireConfig) -> Self {
        FrameEncoder {
            max_frame_len: config.max_frame_len,
            key: config.key.clone(),
            peer_nonce: None,
            sent: 0,
            left: false,
            buf: Vec::new(),
        }
    }

    /// The nonce of the peer's [`Hello`], which tags every frame after this node's Hello.
    pub fn set_peer_nonce(&mut self, nonce: Nonce) {
        self.peer_nonce = Some(nonce);
    }

    /// The number of frames encoded so far (the sequence number of the next).
    pub fn frames_sent(&self) -> u64 {
        self.sent
    }

    /// The frame of `envelope`, in a buffer reused by the next call.
    pub fn encode<M: Serialize>(&mut self, envelope: &Envelope<M>) -> Result<&[u8], EncodeError> {
        let nonce = self.tag_nonce(envelope)?;
        let tag_len = if self.key.is_some() { TAG_LEN } else { 0 };
        let flags = if self.key.is_some() { FLAG_TAGGED } else { 0 };
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.extend_from_slice(&[0, 0, 0, 0, VERSION, flags]);
        let mut buf = postcard::to_extend(envelope, buf).map_err(|e| EncodeError::Unencodable {
            kind: envelope.kind(),
            reason: e.to_string(),
        })?;
        let len = buf.len() - 4 + tag_len;
        let Some(len_field) = u32::try_from(len)
            .ok()
            .filter(|&len| len <= self.max_frame_len)
        else {
            self.buf = buf;
            return Err(EncodeError::Oversized {
                kind: envelope.kind(),
                len,
                max: self.max_frame_len,
            });
        };
        buf[..4].copy_from_slice(&len_field.to_be_bytes());
        if let (Some(key), Some(nonce)) = (&self.key, nonce) {
            let tag = key.tag(&nonce, self.sent, &buf);
            buf.extend_from_slice(&tag);
        }
        self.sent += 1;
        self.left = matches!(envelope, Envelope::Leave);
        self.buf = buf;
        Ok(&self.buf)
    }

    /// Checks that `envelope` may come next; the nonce its tag is bound to, with a key.
    fn tag_nonce<M>(&self, envelope: &Envelope<M>) -> Result<Option<Nonce>, EncodeError> {
        if self.left {
            return Err(EncodeError::AfterLeave);
        }
        let nonce = match (self.sent, envelope) {
            (0, Envelope::Hello(hello)) => hello.nonce,
            (0, other) => return Err(EncodeError::HelloFirst { got: other.kind() }),
            (_, Envelope::Hello(_)) => return Err(EncodeError::HelloAgain),
            (_, _) if self.key.is_none() => return Ok(None),
            (_, _) => self.peer_nonce.ok_or(EncodeError::PeerNonceUnknown)?,
        };
        Ok(self.key.as_ref().map(|_| nonce))
    }
}

/// The receiving half of a connection: push bytes as they arrive, pull checked envelopes.
///
/// It checks every rule of the format (see the [module](super) docs): the header as soon as
/// its bytes are in, the tag against this node's nonce and the frame's number, the payload,
/// and the order (Hello first and once, nothing after Leave, one sender). After the first
/// error it stays failed and drops what it holds.
#[derive(Clone, Debug)]
pub struct FrameDecoder<M> {
    max_frame_len: u32,
    key: Option<ClusterKey>,
    own_nonce: Nonce,
    /// Received bytes; those before `start` are consumed.
    pending: Vec<u8>,
    start: usize,
    received: u64,
    peer: Option<Hello>,
    left: bool,
    failed: Option<FrameError>,
    message: PhantomData<fn() -> M>,
}

/// The first bytes of a frame, checked.
struct Header {
    /// Length prefix included.
    total: usize,
    tagged: bool,
}

impl<M: DeserializeOwned> FrameDecoder<M> {
    /// A decoder for a connection on which this node's Hello carries `own_nonce`.
    pub fn new(config: &WireConfig, own_nonce: Nonce) -> Self {
        FrameDecoder {
            max_frame_len: config.max_frame_len,
            key: config.key.clone(),
            own_nonce,
            pending: Vec::new(),
            start: 0,
            received: 0,
            peer: None,
            left: false,
            failed: None,
            message: PhantomData,
        }
    }

    /// Bytes as they came off the connection (ignored once the decoder has failed).
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buffer_for_read().extend_from_slice(bytes);
        }
    }

    /// The next complete envelope, `None` until more bytes are pushed, or why the stream is
    /// refused.
    pub fn pull(&mut self) -> Result<Option<Envelope<M>>, FrameError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let pulled = self.pull_checked();
        if let Err(error) = &pulled {
            self.failed = Some(error.clone());
            self.pending = Vec::new();
            self.start = 0;
        }
        pulled
    }

    /// The stream has ended: an error if it ended inside a frame (or the decoder failed).
    pub fn finish(&self) -> Result<(), FrameError> {
        match &self.failed {
            Some(error) => Err(error.clone()),
            None if self.buffered_len() > 0 => Err(FrameError::Truncated {
                pending: self.buffered_len(),
            }),
            None => Ok(()),
        }
    }

    /// The peer's Hello, once received.
    pub fn peer(&self) -> Option<&Hello> {
        self.peer.as_ref()
    }

    /// The number of frames accepted so far.
    pub fn frames_received(&self) -> u64 {
        self.received
    }

    /// Bytes received and not yet consumed by a frame.
    pub fn buffered_len(&self) -> usize {
        self.pending.len().saturating_sub(self.start)
    }

    /// The buffer to append received bytes to, consumed bytes dropped.
    pub(crate) fn buffer_for_read(&mut self) -> &mut Vec<u8> {
        if self.start > 0 {
            self.pending.drain(..self.start.min(self.pending.len()));
            self.start = 0;
        }
        &mut self.pending
    }

    fn pull_checked(&mut self) -> Result<Option<Envelope<M>>, FrameError> {
        let pending = self.pending.get(self.start..).unwrap_or_default();
        let Some(header) = self.header(pending)? else {
            return Ok(None);
        };
        let Some(frame) = pending.get(..header.total) else {
            return Ok(None);
        };
        let envelope = self.open(frame, header.tagged)?;
        self.start += header.total;
        self.received += 1;
        match &envelope {
            Envelope::Hello(hello) => self.peer = Some(hello.clone()),
            Envelope::Leave => self.left = true,
            Envelope::Msg { .. } | Envelope::Heartbeat => {}
        }
        Ok(Some(envelope))
    }

    /// The checked header at the start of `pending`; `None` while a byte needed to check it
    /// has not arrived. Each field is checked as soon as it is in.
    fn header(&self, pending: &[u8]) -> Result<Option<Header>, FrameError> {
        let Some(prefix) = pending.first_chunk::<4>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*prefix);
        if len > self.max_frame_len {
            return Err(FrameError::Oversized {
                len,
                max: self.max_frame_len,
            });
        }
        let min = (HEADER_LEN - 4) as u32;
        if len < min {
            return Err(FrameError::TooShort { len, min });
        }
        let Some(&version) = pending.get(4) else {
            return Ok(None);
        };
        if version != VERSION {
            return Err(FrameError::UnknownVersion(version));
        }
        let Some(&flags) = pending.get(5) else {
            return Ok(None);
        };
        if flags & !FLAG_TAGGED != 0 {
            return Err(FrameError::BadFlags(flags));
        }
        let tagged = flags & FLAG_TAGGED != 0;
        match (tagged, &self.key) {
            (false, Some(_)) => return Err(FrameError::MissingTag),
            (true, None) => return Err(FrameError::UnexpectedTag),
            _ => {}
        }
        let min = min + TAG_LEN as u32;
        if tagged && len < min {
            return Err(FrameError::TooShort { len, min });
        }
        let total = usize::try_from(len)
            .ok()
            .and_then(|len| len.checked_add(4))
            .ok_or(FrameError::Oversized {
                len,
                max: self.max_frame_len,
            })?;
        Ok(Some(Header { total, tagged }))
    }

    /// The envelope of a whole `frame` whose header is checked, once its tag, payload and
    /// place in the connection are.
    fn open(&self, frame: &[u8], tagged: bool) -> Result<Envelope<M>, FrameError> {
        let (signed, tag) = match tagged {
            true => frame
                .split_at_checked(frame.len().saturating_sub(TAG_LEN))
                .ok_or(FrameError::MissingTag)?,
            false => (frame, &[][..]),
        };
        let payload = signed.get(HEADER_LEN..).unwrap_or_default();
        let seq = self.received;
        if seq == 0 {
            // The Hello is tagged under its own nonce: read it first.
            let envelope = decode(payload)?;
            let Envelope::Hello(hello) = &envelope else {
                return Err(FrameError::ExpectedHello {
                    got: envelope.kind(),
                });
            };
            self.check_tag(&hello.nonce, seq, signed, tag)?;
            if hello.nonce == self.own_nonce {
                return Err(FrameError::ReflectedNonce);
            }
            return Ok(envelope);
        }
        if self.left {
            return Err(FrameError::AfterLeave { seq });
        }
        self.check_tag(&self.own_nonce, seq, signed, tag)?;
        let envelope = decode(payload)?;
        match (&envelope, &self.peer) {
            (Envelope::Hello(_), _) => Err(FrameError::UnexpectedHello { seq }),
            (Envelope::Msg { from, .. }, Some(hello)) if *from != hello.node => {
                Err(FrameError::SenderMismatch {
                    hello: hello.node.clone(),
                    from: from.clone(),
                })
            }
            _ => Ok(envelope),
        }
    }

    fn check_tag(
        &self,
        nonce: &Nonce,
        seq: u64,
        signed: &[u8],
        tag: &[u8],
    ) -> Result<(), FrameError> {
        match &self.key {
            Some(key) if !key.verify(nonce, seq, signed, tag) => Err(FrameError::BadTag { seq }),
            _ => Ok(()),
        }
    }
}

/// Exactly one envelope from `payload`.
fn decode<M: DeserializeOwned>(payload: &[u8]) -> Result<Envelope<M>, FrameError> {
    match postcard::take_from_bytes(payload) {
        Ok((envelope, [])) => Ok(envelope),
        Ok((_, rest)) => Err(FrameError::Undecodable(format!(
            "{} bytes after the envelope",
            rest.len()
        ))),
        Err(e) => Err(FrameError::Undecodable(e.to_string())),
    }
}
