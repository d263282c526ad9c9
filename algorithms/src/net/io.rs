//! Thin tokio helpers: the codec over any `AsyncRead` / `AsyncWrite` (a `TcpStream` or its
//! halves).

use super::{EncodeError, Envelope, FrameDecoder, FrameEncoder, FrameError, Hello};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How much room a read asks for at a time.
const READ_CHUNK: usize = 4096;

/// Why a connection is to be closed.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad frame from the peer: {0}")]
    Frame(#[from] FrameError),
    #[error("cannot send: {0}")]
    Encode(#[from] EncodeError),
    #[error("the peer closed the connection before its Hello")]
    NoHello,
    #[error("the peer is in cluster {theirs:?}, this node in {ours:?}")]
    ClusterMismatch { ours: String, theirs: String },
}

/// The next envelope from `reader`, or `None` when the peer closed the connection between
/// two frames. Reads only what has arrived (a peer's length prefix never sizes a buffer).
///
/// Cancel safe: bytes read before a cancellation stay in `decoder`, so it may be a branch of
/// `tokio::select!`.
pub async fn read_frame<R, M>(
    reader: &mut R,
    decoder: &mut FrameDecoder<M>,
) -> Result<Option<Envelope<M>>, WireError>
where
    R: AsyncRead + Unpin,
    M: DeserializeOwned,
{
    loop {
        if let Some(envelope) = decoder.pull()? {
            return Ok(Some(envelope));
        }
        let buffer = decoder.buffer_for_read();
        buffer.reserve(READ_CHUNK);
        if reader.read_buf(buffer).await? == 0 {
            decoder.finish()?;
            return Ok(None);
        }
    }
}

/// Writes the frame of `envelope` and flushes. Not cancel safe: a cancelled write may leave
/// part of a frame on the connection, which must then be closed.
pub async fn write_frame<W, M>(
    writer: &mut W,
    encoder: &mut FrameEncoder,
    envelope: &Envelope<M>,
) -> Result<(), WireError>
where
    W: AsyncWrite + Unpin,
    M: Serialize,
{
    writer.write_all(encoder.encode(envelope)?).await?;
    writer.flush().await?;
    Ok(())
}

/// Opens a connection: sends `hello`, reads the peer's, refuses a peer of another cluster,
/// and gives `encoder` the peer's nonce. Both sides call it at once. The peer's Hello is
/// returned; with a key, the peer is proven live only by its next frame (see the module
/// docs). Wrap it in a timeout: a silent peer makes it wait forever.
pub async fn handshake<R, W, M>(
    reader: &mut R,
    writer: &mut W,
    encoder: &mut FrameEncoder,
    decoder: &mut FrameDecoder<M>,
    hello: &Hello,
) -> Result<Hello, WireError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    M: Serialize + DeserializeOwned,
{
    write_frame(writer, encoder, &Envelope::<M>::Hello(hello.clone())).await?;
    let peer = match read_frame(reader, decoder).await? {
        None => return Err(WireError::NoHello),
        Some(Envelope::Hello(peer)) => peer,
        Some(other) => return Err(FrameError::ExpectedHello { got: other.kind() }.into()),
    };
    if peer.cluster != hello.cluster {
        return Err(WireError::ClusterMismatch {
            ours: hello.cluster.clone(),
            theirs: peer.cluster,
        });
    }
    encoder.set_peer_nonce(peer.nonce);
    Ok(peer)
}
