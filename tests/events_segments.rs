//! Event-log segments (SPEC.md 13.5): a client that holds segments 1..k and
//! catches up with k+1..n reaches the state of a fresh load of 1..n, which
//! is the snapshot rebuilt from the replayed JSON.

mod common;

use colsnap::events::{Overlay, Segment, diff, list_segments, split_segments, write_segments};
use common::tiny_opts;
use proptest::prelude::*;
use serde_json::{Value, json};

fn rows() -> impl Strategy<Value = Vec<Value>> {
    let row = (
        0i64..12,
        prop::option::of(prop::sample::select(vec!["a", "b", "bug", "é", "z"])),
        prop::option::of(prop::collection::vec(
            prop::sample::select(vec!["ui", "crash", "2024-01-02T03:04:05Z"]),
            0..3,
        )),
        prop::option::of(-2i64..3),
    )
        .prop_map(|(id, t, labels, n)| {
            let mut m = serde_json::Map::new();
            m.insert("id".into(), json!(id));
            if let Some(t) = t {
                m.insert("t".into(), json!(t));
            }
            if let Some(l) = labels {
                let l: Vec<Value> = l.into_iter().map(|s| json!({ "name": s })).collect();
                m.insert("labels".into(), Value::Array(l));
            }
            if let Some(n) = n {
                m.insert("n".into(), json!(n));
            }
            Value::Object(m)
        });
    prop::collection::vec(row, 0..10).prop_map(|mut v| {
        let mut seen = std::collections::HashSet::new();
        v.retain(|r| seen.insert(r["id"].as_i64()));
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn catching_up_with_segments_equals_a_fresh_load(
        steps in prop::collection::vec(rows(), 1..4),
        first_seq in 0u64..30,
        per_segment in 1u64..6,
        held in any::<prop::sample::Index>(),
        published in any::<prop::sample::Index>(),
    ) {
        // A history: snapshots s0, s1, ...; the log is the diffs between them.
        let base = common::snapshot_of(&steps[0], &tiny_opts());
        let mut log = Vec::new();
        let mut prev = base.clone();
        let mut seq = first_seq;
        for rows in &steps[1..] {
            let next = common::snapshot_of(rows, &tiny_opts());
            let evs = diff(&prev, &next, "id", seq).unwrap();
            seq += evs.len() as u64;
            log.extend(evs);
            prev = next;
        }
        let want = prev.to_values().unwrap();
        // An earlier publication (the log's first m events) and the
        // current one, in one directory: full segments are the same files,
        // the earlier partial last segment stays beside its replacement.
        let m = published.index(log.len() + 1);
        let earlier = split_segments(&log[..m], per_segment).unwrap();
        let segs = split_segments(&log, per_segment).unwrap();
        let dir = tempfile::tempdir().unwrap();
        write_segments(dir.path(), &earlier).unwrap();
        write_segments(dir.path(), &segs).unwrap();
        let listed = list_segments(dir.path()).unwrap().len();
        prop_assert!(listed == segs.len() || listed == segs.len() + 1);

        // A client holding the first k segments of the earlier
        // publication, then catching up.
        let k = if earlier.is_empty() { 0 } else { held.index(earlier.len() + 1) };
        let mut client = Overlay::new(base.clone(), "id").unwrap();
        for s in &earlier[..k] {
            client.apply_segment(s).unwrap();
        }
        let had: usize = earlier[..k].iter().map(|s| (s.last - s.first + 1) as usize).sum();
        let n = client.catch_up(dir.path()).unwrap();
        prop_assert_eq!(n as usize, log.len() - had);
        // Catching up again changes nothing.
        prop_assert_eq!(client.catch_up(dir.path()).unwrap(), 0);

        // A fresh load (as `--events DIR` does).
        let mut fresh = colsnap::events::load_overlay(base.clone(), dir.path(), "id").unwrap();
        prop_assert_eq!(client.last_seq(), fresh.last_seq());
        prop_assert_eq!(client.to_values().unwrap(), want.clone());
        prop_assert_eq!(fresh.to_values().unwrap(), want);
    }
}

/// A segment whose bytes do not match its name, or a gap between segments,
/// is an error.
#[test]
fn damaged_and_missing_segments_are_errors() {
    let old = common::snapshot_of(&[json!({"id": 1, "t": "a"})], &tiny_opts());
    let new = common::snapshot_of(
        &[
            json!({"id": 2, "t": "b"}),
            json!({"id": 3}),
            json!({"id": 4}),
        ],
        &tiny_opts(),
    );
    let log = diff(&old, &new, "id", 1).unwrap();
    assert!(log.len() >= 3);
    let segs = split_segments(&log, 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let paths = write_segments(dir.path(), &segs).unwrap();
    // A gap: the second segment missing.
    std::fs::remove_file(&paths[1]).unwrap();
    let mut o = Overlay::new(old.clone(), "id").unwrap();
    let err = o.catch_up(dir.path()).unwrap_err();
    assert!(err.to_string().contains("gap"), "{err}");
    // Damaged bytes.
    std::fs::write(&paths[1], b"{}\n").unwrap();
    let mut o = Overlay::new(old, "id").unwrap();
    let err = o.catch_up(dir.path()).unwrap_err();
    assert!(err.to_string().contains("CRC-32C"), "{err}");
    // Damaged data (exit 1), named by its path; it was an "invalid argument".
    assert!(err.is_data_error(), "{err:?}");
    assert!(
        err.to_string().starts_with(&paths[1].display().to_string()),
        "{err}"
    );
    let _: Segment = segs[0].clone();
}

/// `colsnap query --events DIR` reads a directory of segments.
#[test]
fn query_reads_a_directory_of_segments() {
    let dir = tempfile::tempdir().unwrap();
    let old = [json!({"id": 1, "t": "a"}), json!({"id": 2, "t": "b"})];
    let new = [json!({"id": 2, "t": "c"}), json!({"id": 3, "t": "d"})];
    let snap = common::write_snapshot(dir.path(), "old.colsnap", &old);
    let log = diff(
        &common::snapshot_of(&old, &tiny_opts()),
        &common::snapshot_of(&new, &tiny_opts()),
        "id",
        1,
    )
    .unwrap();
    let segs = dir.path().join("segments");
    write_segments(&segs, &split_segments(&log, 2).unwrap()).unwrap();
    let out = common::succeeded(
        common::colsnap()
            .args(["query"])
            .arg(&snap)
            .arg("--events")
            .arg(&segs)
            .args(["--sort", "t", "--format", "json"])
            .output()
            .unwrap(),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let (c, d) = (text.find("\"c\"").unwrap(), text.find("\"d\"").unwrap());
    assert!(c < d && !text.contains("\"a\""), "{text}");
}
