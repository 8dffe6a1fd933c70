//! The CLI installs a tracing subscriber: RUST_LOG respected (default warn), to stderr, and
//! JSON lines with `serve --log-json` (issue 9: every tracing event was invisible).

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `remotemedia serve` with `extra` args and `rust_log` on a port the OS picks (a port
/// found free beforehand may be taken by another test's connection before the server binds
/// it), stops it with SIGTERM once it says where it listens, and returns (stdout, stderr).
fn serve_and_stop(extra: &[&str], rust_log: Option<&str>) -> (String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_remotemedia"));
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match rust_log {
        Some(v) => cmd.env("RUST_LOG", v),
        None => cmd.env_remove("RUST_LOG"),
    };
    let mut child = cmd.spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut err = String::new();
    let start = Instant::now();
    loop {
        let mut line = String::new();
        let n = stderr.read_line(&mut line).unwrap();
        assert!(n > 0, "the server exited before listening: {err}");
        err.push_str(&line);
        if line.contains("serving remotemedia.v1 on ") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "server did not start: {err}"
        );
    }
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    stderr.read_to_string(&mut err).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}: {err}");
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    (out, err)
}

#[test]
fn rust_log_is_respected_and_defaults_to_warn() {
    // The drain notice is an info event: hidden by default, shown with RUST_LOG=info.
    let (out, err) = serve_and_stop(&[], None);
    assert!(!err.contains("shutting down: draining"), "{err}");
    assert!(!out.contains("shutting down"), "{out}");
    let (out, err) = serve_and_stop(&[], Some("info"));
    let line = err
        .lines()
        .find(|l| l.contains("shutting down: draining"))
        .unwrap_or_else(|| panic!("no info event on stderr: {err}"));
    assert!(line.contains("INFO"), "{line}");
    assert!(
        !out.contains("shutting down"),
        "events go to stderr only: {out}"
    );
}

#[test]
fn serve_log_json_writes_json_lines() {
    let (_, err) = serve_and_stop(&["--log-json"], Some("remotemedia_grpc=info"));
    let events: Vec<serde_json::Value> = err
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let drain = events
        .iter()
        .find(|e| {
            e["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("shutting down: draining"))
        })
        .unwrap_or_else(|| panic!("no JSON drain event in {err}"));
    assert_eq!(drain["level"], "INFO");
    assert_eq!(drain["target"], "remotemedia_grpc::server");
}
