//! `s3://` against a real S3-compatible server: moto's server mode (PyPI
//! `moto[server]`) on 127.0.0.1, reached through the standard `AWS_*`
//! variables. `colsnap publish FILE s3://bucket/prefix` then `query`,
//! `inspect`, `verify` and `export` of the published pointer and of a
//! single `.colsnap` object must answer what the local file answers;
//! republishing uploads nothing; opening a single object costs one request;
//! a corrupted object is detected; a missing object is an error naming its
//! URL. Without moto the tests print a notice and return, unless
//! `COLSNAP_REQUIRE_SERVERS=1` (CI).
#![cfg(all(feature = "cli", feature = "s3"))]

mod common;

use colsnap::source::{ByteSource, S3Client, S3Source};
use colsnap::{BuildOptions, Error, Snapshot};
use colsnap_testdata::{GenOptions, write_ndjson};
use common::colsnap;
use common::servers::Moto;
use std::path::PathBuf;
use std::sync::Arc;

const BUCKET: &str = "colsnap-test";

struct S3Site {
    moto: Moto,
    dir: tempfile::TempDir,
}

impl S3Site {
    /// moto with a bucket holding `issues.colsnap` (3,000 generated issues).
    fn start() -> Option<S3Site> {
        let moto = Moto::start()?;
        moto.create_bucket(BUCKET);
        let dir = tempfile::tempdir().unwrap();
        let mut nd = Vec::new();
        write_ndjson(
            &GenOptions {
                count: 3000,
                seed: 42,
                ..GenOptions::default()
            },
            &mut nd,
        )
        .unwrap();
        let bytes = colsnap::build_to_vec(&nd[..], &BuildOptions::default()).unwrap();
        std::fs::write(dir.path().join("issues.colsnap"), &bytes).unwrap();
        moto.put(BUCKET, "single/issues.colsnap", &bytes);
        Some(S3Site { moto, dir })
    }

    fn local(&self) -> PathBuf {
        self.dir.path().join("issues.colsnap")
    }

    /// Run the CLI with the server's `AWS_*` environment.
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let mut c = colsnap();
        c.args(args);
        for (k, v) in self.moto.env() {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// A library client for the bucket, configured for this server.
    fn client(&self) -> S3Client {
        let env = self.moto.env();
        let cfg: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        S3Client::with_config(BUCKET, &cfg).unwrap()
    }

    fn publish(&self) -> serde_json::Value {
        let local = self.local().display().to_string();
        let (ok, out, err) = self.run(&[
            "publish",
            &local,
            &format!("s3://{BUCKET}/pub"),
            "--name",
            "issues",
            "--json",
        ]);
        assert!(ok, "{err}");
        serde_json::from_str(&out).unwrap()
    }
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
        "query", "--search", "crash", "--sort", "number", "--limit", "20",
    ],
    &["export", "--ndjson", "--rows", "100..140"],
    &["inspect", "--json"],
];

#[test]
fn publish_to_s3_then_read_back_equals_local() {
    let Some(site) = S3Site::start() else {
        return;
    };
    let r = site.publish();
    assert!(r["objects"].as_u64().unwrap() > 2, "{r}");
    assert_eq!(r["objects_written"], r["objects"], "{r}");
    assert_eq!(r["bytes_reused"], 0, "{r}");
    assert_eq!(
        r["pointer"],
        format!("s3://{BUCKET}/pub/issues.latest.json")
    );
    // The pointer was uploaded last.
    let puts: Vec<String> = site
        .moto
        .requests()
        .into_iter()
        .filter(|l| l.starts_with("PUT /colsnap-test/pub/"))
        .collect();
    assert!(
        puts.last().unwrap().contains("/pub/issues.latest.json"),
        "{puts:?}"
    );
    let local = site.local().display().to_string();
    let pointer = format!("s3://{BUCKET}/pub/issues.latest.json");
    let single = format!("s3://{BUCKET}/single/issues.colsnap");
    for q in QUERIES {
        let with = |f: &str| {
            let mut a = vec![q[0], f];
            a.extend_from_slice(&q[1..]);
            site.run(&a)
        };
        let (ok, want, err) = with(&local);
        assert!(ok, "{q:?}: {err}");
        for loc in [&pointer, &single] {
            let (ok, got, err) = with(loc);
            assert!(ok, "{q:?} on {loc}: {err}");
            if q[0] == "inspect" {
                // The location differs; the structure does not.
                let (mut a, mut b): (serde_json::Value, serde_json::Value) = (
                    serde_json::from_str(&want).unwrap(),
                    serde_json::from_str(&got).unwrap(),
                );
                for v in [&mut a, &mut b] {
                    if let Some(o) = v.as_object_mut() {
                        o.retain(|k, _| k == "rows" || k == "nodes" || k == "sections");
                    }
                }
                assert_eq!(a, b, "{loc}");
            } else {
                assert_eq!(got, want, "{q:?} on {loc}");
            }
        }
    }
    // verify reads and checks every object.
    for loc in [&pointer, &single] {
        let (ok, out, err) = site.run(&["verify", loc, "--json"]);
        assert!(ok, "{loc}: {err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["ok"], true, "{v}");
    }

    // Republishing the same file uploads nothing but the pointer.
    let before = site.moto.requests().len();
    let r2 = site.publish();
    assert_eq!(
        (r2["objects_written"].as_u64(), r2["bytes_written"].as_u64()),
        (Some(0), Some(0)),
        "{r2}"
    );
    assert_eq!(r2["manifest"], r["manifest"]);
    let after = site.moto.requests();
    let puts: Vec<&String> = after[before..]
        .iter()
        .filter(|l| l.starts_with("PUT "))
        .collect();
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert!(puts[0].contains("/pub/issues.latest.json"), "{puts:?}");

    // An object of the wrong length under its name (damaged since) is not
    // the object: the next publish uploads it again, and only it.
    let client = site.client();
    let (key, size) = client
        .list("pub/objects")
        .unwrap()
        .into_iter()
        .map(|(k, l)| (k, l.size))
        .max_by_key(|(_, n)| *n)
        .unwrap();
    let whole = client.get(&key).unwrap();
    client.put(&key, whole.slice(..whole.len() / 2)).unwrap();
    let r3 = site.publish();
    assert_eq!(
        (r3["objects_written"].as_u64(), r3["bytes_written"].as_u64()),
        (Some(1), Some(size)),
        "{r3}"
    );
    assert_eq!(client.get(&key).unwrap(), whole);
    let (ok, _, err) = site.run(&["verify", &pointer]);
    assert!(ok, "{err}");

    // Nor is one of the right length with a byte changed: its ETag (the
    // MD5 of what is stored) differs from the bytes', and it is uploaded
    // again, alone.
    let mut rotten = whole.to_vec();
    let mid = rotten.len() / 2;
    rotten[mid] ^= 0x40;
    client.put(&key, rotten.into()).unwrap();
    let before = site.moto.requests().len();
    let r4 = site.publish();
    assert_eq!(
        (r4["objects_written"].as_u64(), r4["bytes_written"].as_u64()),
        (Some(1), Some(size)),
        "{r4}"
    );
    // Told by the listing: no object is read back.
    let gets: Vec<String> = site.moto.requests()[before..]
        .iter()
        .filter(|l| l.starts_with("GET ") && l.contains("/objects/") && !l.contains("list-type"))
        .cloned()
        .collect();
    assert!(gets.is_empty(), "{gets:?}");
    assert_eq!(client.get(&key).unwrap(), whole);
    let (ok, _, err) = site.run(&["verify", &pointer]);
    assert!(ok, "{err}");
}

#[test]
fn opening_a_single_object_costs_one_request() {
    let Some(site) = S3Site::start() else {
        return;
    };
    let before = site.moto.requests().len();
    let src = S3Source::open_with(site.client(), "single/issues.colsnap", 64 << 10).unwrap();
    assert!(
        src.len() > 256 << 10,
        "the object must be larger than the tail"
    );
    assert_eq!(src.stats().requests, 1);
    let snap = Snapshot::from_source(Arc::new(src)).unwrap();
    assert_eq!(snap.rows(), 3000);
    let log = site.moto.requests();
    let new = &log[before..];
    assert_eq!(new.len(), 1, "{new:?}");
    assert!(
        new[0].starts_with("GET /colsnap-test/single/issues.colsnap"),
        "{new:?}"
    );
    // Then a column, pinned to the ETag opened.
    let node = snap.node_by_path("number").unwrap();
    snap.node_data(node).unwrap();
    // The object replaced: the next read fails as `Changed`, never mixed.
    let client = site.client();
    let mut other = std::fs::read(site.local()).unwrap();
    other.extend_from_slice(b"trailing");
    client.put("single/issues.colsnap", other.into()).unwrap();
    let e = snap
        .node_data(snap.node_by_path("title").unwrap())
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(e, Error::Changed { .. }), "{e:?}");
}

#[test]
fn corrupted_and_missing_objects_are_errors_naming_the_url() {
    let Some(site) = S3Site::start() else {
        return;
    };
    let r = site.publish();
    let pointer = format!("s3://{BUCKET}/pub/issues.latest.json");
    // Corrupt one object (not the footer's, which the manifest holds).
    let manifest_key = r["manifest"]
        .as_str()
        .unwrap()
        .strip_prefix(&format!("s3://{BUCKET}/"))
        .unwrap()
        .to_string();
    let local_manifest = {
        // The manifest is content-addressed: read it back through the CLI's
        // own publish of the same file into a directory.
        let d = site.dir.path().join("pub");
        let local = site.local().display().to_string();
        let (ok, _, err) = site.run(&["publish", &local, d.to_str().unwrap(), "--name", "issues"]);
        assert!(ok, "{err}");
        std::fs::read(d.join(manifest_key.strip_prefix("pub/").unwrap())).unwrap()
    };
    let m: serde_json::Value = serde_json::from_slice(&local_manifest).unwrap();
    let victim = m["objects"][1]["sha256"].as_str().unwrap().to_string();
    site.client()
        .put(
            &format!("pub/objects/{victim}"),
            bytes::Bytes::from_static(b"not the object's bytes"),
        )
        .unwrap();
    let (ok, _, err) = site.run(&["verify", &pointer]);
    assert!(!ok, "a corrupted object must fail verify");
    assert!(err.contains(&victim) && err.contains("s3://"), "{err}");

    // A missing single object and a missing pointer: errors naming the URL.
    for loc in [
        format!("s3://{BUCKET}/nope/issues.colsnap"),
        format!("s3://{BUCKET}/nope/issues.latest.json"),
    ] {
        let (ok, _, err) = site.run(&["inspect", &loc]);
        assert!(!ok);
        assert!(err.contains(&loc), "{loc}: {err}");
        assert!(
            err.contains("404")
                || err.to_lowercase().contains("not found")
                || err.contains("no such"),
            "{err}"
        );
    }
}

/// Keys are used as given: `ü`, a space, `?`, `#`, `%`, `~`
/// (`object_store`'s `Path::from` percent-encoded them into other keys:
/// every such object was "no such object", a publication went under
/// another prefix than the one reported, and republishing uploaded
/// everything again). A bucket's root, an empty object and a missing
/// bucket say what they are; credentials in the endpoint never show.
#[test]
fn keys_are_used_as_given_and_odd_locations_say_what_they_are() {
    let Some(site) = S3Site::start() else {
        return;
    };
    let local = site.local().display().to_string();
    let bytes = std::fs::read(site.local()).unwrap();
    // Stored behind the client's back (the request path percent-encoded
    // once, as S3 wants it).
    site.moto
        .put(BUCKET, "odd/%C3%BCn%C3%AF%20%3Fq%23h%25~.colsnap", &bytes);
    let odd = format!("s3://{BUCKET}/odd/ünï ?q#h%~.colsnap");
    let (ok, out, err) = site.run(&["export", &odd, "--ndjson"]);
    assert!(ok, "{err}");
    let (_, want, _) = site.run(&["export", &local, "--ndjson"]);
    assert_eq!(out, want);
    // A publication under an odd prefix is where its report says, and a
    // second one uploads nothing.
    let dest = format!("s3://{BUCKET}/sité #1");
    for written in [true, false] {
        let (ok, out, err) = site.run(&["publish", &local, &dest, "--name", "i", "--json"]);
        assert!(ok, "{err}");
        let r: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(r["objects_written"].as_u64().unwrap() > 0, written, "{r}");
    }
    let puts: Vec<String> = site
        .moto
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("PUT "))
        .collect();
    // moto logs the path with `é` decoded; encoded twice it was
    // `sit%25C3%25A9%2520%25231`.
    let published: Vec<&String> = puts.iter().filter(|r| r.contains("/objects/")).collect();
    assert!(!published.is_empty(), "{puts:?}");
    for r in published {
        assert!(r.contains("%20%231/objects/") && !r.contains("%25"), "{r}");
    }
    let (ok, out, err) = site.run(&["export", &format!("{dest}/i.latest.json"), "--ndjson"]);
    assert!(ok, "{err}");
    assert_eq!(out, want);

    // A bucket, not an object; an empty object; a missing bucket.
    site.moto.put(BUCKET, "empty.colsnap", b"");
    for (loc, says) in [
        (format!("s3://{BUCKET}"), "names a bucket, not an object"),
        (format!("s3://{BUCKET}/"), "names a bucket, not an object"),
        (
            format!("s3://{BUCKET}/empty.colsnap"),
            "header needs bytes 0..16 but the file has 0",
        ),
        (
            "s3://no-such-bucket-here/issues.colsnap".to_string(),
            "no such bucket: no-such-bucket-here",
        ),
        (
            format!("s3://{BUCKET}/a//b.colsnap"),
            "cannot be read or written here",
        ),
        // Not `single/issues.colsnap` with the slashes trimmed.
        (
            format!("s3://{BUCKET}//single/issues.colsnap"),
            "cannot be read or written here",
        ),
        (
            format!("s3://{BUCKET}/single/issues.colsnap/"),
            "cannot be read or written here",
        ),
    ] {
        let (ok, _, err) = site.run(&["inspect", &loc]);
        assert!(!ok, "{loc}");
        assert!(err.contains(says), "{loc}: {err}");
        assert_eq!(err.matches(&loc).count(), 1, "{loc} named once: {err}");
    }
    // Publishing: a missing bucket says so (the listing's 404 came as the
    // answer's XML); a destination that cannot be written names itself,
    // exit 2.
    let (ok, _, err) = site.run(&["publish", &local, "s3://no-such-bucket-here/x"]);
    assert!(!ok && err.contains("no such bucket"), "{err}");
    assert!(!err.contains("<?xml"), "{err}");
    let o = colsnap()
        .args(["publish", &local, &format!("s3://{BUCKET}/a//b")])
        .envs(site.moto.env())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("colsnap: error: s3://"), "{err}");
    // An endpoint that is not a URL object_store can sign for: it panicked
    // at the first request.
    for ep in [
        "127.0.0.1:9000",
        "http://127.0.0.1:99999",
        "http://u:pw@127.0.0.1:9",
    ] {
        let o = colsnap()
            .args(["inspect", &format!("s3://{BUCKET}/single/issues.colsnap")])
            .envs(site.moto.env())
            .env("AWS_ENDPOINT_URL", ep)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{ep}: {err}");
        assert!(err.contains("AWS_ENDPOINT_URL"), "{ep}: {err}");
        assert!(
            !err.contains("pw@") && !err.contains("panicked"),
            "{ep}: {err}"
        );
    }
}

/// An endpoint whose answer runs past the range it claims (a body of 256
/// MiB, its `Content-Length`, after `Content-Range: bytes 68-99/100`) is
/// refused as soon as the body passes the range: the client stops reading.
/// `object_store`'s `bytes()` read the whole body first. No S3 server
/// needed: a hostile one on 127.0.0.1.
#[test]
fn an_answer_running_past_its_range_is_refused_while_reading() {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::atomic::{AtomicU64, Ordering};
    const TOTAL: u64 = 256 << 20;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let written = Arc::new(AtomicU64::new(0));
    let w = written.clone();
    std::thread::spawn(move || {
        // Every request (the client may retry) gets the same answer.
        for conn in listener.incoming().take(4) {
            let Ok(mut conn) = conn else { return };
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let head = format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 68-99/100\r\nETag: \"e\"\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\nContent-Length: {TOTAL}\r\n\r\n"
            );
            if conn.write_all(head.as_bytes()).is_err() {
                continue;
            }
            let chunk = vec![b'x'; 64 << 10];
            let mut sent = 0u64;
            while sent < TOTAL {
                if conn.write_all(&chunk).is_err() {
                    break;
                }
                sent += chunk.len() as u64;
                w.fetch_max(sent, Ordering::Relaxed);
            }
        }
    });
    let endpoint = format!("http://127.0.0.1:{port}");
    let cfg = [
        ("aws_endpoint", endpoint.as_str()),
        ("aws_access_key_id", "testing"),
        ("aws_secret_access_key", "testing"),
        ("aws_region", "us-east-1"),
        ("aws_allow_http", "true"),
    ];
    let client = S3Client::with_config("bucket", &cfg).unwrap();
    match S3Source::open_with(client, "k.colsnap", 32) {
        Err(Error::Remote { detail, url, .. }) => {
            assert!(detail.contains("runs past the 32 bytes"), "{detail}");
            assert!(url.contains("k.colsnap"), "{url}");
        }
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("opened"),
    }
    let sent = written.load(Ordering::Relaxed);
    assert!(sent < TOTAL / 4, "the server wrote {sent} bytes");
}
