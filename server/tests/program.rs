//! The `colsnap-serve` program: arguments, serving, SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn serve_cmd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_colsnap-serve"))
}

fn snapshot(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    let rows = br#"[{"id": 1, "title": "one"}, {"id": 2, "title": "two"}]"#;
    std::fs::write(
        &p,
        colsnap::build_to_vec(&rows[..], &Default::default()).unwrap(),
    )
    .unwrap();
    p
}

fn get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn bad_arguments_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = serve_cmd().output().unwrap();
    assert_eq!(out.status.code(), Some(2), "no FILE is a usage error");
    let a = snapshot(dir.path(), "issues.colsnap");
    std::fs::create_dir(dir.path().join("b")).unwrap();
    let b = snapshot(&dir.path().join("b"), "issues.colsnap");
    let out = serve_cmd()
        .arg(&a)
        .arg(&b)
        .arg("--addr=127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("two snapshots would be served as `issues`")
    );
    let out = serve_cmd()
        .arg(dir.path().join("missing.colsnap"))
        .arg("--addr=127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let out = serve_cmd()
        .arg(&a)
        .args(["--addr=127.0.0.1:0", "--rate-limit", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// Kills the server if a test fails before it exits.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serves_then_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let a = snapshot(dir.path(), "tiny.colsnap");
    let mut child = Reap(
        serve_cmd()
            .arg(&a)
            .args(["--addr", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Lines of stderr, read on a thread so a silent server fails the test.
    let (tx, rx) = std::sync::mpsc::channel();
    let err = child.0.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let addr = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("a `listening` line on stderr");
        if let Some(i) = line.find("addr=") {
            break line[i + 5..].split_whitespace().next().unwrap().to_string();
        }
    };
    let r = get(&addr, "/healthz");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.contains("\"snapshots\":[\"tiny\"]"), "{r}");
    let r = get(&addr, "/api/tiny/rows/2");
    assert!(r.ends_with("{\"id\":2,\"title\":\"two\"}\n"), "{r}");
    let st = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let t0 = Instant::now();
    loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            assert!(s.success(), "{s:?}");
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "still running after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
