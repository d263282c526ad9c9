//! `conclave gcd` as a user starts it: the line it prints on start, a lab JOIN answered with
//! the member dict, and its refusals of bad flags (exit 2).

use conclave_services::gcd::pickle::{self, Value};
use std::io::{Read, Write};
use std::net::TcpStream;

mod common;
use common::{conclave, expect_code, start_server, stderr};

#[test]
fn gcd_wire_lab_prints_its_address_and_answers_a_python_join() {
    let (_gcd, line) = start_server(&["gcd", "--listen", "127.0.0.1:0", "--wire", "lab"]);
    let port = line
        .strip_prefix("gcd listening on 127.0.0.1:")
        .and_then(|rest| rest.strip_suffix(" wire=lab\n"))
        .unwrap_or_else(|| panic!("first line: {line:?}"));
    let mut stream = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    // pickle.dumps(('JOIN', ((120, 4123456), ('127.0.0.1', 50001))), 2), as Python 3 writes it.
    stream
        .write_all(b"\x80\x02X\x04\x00\x00\x00JOINq\x00KxJ@\xeb>\x00\x86q\x01X\t\x00\x00\x00127.0.0.1q\x02MQ\xc3\x86q\x03\x86q\x04\x86q\x05.")
        .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let t = Value::Tuple;
    assert_eq!(
        pickle::read(&answer, 1024),
        Ok(Value::Dict(vec![(
            t(vec![Value::Int(120), Value::Int(4_123_456)]),
            t(vec![Value::str("127.0.0.1"), Value::Int(50001)]),
        )]))
    );
}

#[test]
fn gcd_refuses_an_unknown_wire_and_an_address_in_use() {
    let o = conclave(&["gcd", "--wire", "json"]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("invalid value 'json' for '--wire <WIRE>'"),
        "{}",
        stderr(&o)
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = conclave(&["gcd", "--listen", &addr]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).starts_with(&format!("error: cannot listen on {addr}: ")),
        "{}",
        stderr(&o)
    );
}
