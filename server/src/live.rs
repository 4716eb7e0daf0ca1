//! Live events: `POST /api/NAME/events` appends events to the dataset's
//! event log and swaps the new view in; `GET /api/NAME/events` streams the
//! applied events as Server-Sent Events.
//!
//! A POST is all or nothing: its events are parsed and applied to a copy
//! of the dataset's overlay (which holds every event so far) before
//! anything is written; only then are they appended to the log (write + fsync) and
//! the new view swapped in. POSTs to one dataset run one at a time.

use crate::api::path_err;
use crate::error::ApiError;
use crate::stream::Open;
use crate::{AppState, Dataset, FileSig, ResultCache, params};
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use colsnap::events::{Event, Overlay, OverlaySource};
use colsnap::query::Engine;
use colsnap::schema::builder::InexactIntegers;
use futures_util::stream::{self, Stream};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// Events kept in the channel for slow subscribers; one that falls further
/// behind is caught up from the dataset's history.
const CHANNEL: usize = 1024;

/// One applied event as sent to subscribers: its seq and JSON line.
pub(crate) type Applied = Arc<(u64, String)>;

/// The live state of one dataset name (kept across swaps and reloads).
pub(crate) struct Live {
    /// Held by a POST from validation to swap (and by a reload).
    pub(crate) lock: tokio::sync::Mutex<()>,
    tx: broadcast::Sender<Applied>,
    /// Bumped when the snapshot or the log is replaced on disk by one that
    /// does not continue what subscribers were sent: their streams end
    /// with a `reset` event.
    reset: watch::Sender<u64>,
}

impl Live {
    pub(crate) fn new() -> Live {
        Live {
            lock: tokio::sync::Mutex::new(()),
            tx: broadcast::channel(CHANNEL).0,
            reset: watch::channel(0).0,
        }
    }

    /// Tell subscribers that `new` was read from disk in place of `old`
    /// (a `--reload`): when the snapshot is the same file and the log
    /// continues the old one (the same events, then more), the new events
    /// are sent; otherwise (a compaction, a log replaced or cut) every
    /// stream ends with a `reset` event.
    pub(crate) fn reloaded(&self, old: &Dataset, new: &Dataset) {
        let continues =
            old.signature == new.signature
                && old.signature.is_some()
                && new.history.len() >= old.history.len()
                && old.history.iter().zip(new.history.iter()).all(|(a, b)| {
                    Arc::ptr_eq(a, b) || (a.seq == b.seq && a.to_json() == b.to_json())
                });
        if continues {
            for e in &new.history[old.history.len()..] {
                let _ = self.tx.send(Arc::new((e.seq, e.to_json())));
            }
        } else {
            self.reset.send_modify(|n| *n += 1);
        }
    }
}

/// Where events POSTed to `name` go when no `--events` log was given:
/// `NAME.events.ndjson` beside the snapshot.
pub(crate) fn default_log(snapshot: &FsPath, name: &str) -> PathBuf {
    snapshot.with_file_name(format!("{name}.events.ndjson"))
}

impl Dataset {
    /// Sequence number of the last event applied.
    pub(crate) fn last_seq(&self) -> Option<u64> {
        self.history.last().map(|e| e.seq)
    }
}

fn no_store(r: &mut Response) {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// Equal in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

fn authorize(st: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &st.config.events_token else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            Some("Authorization"),
            "posting events is disabled: start colsnap-serve with --write-token-file F (or --events-token TOKEN, or COLSNAP_EVENTS_TOKEN) and send `Authorization: Bearer TOKEN`",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // The scheme is case-insensitive (RFC 9110 11.1).
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    match given {
        Some(g) if same(g.as_bytes(), token.as_bytes()) => Ok(()),
        _ => {
            let mut e = ApiError::new(
                StatusCode::UNAUTHORIZED,
                Some("Authorization"),
                "missing or wrong `Authorization: Bearer TOKEN` (the server's --write-token-file or --events-token)",
            );
            e.www_authenticate = true;
            Err(e)
        }
    }
}

/// Parse the NDJSON body: (1-based line, event) of every non-blank line,
/// and the integers outside `[-2^63, 2^64)` its events hold (applied as
/// their nearest binary64: events are JSON values).
fn parse_body(body: &[u8]) -> Result<(Vec<(u64, Event)>, InexactIntegers), ApiError> {
    let mut out = Vec::new();
    let mut inexact = InexactIntegers::default();
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        let lno = i as u64 + 1;
        let text = std::str::from_utf8(line).map_err(|_| {
            ApiError::bad("body", format!("line {lno}: the line is not valid UTF-8"))
        })?;
        if text.trim().is_empty() {
            continue;
        }
        let ev = Event::parse(lno, text).map_err(|e| ApiError::bad("body", e.to_string()))?;
        colsnap::events::count_inexact_integers(text, lno, &mut inexact);
        out.push((lno, ev));
    }
    if out.is_empty() {
        return Err(ApiError::bad(
            "body",
            "no events: send one JSON event per line (SPEC.md section 13)",
        ));
    }
    Ok((out, inexact))
}

/// Append `text` to the log at `path` (a newline first when the file does
/// not end with one), fsync it; on failure cut the file back. Returns the
/// bytes appended.
fn append_log(path: &FsPath, text: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)?;
    let len = f.metadata()?.len();
    let mut bytes = Vec::with_capacity(text.len() + 1);
    if len > 0 {
        let mut last = [0u8];
        f.seek(SeekFrom::Start(len - 1))?;
        f.read_exact(&mut last)?;
        if last[0] != b'\n' {
            bytes.push(b'\n');
        }
    }
    bytes.extend_from_slice(text);
    let r = f.write_all(&bytes).and_then(|()| f.sync_data());
    if let Err(e) = r {
        let _ = f.set_len(len).and_then(|()| f.sync_data());
        return Err(e);
    }
    if len == 0 {
        // A new file: make its directory entry durable too.
        if let Some(dir) = path.parent().and_then(|d| std::fs::File::open(d).ok()) {
            let _ = dir.sync_all();
        }
    }
    Ok(bytes)
}

/// Validate and apply `events` over `ds`, append them to its log and
/// return the new dataset version (not yet swapped in).
fn apply(ds: &Dataset, events: Vec<(u64, Event)>) -> Result<Dataset, ApiError> {
    if let (Some(last), Some((lno, first))) = (ds.last_seq(), events.first())
        && Some(first.seq) != last.checked_add(1)
    {
        let expected = match last.checked_add(1) {
            Some(n) => format!("expected seq {n}"),
            None => "the log is at the largest seq and takes no more events".to_string(),
        };
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            Some("seq"),
            format!(
                "line {lno}: seq {} does not continue the log: {expected} (the last event applied is {last})",
                first.seq
            ),
        ));
    }
    let internal = |e: colsnap::Error| {
        tracing::error!(error = %e, "copying the overlay failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, None, e.to_string())
    };
    // The candidate: a copy of the current live source (every earlier
    // event applied; what it learned, such as typed sort deltas, comes
    // along), then these, each re-typing only its row; the current one
    // keeps serving meanwhile, and a refused batch drops the copy.
    let mut src = match &ds.overlay {
        Some(s) => OverlaySource::clone(s),
        None => OverlaySource::with_base(
            Overlay::new(ds.snap.clone(), &ds.key).map_err(internal)?,
            ds.base.clone(),
        ),
    };
    for (lno, e) in &events {
        src.apply(e, *lno).map_err(|x| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("body"),
                x.to_string(),
            )
        })?;
    }
    let log = ds
        .events
        .clone()
        .unwrap_or_else(|| default_log(&ds.path, &ds.name));
    if ds.events.is_none() && std::fs::metadata(&log).is_ok_and(|m| m.len() > 0) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            Some("name"),
            format!(
                "{} appeared after the server started and is not loaded yet: the next look for changed files (--reload) loads it",
                log.display()
            ),
        ));
    }
    // Append only to the log this version was read from: a log another
    // writer changed since (a line appended, cut or broken) is read again
    // first, or this batch would follow what the server never checked (and
    // a restart would refuse the log).
    if ds.events.is_some() && std::fs::metadata(&log).ok().map(|m| FileSig::of(&m)) != ds.events_sig
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            Some("name"),
            format!(
                "{} changed outside this server since it was read: it is read again at the next look for changed files (--reload) or a restart; nothing was applied",
                log.display()
            ),
        ));
    }
    let mut text = Vec::new();
    for (_, e) in &events {
        text.extend_from_slice(e.to_json().as_bytes());
        text.push(b'\n');
    }
    let io = |e: std::io::Error| {
        tracing::error!(log = %log.display(), error = %e, "appending events failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            format!("{}: {e} (nothing was applied)", log.display()),
        )
    };
    let appended = append_log(&log, &text).map_err(io)?;
    let events_sig = std::fs::metadata(&log).ok().map(|m| FileSig::of(&m));
    let crc = match ds.log_crc {
        Some(c) => crc32c::crc32c_append(c, &appended),
        None => crc32c::crc32c(&appended),
    };
    let mut history = Vec::with_capacity(ds.history.len() + events.len());
    history.extend(ds.history.iter().cloned());
    history.extend(events.into_iter().map(|(_, e)| Arc::new(e)));
    let src = Arc::new(src);
    let engine = Engine::from_source(src.clone());
    Ok(Dataset {
        name: ds.name.clone(),
        path: ds.path.clone(),
        snap: ds.snap.clone(),
        engine,
        file_len: ds.file_len,
        identity: format!("{}{crc:08x}", ds.file_identity),
        file_identity: ds.file_identity.clone(),
        events: Some(log),
        events_applied: history.len() as u64,
        key: ds.key.clone(),
        events_sig,
        base: ds.base.clone(),
        history: Arc::new(history),
        overlay: Some(src),
        log_crc: Some(crc),
        signature: ds.signature.clone(),
        file: ds.file.clone(),
        results: Mutex::new(ResultCache::default()),
        store: ds.store.clone(),
    })
}

/// `POST /api/NAME/events`: NDJSON events continuing the dataset's log.
pub(crate) async fn post(
    State(st): State<Arc<AppState>>,
    name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Body,
) -> Result<Response, ApiError> {
    authorize(&st, &headers)?;
    let Path(name) = name.map_err(path_err)?;
    st.dataset(&name)?;
    // Takes no parameters, as every endpoint refuses those it does not take.
    crate::params::pairs(uri.query().unwrap_or(""), &[], &[])?;
    let limit = st.config.max_events_body;
    let too_big = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Some("body"),
            format!("body longer than {limit} bytes: post the events in smaller batches"),
        )
    };
    if headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > limit as u64)
    {
        return Err(too_big());
    }
    // The body must be whole before the request's time (`--timeout`) runs
    // out: one still arriving then gets a `408` naming it (not the
    // timeout's `503`, which says the server was slow), and the
    // connection is closed.
    let deadline = st.config.timeout.mul_f64(0.9);
    let bytes = match tokio::time::timeout(deadline, axum::body::to_bytes(body, limit)).await {
        Ok(b) => b.map_err(|_| too_big())?,
        Err(_) => {
            let mut r = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                Some("body"),
                format!(
                    "the body did not arrive whole within {:.1} s of the request's time (--timeout); nothing was applied",
                    deadline.as_secs_f64()
                ),
            )
            .into_response();
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Ok(r);
        }
    };
    let (events, inexact) = tokio::task::spawn_blocking(move || parse_body(&bytes)).await??;
    let live = st
        .live
        .get(&name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(Some("name"), format!("no snapshot `{name}`")))?;
    // Validate, write, swap and announce in a task of its own: a client
    // that goes away (or the request timeout) cannot stop it between the
    // log write and the swap.
    let st2 = st.clone();
    let (applied, last_seq) = tokio::spawn(async move {
        let _guard = live.lock.lock().await;
        let ds = st2.dataset(&name)?;
        let sent: Vec<Applied> = events
            .iter()
            .map(|(_, e)| Arc::new((e.seq, e.to_json())))
            .collect();
        let new = tokio::task::spawn_blocking(move || apply(&ds, events)).await??;
        let last_seq = new.last_seq();
        let applied = sent.len();
        tracing::info!(name = %name, applied, last_seq = ?last_seq, identity = %new.identity, "events applied");
        if let Ok(mut d) = st2.datasets.write() {
            d.insert(name.clone(), Arc::new(new));
        }
        for a in sent {
            // No subscriber is no error.
            let _ = live.tx.send(a);
        }
        Ok::<_, ApiError>((applied, last_seq))
    })
    .await??;
    let mut answer = serde_json::json!({"applied": applied, "last_seq": last_seq});
    if let Some((line, column)) = inexact.first {
        let n = inexact.count;
        answer["warnings"] = serde_json::json!([format!(
            "{n} integer{} outside [-2^63, 2^64) (the first at line {line}, column {column}) {} applied as the nearest binary64: events are read as JSON values (SPEC.md 1.3)",
            if n == 1 { "" } else { "s" },
            if n == 1 { "is" } else { "are" },
        )]);
    }
    let mut r = axum::Json(answer).into_response();
    no_store(&mut r);
    Ok(r)
}

struct Sub {
    app: Arc<AppState>,
    name: String,
    rx: broadcast::Receiver<Applied>,
    pending: VecDeque<Applied>,
    last: Option<u64>,
    retry: Option<Duration>,
    /// Changes when the log is replaced on disk ([`Live::reloaded`]).
    reset: watch::Receiver<u64>,
    /// Changes when the server shuts down.
    down: watch::Receiver<bool>,
    /// The stream has sent its `reset` event: it ends.
    done: bool,
    _open: Open,
}

/// The events of the dataset's history after `last` (all when `None`).
fn after(ds: &Dataset, last: Option<u64>) -> VecDeque<Applied> {
    ds.history
        .iter()
        .filter(|e| last.is_none_or(|l| e.seq > l))
        .map(|e| Arc::new((e.seq, e.to_json())))
        .collect()
}

/// The last event of a stream whose log was replaced on disk: `event:
/// reset`, and an empty `id:`, which clears an `EventSource`'s last event
/// id, so that it reconnects without `Last-Event-ID` (only new events);
/// the client fetches the snapshot again.
fn reset_event() -> SseEvent {
    SseEvent::default()
        .event("reset")
        .id("")
        .data(r#"{"reset":"the snapshot or its event log was replaced on disk (a compaction): the seqs sent so far are not this log's; fetch the rows again and subscribe without Last-Event-ID"}"#)
}

fn sse_event(a: &Applied, retry: &mut Option<Duration>) -> SseEvent {
    let mut ev = SseEvent::default().id(a.0.to_string()).data(&a.1);
    if let Some(r) = retry.take() {
        ev = ev.retry(r);
    }
    ev
}

fn subscription(sub: Sub) -> impl Stream<Item = Result<SseEvent, Infallible>> + Send {
    stream::unfold(sub, |mut s| async move {
        loop {
            if s.done {
                return None;
            }
            // A reset that came while events were pending wins: they may
            // be the new log's (a lagging subscriber replays from the
            // history, which may already be the new one).
            if s.reset.has_changed().unwrap_or(true) {
                s.done = true;
                return Some((Ok(reset_event()), s));
            }
            if let Some(a) = s.pending.pop_front() {
                if s.last.is_some_and(|l| a.0 <= l) {
                    continue;
                }
                s.last = Some(a.0);
                let ev = sse_event(&a, &mut s.retry);
                return Some((Ok(ev), s));
            }
            let got = tokio::select! {
                biased;
                // A shutdown ends the stream (an `EventSource` reconnects
                // with `Last-Event-ID` to the next server): a stream never
                // finishes by itself, and the server waits for the
                // requests in flight. `wait_for` also sees a shutdown that
                // began before the stream was made.
                _ = s.down.wait_for(|d| *d) => None,
                r = s.reset.changed() => Some(Err(r.is_ok())),
                got = s.rx.recv() => Some(Ok(got)),
            };
            let got = match got {
                None | Some(Err(false)) => return None,
                Some(Err(true)) => {
                    s.done = true;
                    return Some((Ok(reset_event()), s));
                }
                Some(Ok(got)) => got,
            };
            match got {
                Ok(a) => s.pending.push_back(a),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    // Missed events: replay them from the history.
                    tracing::debug!(name = %s.name, missed = n, "event subscriber lagged: replaying from history");
                    let ds = s.app.dataset(&s.name).ok()?;
                    s.pending = after(&ds, s.last);
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

/// `GET /api/NAME/events`: the events applied, as Server-Sent Events (id:
/// the seq, data: the event's JSON line). With `Last-Event-ID: SEQ` (or
/// `?since=SEQ`) the events after SEQ are replayed first, with `?from=SEQ`
/// those from SEQ on; without, only events applied from now on are sent.
pub(crate) async fn events(
    State(app): State<Arc<AppState>>,
    name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let Path(name) = name.map_err(path_err)?;
    app.dataset(&name)?;
    let ps = params::pairs(uri.query().unwrap_or(""), &["since", "from"], &[])?;
    let since = params::number(&ps, "since", 0, u64::MAX)?;
    let from = params::number(&ps, "from", 0, u64::MAX)?;
    if since.is_some() && from.is_some() {
        return Err(ApiError::bad("from", "give `since` or `from`, not both"));
    }
    // What to replay: the events after `Some(seq)`, or every event
    // (`from=0`); `None` for live ones only.
    let replay = match headers.get("last-event-id") {
        Some(v) => Some(Some(
            v.to_str()
                .ok()
                .map(str::trim)
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::bad("Last-Event-ID", "not an event seq (a non-negative integer)")
                })?,
        )),
        None => match (since, from) {
            (Some(s), _) => Some(Some(s)),
            (None, Some(0)) => Some(None),
            (None, Some(f)) => Some(Some(f - 1)),
            (None, None) => None,
        },
    };
    let live = app
        .live
        .get(&name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(Some("name"), format!("no snapshot `{name}`")))?;
    // Subscribe first, then read the history: nothing falls between.
    let rx = live.tx.subscribe();
    let reset = live.reset.subscribe();
    let down = app.down.subscribe();
    let ds = app.dataset(&name)?;
    // A seq past the log's last is another log's (a compaction restarted
    // the seqs): replaying "the events after it" would send nothing, then
    // skip every new event up to it.
    if let Some(Some(s)) = replay
        && s > ds.last_seq().unwrap_or(0)
    {
        let what = if headers.contains_key("last-event-id") {
            "Last-Event-ID"
        } else if since.is_some() {
            "since"
        } else {
            "from"
        };
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            Some(what),
            format!(
                "{what} {} is past the last seq of the log ({}): the log was replaced (a compaction restarts the seqs); fetch the rows again and subscribe without it",
                if what == "from" { s + 1 } else { s },
                ds.last_seq().map_or("none".to_string(), |l| l.to_string())
            ),
        ));
    }
    let (pending, last) = match replay {
        Some(s) => (after(&ds, s), s),
        None => (VecDeque::new(), ds.last_seq()),
    };
    let cfg = &app.config;
    let sub = Sub {
        app: app.clone(),
        name,
        rx,
        pending,
        last,
        retry: Some(Duration::from_millis(cfg.sse_retry_ms)),
        reset,
        down,
        done: false,
        _open: Open::new(&app.active_streams),
    };
    let mut r = Sse::new(subscription(sub))
        .keep_alive(KeepAlive::new().interval(cfg.heartbeat).text("heartbeat"))
        .into_response();
    no_store(&mut r);
    r.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_parse_with_lines_and_blank_lines_skipped() {
        let b = b"\n{\"seq\":3,\"op\":\"delete\",\"key\":1}\n\n{\"seq\":4,\"op\":\"delete\",\"key\":2}\n";
        let (v, inexact) = parse_body(b).unwrap();
        assert_eq!(inexact.count, 0);
        assert_eq!(
            v.iter().map(|(l, e)| (*l, e.seq)).collect::<Vec<_>>(),
            [(2, 3), (4, 4)]
        );
        let e =
            parse_body(b"{\"seq\":1,\"op\":\"delete\",\"key\":1}\n{\"seq\":2,\"op\":\"nope\"}\n")
                .unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("line 2"), "{}", e.message);
        assert_eq!(
            parse_body(b"\n \n").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"ab", b"abc"));
    }

    #[test]
    fn appending_adds_a_missing_newline_first() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.events.ndjson");
        assert_eq!(append_log(&p, b"a\n").unwrap(), b"a\n");
        std::fs::write(&p, b"a\nb").unwrap();
        assert_eq!(append_log(&p, b"c\n").unwrap(), b"\nc\n");
        assert_eq!(std::fs::read(&p).unwrap(), b"a\nb\nc\n");
    }
}
