//! `GET /api/NAME/stream`: every matching row as Server-Sent Events.
//!
//! Events: `metadata` (`{"total", "chunkSize", "from"}`, with `retry:`),
//! then `data` events of `chunkSize` rows (a JSON array), then `complete`.
//! Every event's id is `TAG-N`, TAG naming the snapshot version and query,
//! N the rows delivered through that event; a client reconnecting with
//! `Last-Event-ID: TAG-N` gets rows from N on. The `complete` event's id is
//! `TAG-done`; reconnecting with it gets `204 No Content` (which stops an
//! `EventSource`).

use crate::api::path_err;
use crate::error::ApiError;
use crate::params;
use crate::{AppState, Dataset};
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use colsnap::read::StringWindow;
use futures_util::stream::{self, Stream};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const STREAM_PARAMS: &[&str] = &["chunkSize", "sort", "where", "search", "in", "fields"];

/// Counts a stream as open for as long as it lives.
pub(crate) struct Open(Arc<AtomicUsize>);

impl Open {
    pub(crate) fn new(c: &Arc<AtomicUsize>) -> Open {
        c.fetch_add(1, Ordering::SeqCst);
        Open(c.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Bytes of events produced per blocking task: many `data` events in one
/// buffer (one write to the socket), while the next batch is made.
const BATCH_BYTES: usize = 1 << 20;

/// Rows of the first batch of a source that reads no string window (whose
/// size per row is not known yet)...
const FIRST_BATCH_ROWS: usize = 1024;
/// ...and the most rows a batch of such a source writes together.
const MAX_BATCH_ROWS: usize = 1 << 17;
/// Such a source reads the strings of the rows written together at once,
/// each string chunk once: batches of about this many bytes of events.
const STRINGS_BATCH_BYTES: usize = 16 << 20;

/// Rows of the first string window (fast to the first event: few chunks
/// read); later windows are sized by [`crate::ServerConfig::stream_window_bytes`].
const FIRST_WINDOW_ROWS: usize = 256;

/// The strings of the rows `start..end` of a stream, read ahead.
struct Window {
    /// The row after the window's last.
    end: usize,
    /// Its rows, and the bytes it held when read.
    rows: usize,
    bytes: usize,
    strings: StringWindow,
}

/// What the producer of one stream needs.
struct Job {
    ds: Arc<Dataset>,
    rows: Arc<Vec<u32>>,
    fields: Option<Vec<String>>,
    chunk: usize,
    tag: Arc<str>,
    /// One event a batch (pacing, for tests); otherwise about
    /// [`BATCH_BYTES`] of events.
    single: bool,
    /// Output bytes per row seen so far (0 before the first batch): sizes
    /// the next batch.
    row_bytes: AtomicUsize,
    /// Bytes a string window may hold.
    window_bytes: usize,
    /// The string window being written (batches of one stream are made one
    /// at a time: the lock is never contended).
    window: Mutex<Option<Window>>,
}

/// One SSE event's text: its fields, then `data` with `data` (which must
/// hold no line break: compact JSON), then the blank line.
fn event_text(out: &mut Vec<u8>, event: &str, id: &str, retry: Option<Duration>, data: &[u8]) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(b"\nid: ");
    out.extend_from_slice(id.as_bytes());
    if let Some(r) = retry {
        out.extend_from_slice(format!("\nretry: {}", r.as_millis()).as_bytes());
    }
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
}

/// An `error` event (no id: a reconnecting client resumes after the last
/// rows it got).
fn error_event(message: &str) -> Vec<u8> {
    let msg = serde_json::json!({"message": message}).to_string();
    let mut out = b"event: error\ndata: ".to_vec();
    out.extend_from_slice(msg.as_bytes());
    out.extend_from_slice(b"\n\n");
    out
}

/// The head of a `data` event whose rows start at row `base` of the stream:
/// `open(out, end)` writes `event: data`, the id `TAG-(base + end)` (rows
/// written once the event is complete) and the start of the `data:` array.
fn data_event_head(tag: &str, base: usize) -> impl FnMut(&mut Vec<u8>, usize) + '_ {
    move |out: &mut Vec<u8>, e: usize| {
        out.extend_from_slice(b"event: data\nid: ");
        out.extend_from_slice(tag.as_bytes());
        out.extend_from_slice(format!("-{}\ndata: [", base + e).as_bytes());
    }
}

/// Make the events of the rows from `at` on, until about [`BATCH_BYTES`]
/// (the rows written straight from the engine's row writer into the
/// buffer); the `complete` event follows the last row. Returns the text and
/// the row reached, `None` after `complete` (or an `error` event).
///
/// The strings of the rows come from a window read ahead: rows in any
/// order (sorted by a column) hold strings spread over every string chunk,
/// so a window of many rows reads each chunk once for all of them, and
/// holds only their strings (about `window_bytes`), not their JSON; the
/// events are then written a batch at a time, as the client takes them.
fn batch(job: &Job, at: usize) -> (Vec<u8>, Option<usize>) {
    let mut out = Vec::with_capacity(BATCH_BYTES + BATCH_BYTES / 4);
    match fill(job, at, &mut out) {
        Ok(Some(at)) => (out, Some(at)),
        Ok(None) => {
            let done = serde_json::json!({"total": job.rows.len()}).to_string();
            event_text(
                &mut out,
                "complete",
                &format!("{}-done", job.tag),
                None,
                done.as_bytes(),
            );
            (out, None)
        }
        Err(e) => {
            tracing::error!(error = %e, "stream failed");
            out.extend_from_slice(&error_event(&e.to_string()));
            (out, None)
        }
    }
}

/// Rows rounded up to whole events of `chunk` rows (at least one).
fn whole_events(rows: usize, chunk: usize) -> usize {
    rows.div_ceil(chunk).max(1).saturating_mul(chunk)
}

/// Append the events of the rows from `at` on to `out` (whole events
/// only: on error, `out` keeps only whole events). Returns the row reached,
/// `None` once every row is written.
fn fill(job: &Job, mut at: usize, out: &mut Vec<u8>) -> colsnap::Result<Option<usize>> {
    let total = job.rows.len();
    let src = job.ds.engine.source();
    let mut guard = job
        .window
        .lock()
        .map_err(|_| colsnap::Error::Invalid("stream window lock poisoned".into()))?;
    while at < total {
        // The window of strings holding row `at`: read when the last one
        // is spent (its size from the bytes per row of the one before).
        if guard.as_ref().is_none_or(|w| w.end <= at) {
            let before = guard.take();
            let n = match &before {
                None => whole_events(FIRST_WINDOW_ROWS, job.chunk),
                Some(w) => {
                    // Bytes per row of the window before; the next one
                    // holds about `window_bytes`.
                    let per = (w.bytes / w.rows.max(1)).max(1);
                    whole_events((job.window_bytes / per).max(1), job.chunk)
                }
            };
            drop(before);
            let end = at.saturating_add(n).min(total);
            match src.read_strings(&job.rows[at..end], job.fields.as_deref())? {
                Some(strings) => {
                    tracing::debug!(
                        rows = end - at,
                        bytes = strings.bytes(),
                        strings = strings.string_bytes(),
                        "stream: string window read"
                    );
                    *guard = Some(Window {
                        end,
                        rows: end - at,
                        bytes: strings.bytes(),
                        strings,
                    })
                }
                None => {
                    drop(guard);
                    return fill_unwindowed(job, at, out);
                }
            }
        }
        let Some(w) = guard.as_mut() else {
            break;
        };
        // Rows of about BATCH_BYTES of events (one event when paced), in
        // whole events, within the window.
        let n = match (job.single, job.row_bytes.load(Ordering::Relaxed)) {
            (true, _) => job.chunk,
            (false, 0) => job.chunk,
            (false, b) => whole_events((BATCH_BYTES / b).max(1), job.chunk),
        };
        let end = at.saturating_add(n).min(w.end);
        let mark = out.len();
        let mut open = data_event_head(&job.tag, at);
        // The row writer's JSON is compact: no line break (one would end a
        // `data:` field), strings escape every control char.
        src.write_row_groups_with(
            &job.rows[at..end],
            job.chunk,
            job.fields.as_deref(),
            Some(&mut w.strings),
            out,
            &mut open,
            b"]\n\n",
        )?;
        let written = out.len() - mark;
        job.row_bytes
            .store((written / (end - at).max(1)).max(1), Ordering::Relaxed);
        at = end;
        if at >= w.end {
            // Spent: its memory goes before the next is read.
            w.strings = StringWindow::default();
        }
        if job.single || out.len() >= BATCH_BYTES {
            return Ok(Some(at));
        }
    }
    Ok(None)
}
/// [`fill`] for a source that reads no string window: the strings of the
/// rows written together (about [`STRINGS_BATCH_BYTES`] of events) are read
/// together, each string chunk once.
fn fill_unwindowed(job: &Job, mut at: usize, out: &mut Vec<u8>) -> colsnap::Result<Option<usize>> {
    let total = job.rows.len();
    let src = job.ds.engine.source();
    // Whole rows from the row store read no strings: batches of one
    // buffer's size (large ones only grow every worker thread's heap).
    let batch = if job.fields.is_none() && job.ds.store.is_ready() {
        BATCH_BYTES
    } else {
        STRINGS_BATCH_BYTES
    };
    while at < total {
        let rows = match job.row_bytes.load(Ordering::Relaxed) {
            0 => FIRST_BATCH_ROWS,
            b => (batch / b).clamp(FIRST_BATCH_ROWS, MAX_BATCH_ROWS),
        };
        let n = if job.single {
            job.chunk
        } else {
            whole_events(rows, job.chunk)
        };
        let end = at.saturating_add(n).min(total);
        let mark = out.len();
        let mut open = data_event_head(&job.tag, at);
        src.write_row_groups(
            &job.rows[at..end],
            job.chunk,
            job.fields.as_deref(),
            out,
            &mut open,
            b"]\n\n",
        )?;
        let written = out.len() - mark;
        job.row_bytes
            .store((written / (end - at).max(1)).max(1), Ordering::Relaxed);
        at = end;
        if job.single || out.len() >= BATCH_BYTES {
            return Ok(Some(at));
        }
    }
    Ok(None)
}

type Pending = tokio::task::JoinHandle<(Vec<u8>, Option<usize>)>;

struct St {
    job: Arc<Job>,
    /// The metadata event, sent first.
    meta: Option<Bytes>,
    /// The batch being made.
    next: Option<Pending>,
    pause: Duration,
    heartbeat: Duration,
    _open: Open,
}

fn spawn_batch(job: &Arc<Job>, at: usize) -> Pending {
    let job = job.clone();
    tokio::task::spawn_blocking(move || batch(&job, at))
}

/// The response body: the metadata event, then batches of events, each
/// made on a blocking thread while the one before is written (one batch
/// ahead, so a slow client holds no thread). A heartbeat comment goes out
/// when a batch takes longer than the heartbeat interval.
fn body_stream(st: St) -> impl Stream<Item = Result<Bytes, Infallible>> + Send {
    stream::unfold(st, |mut st| async move {
        if let Some(m) = st.meta.take() {
            return Some((Ok(m), st));
        }
        let mut h = st.next.take()?;
        let (text, reached) = match tokio::time::timeout(st.heartbeat, &mut h).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "stream task failed");
                (error_event(&e.to_string()), None)
            }
            Err(_) => {
                st.next = Some(h);
                return Some((Ok(Bytes::from_static(b":heartbeat\n\n")), st));
            }
        };
        if let Some(at) = reached {
            if !st.pause.is_zero() {
                tokio::time::sleep(st.pause).await;
            }
            st.next = Some(spawn_batch(&st.job, at));
        }
        Some((Ok(Bytes::from(text)), st))
    })
}

pub async fn stream(
    State(app): State<Arc<AppState>>,
    name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let Path(name) = name.map_err(path_err)?;
    let ds = app.dataset(&name)?;
    let raw = uri.query().unwrap_or("");
    let ps = params::pairs(raw, STREAM_PARAMS, &["where"])?;
    let cfg = &app.config;
    let chunk = params::number(&ps, "chunkSize", 1, cfg.max_limit as u64)?
        .map_or(cfg.default_limit.min(cfg.max_limit), |n| n as usize);
    let sel = params::selection(&ps, &ds.engine)?;
    let mut tag_src = sel.canonical.clone();
    tag_src.push('\0');
    tag_src.push_str(&chunk.to_string());
    tag_src.push('\0');
    tag_src.push_str(&sel.fields.clone().unwrap_or_default().join(","));
    // The whole identity (the file's and, with events, the log's) is in
    // the tag's CRC: after a POSTed event, the rows are another list.
    let tag = format!(
        "{}{:08x}",
        &ds.identity[..8],
        crc32c::crc32c_append(crc32c::crc32c(ds.identity.as_bytes()), tag_src.as_bytes())
    );
    let cap = cfg.result_cache_rows;
    let ds2 = ds.clone();
    let sel2 = sel.clone();
    let rows = tokio::task::spawn_blocking(move || ds2.result(&sel2, cap)).await??;
    let mut from = 0;
    if let Some(last) = headers.get("last-event-id") {
        let bad = || {
            ApiError::bad(
                "Last-Event-ID",
                "not an event id of this stream on this snapshot version (start again without it)",
            )
        };
        let s = last.to_str().map_err(|_| bad())?;
        let (t, n) = s.rsplit_once('-').ok_or_else(bad)?;
        if t != tag {
            return Err(bad());
        }
        if n == "done" {
            let mut r = StatusCode::NO_CONTENT.into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            return Ok(r);
        }
        from = n.parse::<usize>().map_err(|_| bad())?;
        if from > rows.len() {
            return Err(bad());
        }
    }
    let job = Arc::new(Job {
        ds,
        rows,
        fields: sel.fields,
        chunk,
        tag: tag.clone().into(),
        single: !cfg.stream_pause.is_zero(),
        row_bytes: AtomicUsize::new(0),
        window_bytes: cfg.stream_window_bytes,
        window: Mutex::new(None),
    });
    let total = job.rows.len();
    let mut meta = Vec::new();
    event_text(
        &mut meta,
        "metadata",
        &format!("{tag}-{from}"),
        Some(Duration::from_millis(cfg.sse_retry_ms)),
        serde_json::json!({"total": total, "chunkSize": chunk, "from": from})
            .to_string()
            .as_bytes(),
    );
    let st = St {
        next: Some(spawn_batch(&job, from)),
        job,
        meta: Some(Bytes::from(meta)),
        pause: cfg.stream_pause,
        heartbeat: cfg.heartbeat,
        _open: Open::new(&app.active_streams),
    };
    let mut r = Body::from_stream(body_stream(st)).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Reverse proxies (nginx) must pass events on as they come.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(r)
}
