//! `conclave registry` as a user starts it: the line it prints on start, and its refusals of
//! bad flags (exit 2) before it listens anywhere.

use std::io::{Read, Write};
use std::net::TcpStream;

mod common;
use common::{conclave, expect_code, start_server, stderr};

#[test]
fn registry_on_a_non_loopback_address_without_a_token_file_exits_2() {
    let o = conclave(&["registry", "--listen", "0.0.0.0:0"]);
    expect_code(&o, 2);
    assert_eq!(
        stderr(&o),
        "error: --listen 0.0.0.0:0 is not a loopback address: a registry other machines can \
         reach needs --token-file (clients send the token as X-Consul-Token)\n"
    );
}

#[test]
fn registry_refuses_a_missing_or_empty_token_file_and_a_bad_address() {
    let dir = std::env::temp_dir().join(format!("conclave-registry-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.token");
    std::fs::write(&empty, "\n").unwrap();
    let o = conclave(&["registry", "--token-file", empty.to_str().unwrap()]);
    expect_code(&o, 2);
    assert_eq!(
        stderr(&o),
        format!("error: token file {} is empty\n", empty.display())
    );
    let missing = dir.join("missing.token");
    let o = conclave(&[
        "registry",
        "--listen",
        "10.0.0.1:8500",
        "--token-file",
        missing.to_str().unwrap(),
    ]);
    expect_code(&o, 2);
    assert!(stderr(&o).starts_with(&format!(
        "error: cannot read token file {}: ",
        missing.display()
    )));
    let o = conclave(&["registry", "--listen", "localhost"]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("invalid value 'localhost' for '--listen <ADDR>'"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn registry_prints_its_address_and_answers_consul_requests() {
    let (_registry, line) = start_server(&["registry", "--listen", "127.0.0.1:0"]);
    let addr = line
        .strip_prefix("registry listening on http://127.0.0.1:")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .trim();
    let mut stream = TcpStream::connect(format!("127.0.0.1:{addr}")).unwrap();
    stream
        .write_all(b"GET /v1/catalog/services HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("x-consul-index: 1\r\n"),
        "{answer}"
    );
    assert!(answer.ends_with("\r\n\r\n{}"), "{answer}");
}
