//! Nothing is lost: a build killed mid-write, or a build that fails, never
//! leaves a partial output and never damages an existing one.
//!
//! The killed build runs in a child process: this test binary re-runs
//! itself with `--ignored --exact atomic_child`, and the parent sends
//! SIGKILL (`Child::kill`) once the temporary output holds bytes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "COLSNAP_ATOMIC_CHILD";

/// Write about `mb` MB of issue-like NDJSON; `bad_tail` appends a broken row.
fn generate(path: &Path, mb: usize, bad_tail: bool) {
    let f = std::fs::File::create(path).expect("create input");
    let mut w = std::io::BufWriter::new(f);
    let words = [
        "crash",
        "panic",
        "docs",
        "parser",
        "render",
        "window",
        "plugin",
        "lsp",
        "regression",
        "startup",
    ];
    let mut written = 0usize;
    let mut i = 0u64;
    while written < mb << 20 {
        let a = words[(i % 10) as usize];
        let b = words[(i * 7 % 10) as usize];
        let line = format!(
            "{{\"id\":{},\"number\":{i},\"title\":\"{a} in {b} #{i}\",\"state\":\"{}\",\
             \"created_at\":\"2024-{:02}-{:02}T{:02}:{:02}:{:02}Z\",\
             \"user\":{{\"login\":\"user{}\",\"id\":{}}},\
             \"labels\":[{{\"name\":\"{a}\"}},{{\"name\":\"{b}\"}}],\"comments\":{},\
             \"body\":\"When I run {a} with {b} the {a} fails after {i} steps; expected {b} to work. {}\"}}\n",
            1_000_000 + i * 13,
            if i.is_multiple_of(3) {
                "closed"
            } else {
                "open"
            },
            1 + i % 12,
            1 + i % 28,
            i % 24,
            i % 60,
            i * 7 % 60,
            i % 5000,
            i % 5000,
            i % 40,
            "x".repeat((i % 200) as usize),
        );
        w.write_all(line.as_bytes()).expect("write input");
        written += line.len();
        i += 1;
    }
    if bad_tail {
        w.write_all(b"{\"id\":1,\"title\":\"broken").expect("write");
    }
    w.flush().expect("flush");
}

/// Temporary files `build_file` leaves in `dir` for `output`.
fn temp_files(dir: &Path, output: &str) -> Vec<PathBuf> {
    let prefix = format!(".{output}.");
    std::fs::read_dir(dir)
        .expect("read_dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".tmp"))
        })
        .collect()
}

/// The child side, run by the parent tests only:
/// `build\nINPUT\nOUTPUT` builds with `build_file`;
/// `stall\nOUTPUT` writes half a snapshot through `write_atomically`,
/// flushes it, and waits forever (to be killed).
#[test]
#[ignore = "run by the kill tests in a child process"]
fn atomic_child() {
    let spec = std::env::var(CHILD_ENV).expect("run by the parent tests only");
    let parts: Vec<&str> = spec.split('\n').collect();
    match parts.as_slice() {
        ["build", input, output] => {
            colsnap::build_file(
                Path::new(input),
                Path::new(output),
                &colsnap::BuildOptions::default(),
            )
            .expect("build");
        }
        ["stall", output] => {
            let _: colsnap::Result<()> = colsnap::write::write_atomically(Path::new(output), |w| {
                let snapshot = colsnap::build_to_vec(&b"{\"a\":1}"[..], &Default::default())?;
                w.write_all(&snapshot[..snapshot.len() / 2])?;
                w.flush()?;
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                }
            });
        }
        _ => panic!("bad child spec {spec:?}"),
    }
}

/// Start a child and SIGKILL it once its temporary output holds bytes.
/// Returns whether the temporary file was still there after the kill,
/// i.e. the child died before renaming it into place.
fn kill_mid_write(spec: &str, output: &Path) -> bool {
    let dir = output.parent().expect("dir");
    let name = output.file_name().and_then(|n| n.to_str()).expect("name");
    let before = temp_files(dir, name);
    let mut child = Command::new(std::env::current_exe().expect("current_exe"))
        .args(["--ignored", "--exact", "atomic_child", "--nocapture"])
        .env(CHILD_ENV, spec)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let t0 = Instant::now();
    loop {
        let tmp: Vec<PathBuf> = temp_files(dir, name)
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        let writing = tmp
            .iter()
            .any(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0));
        if writing {
            child.kill().expect("SIGKILL");
            child.wait().expect("wait");
            let left = tmp.iter().any(|p| p.exists());
            eprintln!(
                "killed after {:.1}s, {}",
                t0.elapsed().as_secs_f64(),
                if left {
                    "mid-write (its temporary file is left behind)"
                } else {
                    "after the rename"
                }
            );
            return left;
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            eprintln!("child finished before it was killed: {status}");
            return false;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "child never started writing"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn killed_write_leaves_no_partial_output() {
    // Deterministic: the child is always mid-write when killed.
    let dir = tempfile::tempdir().expect("tempdir");
    let fresh = dir.path().join("fresh.colsnap");
    assert!(kill_mid_write(
        &format!("stall\n{}", fresh.display()),
        &fresh
    ));
    assert!(!fresh.exists(), "a partial output appeared");
    let existing = dir.path().join("existing.colsnap");
    let small = colsnap::build_to_vec(&b"{\"keep\":\"me\"}\n"[..], &Default::default())
        .expect("small build");
    std::fs::write(&existing, &small).expect("write existing");
    assert!(kill_mid_write(
        &format!("stall\n{}", existing.display()),
        &existing
    ));
    assert_eq!(std::fs::read(&existing).expect("read"), small);
}

#[test]
fn killed_build_leaves_no_partial_output() {
    // A real 40 MB build through build_file, killed as soon as it writes.
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("issues.ndjson");
    generate(&input, 40, false);
    let check = |output: &Path, mid_write: bool, before: Option<&[u8]>| {
        if mid_write {
            match before {
                None => assert!(!output.exists(), "a partial output appeared"),
                Some(b) => assert_eq!(
                    std::fs::read(output).expect("read"),
                    b,
                    "the existing output changed"
                ),
            }
        } else {
            // Killed too late: the rename happened, so the output is whole.
            colsnap::Snapshot::open(output)
                .expect("open")
                .verify()
                .expect("a complete snapshot");
        }
    };

    let fresh = dir.path().join("fresh.colsnap");
    let mid = kill_mid_write(
        &format!("build\n{}\n{}", input.display(), fresh.display()),
        &fresh,
    );
    check(&fresh, mid, None);

    let existing = dir.path().join("existing.colsnap");
    let small = colsnap::build_to_vec(&b"{\"keep\":\"me\"}\n"[..], &Default::default())
        .expect("small build");
    std::fs::write(&existing, &small).expect("write existing");
    let mid2 = kill_mid_write(
        &format!("build\n{}\n{}", input.display(), existing.display()),
        &existing,
    );
    check(&existing, mid2, Some(&small));
    eprintln!(
        "build_file killed: fresh output absent, existing output identical (mid-write: {mid}, {mid2})"
    );
}

#[test]
fn failed_build_leaves_existing_output_and_no_temp_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("bad.ndjson");
    generate(&input, 8, true);
    let output = dir.path().join("out.colsnap");
    let small = colsnap::build_to_vec(&b"[{\"keep\":1}]"[..], &Default::default()).expect("build");
    std::fs::write(&output, &small).expect("write");
    let err = colsnap::build_file(&input, &output, &Default::default())
        .expect_err("the last row is broken");
    assert!(
        matches!(err, colsnap::Error::Json { line, .. } if line > 10_000),
        "{err}"
    );
    assert_eq!(std::fs::read(&output).expect("read"), small);
    assert!(temp_files(dir.path(), "out.colsnap").is_empty());

    // The same for a fresh output: nothing is created.
    let fresh = dir.path().join("fresh.colsnap");
    colsnap::build_file(&input, &fresh, &Default::default()).expect_err("broken");
    assert!(!fresh.exists());
    assert!(temp_files(dir.path(), "fresh.colsnap").is_empty());
}

#[test]
fn output_that_is_the_input_or_unwritable_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.ndjson");
    std::fs::write(&input, b"{\"a\":1}\n").expect("write");
    let err = colsnap::build_file(&input, &input, &Default::default()).expect_err("same file");
    assert!(matches!(err, colsnap::Error::Invalid(_)), "{err}");
    assert_eq!(std::fs::read(&input).expect("read"), b"{\"a\":1}\n");
    let nowhere = dir.path().join("missing-dir").join("out.colsnap");
    let err = colsnap::build_file(&input, &nowhere, &Default::default()).expect_err("no dir");
    assert!(matches!(err, colsnap::Error::Io { .. }), "{err}");
    assert!(!nowhere.exists());
}

#[cfg(unix)]
#[test]
fn output_gets_ordinary_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.ndjson");
    std::fs::write(&input, b"{\"a\":1}\n").expect("write");
    let out = dir.path().join("out.colsnap");
    colsnap::build_file(&input, &out, &Default::default()).expect("build");
    // Like a file made by File::create (0666 less the umask): not owner-only.
    let plain = dir.path().join("plain");
    std::fs::write(&plain, b"x").expect("write");
    let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&out), mode(&plain));
    // Replacing a file keeps its permissions.
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    colsnap::build_file(&input, &out, &Default::default()).expect("rebuild");
    assert_eq!(mode(&out), 0o640);
}

/// A writer killed outright (SIGKILL) cannot remove its temporary file;
/// the next write of the same output does: a leftover is one that no live
/// process holds locked and that is older than a few seconds
/// (`colsnap::schema::leftovers`). A live writer's file, and a leftover
/// of the last seconds, stay.
#[test]
fn the_next_write_removes_what_a_killed_writer_left() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.colsnap");
    let spec = format!("stall\n{}", out.display());
    assert!(kill_mid_write(&spec, &out));
    let old = temp_files(dir.path(), "out.colsnap");
    assert_eq!(old.len(), 1);
    // A live writer of the same output, stalled mid-write.
    let mut live = Command::new(std::env::current_exe().expect("current_exe"))
        .args(["--ignored", "--exact", "atomic_child", "--nocapture"])
        .env(CHILD_ENV, &spec)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let t0 = Instant::now();
    let live_tmp = loop {
        let new: Vec<PathBuf> = temp_files(dir.path(), "out.colsnap")
            .into_iter()
            .filter(|p| !old.contains(p) && std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
            .collect();
        if let [p] = new.as_slice() {
            break p.clone();
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "no live writer");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(kill_mid_write(&spec, &out));
    let recent: Vec<PathBuf> = temp_files(dir.path(), "out.colsnap")
        .into_iter()
        .filter(|p| !old.contains(p) && *p != live_tmp)
        .collect();
    assert_eq!(recent.len(), 1);
    // Made an hour old: the killed writer's file and the live one's.
    for p in [&old[0], &live_tmp] {
        std::fs::OpenOptions::new()
            .write(true)
            .open(p)
            .and_then(|f| f.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600)))
            .expect("set mtime");
    }
    let small = colsnap::build_to_vec(&b"{\"a\":1}\n"[..], &Default::default()).expect("build");
    colsnap::write::write_atomically(&out, |w| Ok(w.write_all(&small)?)).expect("write");
    assert_eq!(std::fs::read(&out).expect("read"), small);
    assert!(!old[0].exists(), "the killed writer's old file is removed");
    assert!(live_tmp.exists(), "the live writer's file stays");
    assert!(recent[0].exists(), "a leftover of the last seconds stays");
    live.kill().expect("SIGKILL");
    live.wait().expect("wait");
}
