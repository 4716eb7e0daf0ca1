//! Live events over real loopback HTTP: `POST /api/NAME/events` applies
//! all or nothing and writes the log; `GET /api/NAME/events` streams them.

mod common;

use common::client;

use colsnap::BuildOptions;
use colsnap::events::Event;
use colsnap_server::{AppState, RowStoreMode, ServerConfig};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

const TOKEN: &str = "s3cret-token";

type Server = common::Running;

/// The 40 GitHub sample issues, ids 1000000...
fn snapshot(dir: &Path) -> PathBuf {
    snapshot_of(dir, usize::MAX)
}

/// A snapshot of the sample's first `rows` rows (ids from 1,000,000).
fn snapshot_of(dir: &Path, rows: usize) -> PathBuf {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/github-sample.ndjson"
    ))
    .unwrap();
    let mut v: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(rows)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (i, r) in v.iter_mut().enumerate() {
        r["id"] = Value::from(1_000_000 + i as u64);
    }
    let bytes = colsnap::build_to_vec(
        &serde_json::to_vec(&v).unwrap()[..],
        &BuildOptions::default(),
    )
    .unwrap();
    let file = dir.join("issues.colsnap");
    std::fs::write(&file, bytes).unwrap();
    file
}

async fn start(file: &Path, tweak: impl FnOnce(&mut ServerConfig)) -> Server {
    let mut cfg = ServerConfig::new(vec![file.to_path_buf()]);
    cfg.events_token = Some(TOKEN.into());
    cfg.heartbeat = Duration::from_millis(200);
    tweak(&mut cfg);
    common::serve(AppState::load(cfg).unwrap()).await
}

async fn post(s: &Server, token: Option<&str>, body: &str) -> (StatusCode, Value) {
    let mut r = client()
        .post(format!("{}/api/issues/events", s.base))
        .header("content-type", "application/x-ndjson")
        .body(body.to_string());
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    let st = r.status();
    (st, r.json().await.unwrap())
}

/// Status, ETag and body of a GET.
async fn get(s: &Server, path: &str) -> (StatusCode, String, String) {
    let r = client()
        .get(format!("{}{path}", s.base))
        .send()
        .await
        .unwrap();
    let st = r.status();
    let etag = r
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (st, etag, r.text().await.unwrap())
}

/// SSE streams of whole rows and of some fields (sorted) give the rows of
/// the pages: over events, the snapshot's unchanged rows are written from
/// string windows (tiny ones with a small `stream_window_bytes`: many per
/// stream), the rows created or updated by events from their JSON.
async fn streams_equal_pages(srv: &Server) {
    for (stream, rows) in [
        ("chunkSize=7", "limit=1000"),
        ("chunkSize=1000", "limit=1000"),
        (
            "chunkSize=5&sort=-title&fields=id,title,labels",
            "limit=1000&sort=-title&fields=id,title,labels",
        ),
    ] {
        let (st, _, b) = get(srv, &format!("/api/issues/stream?{stream}")).await;
        assert_eq!(st, StatusCode::OK);
        let got: Vec<Value> = b
            .lines()
            .filter_map(|l| l.strip_prefix("data: ["))
            .flat_map(|l| serde_json::from_str::<Vec<Value>>(&format!("[{l}")).unwrap())
            .collect();
        let (_, _, w) = get(srv, &format!("/api/issues/rows?{rows}")).await;
        let w: Value = serde_json::from_str(&w).unwrap();
        assert!(!got.is_empty());
        assert_eq!(Value::from(got), w["data"], "{stream}");
    }
}

fn canonical(lines: &[&str]) -> String {
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| Event::parse(i as u64 + 1, l).unwrap().to_json() + "\n")
        .collect()
}

const E1: &str = r#"{"seq":1,"op":"update","key":1000000,"set":{"title":"zzz live"}}"#;
const E2: &str = r#"{"seq":2,"op":"create","key":5,"row":{"id":5,"title":"new","state":"open"}}"#;
const E3: &str = r#"{"seq":3,"op":"delete","key":1000002}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_apply_all_or_nothing_and_the_log_reloads_to_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let file = snapshot(dir.path());
    let log = dir.path().join("issues.events.ndjson");
    let s = start(&file, |c| c.max_events_body = 64 * 1024).await;
    let (st, etag0, body0) = get(&s, "/api/issues/rows/1000000").await;
    assert_eq!(st, StatusCode::OK);
    assert!(!body0.contains("zzz live"));

    // Refused without (or with a wrong) token: nothing written.
    let batch = format!("{E1}\n{E2}\n");
    for t in [None, Some("wrong")] {
        let (st, v) = post(&s, t, &batch).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("Bearer"));
    }
    assert!(!log.exists());
    assert_eq!(get(&s, "/api/issues/rows/1000000").await.1, etag0);

    // Accepted: applied, logged, visible, new ETags.
    let (st, v) = post(&s, Some(TOKEN), &batch).await;
    assert_eq!(
        (st, &v),
        (StatusCode::OK, &json!({"applied": 2, "last_seq": 2}))
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap(), canonical(&[E1, E2]));
    let (st, etag1, body1) = get(&s, "/api/issues/rows/1000000").await;
    assert_eq!(st, StatusCode::OK);
    assert!(body1.contains("zzz live"), "{body1}");
    assert_ne!(etag1, etag0);
    let (st, _, b) = get(&s, "/api/issues/rows/5?fields=title").await;
    assert_eq!((st, b.trim()), (StatusCode::OK, r#"{"title":"new"}"#));
    let info: Value = serde_json::from_str(&get(&s, "/api/issues").await.2).unwrap();
    assert_eq!(
        (&info["rows"], &info["eventsApplied"], &info["lastSeq"]),
        (&json!(41), &json!(2), &json!(2))
    );
    // The result cache is per version: a sorted page sees the new title.
    let (_, _, page) = get(&s, "/api/issues/rows?sort=-title&limit=1&fields=id,title").await;
    let page: Value = serde_json::from_str(&page).unwrap();
    assert_eq!(page["data"][0]["title"], "zzz live");

    // Every refused POST leaves log and answers as they were.
    let bad: Vec<(&str, StatusCode, &str)> = vec![
        // Does not continue the log.
        (
            r#"{"seq":7,"op":"delete","key":1000001}"#,
            StatusCode::CONFLICT,
            "expected seq 3",
        ),
        // A good event, then a malformed line.
        (
            "{\"seq\":3,\"op\":\"delete\",\"key\":1000001}\n{\"seq\":4,\"op\":\"frobnicate\",\"key\":1}\n",
            StatusCode::BAD_REQUEST,
            "line 2",
        ),
        // A good event, then an unknown key.
        (
            "{\"seq\":3,\"op\":\"delete\",\"key\":1000001}\n\n{\"seq\":4,\"op\":\"delete\",\"key\":424242}\n",
            StatusCode::UNPROCESSABLE_ENTITY,
            "line 3",
        ),
        // A good event, then a gap.
        (
            "{\"seq\":3,\"op\":\"delete\",\"key\":1000001}\n{\"seq\":5,\"op\":\"delete\",\"key\":1000003}\n",
            StatusCode::UNPROCESSABLE_ENTITY,
            "line 2",
        ),
        ("\n", StatusCode::BAD_REQUEST, "no events"),
    ];
    for (body, want, says) in bad {
        let (st, v) = post(&s, Some(TOKEN), body).await;
        let msg = v["error"]["message"].as_str().unwrap().to_string();
        assert_eq!(st, want, "{msg}");
        assert!(msg.contains(says), "{msg} should say {says}");
        assert_eq!(std::fs::read_to_string(&log).unwrap(), canonical(&[E1, E2]));
        assert_eq!(get(&s, "/api/issues/rows/1000000").await.1, etag1);
        assert_eq!(get(&s, "/api/issues/rows/1000001").await.0, StatusCode::OK);
    }
    // Too large a body: 413, nothing read.
    let big = format!("{E3}\n{}", " ".repeat(100 * 1024));
    let (st, _) = post(&s, Some(TOKEN), &big).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);

    // Concurrent POSTs of the same next seq: exactly one wins.
    let (a, b) = tokio::join!(post(&s, Some(TOKEN), E3), post(&s, Some(TOKEN), E3));
    let mut codes = [a.0, b.0];
    codes.sort();
    assert_eq!(codes, [StatusCode::OK, StatusCode::CONFLICT]);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        canonical(&[E1, E2, E3])
    );

    // A server started from the snapshot and the log answers the same.
    let all = "/api/issues/rows?limit=1000&sort=title";
    let live = get(&s, all).await;
    // (with its row store built first: the snapshot's own rows from it;
    // and with none)
    let s2 = start(&file, |c| c.row_store.mode = RowStoreMode::Startup).await;
    let again = get(&s2, all).await;
    assert_eq!((again.0, &again.2), (StatusCode::OK, &live.2));
    assert_eq!(again.1, live.1, "same snapshot + same log: same ETag");
    let s4 = start(&file, |c| c.row_store.mode = RowStoreMode::Off).await;
    assert_eq!(get(&s4, all).await.2, live.2);
    let health: Value = serde_json::from_str(&get(&s2, "/healthz").await.2).unwrap();
    let served = health["rowStore"]["issues"]["rowsServed"].as_u64().unwrap();
    assert!(served >= 38, "{served} rows from the store");
    assert_eq!(
        get(&s2, "/api/issues/rows/1000002").await.0,
        StatusCode::NOT_FOUND
    );
    // SSE streams over the three events give the pages' rows.
    let s3 = start(&file, |c| c.stream_window_bytes = 2048).await;
    for srv in [&s, &s2, &s3, &s4] {
        streams_equal_pages(srv).await;
    }
}

/// Each POST applies its events to a copy of the live overlay: after many
/// POSTs (with refused ones between) the rows equal one replay of the
/// whole log by the library, and a server restarted from snapshot + log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_sequential_posts_equal_one_replay_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = snapshot(dir.path());
    let log = dir.path().join("issues.events.ndjson");
    let s = start(&file, |_| {}).await;
    let mut live: Vec<u64> = (0..40).map(|i| 1_000_000 + i).collect();
    let mut accepted: Vec<String> = Vec::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut seq = 0u64;
    let mut created = 0u64;
    for post_no in 0..120u64 {
        let mut lines = Vec::new();
        for _ in 0..=next(3) {
            seq += 1;
            let line = match next(4) {
                0 | 1 if !live.is_empty() => {
                    let k = live[next(live.len() as u64) as usize];
                    json!({"seq": seq, "op": "update", "key": k,
                        "set": {"title": format!("t{} p{post_no}", next(1000)), "comments": next(50)}})
                }
                2 if live.len() > 5 => {
                    let k = live.remove(next(live.len() as u64) as usize);
                    json!({"seq": seq, "op": "delete", "key": k})
                }
                _ => {
                    created += 1;
                    let k = 5_000 + created;
                    live.push(k);
                    json!({"seq": seq, "op": "create", "key": k, "at": next(live.len() as u64),
                        "row": {"id": k, "title": format!("new {k}"), "state": "open", "labels": [{"name": format!("l{}", next(5))}]}})
                }
            };
            lines.push(line.to_string());
        }
        let body = lines.join("\n") + "\n";
        if post_no % 10 == 9 {
            // Refused (the last event deletes a missing key): nothing changes.
            let before = get(&s, "/api/issues/rows?limit=1000").await;
            let bad = format!(
                "{body}{}\n",
                json!({"seq": seq + 1, "op": "delete", "key": 424242})
            );
            let (st, v) = post(&s, Some(TOKEN), &bad).await;
            assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
            assert_eq!(get(&s, "/api/issues/rows?limit=1000").await, before);
        }
        let (st, v) = post(&s, Some(TOKEN), &body).await;
        assert_eq!(st, StatusCode::OK, "post {post_no}: {v}");
        assert_eq!(v["last_seq"], seq);
        accepted.extend(lines);
        if post_no % 15 == 0 {
            // Queries between POSTs see each view.
            let (_, _, b) = get(&s, "/api/issues/rows?limit=1000&fields=id").await;
            let v: Value = serde_json::from_str(&b).unwrap();
            assert_eq!(v["pagination"]["total"], live.len());
        }
    }
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(logged.lines().count(), accepted.len());

    // The library's replay of the whole log, from the snapshot.
    let snap = colsnap::Snapshot::open(&file).unwrap();
    let mut ov = colsnap::events::Overlay::new(snap, "id").unwrap();
    for (i, l) in accepted.iter().enumerate() {
        ov.apply(&Event::parse(i as u64 + 1, l).unwrap(), i as u64 + 1)
            .unwrap();
    }
    let want = Value::from(ov.to_values().unwrap());
    let (st, _, b) = get(&s, "/api/issues/rows?limit=1000").await;
    assert_eq!(st, StatusCode::OK);
    let got: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(got["data"], want, "the live view equals one replay");
    assert_eq!(got["pagination"]["total"], live.len());

    // A restart from snapshot + log: identical rows and ETags.
    let s2 = start(&file, |_| {}).await;
    for q in [
        "/api/issues/rows?limit=1000",
        "/api/issues/rows?limit=1000&sort=-title",
        "/api/issues/rows?limit=20&sort=comments,-id&where=state%3Dopen",
        "/api/issues/rows?search=new&in=title&fields=id,title",
        "/api/issues/rows/5001",
    ] {
        let (a, b) = (get(&s, q).await, get(&s2, q).await);
        assert_eq!(a, b, "{q}");
    }

    // SSE streams over the events (string windows of the snapshot's
    // rows, the held rows from their JSON) give the replay's rows.
    let s3 = start(&file, |c| c.stream_window_bytes = 2048).await;
    for srv in [&s, &s2, &s3] {
        streams_equal_pages(srv).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_configured_posts_are_forbidden() {
    let dir = tempfile::tempdir().unwrap();
    let file = snapshot(dir.path());
    let s = start(&file, |c| c.events_token = None).await;
    let (st, v) = post(&s, Some(TOKEN), E1).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--events-token")
    );
    assert!(!dir.path().join("issues.events.ndjson").exists());
}

/// Events are JSON values: an integer outside `[-2^63, 2^64)` in a posted
/// event is applied as its nearest binary64, and the answer says so, with
/// where the first one is; an answer without one has no `warnings`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_whose_integers_pass_64_bits_is_applied_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let file = snapshot(dir.path());
    let s = start(&file, |_| {}).await;
    let big = r#"{"seq":1,"op":"update","key":1000000,"set":{"n":123456789012345678901234567891}}"#;
    let (st, v) = post(&s, Some(TOKEN), &format!("{big}\n")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!((&v["applied"], &v["last_seq"]), (&json!(1), &json!(1)));
    assert_eq!(
        v["warnings"],
        json!([
            "1 integer outside [-2^63, 2^64) (the first at line 1, column 49) is applied as the nearest binary64: events are read as JSON values (SPEC.md 1.3)"
        ])
    );
    let (_, _, row) = get(&s, "/api/issues/rows/1000000?fields=n").await;
    assert_eq!(row.trim(), r#"{"n":1.2345678901234568e+29}"#);
    let (st, v) = post(
        &s,
        Some(TOKEN),
        &format!("{}\n", E1.replace("\"seq\":1", "\"seq\":2")),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"applied": 1, "last_seq": 2}));
}

/// Read SSE events (id, data) until `n` arrived.
async fn read_events(r: reqwest::Response, n: usize) -> Vec<(u64, Value)> {
    let mut body = r.bytes_stream();
    let mut buf = String::new();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while out.len() < n {
            let chunk = body.next().await.expect("stream ended").unwrap();
            buf.push_str(std::str::from_utf8(&chunk).unwrap());
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                let (mut id, mut data) = (None, None);
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().parse::<u64>().unwrap());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data = Some(serde_json::from_str::<Value>(v.trim()).unwrap());
                    }
                }
                if let (Some(i), Some(d)) = (id, data) {
                    out.push((i, d));
                }
            }
        }
    })
    .await
    .expect("events did not arrive in time");
    out
}

fn seqs(evs: &[(u64, Value)]) -> Vec<u64> {
    evs.iter()
        .map(|(i, d)| {
            assert_eq!(d["seq"].as_u64(), Some(*i), "id is the seq");
            *i
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_get_posted_events_live_and_replay_after_last_event_id() {
    let dir = tempfile::tempdir().unwrap();
    let file = snapshot(dir.path());
    let s = start(&file, |_| {}).await;
    let url = format!("{}/api/issues/events", s.base);
    let live = client().get(&url).send().await.unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    assert_eq!(
        live.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    assert_eq!(
        post(&s, Some(TOKEN), &format!("{E1}\n{E2}\n")).await.0,
        StatusCode::OK
    );
    assert_eq!(post(&s, Some(TOKEN), E3).await.0, StatusCode::OK);
    let got = read_events(live, 3).await;
    assert_eq!(seqs(&got), [1, 2, 3]);
    let want: Vec<Value> = [E1, E2, E3]
        .iter()
        .map(|l| serde_json::from_str(&Event::parse(1, l).unwrap().to_json()).unwrap())
        .collect();
    assert_eq!(got.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>(), want);

    // Reconnecting with Last-Event-ID: the events after it, then live ones.
    let again = client()
        .get(format!("{url}?since=0"))
        .header("Last-Event-ID", "1")
        .send()
        .await
        .unwrap();
    let from_zero = client().get(format!("{url}?since=0")).send().await.unwrap();
    let whole = client().get(format!("{url}?from=0")).send().await.unwrap();
    let from3 = client().get(format!("{url}?from=3")).send().await.unwrap();
    let e4 = r#"{"seq":4,"op":"update","key":5,"set":{"state":"closed"}}"#;
    assert_eq!(post(&s, Some(TOKEN), e4).await.0, StatusCode::OK);
    assert_eq!(seqs(&read_events(again, 3).await), [2, 3, 4]);
    assert_eq!(seqs(&read_events(from_zero, 4).await), [1, 2, 3, 4]);
    assert_eq!(seqs(&read_events(whole, 4).await), [1, 2, 3, 4]);
    assert_eq!(seqs(&read_events(from3, 2).await), [3, 4]);
    let both = client()
        .get(format!("{url}?from=1&since=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), StatusCode::BAD_REQUEST);

    // A subscriber behind by more than the channel holds (1,024 events
    // sent in one go) is caught up from the history: nothing lost.
    let slow = client().get(&url).send().await.unwrap();
    let batch: String = (5..=1504)
        .map(|q| format!("{{\"seq\":{q},\"op\":\"update\",\"key\":5,\"set\":{{\"n\":{q}}}}}\n"))
        .collect();
    let (st, v) = post(&s, Some(TOKEN), &batch).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        seqs(&read_events(slow, 1500).await),
        (5..=1504).collect::<Vec<_>>()
    );

    let r = client()
        .get(&url)
        .header("Last-Event-ID", "x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

/// A stream's event ids name the rows as of their version, events
/// included: after a POST, resuming an older stream is refused (its rows
/// would be another list: rows repeated or lost), a stream of the new
/// version resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_id_from_before_a_post_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = snapshot(dir.path());
    let s = start(&file, |_| {}).await;
    let q = "/api/issues/stream?chunkSize=2&sort=title&fields=id,title";
    let (st, _, body) = get(&s, q).await;
    assert_eq!(st, StatusCode::OK);
    let id = |body: &str| {
        body.lines()
            .filter_map(|l| l.strip_prefix("id: "))
            .find(|i| i.ends_with("-2"))
            .unwrap()
            .to_string()
    };
    let before = id(&body);
    let resume = |last: String| {
        let url = format!("{}{q}", s.base);
        async move {
            client()
                .get(url)
                .header("last-event-id", last)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(resume(before.clone()).await, StatusCode::OK);
    let (st, v) = post(&s, Some(TOKEN), &format!("{E1}\n")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(resume(before.clone()).await, StatusCode::BAD_REQUEST);
    let (_, _, body) = get(&s, q).await;
    let after = id(&body);
    assert_ne!(after, before);
    assert_eq!(resume(after).await, StatusCode::OK);
}

/// A POST takes no query parameters: one is refused (`400`), nothing applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_with_a_query_parameter_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = snapshot(dir.path());
    let s = start(&file, |_| {}).await;
    let r = client()
        .post(format!("{}/api/issues/events?x=1", s.base))
        .bearer_auth(TOKEN)
        .body(format!("{E1}\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["parameter"], "x");
    let (_, _, b) = get(&s, "/api/issues").await;
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["eventsApplied"], 0);
}

/// A log another writer changed since the server read it (here: a broken
/// line appended) is never appended to: the POST is refused (`409`), the
/// file is left as that writer left it, and nothing is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_changed_outside_the_server_is_not_appended_to() {
    let dir = tempfile::tempdir().unwrap();
    let file = snapshot(dir.path());
    let s = start(&file, |c| c.reload_interval = None).await;
    let (st, v) = post(&s, Some(TOKEN), &format!("{E1}\n")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let log = dir.path().join("issues.events.ndjson");
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push_str("{\"seq\":2,\"op\":\n");
    std::fs::write(&log, &text).unwrap();
    let (st, v) = post(&s, Some(TOKEN), &format!("{E2}\n")).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("changed outside this server"), "{msg}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), text);
    let (_, _, b) = get(&s, "/api/issues").await;
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["eventsApplied"], 1);
}

/// A POST whose body stops arriving gets a `408` (not the timeout's `503`)
/// before the request's time is out, the connection is closed, and nothing
/// is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_body_that_stalls_gets_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let file = snapshot(dir.path());
    // The body's deadline is nine tenths of the request's: 300 ms apart,
    // so that a loaded machine still answers the 408 before the 503.
    let s = start(&file, |c| c.timeout = Duration::from_secs(3)).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut t = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/issues/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 1000\r\n\r\n{{\"seq\":1,"
    );
    t.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            match t.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the connection stayed open");
    let text = String::from_utf8_lossy(&got).to_string();
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("did not arrive whole"), "{text}");
    let (_, _, b) = get(&s, "/api/issues").await;
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["eventsApplied"], 0);
}

/// The text of an SSE body until it ends (at most 10 s).
async fn read_to_end(r: reqwest::Response) -> String {
    let mut body = r.bytes_stream();
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(c) => text.push_str(&String::from_utf8_lossy(&c)),
                Err(_) => break,
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the stream did not end; it sent: {text}"));
    text
}

/// The `data:` of the events of an SSE text that have an `id:`.
fn data_lines(text: &str) -> Vec<u64> {
    text.split("\n\n")
        .filter(|b| b.lines().any(|l| l.starts_with("id:") && l.len() > 4))
        .flat_map(|b| b.lines().filter_map(|l| l.strip_prefix("data: ")))
        .map(|d| {
            serde_json::from_str::<Value>(d).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

/// Event streams and the files under them: a log that another writer
/// extends is sent on (a reload's new events reach subscribers); a
/// snapshot replaced under them (a compaction, seqs restarting) ends every
/// stream with a `reset` event whose empty `id:` clears an `EventSource`'s
/// `Last-Event-ID`, and a seq past the new log's end is a `409` (it
/// answered `200` and then skipped every new event up to it). A shutdown
/// ends the streams (it waited for them for ever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_follow_reloads_and_end_on_a_replaced_log_and_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let file = snapshot(dir.path());
    let s = start(&file, |c| {
        c.reload_interval = Some(Duration::from_millis(100));
    })
    .await;
    let url = format!("{}/api/issues/events", s.base);
    assert_eq!(
        post(&s, Some(TOKEN), &format!("{E1}\n{E2}\n")).await.0,
        StatusCode::OK
    );
    let sub = client().get(&url).send().await.unwrap();
    assert_eq!(sub.status(), StatusCode::OK);
    // Another writer appends seq 3: the reload sends it.
    let log = dir.path().join("issues.events.ndjson");
    {
        // Appended, as another writer appends: a reload never sees the log
        // shorter (`fs::write` empties it first, and a reload between the
        // two steps took it for a replaced log).
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(canonical(&[E3]).as_bytes()).unwrap();
    }
    let got = read_events(sub, 1).await;
    assert_eq!(seqs(&got), [3]);

    // A compaction: a new snapshot in place, the log gone.
    let sub = client().get(&url).send().await.unwrap();
    let replay = client()
        .get(&url)
        .header("Last-Event-ID", "1")
        .send()
        .await
        .unwrap();
    // The new version has one row fewer, so the test can tell when the
    // server serves it: a reload may land between the two steps below
    // (the old snapshot without its log, one more reset) and the next one
    // must have happened before the streams opened later are checked.
    let other = tempfile::tempdir().unwrap();
    let newer = snapshot_of(other.path(), 39);
    std::fs::remove_file(&log).unwrap();
    std::fs::rename(&newer, &file).unwrap();
    let ended = read_to_end(sub).await;
    assert!(ended.contains("event: reset\nid:"), "{ended}");
    assert!(ended.contains("subscribe without Last-Event-ID"), "{ended}");
    let ended = read_to_end(replay).await;
    assert_eq!(data_lines(&ended), [2, 3], "{ended}");
    assert!(ended.contains("event: reset"), "{ended}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, _, b) = get(&s, "/api/issues").await;
        let v: Value = serde_json::from_str(&b).unwrap();
        if v["rows"] == 39 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new snapshot was not served: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The new version: seqs from 1 again; an old seq past its log is a
    // 409, `+3` is no seq, `since=0` and a lower-case scheme work.
    let (_, _, b) = get(&s, "/api/issues").await;
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["eventsApplied"], 0, "{v}");
    for (h, want) in [
        ("3", StatusCode::CONFLICT),
        ("+0", StatusCode::BAD_REQUEST),
        ("0", StatusCode::OK),
    ] {
        let r = client()
            .get(&url)
            .header("Last-Event-ID", h)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want, "Last-Event-ID: {h}");
        if want == StatusCode::CONFLICT {
            let v: Value = r.json().await.unwrap();
            assert!(
                v["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("past the last seq"),
                "{v}"
            );
        }
    }
    let r = client()
        .post(format!("{}/api/issues/events", s.base))
        .header("authorization", format!("bearer {TOKEN}"))
        .body(r#"{"seq":1,"op":"delete","key":1000003}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // `since` is digits only (`+3` was taken as 3).
    let r = client()
        .get(format!("{url}?since=%2B0"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // A shutdown ends an open stream, and one whose request is read after
    // the shutdown began (it stayed open until --timeout).
    let sub = client().get(&url).send().await.unwrap();
    assert_eq!(sub.status(), StatusCode::OK);
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut late = tokio::net::TcpStream::connect(&addr).await.unwrap();
    late.write_all(b"GET /api/issues/events HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(s);
    let ended = read_to_end(sub).await;
    assert!(!ended.contains("event: reset"), "{ended}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = late.write_all(b"\r\n").await;
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), late.read_to_end(&mut got))
        .await
        .expect("a stream begun after the shutdown stayed open")
        .ok();
}
