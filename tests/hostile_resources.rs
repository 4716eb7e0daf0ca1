//! The hostile-resources corpus (issue 11, "Hardening II"), crafted by
//! generators here: decompression bombs of one huge string, key or number;
//! outputs that are device nodes, FIFOs, directories or links; a sort over
//! 40 keys; paging at the ends of `usize`; signals during a build. Every
//! run of the program goes through `common/limits.rs`: a 1 GiB address
//! space and a wall-clock timeout.

mod common;

use common::limits;

use assert_cmd::cargo::cargo_bin;
use limits::{AS_LIMIT, Limited, run_limited};
use std::io::Write;
use std::path::Path;
use std::process::Command;

fn colsnap(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(cargo_bin("colsnap"));
    c.current_dir(dir).args(args);
    c
}

/// Run `colsnap ARGS` in `dir` under 1 GiB of address space and `timeout_s`.
#[track_caller]
fn run(dir: &Path, args: &[&str], timeout_s: u64) -> Limited {
    run_limited(&colsnap(dir, args), AS_LIMIT, timeout_s)
}

/// The names in `dir` that look like temporary outputs.
fn temps(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum Codec {
    Gzip,
    Zstd,
}

/// Write a compressed input whose text is `head`, then `fill` repeated
/// until `fill_bytes`, then `tail`, without ever holding more than a MiB:
/// one compressed member (gzip) or frame (zstd) of a MiB of `fill` is
/// repeated, and concatenated members and frames decode as one stream.
fn bomb(path: &Path, codec: Codec, head: &[u8], fill: u8, fill_bytes: u64, tail: &[u8]) {
    let member = |data: &[u8]| -> Vec<u8> {
        match codec {
            Codec::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Codec::Zstd => zstd::encode_all(data, 19).unwrap(),
        }
    };
    const MIB: u64 = 1 << 20;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    f.write_all(&member(head)).unwrap();
    let block = member(&vec![fill; MIB as usize]);
    for _ in 0..fill_bytes / MIB {
        f.write_all(&block).unwrap();
    }
    f.write_all(&member(&vec![fill; (fill_bytes % MIB) as usize]))
        .unwrap();
    f.write_all(&member(tail)).unwrap();
    f.flush().unwrap();
}

/// Item 3: a string, key, integer or fraction inflating far past
/// `max_string_len` (64 MiB) is refused while it is read: exit 1, a
/// message naming the limit, no temporary file, within 1 GiB of address
/// space (the old reader buffered the whole token and aborted).
#[test]
fn decompression_bombs_are_refused_while_reading() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // (name, codec, head, fill, tail, what the error says)
    type Case<'a> = (&'a str, Codec, &'a [u8], u8, &'a [u8], &'a str);
    let cases: [Case; 4] = [
        (
            "string.zst",
            Codec::Zstd,
            b"{\"id\":1,\"s\":\"",
            b'x',
            b"\"}\n",
            "string",
        ),
        (
            "key.gz",
            Codec::Gzip,
            b"[{\"id\":1,\"",
            b'k',
            b"\":1}]",
            "string or key",
        ),
        (
            "int.gz",
            Codec::Gzip,
            b"{\"id\":1,\"n\":1",
            b'7',
            b"}\n",
            "number",
        ),
        (
            "frac.zst",
            Codec::Zstd,
            b"{\"id\":1,\"f\":0.",
            b'3',
            b"}\n",
            "number",
        ),
    ];
    let sizes = [4u64 << 30, 1 << 30, 1 << 30, 4 << 30];
    for ((name, codec, head, fill, tail, what), size) in cases.into_iter().zip(sizes) {
        bomb(&d.join(name), codec, head, fill, size, tail);
        assert!(std::fs::metadata(d.join(name)).unwrap().len() < 8 << 20);
        let r = run(d, &["build", name, "-o", "out.colsnap"], 240);
        assert_eq!(r.code(), Some(1), "{name}: {}", r.stderr());
        let e = r.stderr();
        assert!(
            e.contains("max_string_len") && e.contains(what),
            "{name}: {e}"
        );
        assert!(!e.contains("line 0"), "{name}: {e}");
        assert!(temps(d).is_empty(), "{name}: {:?}", temps(d));
        assert!(!d.join("out.colsnap").exists());
    }
    // verify --against reads its source with the same limit.
    std::fs::write(d.join("small.ndjson"), "{\"id\":1,\"s\":\"a\"}\n").unwrap();
    let r = run(
        d,
        &["build", "small.ndjson", "-o", "small.colsnap", "-q"],
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    let r = run(
        d,
        &["verify", "small.colsnap", "--against", "string.zst"],
        240,
    );
    assert_eq!(r.code(), Some(1), "{}", r.stderr());
    assert!(r.stderr().contains("max_string_len"), "{}", r.stderr());
}

/// Item 15: a corrupt compressed input is an error with a real position,
/// never "line 0, column 0".
#[test]
fn corrupt_compressed_input_names_a_position() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text: String = (0..2000)
        .map(|i| format!("{{\"id\":{i},\"t\":\"row {i} {}\"}}\n", i * 7919 % 1000))
        .collect();
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(text.as_bytes()).unwrap();
    let gz = e.finish().unwrap();
    std::fs::write(d.join("cut.gz"), &gz[..gz.len() / 2]).unwrap();
    let r = run(d, &["build", "cut.gz", "-o", "out.colsnap"], 60);
    assert_eq!(r.code(), Some(1), "{}", r.stderr());
    assert!(!r.stderr().contains("line 0"), "{}", r.stderr());
    assert!(
        r.stderr().contains("cannot read the input"),
        "{}",
        r.stderr()
    );
    assert!(temps(d).is_empty());
}

fn small_input(d: &Path) {
    std::fs::write(
        d.join("in.ndjson"),
        "{\"id\":1,\"t\":\"a\"}\n{\"id\":2,\"t\":\"b\"}\n",
    )
    .unwrap();
    let r = run(d, &["build", "in.ndjson", "-o", "snap.colsnap", "-q"], 60);
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    std::fs::write(d.join("events.ndjson"), "").unwrap();
}

fn mkfifo(p: &Path) {
    let ok = Command::new("mkfifo").arg(p).status().unwrap();
    assert!(ok.success());
}

/// Item 1: `-o` naming something that exists and is not a regular file (a
/// FIFO, a directory, a link to a FIFO, a link to nothing), or a directory
/// path, or `-` for a snapshot, is refused with exit 2 before any work, for
/// build, compact and diff; nothing is replaced and no temporary file is
/// left. (A FIFO stands for every device node: `/dev/null` was replaced by
/// a regular file when run as root.)
#[test]
fn outputs_that_are_not_regular_files_are_refused() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    small_input(d);
    mkfifo(&d.join("fifo"));
    std::fs::create_dir(d.join("adir")).unwrap();
    std::os::unix::fs::symlink("fifo", d.join("to-fifo")).unwrap();
    std::os::unix::fs::symlink("missing", d.join("dangling")).unwrap();
    let outputs = ["fifo", "adir", "to-fifo", "dangling", "newdir/", "nodir/x"];
    for o in outputs {
        for args in [
            vec!["build", "in.ndjson", "-o", o],
            vec!["compact", "snap.colsnap", "events.ndjson", "-o", o],
            vec!["diff", "snap.colsnap", "snap.colsnap", "-o", o],
        ] {
            let r = run(d, &args, 60);
            assert_eq!(r.code(), Some(2), "{args:?}: {}", r.stderr());
            assert!(
                r.stderr().contains(o.trim_end_matches("/x")),
                "{args:?}: {}",
                r.stderr()
            );
        }
    }
    for args in [
        vec!["build", "in.ndjson", "-o", "-"],
        vec!["compact", "snap.colsnap", "events.ndjson", "-o", "-"],
    ] {
        let r = run(d, &args, 60);
        assert_eq!(r.code(), Some(2), "{args:?}: {}", r.stderr());
    }
    assert!(
        std::fs::symlink_metadata(d.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert!(
        std::fs::symlink_metadata(d.join("to-fifo"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(!d.join("-").exists() && !d.join("newdir").exists() && !d.join("missing").exists());
    assert!(std::fs::read_dir(d.join("adir")).unwrap().next().is_none());
    assert!(temps(d).is_empty(), "{:?}", temps(d));
    // `diff -o -` is stdout.
    let r = run(d, &["diff", "snap.colsnap", "snap.colsnap", "-o", "-"], 60);
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    assert!(!d.join("-").exists());
    // The device node itself, checked without any risk of replacing it.
    if Path::new("/dev/null").exists() {
        let r = run(d, &["build", "in.ndjson", "-o", "/dev/null"], 60);
        assert_eq!(r.code(), Some(2), "{}", r.stderr());
        assert!(r.stderr().contains("character device"), "{}", r.stderr());
    }
}

/// Item 1: a symbolic link to a regular file is written through: the file
/// it points to gets the new snapshot, the link stays a link.
#[test]
fn a_link_to_a_regular_file_is_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    small_input(d);
    std::fs::create_dir(d.join("real")).unwrap();
    std::fs::write(d.join("real/target.colsnap"), b"old").unwrap();
    std::os::unix::fs::symlink("real/target.colsnap", d.join("link.colsnap")).unwrap();
    let r = run(d, &["build", "in.ndjson", "-o", "link.colsnap", "-q"], 60);
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    let meta = std::fs::symlink_metadata(d.join("link.colsnap")).unwrap();
    assert!(meta.file_type().is_symlink());
    assert_eq!(
        std::fs::read(d.join("real/target.colsnap")).unwrap(),
        std::fs::read(d.join("snap.colsnap")).unwrap()
    );
    assert!(temps(d).is_empty() && temps(&d.join("real")).is_empty());
}

/// Item 15: exit codes agree across commands.
#[test]
fn exit_codes_agree() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    small_input(d);
    // A missing input file is 2 everywhere, and says "(os error 2)" once.
    for args in [
        vec!["build", "nope.ndjson", "-o", "x.colsnap"],
        vec!["inspect", "nope.colsnap"],
        vec!["verify", "nope.colsnap"],
        vec!["verify", "snap.colsnap", "--against", "nope.ndjson"],
        vec!["export", "nope.colsnap"],
        vec!["query", "nope.colsnap"],
        vec!["query", "snap.colsnap", "--events", "nope.ndjson"],
        vec![
            "compact",
            "nope.colsnap",
            "events.ndjson",
            "-o",
            "x.colsnap",
        ],
        vec!["compact", "snap.colsnap", "nope.ndjson", "-o", "x.colsnap"],
        vec!["diff", "nope.colsnap", "snap.colsnap"],
        vec!["diff", "snap.colsnap", "nope.colsnap"],
    ] {
        let r = run(d, &args, 60);
        assert_eq!(r.code(), Some(2), "{args:?}: {}", r.stderr());
        assert_eq!(
            r.stderr().matches("os error 2").count(),
            1,
            "{args:?}: {}",
            r.stderr()
        );
        assert_eq!(r.stderr().lines().count(), 1, "{args:?}: {}", r.stderr());
    }
    // `build -o newdir/` fails before reading the input: the input here is
    // not even JSON (reading it first would exit 1).
    std::fs::write(d.join("bad.json"), "not json").unwrap();
    let r = run(d, &["build", "bad.json", "-o", "newdir/"], 60);
    assert_eq!(r.code(), Some(2), "{}", r.stderr());
    assert!(r.stderr().contains("newdir/"), "{}", r.stderr());
    // `--help` and `--version` fail when their text cannot be written.
    if Path::new("/dev/full").exists() {
        for args in [vec!["--help"], vec!["build", "--help"], vec!["--version"]] {
            let full = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap();
            let s = colsnap(d, &args)
                .stdout(full)
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap();
            assert_eq!(s.code(), Some(1), "{args:?}");
        }
    }
    let r = run(d, &["--help"], 60);
    assert_eq!(r.code(), Some(0));
    assert!(r.stdout().contains("Exit status"));
}

/// Item 16: paging at the ends of `usize` is refused or reported exactly.
#[test]
fn paging_overflow_is_refused_or_exact() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    small_input(d);
    let r = run(
        d,
        &[
            "query",
            "snap.colsnap",
            "--offset",
            "18446744073709551615",
            "--limit",
            "1",
        ],
        60,
    );
    assert_eq!(r.code(), Some(2), "{}", r.stderr());
    let r = run(
        d,
        &["query", "snap.colsnap", "--page", "9223372036854775808"],
        60,
    );
    assert_eq!(r.code(), Some(2), "{}", r.stderr());
    for (args, page) in [
        (
            vec!["--page", "9223372036854775808", "--limit", "1"],
            "9223372036854775808",
        ),
        (
            vec!["--offset", "18446744073709551614", "--limit", "1"],
            "18446744073709551615",
        ),
        (
            vec!["--offset", "18446744073709551615", "--limit", "2"],
            "9223372036854775808",
        ),
    ] {
        let mut a = vec!["query", "snap.colsnap"];
        a.extend(args.iter());
        let r = run(d, &a, 60);
        assert_eq!(r.code(), Some(0), "{args:?}: {}", r.stderr());
        let v: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
        assert_eq!(v["pagination"]["page"].to_string(), page, "{args:?}");
        assert_eq!(v["pagination"]["hasMore"], false);
        assert_eq!(v["data"].as_array().unwrap().len(), 0);
    }
}

/// Item 8: sort cost is linear in the number of keys: 40 keys (most rows
/// null or absent in most of them) on a small file finish at once, and the
/// order is right.
#[test]
fn sort_by_forty_keys_is_fast() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut text = String::new();
    for i in 0..3 {
        let mut row = serde_json::Map::new();
        row.insert("id".into(), (3 - i).into());
        for k in 0..40 {
            match (i + k) % 3 {
                0 => {}
                1 => {
                    row.insert(format!("k{k}"), serde_json::Value::Null);
                }
                _ => {
                    row.insert(format!("k{k}"), (k as i64).into());
                }
            }
        }
        text.push_str(&serde_json::Value::Object(row).to_string());
        text.push('\n');
    }
    std::fs::write(d.join("wide.ndjson"), text).unwrap();
    let r = run(d, &["build", "wide.ndjson", "-o", "wide.colsnap", "-q"], 60);
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    let keys: Vec<String> = (0..40).map(|k| format!("k{k}")).collect();
    let sort = keys.join(",");
    let r = run(
        d,
        &["query", "wide.colsnap", "--sort", &sort, "--fields", "id"],
        20,
    );
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    assert!(r.elapsed.as_secs() < 10, "{:?}", r.elapsed);
    let v: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    let ids: Vec<i64> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    // k0: row 0 absent, row 1 null, row 2 value -> value, null, absent.
    assert_eq!(ids, vec![1, 2, 3]);
}

/// A large generated NDJSON input (about `mb` MB).
fn large_input(path: &Path, mb: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut n = 0usize;
    let mut i = 0u64;
    while n < mb << 20 {
        let line = format!(
            "{{\"id\":{i},\"title\":\"issue {i} about {}\",\"n\":{},\"tags\":[\"t{}\",\"u{}\"]}}\n",
            i.wrapping_mul(2654435761) % 100_000,
            i * 31 % 977,
            i % 50,
            i % 7
        );
        n += line.len();
        f.write_all(line.as_bytes()).unwrap();
        i += 1;
    }
    f.flush().unwrap();
}

/// Item 13: SIGINT, SIGTERM and SIGHUP during a build remove the temporary
/// file; an existing output stays as it was.
#[test]
fn signals_during_a_build_leave_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    large_input(&d.join("big.ndjson"), 24);
    for sig in ["TERM", "INT", "HUP"] {
        std::fs::write(d.join("out.colsnap"), b"the old output").unwrap();
        let mut child = limits::limited_command(
            &colsnap(d, &["build", "big.ndjson", "-o", "out.colsnap"]),
            AS_LIMIT,
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
        let t0 = std::time::Instant::now();
        while temps(d).is_empty() {
            assert!(t0.elapsed().as_secs() < 60, "no temporary file appeared");
            assert!(child.try_wait().unwrap().is_none(), "the build ended early");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(ok.success());
        let status = child.wait().unwrap();
        assert!(!status.success(), "{sig}: {status:?}");
        assert!(temps(d).is_empty(), "{sig}: {:?}", temps(d));
        assert_eq!(
            std::fs::read(d.join("out.colsnap")).unwrap(),
            b"the old output"
        );
    }
}

/// A snapshot whose footer says a string column's smallest and largest
/// string ids are past its table (checksums recomputed so that it opens).
fn with_corrupt_string_stats(bytes: &[u8]) -> Vec<u8> {
    use colsnap::compress::{Codec, decompress};
    use colsnap::format::{Footer, TRAILER_LEN, Trailer, crc32c};
    let len = bytes.len();
    let t = &bytes[len - TRAILER_LEN..];
    let u32_at = |i: usize| u32::from_le_bytes([t[i], t[i + 1], t[i + 2], t[i + 3]]);
    let (stored, raw_len) = (u32_at(8) as usize, u32_at(12) as usize);
    let fo = len - TRAILER_LEN - stored;
    let codec = Codec::from_u8(t[20]).unwrap();
    let version = u16::from_le_bytes([t[22], t[23]]);
    let mut stored_footer = bytes[fo..len - TRAILER_LEN].to_vec();
    if codec == Codec::Zstd && version != colsnap::format::VERSION_1 {
        // Version 2 stores a zstd footer without the frame's magic.
        stored_footer.splice(0..0, colsnap::format::ZSTD_MAGIC);
    }
    let raw = decompress(codec, &stored_footer, raw_len, None, "footer").unwrap();
    let mut footer = Footer::parse(&raw, fo as u64, version).unwrap();
    let mut hit = false;
    for n in &mut footer.nodes {
        if let Some((lo, hi)) = n.stats.str.as_mut() {
            *lo = u32::MAX - 7;
            *hi = u32::MAX - 3;
            hit = true;
        }
    }
    assert!(hit, "no string column");
    let raw = footer.to_bytes(version);
    let mut out = bytes[..fo].to_vec();
    out.extend_from_slice(&raw);
    let trailer = Trailer {
        footer_offset: fo as u64,
        footer_stored_len: raw.len() as u32,
        footer_raw_len: raw.len() as u32,
        footer_crc: crc32c(&raw),
        footer_codec: Codec::None,
        version,
    };
    out.extend_from_slice(&trailer.to_bytes());
    out
}

/// Item 15: `inspect` on a snapshot with corrupt string statistics is bad
/// data (exit 1), not a usage error.
#[test]
fn inspect_of_corrupt_string_statistics_is_bad_data() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    small_input(d);
    let bytes = std::fs::read(d.join("snap.colsnap")).unwrap();
    std::fs::write(d.join("bad.colsnap"), with_corrupt_string_stats(&bytes)).unwrap();
    let r = run(d, &["inspect", "bad.colsnap"], 60);
    assert_eq!(r.code(), Some(1), "{}", r.stderr());
    assert!(
        r.stderr().starts_with("colsnap: error: bad.colsnap:"),
        "{}",
        r.stderr()
    );
}

/// Item 9 through the programs: one row gaining 5,000 new tags; what
/// `diff` writes is accepted by `compact`, `query --events` and
/// `export --events`, and compaction gives the new snapshot's rows.
#[test]
fn diff_output_applies_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("old.ndjson"),
        "{\"id\":1,\"tags\":[\"a\"]}\n{\"id\":2,\"tags\":[]}\n",
    )
    .unwrap();
    let tags: Vec<String> = (0..5000).map(|i| format!("tag-{i}")).collect();
    let new = format!(
        "{}\n{{\"id\":2,\"tags\":[]}}\n",
        serde_json::json!({"id": 1, "tags": tags})
    );
    std::fs::write(d.join("new.ndjson"), new).unwrap();
    for (i, o) in [("old.ndjson", "old.colsnap"), ("new.ndjson", "new.colsnap")] {
        let r = run(d, &["build", i, "-o", o, "-q"], 60);
        assert_eq!(r.code(), Some(0), "{}", r.stderr());
    }
    let r = run(
        d,
        &["diff", "old.colsnap", "new.colsnap", "-o", "ev.ndjson"],
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    let r = run(
        d,
        &["compact", "old.colsnap", "ev.ndjson", "-o", "c.colsnap"],
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    let want = run(d, &["export", "new.colsnap", "--ndjson"], 60).stdout();
    assert_eq!(
        run(d, &["export", "c.colsnap", "--ndjson"], 60).stdout(),
        want
    );
    let r = run(
        d,
        &["export", "old.colsnap", "--ndjson", "--events", "ev.ndjson"],
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    assert_eq!(r.stdout(), want);
    let r = run(
        d,
        &[
            "query",
            "old.colsnap",
            "--events",
            "ev.ndjson",
            "--sort",
            "-id",
            "--fields",
            "id",
        ],
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    assert!(r.stdout().contains("\"total\":2"), "{}", r.stdout());
}

/// Many updates of one snapshot row, each touching a new path: the paths a
/// row's updates touched are kept as a shared chain, a node per new path.
/// 4,000 updates (a 250 KB log) kept 4,000 growing copies of the row's
/// list: 1.31 GB (a review by a helper session); under 1 GiB of address
/// space the query and export now end in a moment, and agree with
/// `compact`.
#[test]
fn many_updates_of_one_row_take_memory_in_proportion_to_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rows: String = (1..=10)
        .map(|i| format!("{{\"id\":{i},\"title\":\"t{i}\"}}\n"))
        .collect();
    std::fs::write(d.join("base.ndjson"), rows).unwrap();
    let log: String = (0..4000)
        .map(|i| {
            format!(
                "{{\"seq\":{},\"op\":\"update\",\"key\":3,\"set\":{{\"f{i}\":{i},\"updated_at\":\"2026-01-01T00:00:00Z\"}}}}\n",
                i + 1
            )
        })
        .collect();
    std::fs::write(d.join("ev.ndjson"), log).unwrap();
    let r = run(d, &["build", "base.ndjson", "-o", "base.colsnap", "-q"], 60);
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    let r = run(
        d,
        &[
            "query",
            "base.colsnap",
            "--events",
            "ev.ndjson",
            "--sort",
            "-f3999",
            "--fields",
            "id,f0,f3999",
            "--limit",
            "1",
        ],
        120,
    );
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    assert!(
        r.stdout()
            .contains(r#""data":[{"id":3,"f0":0,"f3999":3999}]"#),
        "{}",
        r.stdout()
    );
    let r = run(
        d,
        &["compact", "base.colsnap", "ev.ndjson", "-o", "c.colsnap"],
        120,
    );
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    let want = run(d, &["export", "c.colsnap", "--ndjson"], 60);
    assert_eq!(want.code(), Some(0), "{}", want.stderr());
    let r = run(
        d,
        &[
            "export",
            "base.colsnap",
            "--ndjson",
            "--events",
            "ev.ndjson",
        ],
        120,
    );
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    assert_eq!(r.stdout(), want.stdout());
}
