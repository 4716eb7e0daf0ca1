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
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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

enum Step {
    Meta,
    Data(usize),
    End,
}

struct St {
    ds: Arc<Dataset>,
    rows: Arc<Vec<u32>>,
    fields: Option<Vec<String>>,
    chunk: usize,
    tag: String,
    step: Step,
    from: usize,
    retry: Duration,
    pause: Duration,
    _open: Open,
}

fn event_stream(st: St) -> impl Stream<Item = Result<Event, Infallible>> + Send {
    stream::unfold(st, |mut st| async move {
        let total = st.rows.len();
        match st.step {
            Step::Meta => {
                let data =
                    serde_json::json!({"total": total, "chunkSize": st.chunk, "from": st.from});
                st.step = Step::Data(st.from);
                let ev = Event::default()
                    .event("metadata")
                    .id(format!("{}-{}", st.tag, st.from))
                    .retry(st.retry)
                    .data(data.to_string());
                Some((Ok(ev), st))
            }
            Step::Data(at) if at < total => {
                if !st.pause.is_zero() && at > st.from {
                    tokio::time::sleep(st.pause).await;
                }
                let end = at.saturating_add(st.chunk).min(total);
                let (ds, rows, fields) = (st.ds.clone(), st.rows.clone(), st.fields.clone());
                let json = tokio::task::spawn_blocking(move || {
                    let mut out = b"[".to_vec();
                    ds.engine
                        .source()
                        .write_rows_json(&rows[at..end], fields.as_deref(), &mut out)
                        .map(|()| {
                            out.push(b']');
                            String::from_utf8(out).unwrap_or_default()
                        })
                })
                .await;
                match json {
                    Ok(Ok(s)) => {
                        st.step = Step::Data(end);
                        let ev = Event::default()
                            .event("data")
                            .id(format!("{}-{end}", st.tag))
                            .data(s);
                        Some((Ok(ev), st))
                    }
                    other => {
                        let msg = match other {
                            Ok(Err(e)) => e.to_string(),
                            Err(e) => e.to_string(),
                            Ok(Ok(_)) => String::new(),
                        };
                        tracing::error!(error = %msg, "stream failed");
                        st.step = Step::End;
                        let ev = Event::default()
                            .event("error")
                            .data(serde_json::json!({"message": msg}).to_string());
                        Some((Ok(ev), st))
                    }
                }
            }
            Step::Data(_) => {
                st.step = Step::End;
                let ev = Event::default()
                    .event("complete")
                    .id(format!("{}-done", st.tag))
                    .data(serde_json::json!({"total": total}).to_string());
                Some((Ok(ev), st))
            }
            Step::End => None,
        }
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
    let tag = format!(
        "{}{:08x}",
        &ds.identity[..8],
        crc32c::crc32c(tag_src.as_bytes())
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
    let st = St {
        ds,
        rows,
        fields: sel.fields,
        chunk,
        tag,
        step: Step::Meta,
        from,
        retry: Duration::from_millis(cfg.sse_retry_ms),
        pause: cfg.stream_pause,
        _open: Open::new(&app.active_streams),
    };
    let mut r = Sse::new(event_stream(st))
        .keep_alive(KeepAlive::new().interval(cfg.heartbeat).text("heartbeat"))
        .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Reverse proxies (nginx) must pass events on as they come.
    r.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(r)
}
