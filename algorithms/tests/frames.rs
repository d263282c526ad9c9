//! The wire format of real nodes (`conclave_algorithms::net`, feature `net`): round trips,
//! every way a frame is refused, bytes pinned against an independent HMAC, fuzzing of the
//! decoder with proptest, and the tokio helpers over loopback TCP and in-memory pipes.
//!
//! Run with `cargo test -p conclave-algorithms --features net`.
#![cfg(feature = "net")]

use conclave_algorithms::bully::BullyMsg;
use conclave_algorithms::net::{
    handshake, read_frame, write_frame, ClusterKey, EncodeError, Envelope, FrameDecoder,
    FrameEncoder, FrameError, Hello, KeyError, Nonce, WireConfig, WireError, DEFAULT_MAX_FRAME_LEN,
    TAG_LEN,
};
use conclave_algorithms::Pid;
use hmac::{Hmac, KeyInit, Mac};
use proptest::prelude::*;
use sha2::Sha256;

const KEY: &[u8] = b"conclave-test-key-0123456789";
/// Node a's nonce on the connection under test, and node b's.
const A_NONCE: Nonce = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
const B_NONCE: Nonce = [
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
];

type Env = Envelope<BullyMsg>;

fn config(tagged: bool) -> WireConfig {
    WireConfig::new(tagged.then(|| ClusterKey::from_bytes(KEY).unwrap()))
}

fn hello(node: &str, nonce: Nonce) -> Hello {
    Hello {
        cluster: "lab".to_string(),
        node: node.to_string(),
        nonce,
        version: "0.1.0".to_string(),
    }
}

fn from_a(msg: BullyMsg) -> Env {
    Envelope::Msg {
        from: "a".to_string(),
        msg,
    }
}

fn every_bully_msg() -> Vec<BullyMsg> {
    vec![
        BullyMsg::Election,
        BullyMsg::Ok,
        BullyMsg::Coordinator,
        BullyMsg::Heartbeat,
        BullyMsg::HeartbeatAck {
            processes: vec![Pid(0), Pid(300), Pid(u32::MAX)],
        },
        BullyMsg::Register,
        BullyMsg::Lookup,
        BullyMsg::Members { processes: vec![] },
        BullyMsg::HealthCheck,
        BullyMsg::HealthOk,
    ]
}

/// The frames node a sends on one connection to b (its Hello first), as separate byte
/// strings, encoded with `config`.
fn frames_from_a(config: &WireConfig, envelopes: &[Env]) -> Vec<Vec<u8>> {
    let mut encoder = FrameEncoder::new(config);
    encoder.set_peer_nonce(B_NONCE);
    envelopes
        .iter()
        .map(|envelope| encoder.encode(envelope).unwrap().to_vec())
        .collect()
}

/// Node b's decoder, fed `bytes` in one push or byte by byte: every envelope it accepts,
/// then the error that stopped it, or the end-of-stream verdict.
fn receive(
    config: &WireConfig,
    bytes: &[u8],
    byte_by_byte: bool,
) -> (Vec<Env>, Result<(), FrameError>) {
    let mut decoder = FrameDecoder::<BullyMsg>::new(config, B_NONCE);
    let mut accepted = Vec::new();
    let chunks: Vec<&[u8]> = match byte_by_byte {
        true => bytes.chunks(1).collect(),
        false => vec![bytes],
    };
    for chunk in chunks {
        decoder.push(chunk);
        loop {
            match decoder.pull() {
                Ok(Some(envelope)) => accepted.push(envelope),
                Ok(None) => break,
                Err(error) => return (accepted, Err(error)),
            }
        }
    }
    (accepted, decoder.finish())
}

/// The error node b's decoder stops on, fed `bytes` in one push.
fn refusal(config: &WireConfig, bytes: &[u8]) -> FrameError {
    match receive(config, bytes, false) {
        (_, Err(error)) => error,
        (accepted, Ok(())) => panic!("accepted {accepted:?}, expected an error"),
    }
}

/// A frame of version 1 with these flags around this payload, the length computed (no tag).
fn raw_frame(flags: u8, payload: &[u8]) -> Vec<u8> {
    let len = (2 + payload.len()) as u32;
    let mut frame = len.to_be_bytes().to_vec();
    frame.extend_from_slice(&[1, flags]);
    frame.extend_from_slice(payload);
    frame
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn every_envelope_kind_round_trips_tagged_and_untagged_in_one_push_and_byte_by_byte() {
    let mut envelopes = vec![Envelope::Hello(hello("a", A_NONCE))];
    envelopes.extend(every_bully_msg().into_iter().map(from_a));
    envelopes.push(Envelope::Heartbeat);
    envelopes.push(Envelope::Leave);
    for tagged in [false, true] {
        let config = config(tagged);
        let stream = frames_from_a(&config, &envelopes).concat();
        for byte_by_byte in [false, true] {
            let (accepted, end) = receive(&config, &stream, byte_by_byte);
            let case = format!("tagged={tagged} byte_by_byte={byte_by_byte}");
            assert_eq!(accepted, envelopes, "{case}");
            assert_eq!(end, Ok(()), "{case}");
        }
    }
}

#[test]
fn decoder_reports_the_peer_and_the_frames_received() {
    let config = config(true);
    let envelopes = vec![
        Envelope::Hello(hello("a", A_NONCE)),
        from_a(BullyMsg::Election),
    ];
    let mut decoder = FrameDecoder::<BullyMsg>::new(&config, B_NONCE);
    assert_eq!(decoder.peer(), None);
    decoder.push(&frames_from_a(&config, &envelopes).concat());
    assert_eq!(decoder.pull().unwrap(), Some(envelopes[0].clone()));
    assert_eq!(decoder.peer(), Some(&hello("a", A_NONCE)));
    assert_eq!(decoder.pull().unwrap(), Some(envelopes[1].clone()));
    assert_eq!(decoder.pull().unwrap(), None);
    assert_eq!(decoder.frames_received(), 2);
    assert_eq!(decoder.buffered_len(), 0);
}

/// Computed with Python's `hmac` and `struct` from the module docs alone, as a peer in
/// another language would.
#[test]
fn tagged_frames_match_bytes_computed_independently_from_the_spec() {
    let envelopes = vec![
        Envelope::Hello(hello("a", A_NONCE)),
        from_a(BullyMsg::HeartbeatAck {
            processes: vec![Pid(0), Pid(300)],
        }),
    ];
    let frames = frames_from_a(&config(true), &envelopes);
    assert_eq!(
        hex(&frames[0]),
        "0000003f010100036c61620161000102030405060708090a0b0c0d0e0f05302e312e30\
         c4eb9b880ac08d32dc2f5b08f02263f36482abe7ba18499b375dd8f28c31d139"
    );
    assert_eq!(
        hex(&frames[1]),
        "0000002a0101010161040200ac02\
         76d0683ac1f8332d972e7d6b4e833b34ce3755ac4273ba40444e4206c1753084"
    );
}

#[test]
fn untagged_hello_is_the_bytes_the_module_docs_show() {
    let hello = Hello {
        cluster: "c".to_string(),
        node: "a".to_string(),
        nonce: [0; 16],
        version: "0.1.0".to_string(),
    };
    let mut encoder = FrameEncoder::new(&config(false));
    let frame = encoder.encode(&Env::Hello(hello)).unwrap();
    assert_eq!(
        hex(frame),
        "0000001d010000016301610000000000000000000000000000000005302e312e30"
    );
}

/// A heartbeat is variant 3 and nothing else: `00 00 00 03 01 00 03` untagged.
#[test]
fn untagged_heartbeat_is_the_bytes_the_module_docs_show() {
    let hello = hello("a", A_NONCE);
    let mut encoder = FrameEncoder::new(&config(false));
    encoder.encode(&Env::Hello(hello)).unwrap();
    let frame = encoder.encode(&Env::Heartbeat).unwrap();
    assert_eq!(hex(frame), "00000003010003");
}

#[test]
fn truncated_frame_is_an_error_at_end_of_stream_only() {
    let config = config(true);
    let stream = frames_from_a(&config, &[Envelope::Hello(hello("a", A_NONCE))]).concat();
    let cut = &stream[..stream.len() - 1];
    let mut decoder = FrameDecoder::<BullyMsg>::new(&config, B_NONCE);
    decoder.push(cut);
    assert_eq!(decoder.pull(), Ok(None), "an incomplete frame is awaited");
    assert_eq!(
        decoder.finish(),
        Err(FrameError::Truncated { pending: cut.len() })
    );
    // Three bytes of a length prefix are a truncated frame too.
    assert_eq!(
        receive(&config, &[0, 0, 0], false).1,
        Err(FrameError::Truncated { pending: 3 })
    );
    assert_eq!(receive(&config, &[], false).1, Ok(()));
}

#[test]
fn oversized_length_is_refused_after_its_four_bytes_before_the_body() {
    let config = config(false).with_max_frame_len(1024);
    let mut decoder = FrameDecoder::<BullyMsg>::new(&config, B_NONCE);
    decoder.push(&1025u32.to_be_bytes()[..3]);
    assert_eq!(decoder.pull(), Ok(None));
    decoder.push(&1025u32.to_be_bytes()[3..]);
    assert_eq!(
        decoder.pull(),
        Err(FrameError::Oversized {
            len: 1025,
            max: 1024
        })
    );
    // The largest length a peer can announce, against the default maximum.
    assert_eq!(
        refusal(&WireConfig::new(None), &u32::MAX.to_be_bytes()),
        FrameError::Oversized {
            len: u32::MAX,
            max: DEFAULT_MAX_FRAME_LEN
        }
    );
    // Exactly the maximum is allowed (it waits for the body).
    let mut decoder = FrameDecoder::<BullyMsg>::new(&config, B_NONCE);
    decoder.push(&1024u32.to_be_bytes());
    assert_eq!(decoder.pull(), Ok(None));
}

#[test]
fn encoder_refuses_an_oversized_frame_and_goes_on() {
    let config = config(true).with_max_frame_len(100);
    let big = from_a(BullyMsg::Members {
        processes: (0..100).map(Pid).collect(),
    });
    let mut encoder = FrameEncoder::new(&config);
    let hello_frame = encoder
        .encode(&Env::Hello(hello("a", A_NONCE)))
        .unwrap()
        .to_vec();
    encoder.set_peer_nonce(B_NONCE);
    assert_eq!(
        encoder.encode(&big),
        Err(EncodeError::Oversized {
            kind: "Msg",
            len: 2 + 1 + 2 + 1 + 1 + 100 + TAG_LEN,
            max: 100
        })
    );
    assert_eq!(encoder.frames_sent(), 1, "a refused frame takes no number");
    let next = encoder.encode(&from_a(BullyMsg::Ok)).unwrap().to_vec();
    let (accepted, end) = receive(&config, &[hello_frame, next].concat(), false);
    assert_eq!(accepted.last(), Some(&from_a(BullyMsg::Ok)));
    assert_eq!(end, Ok(()));
}

#[test]
fn unknown_version_is_refused_at_its_byte() {
    let config = config(false);
    let mut decoder = FrameDecoder::<BullyMsg>::new(&config, B_NONCE);
    decoder.push(&[0, 0, 0, 40, 2]);
    assert_eq!(decoder.pull(), Err(FrameError::UnknownVersion(2)));
    assert_eq!(
        refusal(&config, &[0, 0, 0, 2, 0, 0]),
        FrameError::UnknownVersion(0)
    );
}

#[test]
fn unknown_flag_bits_are_refused() {
    assert_eq!(
        refusal(&config(false), &raw_frame(0b10, &[2])),
        FrameError::BadFlags(0b10)
    );
    assert_eq!(
        refusal(&config(true), &raw_frame(0x81, &[2; 40])),
        FrameError::BadFlags(0x81)
    );
}

#[test]
fn lengths_too_short_for_header_or_tag_are_refused() {
    assert_eq!(
        refusal(&config(false), &[0, 0, 0, 1, 1]),
        FrameError::TooShort { len: 1, min: 2 }
    );
    assert_eq!(
        refusal(&config(true), &raw_frame(1, &[0; 30])),
        FrameError::TooShort { len: 32, min: 34 }
    );
}

#[test]
fn undecodable_payloads_are_refused() {
    let untagged = config(false);
    // Variant 7 of Envelope does not exist.
    assert!(matches!(
        refusal(&untagged, &raw_frame(0, &[7])),
        FrameError::Undecodable(_)
    ));
    // A Leave (variant 2) with a byte after it.
    assert_eq!(
        refusal(&untagged, &raw_frame(0, &[2, 0])),
        FrameError::Undecodable("1 bytes after the envelope".to_string())
    );
    // A Hello whose string runs past the frame.
    assert!(matches!(
        refusal(&untagged, &raw_frame(0, &[0, 200, b'l'])),
        FrameError::Undecodable(_)
    ));
    // A frame with a valid tag around garbage (a keyed peer with a bug): the tag is checked
    // first, then the payload. The tag is computed here with the hmac crate, as the docs say.
    let keyed = config(true);
    let hello_frame = frames_from_a(&keyed, &[Env::Hello(hello("a", A_NONCE))]).remove(0);
    let mut garbage = ((2 + 3 + TAG_LEN) as u32).to_be_bytes().to_vec();
    garbage.extend_from_slice(&[1, 1, 9, 9, 9]);
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(KEY).unwrap();
    mac.update(&B_NONCE);
    mac.update(&1u64.to_be_bytes());
    mac.update(&garbage);
    garbage.extend_from_slice(&mac.finalize().into_bytes());
    assert!(matches!(
        refusal(&keyed, &[hello_frame, garbage].concat()),
        FrameError::Undecodable(_)
    ));
}

#[test]
fn untagged_frame_is_refused_when_a_key_is_set() {
    let untagged = frames_from_a(&config(false), &[Envelope::Hello(hello("a", A_NONCE))]);
    assert_eq!(refusal(&config(true), &untagged[0]), FrameError::MissingTag);
}

#[test]
fn tagged_frame_is_refused_when_no_key_is_set() {
    let tagged = frames_from_a(&config(true), &[Envelope::Hello(hello("a", A_NONCE))]);
    assert_eq!(
        refusal(&config(false), &tagged[0]),
        FrameError::UnexpectedTag
    );
}

#[test]
fn frames_under_another_key_are_refused() {
    let other = WireConfig::new(Some(
        ClusterKey::from_bytes(b"conclave-test-key-0123456788").unwrap(),
    ));
    let envelopes = [
        Envelope::Hello(hello("a", A_NONCE)),
        from_a(BullyMsg::Coordinator),
    ];
    let frames = frames_from_a(&other, &envelopes);
    assert_eq!(
        refusal(&config(true), &frames[0]),
        FrameError::BadTag { seq: 0 }
    );
    // The right Hello, then a message under the other key.
    let good = frames_from_a(&config(true), &envelopes);
    assert_eq!(
        refusal(
            &config(true),
            &[good[0].clone(), frames[1].clone()].concat()
        ),
        FrameError::BadTag { seq: 1 }
    );
}

#[test]
fn frame_tagged_for_another_connection_is_refused() {
    let config = config(true);
    // Node a's encoder on another connection, where the peer's nonce was not b's.
    let mut other = FrameEncoder::new(&config);
    other.encode(&Env::Hello(hello("a", A_NONCE))).unwrap();
    other.set_peer_nonce([99; 16]);
    let recorded = other
        .encode(&from_a(BullyMsg::Coordinator))
        .unwrap()
        .to_vec();
    let hello_frame = frames_from_a(&config, &[Envelope::Hello(hello("a", A_NONCE))]);
    assert_eq!(
        refusal(&config, &[hello_frame[0].clone(), recorded].concat()),
        FrameError::BadTag { seq: 1 }
    );
}

#[test]
fn replayed_dropped_and_reordered_frames_are_refused() {
    let config = config(true);
    let frames = frames_from_a(
        &config,
        &[
            Envelope::Hello(hello("a", A_NONCE)),
            from_a(BullyMsg::Election),
            from_a(BullyMsg::Coordinator),
        ],
    );
    let [hello_frame, first, second] = [&frames[0], &frames[1], &frames[2]];
    let cases = [
        ("replayed", vec![hello_frame, first, first], 2),
        ("reordered", vec![hello_frame, second, first], 1),
        ("dropped", vec![hello_frame, second], 1),
        ("Hello replayed", vec![hello_frame, hello_frame], 1),
    ];
    for (case, stream, seq) in cases {
        let stream: Vec<u8> = stream.into_iter().flatten().copied().collect();
        assert_eq!(
            refusal(&config, &stream),
            FrameError::BadTag { seq },
            "{case}"
        );
    }
    // Untagged, a repeated Hello is still out of place.
    let untagged = frames_from_a(&WireConfig::new(None), &[Env::Hello(hello("a", A_NONCE))]);
    assert_eq!(
        refusal(&WireConfig::new(None), &untagged[0].repeat(2)),
        FrameError::UnexpectedHello { seq: 1 }
    );
}

#[test]
fn first_frame_must_be_a_hello() {
    let config = config(false);
    // An encoder will not produce it: write it by hand (Leave, variant 2).
    assert_eq!(
        refusal(&config, &raw_frame(0, &[2])),
        FrameError::ExpectedHello { got: "Leave" }
    );
    let mut encoder = FrameEncoder::new(&config);
    assert_eq!(
        encoder.encode(&from_a(BullyMsg::Ok)),
        Err(EncodeError::HelloFirst { got: "Msg" })
    );
    encoder.encode(&Env::Hello(hello("a", A_NONCE))).unwrap();
    assert_eq!(
        encoder.encode(&Env::Hello(hello("a", A_NONCE))),
        Err(EncodeError::HelloAgain)
    );
}

#[test]
fn hello_with_the_receivers_own_nonce_is_refused() {
    for tagged in [false, true] {
        let config = config(tagged);
        let reflected = frames_from_a(&config, &[Envelope::Hello(hello("b", B_NONCE))]);
        assert_eq!(
            refusal(&config, &reflected[0]),
            FrameError::ReflectedNonce,
            "tagged={tagged}"
        );
    }
}

#[test]
fn message_naming_another_sender_than_the_hello_is_refused() {
    let config = config(true);
    let frames = frames_from_a(
        &config,
        &[
            Envelope::Hello(hello("a", A_NONCE)),
            Envelope::Msg {
                from: "c".to_string(),
                msg: BullyMsg::Coordinator,
            },
        ],
    );
    assert_eq!(
        refusal(&config, &frames.concat()),
        FrameError::SenderMismatch {
            hello: "a".to_string(),
            from: "c".to_string()
        }
    );
}

#[test]
fn nothing_is_sent_or_accepted_after_leave() {
    let config = config(false);
    let mut encoder = FrameEncoder::new(&config);
    let mut stream = encoder
        .encode(&Env::Hello(hello("a", A_NONCE)))
        .unwrap()
        .to_vec();
    stream.extend_from_slice(encoder.encode(&Env::Leave).unwrap());
    assert_eq!(
        encoder.encode(&from_a(BullyMsg::Ok)),
        Err(EncodeError::AfterLeave)
    );
    stream.extend_from_slice(&raw_frame(0, &[1, 1, b'a', 1]));
    assert_eq!(refusal(&config, &stream), FrameError::AfterLeave { seq: 2 });
}

#[test]
fn tagged_message_needs_the_peers_nonce_first() {
    let mut encoder = FrameEncoder::new(&config(true));
    encoder.encode(&Env::Hello(hello("a", A_NONCE))).unwrap();
    assert_eq!(
        encoder.encode(&from_a(BullyMsg::Ok)),
        Err(EncodeError::PeerNonceUnknown)
    );
    // Untagged, no nonce is needed.
    let mut encoder = FrameEncoder::new(&config(false));
    encoder.encode(&Env::Hello(hello("a", A_NONCE))).unwrap();
    assert!(encoder.encode(&from_a(BullyMsg::Ok)).is_ok());
}

#[test]
fn failed_decoder_stays_failed_and_drops_its_bytes() {
    let config = config(false);
    let mut decoder = FrameDecoder::<BullyMsg>::new(&config, B_NONCE);
    decoder.push(&[0, 0, 0, 9, 7, 0, 0, 0]);
    assert_eq!(decoder.pull(), Err(FrameError::UnknownVersion(7)));
    assert_eq!(decoder.buffered_len(), 0);
    decoder.push(&frames_from_a(&config, &[Env::Hello(hello("a", A_NONCE))])[0]);
    assert_eq!(decoder.pull(), Err(FrameError::UnknownVersion(7)));
    assert_eq!(decoder.finish(), Err(FrameError::UnknownVersion(7)));
}

#[test]
fn error_messages_name_their_values() {
    let cases = [
        (
            FrameError::Oversized {
                len: 70000,
                max: 65536,
            },
            "frame announces 70000 bytes, more than the maximum of 65536",
        ),
        (
            FrameError::UnknownVersion(2),
            "frame has version 2, this node speaks version 1",
        ),
        (
            FrameError::BadFlags(0b110),
            "frame has unknown flags 0b00000110 (only bit 0, tagged, is defined)",
        ),
        (
            FrameError::BadTag { seq: 3 },
            "frame 3 has a wrong tag (another key, connection or position)",
        ),
        (
            FrameError::Truncated { pending: 5 },
            "connection closed in the middle of a frame (5 bytes of it received)",
        ),
    ];
    for (error, message) in cases {
        assert_eq!(error.to_string(), message);
    }
}

// ---- the cluster key file ----

/// A file in the temporary directory holding `content`, removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, content: &[u8]) -> Self {
        let path =
            std::env::temp_dir().join(format!("conclave-frames-{}-{name}", std::process::id()));
        std::fs::write(&path, content).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The first frame node a sends under `key`.
fn hello_frame_under(key: ClusterKey) -> Vec<u8> {
    frames_from_a(
        &WireConfig::new(Some(key)),
        &[Env::Hello(hello("a", A_NONCE))],
    )
    .remove(0)
}

#[test]
fn key_file_loses_one_trailing_newline_only() {
    let plain = hello_frame_under(ClusterKey::from_bytes(KEY).unwrap());
    for (name, suffix) in [("lf", &b"\n"[..]), ("crlf", b"\r\n"), ("none", b"")] {
        let file = TempFile::new(name, &[KEY, suffix].concat());
        let key = ClusterKey::load(&file.0).unwrap();
        assert_eq!(key.len(), KEY.len(), "{name}");
        assert_eq!(hello_frame_under(key), plain, "{name}");
    }
    let file = TempFile::new("two-lf", &[KEY, b"\n\n"].concat());
    assert_eq!(ClusterKey::load(&file.0).unwrap().len(), KEY.len() + 1);
}

#[test]
fn key_file_empty_short_or_missing_is_an_error_naming_the_file() {
    let empty = TempFile::new("empty", b"\n");
    let error = ClusterKey::load(&empty.0).unwrap_err();
    assert!(matches!(error, KeyError::Empty { .. }));
    assert_eq!(
        error.to_string(),
        format!("the cluster key file {} is empty", empty.0.display())
    );

    let short = TempFile::new("short", b"fifteen bytes!!\n");
    let error = ClusterKey::load(&short.0).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "the cluster key file {} holds 15 bytes; a cluster key needs at least 16",
            short.0.display()
        )
    );

    let missing = std::env::temp_dir().join("conclave-frames-no-such-key-file");
    let error = ClusterKey::load(&missing).unwrap_err();
    assert!(matches!(error, KeyError::Read { .. }));
    assert!(error.to_string().contains(&missing.display().to_string()));

    assert!(matches!(
        ClusterKey::from_bytes(b"short"),
        Err(KeyError::TooShort { len: 5, min: 16 })
    ));
}

#[test]
fn key_debug_does_not_show_the_key() {
    let key = ClusterKey::from_bytes(KEY).unwrap();
    assert_eq!(format!("{key:?}"), "ClusterKey(<28 bytes>)");
}

// ---- tokio helpers ----

/// One side of a connection: its halves of the codec, its Hello.
fn side(node: &str, nonce: Nonce, tagged: bool) -> (FrameEncoder, FrameDecoder<BullyMsg>, Hello) {
    let config = config(tagged);
    (
        FrameEncoder::new(&config),
        FrameDecoder::new(&config, nonce),
        hello(node, nonce),
    )
}

#[tokio::test]
async fn handshake_messages_and_leave_over_loopback_tcp() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    // Node b answers every Election with Ok until a leaves.
    let b = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (mut reader, mut writer) = stream.into_split();
        let (mut encoder, mut decoder, hello) = side("b", B_NONCE, true);
        let peer = handshake(&mut reader, &mut writer, &mut encoder, &mut decoder, &hello)
            .await
            .unwrap();
        let mut received = vec![];
        while let Some(envelope) = read_frame(&mut reader, &mut decoder).await.unwrap() {
            if let Envelope::Msg {
                msg: BullyMsg::Election,
                ..
            } = &envelope
            {
                let ok = Envelope::Msg {
                    from: "b".to_string(),
                    msg: BullyMsg::Ok,
                };
                write_frame(&mut writer, &mut encoder, &ok).await.unwrap();
            }
            received.push(envelope);
        }
        (peer, received)
    });

    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let (mut encoder, mut decoder, hello_a) = side("a", A_NONCE, true);
    let peer = handshake(
        &mut reader,
        &mut writer,
        &mut encoder,
        &mut decoder,
        &hello_a,
    )
    .await
    .unwrap();
    assert_eq!(peer, hello("b", B_NONCE));
    write_frame(&mut writer, &mut encoder, &from_a(BullyMsg::Election))
        .await
        .unwrap();
    let answer = read_frame(&mut reader, &mut decoder).await.unwrap();
    assert_eq!(
        answer,
        Some(Envelope::Msg {
            from: "b".to_string(),
            msg: BullyMsg::Ok
        })
    );
    write_frame(&mut writer, &mut encoder, &Env::Leave)
        .await
        .unwrap();
    drop(writer);

    let (peer_of_b, received) = b.await.unwrap();
    assert_eq!(peer_of_b, hello_a);
    assert_eq!(received, vec![from_a(BullyMsg::Election), Envelope::Leave]);
}

#[tokio::test]
async fn garbage_over_tcp_closes_the_connection_with_an_error() {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let b = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let (_, mut decoder, _) = side("b", B_NONCE, true);
        read_frame(&mut stream, &mut decoder).await
    });
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let error = b.await.unwrap().unwrap_err();
    // "GET " is a length of 1,195,725,856 bytes.
    assert!(
        matches!(
            error,
            WireError::Frame(FrameError::Oversized {
                len: 0x4745_5420,
                ..
            })
        ),
        "{error}"
    );
}

#[tokio::test]
async fn stream_ending_inside_a_frame_is_truncated_and_between_frames_is_none() {
    use tokio::io::AsyncWriteExt;
    let (mut near, mut far) = tokio::io::duplex(64);
    let config = config(false);
    let frames = frames_from_a(
        &config,
        &[Env::Hello(hello("a", A_NONCE)), from_a(BullyMsg::Ok)],
    );
    near.write_all(&frames[0]).await.unwrap();
    near.write_all(&frames[1][..5]).await.unwrap();
    drop(near);
    let mut decoder = FrameDecoder::<BullyMsg>::new(&config, B_NONCE);
    assert!(matches!(
        read_frame(&mut far, &mut decoder).await,
        Ok(Some(Envelope::Hello(_)))
    ));
    assert!(matches!(
        read_frame(&mut far, &mut decoder).await,
        Err(WireError::Frame(FrameError::Truncated { pending: 5 }))
    ));

    let (mut near, mut far) = tokio::io::duplex(64);
    near.write_all(&frames[0]).await.unwrap();
    drop(near);
    let mut decoder = FrameDecoder::<BullyMsg>::new(&config, B_NONCE);
    read_frame(&mut far, &mut decoder).await.unwrap();
    assert!(matches!(read_frame(&mut far, &mut decoder).await, Ok(None)));
}

#[tokio::test]
async fn handshake_refuses_another_cluster_and_a_peer_without_the_key() {
    let (a_stream, b_stream) = tokio::io::duplex(1024);
    let b = tokio::spawn(async move {
        let (mut reader, mut writer) = tokio::io::split(b_stream);
        let (mut encoder, mut decoder, mut hello) = side("b", B_NONCE, false);
        hello.cluster = "other".to_string();
        handshake(&mut reader, &mut writer, &mut encoder, &mut decoder, &hello).await
    });
    let (mut reader, mut writer) = tokio::io::split(a_stream);
    let (mut encoder, mut decoder, hello) = side("a", A_NONCE, false);
    let error = handshake(&mut reader, &mut writer, &mut encoder, &mut decoder, &hello)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the peer is in cluster \"other\", this node in \"lab\""
    );
    assert!(matches!(
        b.await.unwrap(),
        Err(WireError::ClusterMismatch { .. })
    ));

    // A keyed node and a stray process without the key.
    let (a_stream, b_stream) = tokio::io::duplex(1024);
    let stray = tokio::spawn(async move {
        let (mut reader, mut writer) = tokio::io::split(b_stream);
        let (mut encoder, mut decoder, hello) = side("z", B_NONCE, false);
        handshake(&mut reader, &mut writer, &mut encoder, &mut decoder, &hello).await
    });
    let (mut reader, mut writer) = tokio::io::split(a_stream);
    let (mut encoder, mut decoder, hello) = side("a", A_NONCE, true);
    let error = handshake(&mut reader, &mut writer, &mut encoder, &mut decoder, &hello)
        .await
        .unwrap_err();
    assert!(
        matches!(error, WireError::Frame(FrameError::MissingTag)),
        "{error}"
    );
    assert!(matches!(
        stray.await.unwrap(),
        Err(WireError::Frame(FrameError::UnexpectedTag))
    ));
}

// ---- fuzzing with proptest ----

fn any_bully_msg() -> impl Strategy<Value = BullyMsg> {
    let pids = || proptest::collection::vec(any::<u32>().prop_map(Pid), 0..20);
    prop_oneof![
        Just(BullyMsg::Election),
        Just(BullyMsg::Ok),
        Just(BullyMsg::Coordinator),
        Just(BullyMsg::Heartbeat),
        pids().prop_map(|processes| BullyMsg::HeartbeatAck { processes }),
        Just(BullyMsg::Register),
        Just(BullyMsg::Lookup),
        pids().prop_map(|processes| BullyMsg::Members { processes }),
        Just(BullyMsg::HealthCheck),
        Just(BullyMsg::HealthOk),
    ]
}

/// A Hello from a node of any name, its messages, perhaps a Leave.
fn any_conversation() -> impl Strategy<Value = Vec<Env>> {
    (
        any::<String>(),
        any::<String>(),
        proptest::collection::vec(any_bully_msg(), 0..8),
        any::<bool>(),
    )
        .prop_map(|(node, version, msgs, leave)| {
            let mut envelopes = vec![Envelope::Hello(Hello {
                cluster: "lab".to_string(),
                node: node.clone(),
                nonce: A_NONCE,
                version,
            })];
            envelopes.extend(msgs.into_iter().map(|msg| Envelope::Msg {
                from: node.clone(),
                msg,
            }));
            if leave {
                envelopes.push(Envelope::Leave);
            }
            envelopes
        })
}

/// 512 cases from seed 18; `PROPTEST_CASES` and `PROPTEST_RNG_SEED` fuzz longer or elsewhere.
fn fuzz_config() -> ProptestConfig {
    conclave_testkit::fuzz::config(512, 18)
}

proptest! {
    #![proptest_config(fuzz_config())]

    /// Any bytes, in any chunks, after a valid Hello or not: no panic, and once an error is
    /// reported it is reported again.
    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(
        garbage in proptest::collection::vec(any::<u8>(), 0..512),
        chunk in 1usize..64,
        tagged in any::<bool>(),
        after_hello in any::<bool>(),
    ) {
        let config = config(tagged);
        let mut stream = match after_hello {
            true => frames_from_a(&config, &[Env::Hello(hello("a", A_NONCE))]).remove(0),
            false => vec![],
        };
        stream.extend_from_slice(&garbage);
        let mut decoder = FrameDecoder::<BullyMsg>::new(&config, B_NONCE);
        let mut failed = None;
        for piece in stream.chunks(chunk) {
            decoder.push(piece);
            while failed.is_none() {
                match decoder.pull() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(error) => failed = Some(error),
                }
            }
        }
        if let Some(error) = failed {
            prop_assert_eq!(decoder.pull(), Err(error.clone()));
            prop_assert_eq!(decoder.finish(), Err(error));
        }
    }

    /// Arbitrary garbage framed correctly (right length, version, flags) reaches the payload
    /// decoder and the tag check: no panic there either.
    #[test]
    fn arbitrary_payloads_never_panic_the_decoder(
        payload in proptest::collection::vec(any::<u8>(), 0..256),
        flags in 0u8..2,
    ) {
        let frame = raw_frame(flags, &payload);
        for tagged in [false, true] {
            let _ = receive(&config(tagged), &frame, false);
        }
    }

    #[test]
    fn arbitrary_conversations_round_trip(
        envelopes in any_conversation(),
        tagged in any::<bool>(),
        chunk in 1usize..64,
    ) {
        let config = config(tagged);
        let stream = frames_from_a(&config, &envelopes).concat();
        let mut decoder = FrameDecoder::<BullyMsg>::new(&config, B_NONCE);
        let mut accepted = vec![];
        for piece in stream.chunks(chunk) {
            decoder.push(piece);
            while let Some(envelope) = decoder.pull().unwrap() {
                accepted.push(envelope);
            }
        }
        prop_assert_eq!(decoder.finish(), Ok(()));
        prop_assert_eq!(accepted, envelopes);
    }

    /// One bit flipped anywhere in a tagged conversation: every frame before the flipped one
    /// is accepted, the flipped one never is, and the stream ends in an error (a flip in a
    /// length prefix may leave the decoder waiting: then the end of stream is the error).
    #[test]
    fn any_flipped_bit_in_a_tagged_frame_is_refused(
        envelopes in any_conversation(),
        which_frame in any::<prop::sample::Index>(),
        which_bit in any::<prop::sample::Index>(),
    ) {
        let config = config(true);
        let frames = frames_from_a(&config, &envelopes);
        let flipped = which_frame.index(frames.len());
        let offset: usize = frames[..flipped].iter().map(Vec::len).sum();
        let bit = which_bit.index(frames[flipped].len() * 8);
        let mut stream = frames.concat();
        stream[offset + bit / 8] ^= 1 << (bit % 8);
        let (accepted, end) = receive(&config, &stream, false);
        prop_assert_eq!(&accepted[..], &envelopes[..flipped]);
        prop_assert!(end.is_err());
    }
}
