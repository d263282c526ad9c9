//! The lab's own wire format (`--wire lab`), as seed 003's Python nodes speak it: one
//! message per TCP connection, a pickled `(message_name, message_data)` tuple; the daemon
//! sends one pickled answer and closes.
//!
//! | request | answer |
//! | --- | --- |
//! | `('JOIN', ((days, student_id), (host, port)))` | `{(days, student_id): (host, port), ...}`, every member, the joiner included |
//! | anything else, or a JOIN out of range | a `str` saying what was wrong; nothing changes |
//!
//! ```
//! use conclave_services::gcd::lab::{parse, LabRequest};
//! use conclave_services::gcd::pickle::{read, Value};
//! // pickle.dumps(('JOIN', ((120, 4123456), ('localhost', 50001))), 2)
//! let raw = b"\x80\x02X\x04\x00\x00\x00JOINq\x00KxJ@\xeb>\x00\x86q\x01X\t\x00\x00\x00localhostq\x02MQ\xc3\x86q\x03\x86q\x04\x86q\x05.";
//! let LabRequest::Join(identity, listener) = parse(&read(raw, 1024).unwrap()).unwrap();
//! assert_eq!((identity.days, identity.student_id), (120, 4123456));
//! assert_eq!(listener.to_string(), "127.0.0.1:50001");
//! ```

use super::group::{Identity, JoinError, Listener};
use super::pickle::Value;

/// The largest request the daemon reads: a JOIN is under 100 bytes, and the lab's own
/// daemon reads a single `recv(1024)`.
pub const MAX_REQUEST_BYTES: usize = 1024;

/// A request the daemon serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabRequest {
    Join(Identity, Listener),
}

/// Why a lab request was refused: the text of the answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LabError {
    #[error("Malformed message, expected (message_name, message_data)")]
    Malformed,
    #[error("Unexpected message: {0}")]
    Unexpected(String),
    #[error("Malformed message data, expected ((days_to_bd, su_id), (host, port))")]
    MalformedJoin,
    #[error("{0}")]
    Join(#[from] JoinError),
}

/// The request in a decoded pickle.
pub fn parse(message: &Value) -> Result<LabRequest, LabError> {
    let Value::Tuple(parts) = message else {
        return Err(LabError::Malformed);
    };
    let [name, data] = parts.as_slice() else {
        return Err(LabError::Malformed);
    };
    match name {
        Value::Str(name) if name == "JOIN" => parse_join(data),
        Value::Str(name) => Err(LabError::Unexpected(name.chars().take(64).collect())),
        _ => Err(LabError::Malformed),
    }
}

fn parse_join(data: &Value) -> Result<LabRequest, LabError> {
    let pair = |v: &Value| match v {
        Value::Tuple(items) | Value::List(items) if items.len() == 2 => {
            Some((items[0].clone(), items[1].clone()))
        }
        _ => None,
    };
    let (process_id, listener) = pair(data).ok_or(LabError::MalformedJoin)?;
    let (days, student_id) = pair(&process_id).ok_or(LabError::MalformedJoin)?;
    let (host, port) = pair(&listener).ok_or(LabError::MalformedJoin)?;
    let (Value::Int(days), Value::Int(student_id)) = (days, student_id) else {
        return Err(LabError::MalformedJoin);
    };
    let (Value::Str(host), Value::Int(port)) = (host, port) else {
        return Err(LabError::MalformedJoin);
    };
    let identity = Identity::new(days, student_id)?;
    let listener = Listener::new(&host, port)?;
    Ok(LabRequest::Join(identity, listener))
}

/// The JOIN answer: `{(days, student_id): (host, port), ...}`.
pub fn members_value(members: &[(Identity, Listener)]) -> Value {
    Value::Dict(
        members
            .iter()
            .map(|(i, l)| {
                (
                    Value::Tuple(vec![
                        Value::Int(i64::from(i.days)),
                        Value::Int(i64::from(i.student_id)),
                    ]),
                    Value::Tuple(vec![
                        Value::Str(l.host.clone()),
                        Value::Int(i64::from(l.port)),
                    ]),
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(data: Value) -> Value {
        Value::Tuple(vec![Value::str("JOIN"), data])
    }

    fn t(items: Vec<Value>) -> Value {
        Value::Tuple(items)
    }

    #[test]
    fn refuses_other_shapes_with_the_lab_daemons_words() {
        assert_eq!(parse(&Value::str("JOIN")), Err(LabError::Malformed));
        let election = t(vec![Value::str("ELECTION"), Value::None]);
        assert_eq!(
            parse(&election).unwrap_err().to_string(),
            "Unexpected message: ELECTION"
        );
        assert_eq!(parse(&join(Value::None)), Err(LabError::MalformedJoin));
        let bool_days = join(t(vec![
            t(vec![Value::Bool(true), Value::Int(1_000_000)]),
            t(vec![Value::str("localhost"), Value::Int(1)]),
        ]));
        assert_eq!(parse(&bool_days), Err(LabError::MalformedJoin));
        let big_days = join(t(vec![
            t(vec![Value::Int(400), Value::Int(1_000_000)]),
            t(vec![Value::str("localhost"), Value::Int(1)]),
        ]));
        assert!(matches!(
            parse(&big_days),
            Err(LabError::Join(JoinError::Identity { days: 400, .. }))
        ));
    }
}
