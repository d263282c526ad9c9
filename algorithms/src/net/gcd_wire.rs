//! The group coordinator daemon's requests and answers over Conclave's frames (`conclave gcd
//! --wire conclave`, the default), and the client side: [`request`]. The daemon
//! (`conclave_services::gcd`) answers them; `conclave-node --gcd ADDR` joins with them.
//!
//! A connection opens with the node's `Hello` (any cluster name, no cluster key); the daemon
//! answers with its own `Hello` (same cluster, node `gcd`). Then each request gets one
//! answer, on the same connection, until the node closes it or sends `Leave`. A frame the
//! codec refuses (an unknown request variant included: postcard cannot decode it) closes the
//! connection with a log line; a request with bad values is answered
//! [`GcdAnswer::Refused`] and changes nothing.
//!
//! ```no_run
//! # async fn f() -> Result<(), conclave_algorithms::net::WireError> {
//! use conclave_algorithms::net::gcd_wire::{request, GcdAnswer, GcdRequest};
//! let join = GcdRequest::Join { days: 120, student_id: 4_123_456, host: "127.0.0.1".into(), port: 50001 };
//! let answer = request("127.0.0.1:50550".parse().unwrap(), "alice", &join).await?;
//! assert!(matches!(answer, GcdAnswer::Members(_)));
//! # Ok(()) }
//! ```

use super::{
    random_nonce, read_frame, write_frame, Envelope, FrameDecoder, FrameEncoder, Hello, WireConfig,
    WireError,
};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use tokio::net::TcpStream;

/// What a node asks the daemon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GcdRequest {
    /// Join (or join again, from a new address) and get every member.
    Join {
        days: u32,
        student_id: u32,
        host: String,
        port: u16,
    },
    /// Every member, without joining.
    Members,
}

/// A member as the daemon lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub days: u32,
    pub student_id: u32,
    pub host: String,
    pub port: u16,
}

/// The daemon's answer to one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GcdAnswer {
    /// Every member, in identity order (the joiner included).
    Members(Vec<Member>),
    /// The request was refused, and changed nothing: why.
    Refused(String),
}

/// One request on a fresh connection, as node `node`: handshake, request, answer, `Leave`.
/// Wrap it in a timeout: a silent daemon makes it wait.
pub async fn request(
    addr: SocketAddr,
    node: &str,
    request: &GcdRequest,
) -> Result<GcdAnswer, WireError> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut reader, mut writer) = stream.into_split();
    let config = WireConfig::new(None);
    let nonce = random_nonce()?;
    let mut encoder = FrameEncoder::new(&config);
    let mut decoder = FrameDecoder::<GcdAnswer>::new(&config, nonce);
    let hello = Hello::new("gcd", node, nonce);
    super::handshake(&mut reader, &mut writer, &mut encoder, &mut decoder, &hello).await?;
    let msg = Envelope::Msg {
        from: node.to_string(),
        msg: request.clone(),
    };
    write_frame(&mut writer, &mut encoder, &msg).await?;
    let answer = match read_frame(&mut reader, &mut decoder).await? {
        Some(Envelope::Msg { msg, .. }) => msg,
        Some(other) => {
            return Err(WireError::Io(std::io::Error::other(format!(
                "the daemon sent a {} instead of an answer",
                other.kind()
            ))))
        }
        None => {
            return Err(WireError::Io(std::io::Error::other(
                "the daemon closed the connection without answering",
            )))
        }
    };
    let _ = write_frame(&mut writer, &mut encoder, &Envelope::<GcdRequest>::Leave).await;
    Ok(answer)
}
