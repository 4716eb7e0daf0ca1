//! Conformance example of event-log segments (SPEC.md 13.5): a small log
//! over `fixtures/conformance/all-none.colsnap`, split into segments of 4
//! events, with the expected export of the snapshot with the events.
//!
//! `fixtures/conformance/events/` holds `log.ndjson` (events 1 to 10),
//! `segments/` (what `events::split_segments(log, 4)` writes: events 1-3,
//! 4-7 and 8-10; the split falls on multiples of 4 of `seq`), `partial/`
//! (the first two segments and a partial third one, 8-9, beside the full
//! one, as after a republication), and `expected.ndjson` (`colsnap export
//! --ndjson` of the snapshot with the events applied). A reader conforms
//! when it names, checks and applies the segments as the spec says and its
//! export equals the expected file.
//!
//! Regenerate: `COLSNAP_REGEN_CONFORMANCE=1 cargo test --test conformance_segments`.

use colsnap::events::{Event, Overlay, SegmentName, list_segments, split_segments};
use colsnap::{ExportOptions, Snapshot};
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/conformance/events")
}

fn snapshot() -> Snapshot {
    Snapshot::open(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/conformance/all-none.colsnap"),
    )
    .unwrap()
}

/// Ten events over the `all` input (key `id`): updates of strings new to
/// the table and of list columns, a create, a delete, a nested set and a
/// remove.
fn log() -> String {
    [
        r#"{"seq":1,"op":"update","key":1000000,"set":{"title":"a brand new title","labels":[{"name":"zed","color":"c0"}]}}"#,
        r#"{"seq":2,"op":"update","key":1000007,"set":{"user.login":"aardvark"}}"#,
        r#"{"seq":3,"op":"create","key":42,"row":{"id":42,"title":"created","labels":[{"name":"bob"}],"t":"2025-01-02T03:04:05Z"}}"#,
        r#"{"seq":4,"op":"update","key":1000014,"set":{"few":7,"f":1.5},"remove":["label"]}"#,
        r#"{"seq":5,"op":"delete","key":1000021}"#,
        r#"{"seq":6,"op":"update","key":42,"set":{"title":"created, then edited"}}"#,
        r#"{"seq":7,"op":"create","key":43,"at":0,"row":{"id":43,"title":"first row now","m":{"a":1}}}"#,
        r#"{"seq":8,"op":"update","key":1000000,"set":{"t":"2030-12-31T23:59:59.5+01:00"}}"#,
        r#"{"seq":9,"op":"update","key":43,"set":{"m.a":"text"}}"#,
        r#"{"seq":10,"op":"delete","key":42}"#,
    ]
    .iter()
    .map(|l| format!("{l}\n"))
    .collect()
}

fn events(text: &str) -> Vec<Event> {
    text.lines()
        .enumerate()
        .map(|(i, l)| Event::parse(i as u64 + 1, l).unwrap())
        .collect()
}

fn export(o: &mut Overlay) -> String {
    let mut out = Vec::new();
    o.export(
        &mut out,
        &ExportOptions {
            ndjson: true,
            ..Default::default()
        },
    )
    .unwrap();
    String::from_utf8(out).unwrap()
}

fn files(d: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn regenerate() {
    let d = dir();
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("segments")).unwrap();
    std::fs::create_dir_all(d.join("partial")).unwrap();
    std::fs::write(d.join("log.ndjson"), log()).unwrap();
    let ev = events(&log());
    for s in split_segments(&ev, 4).unwrap() {
        std::fs::write(d.join("segments").join(s.name().file_name()), &s.bytes).unwrap();
    }
    for s in split_segments(&ev[..9], 4)
        .unwrap()
        .into_iter()
        .chain(split_segments(&ev, 4).unwrap())
    {
        std::fs::write(d.join("partial").join(s.name().file_name()), &s.bytes).unwrap();
    }
    let mut o = Overlay::new(snapshot(), "id").unwrap();
    o.apply_reader(log().as_bytes()).unwrap();
    std::fs::write(d.join("expected.ndjson"), export(&mut o)).unwrap();
}

#[test]
fn segments_are_named_split_and_caught_up_as_the_spec_says() {
    if std::env::var_os("COLSNAP_REGEN_CONFORMANCE").is_some() {
        regenerate();
    }
    let d = dir();
    // The stored log is the one above; splitting it reproduces the files.
    let text = std::fs::read_to_string(d.join("log.ndjson")).unwrap();
    assert_eq!(text, log());
    let ev = events(&text);
    let want: Vec<(String, Vec<u8>)> = split_segments(&ev, 4)
        .unwrap()
        .iter()
        .map(|s| (s.name().file_name(), s.bytes.clone()))
        .collect();
    assert_eq!(files(&d.join("segments")), want);
    let names: Vec<String> = want.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names.len(), 3);
    for (n, bytes) in &want {
        // The name: zero-padded range and the CRC-32C of the bytes.
        let sn = SegmentName::parse(n).unwrap();
        assert_eq!(
            n,
            &format!(
                "events-{:020}-{:020}-{:08x}.ndjson",
                sn.first,
                sn.last,
                crc32c::crc32c(bytes)
            )
        );
        assert!(bytes.ends_with(b"\n"));
    }
    assert!(names[0].starts_with("events-00000000000000000001-00000000000000000003-"));
    assert!(names[1].starts_with("events-00000000000000000004-00000000000000000007-"));
    assert!(names[2].starts_with("events-00000000000000000008-00000000000000000010-"));
    // The export with the events equals the expected file: from the log,
    // from the segments, and from segments beside a partial one.
    let expected = std::fs::read_to_string(d.join("expected.ndjson")).unwrap();
    let mut from_log = Overlay::new(snapshot(), "id").unwrap();
    from_log.apply_reader(text.as_bytes()).unwrap();
    assert_eq!(export(&mut from_log), expected);
    for sub in ["segments", "partial"] {
        let mut o = Overlay::new(snapshot(), "id").unwrap();
        assert_eq!(
            list_segments(&d.join(sub)).unwrap().len(),
            if sub == "partial" { 4 } else { 3 }
        );
        o.catch_up(&d.join(sub)).unwrap();
        assert_eq!(o.last_seq(), Some(10));
        assert_eq!(export(&mut o), expected, "{sub}");
    }
    // A client holding events 1-7 catches up with the rest only.
    let mut o = Overlay::new(snapshot(), "id").unwrap();
    o.apply_reader(
        text.lines()
            .take(7)
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            .as_bytes(),
    )
    .unwrap();
    o.catch_up(&d.join("segments")).unwrap();
    assert_eq!(export(&mut o), expected);
    // The snapshot's own rows changed: the expected export is not the
    // snapshot's.
    let plain = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/conformance/all.expected.ndjson"),
    )
    .unwrap();
    assert_ne!(plain, expected);
}
