//! The lab wire's pickle reader (`conclave_algorithms::net::pickle`) and message parser
//! (`net::lab::parse`) under fuzzing: what a stranger on the lab's sockets can send. Any
//! value of the protocol's shapes round-trips; arbitrary bytes, and real pickles with bytes
//! flipped, cut or inserted, give a value or an error (an offset, when it has one, inside
//! the input), never a panic; whatever value comes out, the lab's parser takes it or refuses
//! it with a message.
//!
//! Run with `cargo test -p conclave-algorithms --features net`; 512 cases from a fixed seed
//! (`PROPTEST_CASES` and `PROPTEST_RNG_SEED` fuzz longer or elsewhere).
#![cfg(feature = "net")]

use conclave_algorithms::net::lab::{parse, LabMessage};
use conclave_algorithms::net::pickle::{read, write, ReadError, Value};
use proptest::prelude::*;

/// `pickle.dumps(('JOIN', ((120, 4123456), ('127.0.0.1', 50001))))` under Python 3.11's
/// default protocol (4), and under protocol 2: the shapes the lab's clients send.
const JOIN_PROTOCOL_4: &[u8] = b"\x80\x04\x95&\x00\x00\x00\x00\x00\x00\x00\x8c\x04JOIN\x94KxJ@\xeb>\x00\x86\x94\x8c\t127.0.0.1\x94MQ\xc3\x86\x94\x86\x94\x86\x94.";
const JOIN_PROTOCOL_2: &[u8] = b"\x80\x02X\x04\x00\x00\x00JOINq\x00KxJ@\xeb>\x00\x86q\x01X\t\x00\x00\x00127.0.0.1q\x02MQ\xc3\x86q\x03\x86q\x04\x86q\x05.";

/// 512 cases from seed 21; `PROPTEST_CASES` and `PROPTEST_RNG_SEED` fuzz longer or elsewhere.
fn fuzz_config() -> ProptestConfig {
    conclave_testkit::fuzz::config(512, 21)
}

/// Values of the protocol's shapes, a few levels deep.
fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::None),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        prop_oneof![
            Just(0i64),
            Just(255),
            Just(256),
            Just(65535),
            Just(65536),
            Just(-1)
        ]
        .prop_map(Value::Int),
        ".{0,12}".prop_map(Value::Str),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Tuple),
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            prop::collection::vec((inner.clone(), inner), 0..4).prop_map(Value::Dict),
        ]
    })
}

/// The offset an error names, if it names one.
fn offset(error: &ReadError) -> Option<usize> {
    match error {
        ReadError::Forbidden { at, .. }
        | ReadError::Unknown { at, .. }
        | ReadError::Malformed { at, .. } => Some(*at),
        _ => None,
    }
}

/// Reads `input`: an error's offset lies inside the input, and a value, handed to the lab's
/// parser, is taken or refused with a message.
fn read_checked(input: &[u8]) -> Result<(), TestCaseError> {
    match read(input, 4096) {
        Ok(value) => {
            if let Err(message) = parse(&value) {
                prop_assert!(!message.is_empty());
            }
        }
        Err(error) => {
            if let Some(at) = offset(&error) {
                prop_assert!(at < input.len(), "{error} in {} bytes", input.len());
            }
            prop_assert!(!error.to_string().is_empty());
        }
    }
    Ok(())
}

#[derive(Clone, Debug)]
enum Edit {
    Flip { at: usize, bit: u8 },
    Set { at: usize, byte: u8 },
    Insert { at: usize, byte: u8 },
    Remove { at: usize },
}

fn any_edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Edit::Flip { at, bit }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Set { at, byte }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Insert { at, byte }),
        any::<usize>().prop_map(|at| Edit::Remove { at }),
    ]
}

fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
    if bytes.is_empty() {
        return;
    }
    match *edit {
        Edit::Flip { at, bit } => {
            let i = at % bytes.len();
            bytes[i] ^= 1 << bit;
        }
        Edit::Set { at, byte } => {
            let i = at % bytes.len();
            bytes[i] = byte;
        }
        Edit::Insert { at, byte } => bytes.insert(at % (bytes.len() + 1), byte),
        Edit::Remove { at } => {
            bytes.remove(at % bytes.len());
        }
    }
}

proptest! {
    #![proptest_config(fuzz_config())]

    /// What the writer writes, the reader reads back (the values here, at most 5 deep and
    /// a few hundred in all, are within the reader's limits).
    #[test]
    fn any_value_of_the_protocols_shapes_round_trips(value in any_value()) {
        let bytes = write(&value);
        prop_assert_eq!(read(&bytes, bytes.len()), Ok(value));
        // Every proper prefix is incomplete: a stream reader waits for more.
        for n in [0, bytes.len() / 2, bytes.len() - 1] {
            prop_assert_eq!(read(&bytes[..n], bytes.len()), Err(ReadError::Incomplete));
        }
    }

    /// Any bytes, after a protocol header or not: a value or an error, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic_the_reader(
        garbage in prop::collection::vec(any::<u8>(), 0..256),
        protocol in prop::option::of(0u8..7),
    ) {
        let mut input = match protocol {
            Some(p) => vec![0x80, p],
            None => vec![],
        };
        input.extend_from_slice(&garbage);
        read_checked(&input)?;
    }

    /// A real JOIN (protocol 4 or 2) or a node's ELECTION with one to four bytes flipped,
    /// set, inserted or removed: a value or an error, never a panic.
    #[test]
    fn an_edited_message_never_panics_the_reader_or_the_parser(
        which in 0usize..3,
        edits in prop::collection::vec(any_edit(), 1..5),
    ) {
        let mut input = match which {
            0 => JOIN_PROTOCOL_4.to_vec(),
            1 => JOIN_PROTOCOL_2.to_vec(),
            _ => write(&election()),
        };
        for edit in &edits {
            apply(&mut input, edit);
        }
        read_checked(&input)?;
    }

    /// Any value of the protocol's shapes given to the lab's parser: taken or refused with a
    /// message, never a panic.
    #[test]
    fn any_value_is_parsed_or_refused_by_the_lab(
        name in prop_oneof![
            Just("JOIN"), Just("ELECTION"), Just("COORDINATOR"), Just("OK"),
            Just("PROBE"), Just("LEAVE"), Just("X"),
        ],
        data in any_value(),
        tuple in any::<bool>(),
    ) {
        let message = if tuple {
            Value::Tuple(vec![Value::str(name), data])
        } else {
            data
        };
        if let Err(text) = parse(&message) {
            prop_assert!(!text.is_empty());
        }
    }
}

/// `('ELECTION', {(120, 4123456): ('127.0.0.1', 50001), (300, 2345678): ('127.0.0.1', 50003)})`.
fn election() -> Value {
    let member = |days, id, port| {
        (
            Value::Tuple(vec![Value::Int(days), Value::Int(id)]),
            Value::Tuple(vec![Value::str("127.0.0.1"), Value::Int(port)]),
        )
    };
    Value::Tuple(vec![
        Value::str("ELECTION"),
        Value::Dict(vec![
            member(120, 4123456, 50001),
            member(300, 2345678, 50003),
        ]),
    ])
}

/// The positive control for the edits: the unedited messages are read (and the ELECTION
/// parsed, with both members).
#[test]
fn the_unedited_messages_are_read_and_parsed() {
    for join in [JOIN_PROTOCOL_4, JOIN_PROTOCOL_2] {
        let value = read(join, 4096).unwrap();
        assert!(matches!(&value, Value::Tuple(parts) if parts[0] == Value::str("JOIN")));
    }
    let bytes = write(&election());
    let value = read(&bytes, 4096).unwrap();
    assert!(
        matches!(parse(&value), Ok(LabMessage::Election(members)) if members.len() == 2),
        "{value:?}"
    );
}
