//! The registry through py-consul (PyPI), a Consul client no one here wrote: register,
//! healthy instances with blocking queries, catalog, deregister (tests/py/consul_client_test.py).
//!
//! Needs `CONCLAVE_PY_CONSUL=/path/to/venv/bin/python` with py-consul installed (`.ci/run`
//! makes one); without it the test says so and passes.

mod common;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn py_consul_registers_follows_healthy_instances_and_deregisters() {
    let Ok(python) = std::env::var("CONCLAVE_PY_CONSUL") else {
        eprintln!(
            "skipped: set CONCLAVE_PY_CONSUL=/path/to/venv/bin/python (a venv with `pip install \
             py-consul`) to test the registry with py-consul; .ci/run does"
        );
        return;
    };
    for token in [None, Some("s3cret")] {
        let addr = common::start(token).await;
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/py/consul_client_test.py"
        );
        let mut command = Command::new(&python);
        command
            .arg(script)
            .env("CONCLAVE_REGISTRY", addr.to_string())
            .env_remove("CONCLAVE_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(token) = token {
            command.env("CONCLAVE_TOKEN", token);
        }
        let output = tokio::task::spawn_blocking(move || run_with_deadline(command))
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "token {token:?}: {python} {script}: {}\n{stdout}\n{stderr}",
            output.status
        );
        println!("token {token:?}: {stdout}");
    }
}

/// Runs the script, killing it after 60 s (a hung blocking query must not hang the test).
fn run_with_deadline(mut command: Command) -> std::process::Output {
    let mut child = command.spawn().expect("start the py-consul script");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait for the script").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("the script's output")
}
