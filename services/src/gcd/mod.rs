//! `conclave gcd`: seed 003's group coordinator daemon. A node joins with its identity
//! (days until a birthday, student id) and its listening address, and gets the member list
//! back: every member, the joiner included, as the lab's daemon answers. A member that joins
//! again replaces its address; a student's older identity, and a member whose listening
//! address a newer join claims, are dropped ([`group`]).
//!
//! Two wire formats, one per daemon (`--wire`):
//! - `conclave` (default): Conclave's frames (the `net` wire format) with serde request and answer types ([`wire`]);
//! - `lab`: the lab's pickled `(message_name, message_data)` tuples, one per connection
//!   ([`lab`]), read by a bounded reader that builds plain values and refuses anything
//!   else ([`pickle`]), so a student's Python node can join.
//!
//! A malformed or unknown request is answered with what was wrong (lab: a pickled `str`;
//! conclave: [`wire::GcdAnswer::Refused`]) or, for a frame the codec refuses, the connection
//! is closed; either way a line goes to stderr and the member list is unchanged.
//!
//! ```no_run
//! use conclave_services::gcd::{serve, Options, Wire};
//! let options = Options { listen: "127.0.0.1:50550".parse().unwrap(), wire: Wire::Lab };
//! serve(options).unwrap(); // prints "gcd listening on 127.0.0.1:50550 wire=lab"
//! ```

pub mod group;
pub mod lab;
pub mod pickle;
pub mod wire;

use conclave_algorithms::net::{
    random_nonce, read_frame, write_frame, Envelope, FrameDecoder, FrameEncoder, Hello, WireConfig,
    WireError,
};
use group::{Group, Identity, Listener};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wire::{member_of, GcdAnswer, GcdRequest};

/// The daemon's port when `--listen` is not given (the seed names none).
pub const DEFAULT_PORT: u16 = 50550;
/// How long a lab connection may take to send its one message.
pub const LAB_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a Conclave connection may stay silent between requests.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Which wire format the daemon speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    Conclave,
    Lab,
}

impl Wire {
    pub fn name(self) -> &'static str {
        match self {
            Wire::Conclave => "conclave",
            Wire::Lab => "lab",
        }
    }
}

/// How to run the daemon.
#[derive(Clone, Debug)]
pub struct Options {
    pub listen: SocketAddr,
    pub wire: Wire,
}

/// Why the daemon could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum GcdError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the gcd stopped: {0}")]
    Serve(std::io::Error),
}

impl GcdError {
    /// A mistake in the flags, as opposed to a failure while serving.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, GcdError::Bind { .. })
    }
}

/// A daemon bound to its address, not yet serving.
pub struct Gcd {
    listener: TcpListener,
    wire: Wire,
    group: Arc<Mutex<Group>>,
}

/// Binds the daemon's address (port 0: one from the OS).
pub async fn bind(options: Options) -> Result<Gcd, GcdError> {
    let listener = TcpListener::bind(options.listen)
        .await
        .map_err(|source| GcdError::Bind {
            addr: options.listen,
            source,
        })?;
    Ok(Gcd {
        listener,
        wire: options.wire,
        group: Arc::default(),
    })
}

impl Gcd {
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener")
    }

    /// Serves until the task is dropped; each connection in its own task.
    pub async fn run(self) -> Result<(), GcdError> {
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: wait a little, keep serving.
                Err(e) => {
                    eprintln!("gcd accept_failed error={e:?}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let group = self.group.clone();
            match self.wire {
                Wire::Lab => tokio::spawn(serve_lab(stream, peer, group)),
                Wire::Conclave => tokio::spawn(serve_conclave(stream, peer, group)),
            };
        }
    }
}

/// Binds, prints `gcd listening on ADDR wire=WIRE`, and serves until the process ends.
pub fn serve(options: Options) -> Result<(), GcdError> {
    let runtime = tokio::runtime::Runtime::new().map_err(GcdError::Serve)?;
    runtime.block_on(async {
        let gcd = bind(options).await?;
        let addr = gcd.local_addr();
        if !addr.ip().is_loopback() {
            eprintln!(
                "gcd warning: {addr} is not a loopback address, and the lab's protocol has no \
                 authentication: anyone who reaches it can join"
            );
        }
        println!("gcd listening on {addr} wire={}", gcd.wire.name());
        gcd.run().await
    })
}

/// Joins `identity` and logs it; returns every member.
fn join(
    group: &Mutex<Group>,
    wire: Wire,
    peer: SocketAddr,
    identity: Identity,
    listener: Listener,
) -> Vec<(Identity, Listener)> {
    let members = group
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .join(identity, listener.clone());
    eprintln!(
        "gcd wire={} peer={peer} join days={} student_id={} listener={listener} members={}",
        wire.name(),
        identity.days,
        identity.student_id,
        members.len()
    );
    members
}

fn refused(wire: Wire, peer: SocketAddr, reason: &str) {
    eprintln!(
        "gcd wire={} peer={peer} refused reason={reason:?}",
        wire.name()
    );
}

/// One lab connection: read one pickle (until it is complete, the peer stops sending, or
/// the limit), answer it, close.
async fn serve_lab(mut stream: TcpStream, peer: SocketAddr, group: Arc<Mutex<Group>>) {
    let read = tokio::time::timeout(LAB_READ_TIMEOUT, read_lab_request(&mut stream)).await;
    let answer = match read {
        Err(_) => Err(format!(
            "Expected a pickled message within {} s",
            LAB_READ_TIMEOUT.as_secs()
        )),
        Ok(Err(e)) => Err(format!("Expected a pickled message: {e}")),
        Ok(Ok(message)) => lab::parse(&message).map_err(|e| e.to_string()),
    };
    let value = match answer {
        Ok(lab::LabRequest::Join(identity, listener)) => {
            lab::members_value(&join(&group, Wire::Lab, peer, identity, listener))
        }
        Err(reason) => {
            refused(Wire::Lab, peer, &reason);
            pickle::Value::Str(reason)
        }
    };
    let _ = stream.write_all(&pickle::write(&value)).await;
    let _ = stream.shutdown().await;
}

/// The message of a lab connection, or why there is none.
async fn read_lab_request(stream: &mut TcpStream) -> Result<pickle::Value, pickle::ReadError> {
    let mut buffer = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    loop {
        match pickle::read(&buffer, lab::MAX_REQUEST_BYTES) {
            Err(pickle::ReadError::Incomplete) => {}
            done => return done,
        }
        let room = (lab::MAX_REQUEST_BYTES + 1 - buffer.len()).min(chunk.len());
        match stream.read(&mut chunk[..room]).await {
            Ok(0) | Err(_) => return Err(pickle::ReadError::Incomplete),
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// One Conclave connection: the node's Hello, ours, then one answer per request.
async fn serve_conclave(stream: TcpStream, peer: SocketAddr, group: Arc<Mutex<Group>>) {
    if let Err(e) = conclave_session(stream, peer, &group).await {
        eprintln!(
            "gcd wire=conclave peer={peer} closed error={:?}",
            e.to_string()
        );
    }
}

async fn conclave_session(
    stream: TcpStream,
    peer: SocketAddr,
    group: &Mutex<Group>,
) -> Result<(), WireError> {
    let (mut reader, mut writer) = stream.into_split();
    let config = WireConfig::new(None).with_max_frame_len(4096);
    let nonce = random_nonce()?;
    let mut encoder = FrameEncoder::new(&config);
    let mut decoder = FrameDecoder::<GcdRequest>::new(&config, nonce);
    let hello = match next(&mut reader, &mut decoder).await? {
        Some(Envelope::Hello(hello)) => hello,
        // The decoder refuses any other first frame; a close before it is no error.
        _ => return Ok(()),
    };
    encoder.set_peer_nonce(hello.nonce);
    let ours = Hello::new(&hello.cluster, "gcd", nonce);
    write_frame(
        &mut writer,
        &mut encoder,
        &Envelope::<GcdAnswer>::Hello(ours),
    )
    .await?;
    while let Some(envelope) = next(&mut reader, &mut decoder).await? {
        let Envelope::Msg { msg, .. } = envelope else {
            return Ok(()); // Leave
        };
        let answer = answer_conclave(group, peer, msg);
        let envelope = Envelope::Msg {
            from: "gcd".to_string(),
            msg: answer,
        };
        write_frame(&mut writer, &mut encoder, &envelope).await?;
    }
    Ok(())
}

/// The next request, or `None` at a close between frames; an error after [`IDLE_TIMEOUT`].
async fn next(
    reader: &mut tokio::net::tcp::OwnedReadHalf,
    decoder: &mut FrameDecoder<GcdRequest>,
) -> Result<Option<Envelope<GcdRequest>>, WireError> {
    match tokio::time::timeout(IDLE_TIMEOUT, read_frame(reader, decoder)).await {
        Ok(read) => read,
        Err(_) => Err(WireError::Io(std::io::Error::other(format!(
            "idle for {} s",
            IDLE_TIMEOUT.as_secs()
        )))),
    }
}

fn answer_conclave(group: &Mutex<Group>, peer: SocketAddr, request: GcdRequest) -> GcdAnswer {
    let (days, student_id, host, port) = match request {
        GcdRequest::Members => {
            let members = group.lock().unwrap_or_else(|e| e.into_inner()).members();
            return GcdAnswer::Members(members.iter().map(member_of).collect());
        }
        GcdRequest::Join {
            days,
            student_id,
            host,
            port,
        } => (days, student_id, host, port),
    };
    let checked = Identity::new(i64::from(days), i64::from(student_id))
        .and_then(|i| Ok((i, Listener::new(&host, i64::from(port))?)));
    match checked {
        Ok((identity, listener)) => {
            let members = join(group, Wire::Conclave, peer, identity, listener);
            GcdAnswer::Members(members.iter().map(member_of).collect())
        }
        Err(e) => {
            refused(Wire::Conclave, peer, &e.to_string());
            GcdAnswer::Refused(e.to_string())
        }
    }
}
