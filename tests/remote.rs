//! Reading snapshots from servers no one here wrote: a real nginx serves a
//! single `.colsnap` file (byte ranges, `ETag`, `If-Match`) and a published
//! directory (objects, manifest, `NAME.latest.json`). Remote answers must
//! equal local ones; opening costs one request; a file swapped while it is
//! read fails cleanly (never mixed); a 500 is retried; a corrupted object is
//! detected. Without nginx the tests print a notice and return, unless
//! `COLSNAP_REQUIRE_SERVERS=1` (CI).
#![cfg(all(feature = "cli", feature = "http"))]

mod common;

use colsnap::publish::{self, PublishOptions};
use colsnap::read::OpenOptions;
use colsnap::source::{ByteSource, HttpSource};
use colsnap::{BuildOptions, Error, ExportOptions, Snapshot};
use colsnap_testdata::{GenOptions, write_ndjson};
use common::colsnap;
use common::servers::{FaultServer, Nginx};
use std::path::Path;
use std::sync::Arc;

/// A generated snapshot of `count` issues (long bodies: the file is far
/// larger than the 64 KiB tail an open reads).
fn snapshot_bytes(count: usize, seed: u64) -> Vec<u8> {
    let mut nd = Vec::new();
    write_ndjson(
        &GenOptions {
            count,
            seed,
            ..GenOptions::default()
        },
        &mut nd,
    )
    .unwrap();
    colsnap::build_to_vec(&nd[..], &BuildOptions::default()).unwrap()
}

/// A served directory: `site/issues.colsnap` and its publication in
/// `site/pub/`.
struct Site {
    dir: tempfile::TempDir,
    nginx: Nginx,
}

impl Site {
    fn start(count: usize) -> Option<Site> {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("site");
        std::fs::create_dir_all(&site).unwrap();
        std::fs::write(site.join("issues.colsnap"), snapshot_bytes(count, 42)).unwrap();
        publish::publish_file(
            &site.join("issues.colsnap"),
            &site.join("pub"),
            &PublishOptions {
                name: "issues".into(),
                min_object: publish::DEFAULT_MIN_OBJECT,
                events: vec![],
                key: colsnap::events::DEFAULT_KEY_FIELD.into(),
            },
        )
        .unwrap();
        let nginx = Nginx::start(&site)?;
        Some(Site { dir, nginx })
    }

    fn path(&self, p: &str) -> std::path::PathBuf {
        self.dir.path().join("site").join(p)
    }

    fn local(&self) -> String {
        self.path("issues.colsnap").display().to_string()
    }
}

fn run(args: &[&str]) -> (bool, String, String) {
    let o = colsnap().args(args).output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

const QUERIES: &[&[&str]] = &[
    &[
        "query",
        "--sort",
        "-updated_at",
        "--limit",
        "50",
        "--fields",
        "number,title,state,updated_at,user.login",
    ],
    &["query", "--where", "state=open", "--count"],
    &[
        "query",
        "--where",
        "state=open",
        "--facet",
        "labels[].name",
        "--limit",
        "5",
    ],
    &[
        "query", "--search", "crash", "--sort", "number", "--limit", "20",
    ],
    &["query", "--where", "number=77", "--limit", "1"],
    &["export", "--ndjson", "--rows", "100..140"],
    &["export", "--ndjson"],
];

#[test]
fn remote_answers_equal_local_answers() {
    let Some(site) = Site::start(3000) else {
        return;
    };
    let local = site.local();
    let file_url = site.nginx.url("issues.colsnap");
    let pointer_url = site.nginx.url("pub/issues.latest.json");
    let local_pointer = site.path("pub/issues.latest.json").display().to_string();
    for q in QUERIES {
        let with = |f: &str| {
            let mut a = vec![q[0], f];
            a.extend_from_slice(&q[1..]);
            run(&a)
        };
        let (ok, want, err) = with(&local);
        assert!(ok, "{q:?}: {err}");
        assert!(!want.is_empty());
        for loc in [&file_url, &pointer_url, &local_pointer] {
            let (ok, got, err) = with(loc);
            assert!(ok, "{q:?} on {loc}: {err}");
            assert_eq!(got, want, "{q:?} on {loc}");
        }
    }
    // verify reads every byte and checks it; --json reports the requests.
    let (ok, out, err) = run(&["verify", &file_url, "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true);
    assert!(v["remote"]["requests"].as_u64().unwrap() >= 2, "{v}");
    let (ok, _, err) = run(&["--stats", "verify", &pointer_url]);
    assert!(ok, "{err}");
    assert!(err.contains("requests") && err.contains("fetched"), "{err}");
    // The library too: the published copy exports what the file does.
    let o = publish::open(&pointer_url, OpenOptions::default()).unwrap();
    let l = Snapshot::open(&local).unwrap();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    l.export(&mut a, &ExportOptions::default()).unwrap();
    o.snapshot
        .export(&mut b, &ExportOptions::default())
        .unwrap();
    assert_eq!(a, b);
}

#[test]
fn opening_costs_one_request() {
    let Some(site) = Site::start(3000) else {
        return;
    };
    let before = site.nginx.requests();
    let src = HttpSource::open(&site.nginx.url("issues.colsnap")).unwrap();
    assert!(
        src.len() > 256 << 10,
        "the file must be larger than the tail"
    );
    let snap = Snapshot::from_source(Arc::new(src)).unwrap();
    assert_eq!(snap.rows(), 3000);
    site.nginx.requests();
    let log = site.nginx.access_log();
    assert_eq!(log.len() - before, 1, "{:?}", &log[before..]);
    assert!(log[before].contains(" 206 "), "{}", log[before]);
    // A manifest: one GET; a pointer: two (the pointer, then the manifest).
    let m = std::fs::read_to_string(site.path("pub/issues.latest.json")).unwrap();
    let manifest: String = serde_json::from_str::<serde_json::Value>(&m).unwrap()["manifest"]
        .as_str()
        .unwrap()
        .to_string();
    for (path, want) in [
        (format!("pub/{manifest}"), 1),
        ("pub/issues.latest.json".into(), 2),
    ] {
        let before = site.nginx.requests();
        let o = publish::open(&site.nginx.url(&path), OpenOptions::default()).unwrap();
        assert_eq!(o.snapshot.rows(), 3000);
        assert_eq!(site.nginx.requests() - before, want, "{path}");
        assert_eq!(o.net.unwrap().get().requests, want as u64, "{path}");
    }
    // Then a column: a few more requests, the header checked along.
    let before = site.nginx.requests();
    let node = snap.node_by_path("number").unwrap();
    snap.node_data(node).unwrap();
    let n = site.nginx.requests() - before;
    assert!((1..=3).contains(&n), "{n} requests for one column");
}

#[test]
fn a_file_swapped_mid_read_fails_cleanly_never_mixed() {
    let Some(site) = Site::start(2000) else {
        return;
    };
    let url = site.nginx.url("issues.colsnap");
    let snap = Snapshot::from_source(Arc::new(HttpSource::open(&url).unwrap())).unwrap();
    let old_rows = snap.rows();
    snap.node_data(snap.node_by_path("number").unwrap())
        .unwrap();
    // Replace the file by another snapshot (as a publisher does: write a
    // new file, rename it over the old one), with a later mtime.
    let new = site.path("new.colsnap");
    std::fs::write(&new, snapshot_bytes(2100, 7)).unwrap();
    let f = std::fs::File::options().write(true).open(&new).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    drop(f);
    std::fs::rename(&new, site.path("issues.colsnap")).unwrap();
    // Everything not read yet now fails with Changed; nothing decodes.
    let e = snap.verify().unwrap_err();
    assert!(matches!(e, Error::Changed { .. }), "{e:?}");
    assert!(e.to_string().contains(&url), "{e}");
    let mut out = Vec::new();
    let e = snap
        .export(&mut out, &ExportOptions::default())
        .unwrap_err();
    assert!(matches!(e, Error::Changed { .. }), "{e:?}");
    // A fresh open (the CLI's) reads the new version.
    let o = colsnap()
        .args(["export", "--ndjson", &url])
        .output()
        .unwrap();
    assert!(o.status.success(), "a fresh open reads the new version");
    // Restarting (opening again) reads the new version whole.
    let again = Snapshot::from_source(Arc::new(HttpSource::open(&url).unwrap())).unwrap();
    assert_eq!(again.rows(), 2100);
    assert_ne!(again.rows(), old_rows);
    again.verify().unwrap();
}

#[test]
fn a_server_error_then_success_is_retried() {
    // No nginx needed: a fault server answers 500 twice, then serves.
    let bytes = snapshot_bytes(500, 3);
    let server = FaultServer::start(bytes.clone(), 2);
    let (ok, out, err) = run(&["--stats", "export", "--ndjson", &server.url]);
    assert!(ok, "{err}");
    let local = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(local.path(), &bytes).unwrap();
    let (ok, want, _) = run(&["export", "--ndjson", local.path().to_str().unwrap()]);
    assert!(ok);
    assert_eq!(out, want);
    assert!(err.contains("(2 retries)"), "{err}");
    // Always failing: a bounded number of attempts, then an error naming
    // the URL and the status, exit 1.
    let server = FaultServer::start(bytes, u64::MAX);
    let (ok, _, err) = run(&["inspect", &server.url]);
    assert!(!ok);
    assert!(err.contains(&server.url) && err.contains("500"), "{err}");
    assert_eq!(
        server.requests.load(std::sync::atomic::Ordering::SeqCst),
        4,
        "one try and three retries"
    );
}

#[test]
fn a_corrupted_object_is_detected() {
    let Some(site) = Site::start(2000) else {
        return;
    };
    let pointer_url = site.nginx.url("pub/issues.latest.json");
    let (ok, _, err) = run(&["verify", &pointer_url]);
    assert!(ok, "{err}");
    // Flip one byte in the middle of the largest object.
    let objects = site.path("pub/objects");
    let largest = std::fs::read_dir(&objects)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut b = std::fs::read(&largest).unwrap();
    let k = b.len() / 2;
    b[k] ^= 0x20;
    std::fs::write(&largest, b).unwrap();
    let (ok, _, err) = run(&["verify", &pointer_url]);
    assert!(!ok);
    assert!(err.contains("SHA-256"), "{err}");
    let name = largest.file_name().unwrap().to_str().unwrap();
    assert!(err.contains(name), "{err}");
    let e = publish::open(&pointer_url, OpenOptions::default())
        .unwrap()
        .snapshot
        .verify()
        .unwrap_err();
    assert!(matches!(e, Error::ObjectHash { .. }), "{e:?}");
}

#[test]
fn republishing_writes_only_new_objects() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("issues.colsnap");
    std::fs::write(&f, snapshot_bytes(2000, 42)).unwrap();
    let dir = t.path().join("pub");
    let pubs = |f: &Path| {
        let o = colsnap()
            .args([
                "publish",
                f.to_str().unwrap(),
                dir.to_str().unwrap(),
                "--json",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let a = pubs(&f);
    assert_eq!(a["bytes_reused"], 0);
    assert!(a["objects"].as_u64().unwrap() >= 3, "{a}");
    assert!(Path::new(a["manifest"].as_str().unwrap()).is_file());
    let b = pubs(&f);
    assert_eq!(b["bytes_written"], 0, "{b}");
    assert_eq!(b["manifest"], a["manifest"]);
    // An object cut short since (by hand, a full disk) is not the object:
    // the next publish writes it again, and only it.
    let objects = dir.join("objects");
    let victim = std::fs::read_dir(&objects)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let whole = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &whole[..whole.len() / 2]).unwrap();
    let pointer = dir.join("issues.latest.json");
    let (ok, _, err) = run(&["verify", pointer.to_str().unwrap()]);
    let name = victim.file_name().unwrap().to_str().unwrap();
    assert!(!ok && err.contains(name), "{err}");
    // The next publish writes the victim again, and only it.
    let rewrites_the_victim = || {
        let r = pubs(&f);
        assert_eq!(
            (r["objects_written"].as_u64(), r["bytes_written"].as_u64()),
            (Some(1), Some(whole.len() as u64)),
            "{r}"
        );
        assert_eq!(std::fs::read(&victim).unwrap(), whole);
    };
    rewrites_the_victim();
    let (ok, _, err) = run(&["verify", pointer.to_str().unwrap()]);
    assert!(ok, "{err}");
    // Nor is one of the right length with a byte changed (bit rot): it is
    // read back, found to differ, and written again.
    let mut rotten = whole.clone();
    let mid = rotten.len() / 2;
    rotten[mid] ^= 0x40;
    std::fs::write(&victim, &rotten).unwrap();
    rewrites_the_victim();
    // A different snapshot: new objects are written, the pointer moves.
    std::fs::write(&f, snapshot_bytes(2001, 42)).unwrap();
    let c = pubs(&f);
    assert_ne!(c["manifest"], a["manifest"]);
    assert!(c["bytes_written"].as_u64().unwrap() > 0);
    let p: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("issues.latest.json")).unwrap()).unwrap();
    assert!(
        c["manifest"]
            .as_str()
            .unwrap()
            .ends_with(p["manifest"].as_str().unwrap())
    );
    // No temporary files are left behind.
    for e in walk(&dir) {
        assert!(
            !e.ends_with(".tmp") && !e.contains(publish::TMP_PREFIX),
            "{e}"
        );
    }
}

/// Two snapshots, the event log from the first to the second (`diff`), and
/// the log cut in two at `cut` events.
fn versions(t: &Path, cut: usize) -> (String, String, String, String, String) {
    let old = t.join("old.colsnap");
    let new = t.join("new.colsnap");
    std::fs::write(&old, snapshot_bytes(300, 7)).unwrap();
    std::fs::write(&new, snapshot_bytes(340, 8)).unwrap();
    let ev = t.join("ev.ndjson");
    let (ok, _, err) = run(&[
        "diff",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
        "-o",
        ev.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(&ev).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > cut + 1, "{} events", lines.len());
    let (e1, e2) = (t.join("e1.ndjson"), t.join("e2.ndjson"));
    std::fs::write(&e1, lines[..cut].join("\n") + "\n").unwrap();
    std::fs::write(&e2, lines[cut..].join("\n") + "\n").unwrap();
    let s = |p: std::path::PathBuf| p.display().to_string();
    (s(old), s(new), s(ev), s(e1), s(e2))
}

/// The event segments a publication carries are applied by `export`,
/// `query` and `verify` of its pointer (and of its manifest): the published
/// rows are those of the snapshot with its events, as the web reader has
/// them.
#[test]
fn published_event_segments_are_applied_by_every_reader() {
    let t = tempfile::tempdir().unwrap();
    let (old, new, _, e1, e2) = versions(t.path(), 10);
    let site = t.path().join("site");
    let s = site.display().to_string();
    // A log without events between them (what `query --events` and
    // `compact` read as no change) adds no segment; it was refused.
    let blank = t.path().join("blank.ndjson");
    std::fs::write(&blank, "\n \n").unwrap();
    let b = blank.display().to_string();
    let args = ["publish", &old, &s, "--events", &e1, "--events", &b];
    let (ok, report, err) = run(&[&args[..], &["--events", &e2, "--json"]].concat());
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report["manifest"].as_str().unwrap()).unwrap())
            .unwrap();
    assert_eq!(
        manifest["events"].as_array().unwrap().len(),
        2,
        "{manifest}"
    );
    let pointer = site.join("old.latest.json").display().to_string();
    let (ok, published, err) = run(&["export", "--ndjson", &pointer]);
    assert!(ok, "{err}");
    let (_, local, _) = run(&["export", "--ndjson", &new]);
    assert_eq!(
        common::rows_of(published.as_bytes()),
        common::rows_of(local.as_bytes())
    );
    let (_, count, _) = run(&["query", "--count", &pointer]);
    let (_, want, _) = run(&["query", "--count", &new]);
    assert_eq!(count, want);
    let (ok, out, err) = run(&["verify", &pointer]);
    assert!(ok, "{err}");
    assert!(
        out.contains("hash to their names") && out.contains("events of its segments apply"),
        "{out}"
    );
    // `verify --against` compares the rows with the segments applied (it
    // compared the snapshot's own rows).
    let rows = t.path().join("published.ndjson");
    std::fs::write(&rows, &published).unwrap();
    let (ok, out, err) = run(&["verify", &pointer, "--against", rows.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains(" rows equal to the rows of"), "{out}");
    let (_, before, _) = run(&["export", "--ndjson", &old]);
    std::fs::write(&rows, &before).unwrap();
    let (ok, _, err) = run(&["verify", &pointer, "--against", rows.to_str().unwrap()]);
    assert!(!ok && err.contains("mismatch at row"), "{err}");
    // Given --events, a reader takes that log instead.
    let (ok, out, err) = run(&["query", "--count", &pointer, "--events", &e1]);
    assert!(ok, "{err}");
    assert_ne!(out, want);
}

/// `publish` checks everything before it writes anything: the event logs
/// (each a log, in seq order; a bad one is bad data, exit 1, named by its
/// own path), and the snapshot (a damaged one never becomes the latest).
#[test]
fn publishing_refuses_bad_input_before_writing_anything() {
    let t = tempfile::tempdir().unwrap();
    let (old, _, _, e1, e2) = versions(t.path(), 10);
    let site = t.path().join("site");
    let s = site.display().to_string();
    let garbage = t.path().join("garbage.ndjson");
    std::fs::write(
        &garbage,
        "{\"seq\":1,\"op\":\"delete\",\"key\":1}\n{\"seq\":2,",
    )
    .unwrap();
    let g = garbage.display().to_string();
    // A log whose events do not apply over the snapshot (an update of a
    // key it does not hold) is not this snapshot's log.
    let stray = t.path().join("stray.ndjson");
    std::fs::write(
        &stray,
        "{\"seq\":1,\"op\":\"update\",\"key\":999999999,\"set\":{\"title\":\"x\"}}\n",
    )
    .unwrap();
    let st = stray.display().to_string();
    for (args, code, says) in [
        (
            vec!["--events", &e2, "--events", &e1],
            2,
            "e1.ndjson: invalid argument: its first seq is 1, but",
        ),
        (vec!["--events", &e1, "--events", &e1], 2, "seq order"),
        (vec!["--events", &g], 1, "garbage.ndjson: event at line 2"),
        (vec!["--events", &st], 1, "stray.ndjson: event at line 1"),
        (
            vec!["--events", &e1, "--key", "nope"],
            2,
            "--key: unknown column `nope`",
        ),
        (vec!["--key", "id"], 2, "--key"),
    ] {
        let o = colsnap()
            .args(["publish", &old, &s])
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!site.exists(), "{args:?} wrote {:?}", walk(&site));
    }
    // A good publication, then a damaged file under the same name.
    let (ok, _, err) = run(&["publish", &old, &s, "--name", "t"]);
    assert!(ok, "{err}");
    let before = std::fs::read(site.join("t.latest.json")).unwrap();
    let files = walk(&site).len();
    let mut bad = std::fs::read(&old).unwrap();
    let at = bad.len() / 3;
    bad[at] ^= 0x10;
    let badf = t.path().join("bad.colsnap");
    std::fs::write(&badf, bad).unwrap();
    let o = colsnap()
        .args(["publish", badf.to_str().unwrap(), &s, "--name", "t"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("bad.colsnap"), "{err}");
    assert_eq!(std::fs::read(site.join("t.latest.json")).unwrap(), before);
    assert_eq!(walk(&site).len(), files);
    // A name near the file system's limit publishes (the temporary names
    // are short).
    let long = "n".repeat(240);
    let (ok, _, err) = run(&["publish", &old, &s, "--name", &long]);
    assert!(ok, "{err}");
    // A destination under a regular file is a usage error (was exit 1,
    // "Not a directory" after the snapshot was read), and so is `verify
    // --key` of a file that carries no event segments.
    let under = format!("{old}/sub");
    let o = colsnap().args(["publish", &old, &under]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let o = colsnap()
        .args(["verify", &old, "--key", "id"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    // A log that is not UTF-8 is bad data naming its line, as `export
    // --events` says (it was a usage error here).
    let latin = t.path().join("latin.ndjson");
    std::fs::write(&latin, b"{\"seq\":1,\"op\":\"delete\",\"key\":1}\n\xff\n").unwrap();
    let o = colsnap()
        .args(["publish", &old, &s, "--events", latin.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("latin.ndjson: event at line 2"), "{err}");
}

/// Damage a reader of a publication finds and names: `verify` fetches every
/// object (the last one, whose bytes the manifest also carries, included);
/// `export` names a missing object (not stdout); an object that is a FIFO
/// is an error, not a wait; a manifest is found however its path is
/// spelled; a broken pointer says what it is not.
#[test]
fn a_damaged_publication_is_named_by_every_reader() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("issues.colsnap");
    std::fs::write(&f, snapshot_bytes(300, 3)).unwrap();
    let site = t.path().join("site");
    let s = site.display().to_string();
    let (ok, _, err) = run(&["publish", f.to_str().unwrap(), &s, "--min-object", "4K"]);
    assert!(ok, "{err}");
    let pointer = site.join("issues.latest.json").display().to_string();
    let manifest = std::fs::read_dir(site.join("manifests"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let mname = manifest.file_name().into_string().unwrap();
    for spelled in [
        format!("{s}/manifests/./{mname}"),
        format!("{s}/manifests//{mname}"),
    ] {
        let (ok, out, err) = run(&["query", "--count", &spelled]);
        assert!(ok, "{spelled}: {err}");
        assert_eq!(out.trim(), "300", "{spelled}");
        let (ok, _, err) = run(&["export", "--ndjson", &spelled]);
        assert!(ok, "{spelled}: {err}");
    }
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(manifest.path()).unwrap()).unwrap();
    let objects = m["objects"].as_array().unwrap();
    let last = objects.last().unwrap()["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let middle = objects[objects.len() / 2]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let obj = |h: &str| site.join("objects").join(h);
    // The last object damaged: only verify reads it.
    let keep = std::fs::read(obj(&last)).unwrap();
    let mut b = keep.clone();
    b[0] ^= 1;
    std::fs::write(obj(&last), &b).unwrap();
    let (ok, _, err) = run(&["verify", &pointer]);
    assert!(!ok);
    assert!(err.contains(&last) && err.contains("SHA-256"), "{err}");
    std::fs::write(obj(&last), &keep).unwrap();
    // A missing object: export names it.
    let keep = std::fs::read(obj(&middle)).unwrap();
    std::fs::remove_file(obj(&middle)).unwrap();
    let (ok, _, err) = run(&["export", "--ndjson", &pointer]);
    assert!(!ok);
    assert!(err.contains(&middle) && !err.contains("stdout"), "{err}");
    // A FIFO in its place: an error, at once.
    #[cfg(unix)]
    {
        let st = std::process::Command::new("mkfifo")
            .arg(obj(&middle))
            .status();
        if st.is_ok_and(|s| s.success()) {
            let t0 = std::time::Instant::now();
            let (ok, _, err) = run(&["export", "--ndjson", &pointer]);
            assert!(!ok);
            assert!(err.contains("not a regular file"), "{err}");
            assert!(t0.elapsed() < std::time::Duration::from_secs(20));
            std::fs::remove_file(obj(&middle)).unwrap();
        }
    }
    std::fs::write(obj(&middle), &keep).unwrap();
    let (ok, _, err) = run(&["verify", &pointer]);
    assert!(ok, "{err}");
    // Broken pointers.
    let bad = site.join("bad.latest.json");
    for text in ["not json", "{\"manifest\": \"x\"}"] {
        std::fs::write(&bad, text).unwrap();
        let (ok, _, err) = run(&["query", "--count", bad.to_str().unwrap()]);
        assert!(!ok);
        assert!(err.contains("neither a colsnap pointer"), "{text}: {err}");
    }
}

fn walk(d: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

#[test]
fn the_published_conformance_example_is_reproduced_and_reads_back() {
    // SPEC.md section 15.5.
    let want = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/published");
    let src = common::fixture("conformance/strings-plain.colsnap");
    let t = tempfile::tempdir().unwrap();
    common::succeeded(
        colsnap()
            .args(["publish", src.to_str().unwrap(), t.path().to_str().unwrap()])
            .args(["--min-object", "128"])
            .output()
            .unwrap(),
    );
    let rel = |root: &Path| {
        let mut v: Vec<String> = walk(root)
            .into_iter()
            .map(|p| p[root.display().to_string().len()..].to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(rel(t.path()), rel(&want));
    for f in rel(&want) {
        assert_eq!(
            std::fs::read(t.path().join(&f[1..])).unwrap(),
            std::fs::read(want.join(&f[1..])).unwrap(),
            "{f}"
        );
    }
    let expected =
        std::fs::read_to_string(common::fixture("conformance/strings-plain.expected.ndjson"))
            .unwrap();
    let (ok, got, err) = run(&[
        "export",
        "--ndjson",
        want.join("strings-plain.latest.json").to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert_eq!(got, expected);
}

/// `N` of "... in N reads" and "... in N requests" of a `--stats` line.
fn counted(stats: &str, what: &str) -> u64 {
    let at = stats.find(&format!(" {what}")).expect(what);
    let head = &stats[..at];
    head[head.rfind(' ').unwrap() + 1..]
        .replace(',', "")
        .parse()
        .unwrap()
}

#[test]
fn a_page_and_a_detail_are_fetched_in_few_parallel_rounds() {
    let Some(site) = Site::start(3000) else {
        return;
    };
    let url = site.nginx.url("issues.colsnap");
    let page = [
        "--sort",
        "-updated_at",
        "--limit",
        "50",
        "--fields",
        "number,title,state,user.login,labels[].name",
    ];
    for (cmd, rest) in [
        ("query", &page[..]),
        ("export", &["--ndjson", "--rows", "1500..1501"][..]),
    ] {
        let path = site.local();
        let mut local = vec!["--stats", cmd, &path];
        local.extend_from_slice(rest);
        let (ok, want, lerr) = run(&local);
        assert!(ok, "{lerr}");
        let mut remote = local.clone();
        remote[2] = &url;
        let (ok, got, rerr) = run(&remote);
        assert!(ok, "{rerr}");
        assert_eq!(got, want);
        // Open, (the sort column,) the columns' streams, the strings.
        let rounds = counted(&rerr, "reads");
        assert!(rounds <= 4, "{cmd}: {rerr}");
        assert!(counted(&lerr, "reads") > rounds, "{lerr} vs {rerr}");
    }
}

/// `read 1,234 bytes in 5 reads; fetched 2,345 bytes in 3 requests ...`:
/// (bytes read, bytes fetched, requests).
fn stats_line(err: &str) -> (u64, u64, u64) {
    let line = err.lines().find(|l| l.contains(" reads")).unwrap_or("");
    let num = |after: &str| -> u64 {
        line.split(after)
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .map(|n| n.replace(',', "").parse().unwrap_or(0))
            .unwrap_or(0)
    };
    let requests = line
        .split(" requests")
        .next()
        .and_then(|l| l.rsplit(' ').next())
        .map(|n| n.replace(',', "").parse().unwrap_or(0))
        .unwrap_or(0);
    (num(": read "), num("fetched "), requests)
}

#[test]
fn the_first_page_costs_at_most_three_requests() {
    let Some(site) = Site::start(3000) else {
        return;
    };
    let page = [
        "--sort",
        "-updated_at",
        "--limit",
        "50",
        "--fields",
        "number,title,state,user.login,labels[].name,comments,updated_at",
    ];
    let local = site.local();
    let url = site.nginx.url("issues.colsnap");
    let q = |loc: &str| {
        let mut a = vec!["--stats", "query", loc];
        a.extend_from_slice(&page);
        run(&a)
    };
    let (ok, want, local_err) = q(&local);
    assert!(ok, "{local_err}");
    let before = site.nginx.requests();
    let (ok, got, err) = q(&url);
    assert!(ok, "{err}");
    assert_eq!(got, want);
    // nginx's own count: open, the columns, the string chunks.
    let log = site.nginx.access_log();
    let n = site.nginx.requests() - before;
    assert!((2..=3).contains(&n), "{n} requests: {:?}", &log[before..]);
    assert!(log[before..].iter().all(|l| l.contains(" 206 ")), "{log:?}");
    let (_, fetched, requests) = stats_line(&err);
    assert_eq!(requests as usize, n, "{err}");
    // The bytes: within 1.2x of what the reader reads from the local file.
    let (grid, _, _) = stats_line(&local_err);
    assert!(grid > 0, "{local_err}");
    assert!(
        (fetched as f64) <= 1.2 * grid as f64,
        "fetched {fetched} bytes, the local reader reads {grid}: {err} / {local_err}"
    );
}

#[test]
fn inspect_fetches_its_strings_and_sources_in_a_few_requests() {
    // Min and max strings sit in chunks all over the tables, and `--sources`
    // reads the first bytes of every mapped and based stream: one read each
    // was a request each (119 and 369 on neovim's pull requests); they go
    // out as one multi-range request now.
    let Some(site) = Site::start(3000) else {
        return;
    };
    let url = site.nginx.url("issues.colsnap");
    for extra in [&[][..], &["--sources"]] {
        let mut a = vec!["--stats", "inspect", "--json"];
        a.extend_from_slice(extra);
        let mut local_args = a.clone();
        local_args.push(&url);
        let before = site.nginx.requests();
        let (ok, got, err) = run(&local_args);
        assert!(ok, "{err}");
        let n = site.nginx.requests() - before;
        assert!((1..=3).contains(&n), "{extra:?}: {n} requests");
        let (_, _, requests) = stats_line(&err);
        assert_eq!(requests as usize, n, "{err}");
        // The same report as the local file's (but for the location).
        let local = site.local();
        let mut b = a.clone();
        b.push(&local);
        let (ok, want, err) = run(&b);
        assert!(ok, "{err}");
        let strip = |s: &str| {
            let mut v: serde_json::Value = serde_json::from_str(s).unwrap();
            let o = v.as_object_mut().unwrap();
            o.remove("file");
            o.remove("remote");
            v
        };
        let (got, want) = (strip(&got), strip(&want));
        assert_eq!(got, want, "{extra:?}");
        if !extra.is_empty() {
            let derived = got["columns"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| !c["sources"].as_array().unwrap().is_empty())
                .count();
            assert!(derived > 5, "{derived} derived columns");
        }
    }
}
