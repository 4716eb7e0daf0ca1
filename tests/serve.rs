//! `colsnap serve ARGS`: runs the program `colsnap-serve` (found next to
//! `colsnap`, else on PATH) with ARGS, in this process (exec on unix).

#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const COLSNAP: &str = env!("CARGO_BIN_EXE_colsnap");

/// A directory beside the build outputs (same file system: hard links work).
fn scratch() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

/// `colsnap` linked into `dir` (so it looks for `colsnap-serve` there).
fn colsnap_in(dir: &Path) -> PathBuf {
    let p = dir.join("colsnap");
    if std::fs::hard_link(COLSNAP, &p).is_err() {
        std::fs::copy(COLSNAP, &p).unwrap();
    }
    p
}

fn script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn arguments_output_and_exit_status_pass_through() {
    let dir = scratch();
    let colsnap = colsnap_in(dir.path());
    script(
        &dir.path().join("colsnap-serve"),
        r#"for a in "$@"; do echo "[$a]"; done; echo "pid $$"; exit 7"#,
    );
    let child = Command::new(&colsnap)
        .args([
            "serve",
            "a b.colsnap",
            "--addr",
            "127.0.0.1:0",
            "--help",
            "-x",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(7), "the server's exit status");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("[a b.colsnap]\n[--addr]\n[127.0.0.1:0]\n[--help]\n[-x]\npid {pid}\n"),
        "every argument as given, and the same process (exec)"
    );
    // `colsnap serve --help` is the server's help.
    let out = Command::new(&colsnap)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("[--help]\npid "), "{text}");
    // `colsnap --help` lists it.
    let out = Command::new(COLSNAP).arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("  serve "));
}

#[test]
fn a_missing_server_program_says_how_to_get_it() {
    let dir = scratch();
    let colsnap = colsnap_in(dir.path());
    let out = Command::new(&colsnap)
        .args(["serve", "x.colsnap"])
        .env("PATH", dir.path().join("nothing-here"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("colsnap: error: "), "{err}");
    assert!(err.contains("colsnap-serve"), "{err}");
    assert!(
        err.contains("cargo build --release --workspace")
            && err.contains("cargo install --path server"),
        "{err}"
    );
}

#[test]
fn the_server_found_on_path_is_run() {
    let dir = scratch();
    let colsnap = colsnap_in(dir.path());
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    script(&bin.join("colsnap-serve"), r#"echo "on path: $1"; exit 0"#);
    let out = Command::new(&colsnap)
        .args(["serve", "y"])
        .env("PATH", &bin)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "on path: y\n");
}

/// Kills the server if a test fails before it exits.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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

/// The real server, when the workspace build made it (`cargo test` at the
/// root builds every default member, the server included): `colsnap serve`
/// serves, and SIGTERM to colsnap's process id stops the server gracefully.
#[test]
fn colsnap_serve_runs_the_real_server() {
    let real = Path::new(COLSNAP).with_file_name("colsnap-serve");
    if !real.is_file() {
        eprintln!(
            "skipped: no {} (built by `cargo test` at the workspace root or `cargo build --workspace`)",
            real.display()
        );
        return;
    }
    let dir = scratch();
    let snap = dir.path().join("tiny.colsnap");
    let rows = br#"[{"id": 1, "title": "one"}, {"id": 2, "title": "two"}]"#;
    std::fs::write(
        &snap,
        colsnap::build_to_vec(&rows[..], &Default::default()).unwrap(),
    )
    .unwrap();
    let mut child = Reap(
        Command::new(COLSNAP)
            .arg("serve")
            .arg(&snap)
            .args(["--addr", "127.0.0.1:0", "--no-web"])
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
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
            assert!(s.success(), "graceful shutdown: {s:?}");
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "still running after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
