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
    request(addr, &format!("GET {path} HTTP/1.1\r\n"), "")
}

/// One request (`line` with its CRLF, then `Host` and `Connection: close`
/// are added) with `body`; the whole response.
fn request(addr: &str, line: &str, body: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{line}Host: test\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn post_events(addr: &str, token: &str, body: &str) -> String {
    request(
        addr,
        &format!("POST /api/tiny/events HTTP/1.1\r\nAuthorization: Bearer {token}\r\n"),
        body,
    )
}

fn token_file(dir: &std::path::Path, text: &str, mode: u32) -> std::path::PathBuf {
    let p = dir.join("token");
    std::fs::write(&p, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = mode;
    p
}

#[test]
fn the_write_token_comes_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = snapshot(dir.path(), "tiny.colsnap");
    let f = token_file(dir.path(), "  s3cret-from-file\n", 0o600);
    let (_child, addr) = start(&[a.as_os_str(), "--write-token-file".as_ref(), f.as_os_str()]);
    let r = post_events(&addr, "wrong", "{\"seq\":1,\"op\":\"delete\",\"key\":1}\n");
    assert!(r.starts_with("HTTP/1.1 401"), "{r}");
    let r = post_events(
        &addr,
        "s3cret-from-file",
        "{\"seq\":1,\"op\":\"delete\",\"key\":1}\n",
    );
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.ends_with("{\"applied\":1,\"last_seq\":1}"), "{r}");
    let r = get(&addr, "/api/tiny/rows/1");
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
}

/// The row store is built by the program in a process of its own, kept in
/// `--row-store-dir` and used for whole rows; a restart reuses it.
#[test]
fn the_row_store_is_built_by_a_child_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let a = snapshot(dir.path(), "tiny.colsnap");
    let stores = dir.path().join("stores");
    let args = [
        a.as_os_str(),
        "--row-store".as_ref(),
        "startup".as_ref(),
        "--row-store-dir".as_ref(),
        stores.as_os_str(),
    ];
    let files = || -> Vec<String> {
        std::fs::read_dir(&stores)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    };
    for run in 0..2 {
        let (_child, addr) = start(&args);
        let r = get(&addr, "/api/tiny/rows?sort=-title");
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        assert!(
            r.contains(r#"{"data":[{"id":2,"title":"two"},{"id":1,"title":"one"}]"#),
            "{r}"
        );
        let r = get(&addr, "/healthz");
        assert!(r.contains(r#""state":"ready""#), "run {run}: {r}");
        assert!(r.contains(r#""rowsServed":2"#), "run {run}: {r}");
        let f = files();
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].starts_with("tiny-") && f[0].ends_with(".rows"),
            "{f:?}"
        );
    }
    // A builder asked for a file that is not the version it was given
    // refuses (the server then serves whole rows from the snapshot).
    let out = serve_cmd()
        .args(["__build-row-store".as_ref(), a.as_os_str()])
        .arg(dir.path().join("x.rows"))
        .args(["00ff", "1048576"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("changed since the server opened it"), "{err}");
    assert!(!dir.path().join("x.rows").exists());
}

#[test]
fn a_bad_token_file_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let a = snapshot(dir.path(), "tiny.colsnap");
    let refused = |args: &[&std::ffi::OsStr], want: &str| {
        let out = serve_cmd()
            .arg(&a)
            .args(args)
            .args(["--addr", "127.0.0.1:0", "--no-web"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "want `{want}` in: {err}");
    };
    let empty = token_file(dir.path(), " \n\n", 0o600);
    refused(
        &["--write-token-file".as_ref(), empty.as_os_str()],
        "the file is empty",
    );
    let missing = dir.path().join("no-such-token");
    refused(
        &["--write-token-file".as_ref(), missing.as_os_str()],
        "no-such-token",
    );
    let two = token_file(dir.path(), "a b\n", 0o600);
    refused(
        &["--write-token-file".as_ref(), two.as_os_str()],
        "no spaces",
    );
    #[cfg(unix)]
    {
        let open = token_file(dir.path(), "tok\n", 0o644);
        refused(
            &["--write-token-file".as_ref(), open.as_os_str()],
            "chmod 600",
        );
    }
    let ok = token_file(dir.path(), "tok\n", 0o600);
    refused(
        &[
            "--write-token-file".as_ref(),
            ok.as_os_str(),
            "--events-token".as_ref(),
            "x".as_ref(),
        ],
        "cannot be used with",
    );
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

/// Start `colsnap-serve ARGS --addr 127.0.0.1:0`; its address.
fn start(args: &[&std::ffi::OsStr]) -> (Reap, String) {
    let mut child = Reap(
        serve_cmd()
            .args(args)
            .args(["--addr", "127.0.0.1:0", "--no-web"])
            .env("RUST_LOG", "info")
            .env_remove("COLSNAP_EVENTS_TOKEN")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Lines of stderr, read on a thread so a silent server fails the test.
    let (tx, rx) = std::sync::mpsc::channel();
    let err = child.0.stderr.take().unwrap();
    std::thread::spawn(move || {
        // Read to the end (a closed pipe would fail the server's log
        // writes), passing lines on while someone listens.
        for line in BufReader::new(err).lines() {
            let _ = tx.send(line.unwrap_or_default());
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
    (child, addr)
}

#[test]
fn serves_then_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let a = snapshot(dir.path(), "tiny.colsnap");
    let (mut child, addr) = start(&[a.as_os_str()]);
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
