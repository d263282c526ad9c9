//! What every test of the `conclave` binary needs: run it, read its output, check its exit
//! code. Each test file uses some of these.
#![allow(dead_code)]

pub mod cluster;

use std::path::Path;
use std::process::{Command, Output};

/// Runs the binary from the repository's root.
pub fn conclave(args: &[&str]) -> Output {
    conclave_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

/// Runs the binary from another working directory.
pub fn conclave_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_conclave"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the conclave binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the exit code, showing both outputs when it is wrong.
pub fn expect_code(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "{}{}", stdout(o), stderr(o));
}

/// A server the test started, killed when the test ends, passed or failed.
pub struct Server {
    pub child: std::process::Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `conclave ARGS` (a server: registry, gcd, monitor) and returns it with the first
/// line it prints (where it listens).
pub fn start_server<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (Server, String) {
    use std::io::BufRead;
    let child = Command::new(env!("CARGO_BIN_EXE_conclave"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("the conclave binary starts");
    let mut server = Server { child };
    let mut line = String::new();
    std::io::BufReader::new(server.child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("the server prints where it listens");
    (server, line)
}
