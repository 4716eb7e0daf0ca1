//! The JSON endpoints and the file endpoint. Handlers are thin: parse
//! parameters, check the entity tag, run the engine on a blocking thread.

use crate::error::ApiError;
use crate::params::{self, Pair};
use crate::{AppState, Dataset};
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use colsnap::model::Kind;
use colsnap::query::{Filter, Literal, Op, Paging};
use serde_json::{Value, json};
use std::sync::Arc;

/// `Cache-Control` of answers computed from a snapshot: cacheable, but
/// revalidated (by `ETag`) on every use, since a restart may serve a new build.
pub const REVALIDATE: &str = "public, no-cache";

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api", get(index))
        .route("/api/{name}", get(info))
        .route("/api/{name}/rows", get(rows))
        .route("/api/{name}/rows/{key}", get(row_by_key))
        .route("/api/{name}/stream", get(crate::stream::stream))
        .route(
            "/api/{name}/events",
            get(crate::live::events).post(crate::live::post),
        )
        .route("/files/{file}", get(file))
        .route("/published/{*rest}", get(published))
        .fallback(fallback)
}

async fn fallback(uri: Uri) -> ApiError {
    ApiError::not_found(None, format!("no endpoint at `{}`", uri.path()))
}

pub(crate) fn path_err(e: PathRejection) -> ApiError {
    ApiError::bad("path", format!("bad path: {e}"))
}

async fn healthz(State(st): State<Arc<AppState>>, uri: Uri) -> Result<Response, ApiError> {
    params::pairs(uri.query().unwrap_or(""), &[], &[])?;
    let names = st.names();
    // What each snapshot holds in memory, in bytes: the typed columns
    // loaded to filter and sort, those decoded to write rows, and the
    // two string caches (bounded by --cache-mb and --string-cache-mb).
    let memory: serde_json::Map<String, Value> = st
        .all()
        .iter()
        .map(|d| {
            let mut columns = d.engine.loaded_bytes() as u64;
            let mut writers = d.engine.source().writer_bytes();
            if !Arc::ptr_eq(d.engine.source(), d.base.source()) {
                columns += d.base.loaded_bytes() as u64;
                writers += d.base.source().writer_bytes();
            }
            (
                d.name.clone(),
                json!({"loadedColumns": columns, "rowColumns": writers,
                       "stringChunks": d.snap.string_cache_bytes(),
                       "strings": d.snap.string_cache_single_bytes()}),
            )
        })
        .collect();
    // Each snapshot's row store (whole rows read from small blocks).
    let stores: serde_json::Map<String, Value> = st
        .all()
        .iter()
        .map(|d| (d.name.clone(), d.store.status()))
        .collect();
    let mut r = axum::Json(json!({
        "status": "ok",
        "snapshots": names,
        "activeStreams": st.streams(),
        "memory": memory,
        "rowStore": stores,
    }))
    .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

async fn index(State(st): State<Arc<AppState>>, uri: Uri) -> Result<Response, ApiError> {
    params::pairs(uri.query().unwrap_or(""), &[], &[])?;
    let list: Vec<Value> = st
        .all()
        .iter()
        .map(|d| {
            let n = &d.name;
            json!({"name": n, "rows": d.engine.rows(), "href": format!("/api/{n}"),
                   "file": format!("/files/{n}.colsnap")})
        })
        .collect();
    let mut r = axum::Json(json!({ "snapshots": list })).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(REVALIDATE));
    Ok(r)
}

/// True when `If-None-Match` lists `etag` (or `*`: for a resource known to
/// exist, its request checked).
pub(crate) fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    if_none_match(headers).any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

/// True when `If-None-Match` lists `etag` itself. An answer's tag names
/// its query and the snapshot's version, and only a `200` ever carried
/// it, so it answers `304` before the query is checked; `*` names no
/// query, and such a request is checked and answered in full.
fn not_modified_tag(headers: &HeaderMap, etag: &str) -> bool {
    if_none_match(headers).any(|t| t.strip_prefix("W/").unwrap_or(t) == etag)
}

fn if_none_match(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
}

/// A 200 JSON body (or the 304 for it) with its validators.
fn json_response(body: Vec<u8>, etag: &str) -> Response {
    let mut r = Response::new(Body::from(body));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    cache_headers(h, etag);
    r
}

fn cache_headers(h: &mut HeaderMap, etag: &str) {
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(REVALIDATE));
}

fn not_modified_response(etag: &str) -> Response {
    let mut r = StatusCode::NOT_MODIFIED.into_response();
    cache_headers(r.headers_mut(), etag);
    r
}

async fn info(
    State(st): State<Arc<AppState>>,
    name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let Path(name) = name.map_err(path_err)?;
    let ds = st.dataset(&name)?;
    params::pairs(uri.query().unwrap_or(""), &[], &[])?;
    let etag = ds.etag(uri.path(), "");
    if not_modified(&headers, &etag) {
        return Ok(not_modified_response(&etag));
    }
    let snap = &ds.snap;
    let footer = snap.footer();
    let columns: Vec<Value> = ds
        .engine
        .fields()
        .iter()
        .map(|f| {
            let mut c = json!({"path": f.path, "type": f.ty.to_string(), "list": f.list});
            if let Some(node) = snap.node_by_path(&f.path) {
                let n = &footer.nodes[node as usize];
                let s = &n.stats;
                let (min, max) = if let Some((a, b)) = s.int {
                    (json!(a), json!(b))
                } else if let Some((a, b)) = s.uint {
                    (json!(a), json!(b))
                } else if let Some((a, b)) = s.float {
                    (json!(a), json!(b))
                } else {
                    (Value::Null, Value::Null)
                };
                c["items"] = json!(n.items);
                c["nulls"] = json!(snap.kind_count(node, Kind::Null));
                c["absent"] = json!(snap.kind_count(node, Kind::Absent));
                c["distinct"] = json!(s.distinct);
                c["min"] = min;
                c["max"] = max;
                if let Some((a, b)) = s.time {
                    c["minEpochSeconds"] = json!(a);
                    c["maxEpochSeconds"] = json!(b);
                }
            }
            c
        })
        .collect();
    let key = &st.config.key;
    let body = json!({
        "name": ds.name,
        "rows": ds.engine.rows(),
        "snapshotRows": snap.rows(),
        "eventsApplied": ds.events_applied,
        "lastSeq": ds.last_seq(),
        "fileBytes": ds.file_len,
        "identity": ds.identity,
        "key": if ds.engine.fields().iter().any(|f| &f.path == key) { Some(key) } else { None },
        "links": {
            "rows": format!("/api/{}/rows", ds.name),
            "stream": format!("/api/{}/stream", ds.name),
            "events": format!("/api/{}/events", ds.name),
            "file": format!("/files/{}.colsnap", ds.name),
            "published": st.config.publish_dir.as_ref().map(|_| format!("/published/{}.latest.json", ds.name)),
        },
        "columns": columns,
    });
    let mut out = serde_json::to_vec(&body).unwrap_or_default();
    out.push(b'\n');
    Ok(json_response(out, &etag))
}

const ROWS_PARAMS: &[&str] = &[
    "page", "limit", "offset", "cursor", "sort", "where", "search", "in", "fields",
];

/// An opaque cursor: the next offset, the last row served (checked on use),
/// and a checksum binding it to the snapshot and the query.
fn cursor_bind(ds: &Dataset, canonical: &str) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(ds.identity.as_bytes()), canonical.as_bytes())
}

fn encode_cursor(offset: u64, last: u32, bind: u32) -> String {
    let mut b = Vec::with_capacity(16);
    b.extend_from_slice(&offset.to_le_bytes());
    b.extend_from_slice(&last.to_le_bytes());
    b.extend_from_slice(&bind.to_le_bytes());
    // Mixed so the cursor does not read as numbers.
    b.iter()
        .enumerate()
        .map(|(i, x)| format!("{:02x}", x ^ (0x5a_u8.wrapping_mul(i as u8 + 1))))
        .collect()
}

fn decode_cursor(s: &str) -> Option<(u64, u32, u32)> {
    if s.len() != 32 || !s.is_ascii() {
        return None;
    }
    let mut b = [0u8; 16];
    for (i, x) in b.iter_mut().enumerate() {
        *x = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()? ^ 0x5a_u8.wrapping_mul(i as u8 + 1);
    }
    Some((
        u64::from_le_bytes(b[..8].try_into().ok()?),
        u32::from_le_bytes(b[8..12].try_into().ok()?),
        u32::from_le_bytes(b[12..].try_into().ok()?),
    ))
}

async fn rows(
    State(st): State<Arc<AppState>>,
    name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let Path(name) = name.map_err(path_err)?;
    let ds = st.dataset(&name)?;
    let raw = uri.query().unwrap_or("").to_string();
    let etag = ds.etag(uri.path(), &raw);
    if not_modified_tag(&headers, &etag) {
        return Ok(not_modified_response(&etag));
    }
    let ps = params::pairs(&raw, ROWS_PARAMS, &["where"])?;
    let cfg = &st.config;
    let limit = params::number(&ps, "limit", 1, cfg.max_limit as u64)?
        .map_or(cfg.default_limit, |n| n as usize);
    let page = params::number(&ps, "page", 1, u64::MAX)?;
    let offset = params::number(&ps, "offset", 0, u64::MAX)?;
    let cursor = params::get(&ps, "cursor");
    if page.is_some() && offset.is_some() {
        return Err(ApiError::bad("offset", "give `page` or `offset`, not both"));
    }
    if cursor.is_some() && (page.is_some() || offset.is_some()) {
        return Err(ApiError::bad(
            "cursor",
            "a `cursor` replaces `page` and `offset`",
        ));
    }
    let sel = params::selection(&ps, &ds.engine)?;
    let path = uri.path().to_string();
    let cap = cfg.result_cache_rows;
    let cursor = cursor.map(str::to_string);
    let ds2 = ds.clone();
    let (body, next) = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let ds = ds2;
        let rows = ds.result(&sel, cap)?;
        let bind = cursor_bind(&ds, &sel.canonical);
        let paging = if let Some(c) = &cursor {
            let bad = || {
                ApiError::bad(
                    "cursor",
                    "not a cursor of this query on this snapshot version (start again without `cursor`)",
                )
            };
            let (off, last, b) = decode_cursor(c).ok_or_else(bad)?;
            let ok = b == bind
                && off >= 1
                && usize::try_from(off).is_ok_and(|o| o <= rows.len() && rows[o - 1] == last);
            if !ok {
                return Err(bad());
            }
            Paging::new(off as usize, limit).map_err(|e| ApiError::lib(Some("cursor"), e))?
        } else {
            let p = match (page, offset) {
                (_, Some(o)) => usize::try_from(o)
                    .map_err(|_| ApiError::bad("offset", "offset too large"))
                    .and_then(|o| {
                        Paging::new(o, limit).map_err(|e| ApiError::lib(Some("offset"), e))
                    })?,
                (pg, None) => {
                    let pg = usize::try_from(pg.unwrap_or(1))
                        .map_err(|_| ApiError::bad("page", "page too large"))?;
                    Paging::page(pg, limit).map_err(|e| ApiError::lib(Some("page"), e))?
                }
            };
            if p.offset > 0 && p.offset >= rows.len() {
                let which = if offset.is_some() { "offset" } else { "page" };
                return Err(ApiError::not_found(
                    Some(which),
                    {
                        let pages = rows.len().div_ceil(limit);
                        format!(
                            "{which} is past the end: {} rows match, {pages} page{} of {limit}",
                            rows.len(),
                            if pages == 1 { "" } else { "s" }
                        )
                    },
                ));
            }
            p
        };
        let mut out = Vec::new();
        let pag = ds
            .engine
            .page_json(&rows, paging, sel.fields.as_deref(), false, &mut out)
            .map_err(|e| ApiError::lib(None, e))?;
        let next = if pag.has_more {
            let end = paging.offset + paging.limit;
            Some(encode_cursor(end as u64, rows[end - 1], bind))
        } else {
            None
        };
        // `{"data":[...],"pagination":{...}}\n` -> add `"next"`.
        out.truncate(out.len().saturating_sub(2));
        out.extend_from_slice(b",\"next\":");
        out.extend_from_slice(
            serde_json::to_string(&next)
                .unwrap_or_else(|_| "null".into())
                .as_bytes(),
        );
        out.extend_from_slice(b"}\n");
        Ok((out, next))
    })
    .await??;
    let mut r = json_response(body, &etag);
    if let Some(c) = next {
        let kept: Vec<&str> = ps
            .iter()
            .filter(|p| !matches!(p.key.as_str(), "page" | "offset" | "cursor"))
            .map(|p: &Pair| p.raw.as_str())
            .collect();
        let mut q = kept.join("&");
        if !q.is_empty() {
            q.push('&');
        }
        let link = format!("<{path}?{q}cursor={c}>; rel=\"next\"");
        if let Ok(v) = HeaderValue::from_str(&link) {
            r.headers_mut().insert(header::LINK, v);
        }
    }
    Ok(r)
}

async fn row_by_key(
    State(st): State<Arc<AppState>>,
    p: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let Path((name, key)) = p.map_err(path_err)?;
    let ds = st.dataset(&name)?;
    let raw = uri.query().unwrap_or("").to_string();
    let etag = ds.etag(uri.path(), &raw);
    if not_modified_tag(&headers, &etag) {
        return Ok(not_modified_response(&etag));
    }
    let ps = params::pairs(&raw, &["fields"], &[])?;
    let sel = params::selection(&ps, &ds.engine)?;
    let key_field = st.config.key.clone();
    if !ds.engine.fields().iter().any(|f| f.path == key_field) {
        return Err(ApiError::not_found(
            Some("key"),
            format!("snapshot `{name}` has no key field `{key_field}`"),
        ));
    }
    let ds2 = ds.clone();
    let body = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, ApiError> {
        let f = Filter {
            path: key_field.clone(),
            op: Op::Eq,
            values: vec![Literal::Text(key.clone())],
        };
        let bits = ds2.engine.filter(&[f]).map_err(|e| match e {
            // A key the key column cannot hold (`abc` of an integer
            // column) is a key no row has.
            colsnap::Error::Invalid(m) => {
                ApiError::not_found(Some("key"), format!("no row with {key_field} = {key}: {m}"))
            }
            e => ApiError::lib(Some("key"), e),
        })?;
        let Some(&row) = bits.to_vec().first() else {
            return Err(ApiError::not_found(
                Some("key"),
                format!("no row with {key_field} = {key}"),
            ));
        };
        let mut out = Vec::new();
        ds2.engine
            .source()
            .write_rows_json(&[row], sel.fields.as_deref(), &mut out)
            .map_err(|e| ApiError::lib(None, e))?;
        out.push(b'\n');
        Ok(out)
    })
    .await??;
    Ok(json_response(body, &etag))
}

/// Most ranges one `Range` header may ask for; past it the header is
/// ignored and the whole file is the answer, as nginx's `max_ranges` does
/// (the readers of this crate and the browser's ask for at most 200).
const MAX_RANGES: usize = 256;

/// Parse a `Range` header against a file of `total` bytes (RFC 9110 section
/// 14): `None` to serve the whole file (no valid `bytes` ranges, or more
/// than [`MAX_RANGES`]), `Some(Err)` when no range is satisfiable, else the
/// inclusive byte ranges to send. Unsatisfiable ranges of a set are left
/// out; ranges that overlap or touch are merged (sorted, so a request never
/// gets more bytes than the file holds), else they keep the request's order.
fn byte_ranges(h: &str, total: u64) -> Option<Result<Vec<(u64, u64)>, ()>> {
    let spec = h.trim().strip_prefix("bytes=")?;
    let mut out = Vec::new();
    let mut asked = 0;
    for one in spec.split(',') {
        let one = one.trim();
        if one.is_empty() {
            continue;
        }
        asked += 1;
        if asked > MAX_RANGES {
            return None;
        }
        if let Ok(r) = byte_range(one, total)? {
            out.push(r);
        }
    }
    if asked == 0 {
        return None;
    }
    if out.is_empty() {
        return Some(Err(()));
    }
    let mut sorted = out.clone();
    sorted.sort_unstable();
    if sorted
        .windows(2)
        .any(|w| w[1].0 <= w[0].1.saturating_add(1))
    {
        out.clear();
        for (a, b) in sorted {
            match out.last_mut() {
                Some((_, e)) if a <= e.saturating_add(1) => *e = (*e).max(b),
                _ => out.push((a, b)),
            }
        }
    }
    Some(Ok(out))
}

/// One range of a `Range` header (`first-last`, `first-` or `-suffix`):
/// `None` when it does not parse, `Some(Err)` when it is unsatisfiable,
/// else the inclusive byte range within the file.
fn byte_range(spec: &str, total: u64) -> Option<Result<(u64, u64), ()>> {
    // A position is digits; past u64 it is as good as u64::MAX (a last
    // byte past the end is the end, a first one past it unsatisfiable).
    fn pos(s: &str) -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(s.parse().unwrap_or(u64::MAX))
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let r = if a.is_empty() {
        let n = pos(b)?;
        if n == 0 || total == 0 {
            Err(())
        } else {
            Ok((total - n.min(total), total - 1))
        }
    } else {
        let start = pos(a)?;
        let end = if b.is_empty() { u64::MAX } else { pos(b)? };
        if end < start {
            return None;
        }
        if start >= total {
            Err(())
        } else {
            Ok((start, end.min(total - 1)))
        }
    };
    Some(r)
}

fn read_at(f: &std::fs::File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_at(f, buf, at)
    }
    #[cfg(windows)]
    {
        std::os::windows::fs::FileExt::seek_read(f, buf, at)
    }
}

/// The bytes `start..end` of `file`, read in pieces as the client takes them.
fn file_body(file: Arc<std::fs::File>, start: u64, end: u64) -> Body {
    // Fused: a layer may poll a body again after its end (the compression
    // of a published manifest does), which an `unfold` stream panics on.
    Body::from_stream(futures_util::StreamExt::fuse(file_body_stream(
        file, start, end,
    )))
}

/// [`file_body`]'s pieces.
fn file_body_stream(
    file: Arc<std::fs::File>,
    start: u64,
    end: u64,
) -> impl futures_util::Stream<Item = std::io::Result<axum::body::Bytes>> + Send + 'static {
    const PIECE: u64 = 256 * 1024;
    futures_util::stream::unfold(start, move |at| {
        let file = file.clone();
        async move {
            if at >= end {
                return None;
            }
            let n = (end - at).min(PIECE) as usize;
            let r = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0; n];
                let mut got = 0;
                while got < n {
                    match read_at(&file, &mut buf[got..], at + got as u64)? {
                        0 => {
                            return Err(std::io::Error::new(
                                std::io::ErrorKind::UnexpectedEof,
                                "snapshot file shorter than when opened",
                            ));
                        }
                        k => got += k,
                    }
                }
                Ok(axum::body::Bytes::from(buf))
            })
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            // After an error the stream ends (the body is cut short).
            let next = if r.is_ok() { at + n as u64 } else { end };
            Some((r, next))
        }
    })
}

/// A `multipart/byteranges` body (RFC 9110 section 14.6) of `ranges`
/// (inclusive) of `file`, and its length: each part's delimiter and
/// headers, then its bytes, read as the client takes them.
fn multipart_body(
    file: Arc<std::fs::File>,
    ranges: &[(u64, u64)],
    total: u64,
    boundary: &str,
) -> (Body, u64) {
    use futures_util::StreamExt;
    let mut len = 0u64;
    let mut parts = Vec::with_capacity(ranges.len() * 2 + 1);
    for (i, &(a, b)) in ranges.iter().enumerate() {
        let head = format!(
            "{}--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes {a}-{b}/{total}\r\n\r\n",
            if i == 0 { "" } else { "\r\n" }
        );
        len += head.len() as u64 + (b + 1 - a);
        parts.push((Some(head), a, b + 1));
    }
    let tail = format!("\r\n--{boundary}--\r\n");
    len += tail.len() as u64;
    parts.push((Some(tail), 0, 0));
    let s = futures_util::stream::iter(parts).flat_map(move |(head, a, e)| {
        let head = futures_util::stream::iter(
            head.map(|h| Ok::<_, std::io::Error>(axum::body::Bytes::from(h))),
        );
        let body =
            futures_util::stream::unfold((a < e).then(|| file.clone()), move |f| async move {
                let f = f?;
                Some((file_body_stream(f, a, e), None))
            })
            .flatten();
        head.chain(body)
    });
    (Body::from_stream(s), len)
}

/// A boundary for a multipart answer: 32 hex digits, random per answer
/// (parts are cut by their `Content-Range`, but RFC 2046 wants a boundary
/// that the data does not hold).
fn boundary() -> String {
    use std::hash::{BuildHasher, Hasher};
    let a = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(a);
    format!("{a:016x}{:016x}", h.finish())
}

/// `GET /files/NAME.colsnap`: the bytes of the snapshot version being
/// served, with `Range` requests (several ranges answered
/// `multipart/byteranges`), `If-Range` and `If-None-Match`.
async fn file(
    State(st): State<Arc<AppState>>,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path(file) = p.map_err(path_err)?;
    let ds = file
        .strip_suffix(".colsnap")
        .and_then(|n| st.dataset(n).ok())
        .ok_or_else(|| {
            ApiError::not_found(
                Some("file"),
                format!("no file `{file}` (files are NAME.colsnap of the served snapshots)"),
            )
        })?;
    let etag = format!("\"{}\"", ds.file_identity);
    if not_modified(&headers, &etag) {
        return Ok(not_modified_response(&etag));
    }
    let mut r = ranged_file(ds.file.clone(), ds.file_len, &etag, &headers);
    cache_headers(r.headers_mut(), &etag);
    Ok(r)
}

/// Largest pointer (`NAME.latest.json`) served: it is read whole to tag it.
const MAX_POINTER: u64 = 64 << 10;

/// A published file under `--publish-dir` (SPEC.md 15.1): `objects/HEX`,
/// `manifests/HEX.json` (HEX: 64 lowercase hex digits, their SHA-256;
/// immutable, tagged by it) or `NAME.latest.json` (the pointer; tagged by
/// the SHA-256 of its bytes, revalidated). Any other name, a directory, a
/// symbolic link or anything but a plain file is a `404`. Ranges as for
/// `/files/`.
async fn published(
    State(st): State<Arc<AppState>>,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path(rest) = p.map_err(path_err)?;
    let not_found = || {
        ApiError::not_found(
            Some("file"),
            format!(
                "no published file `{rest}` (objects/HEX, manifests/HEX.json or NAME.latest.json)"
            ),
        )
    };
    let Some(dir) = st.config.publish_dir.clone() else {
        return Err(ApiError::not_found(
            None,
            "nothing is published here (the server runs without --publish-dir)",
        ));
    };
    let hex = |h: &str| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let named: Option<(bool, Option<String>)> = if let Some(h) = rest.strip_prefix("objects/") {
        hex(h).then(|| (true, Some(h.to_string())))
    } else if let Some(h) = rest
        .strip_prefix("manifests/")
        .and_then(|m| m.strip_suffix(".json"))
    {
        hex(h).then(|| (true, Some(h.to_string())))
    } else if let Some(name) = rest.strip_suffix(".latest.json") {
        (!name.is_empty()
            && !name.starts_with('.')
            && !name.contains(['/', '\\'])
            && !name.chars().any(char::is_control))
        .then_some((false, None))
    } else {
        None
    };
    let Some((immutable, tag)) = named else {
        return Err(not_found());
    };
    let path = dir.join(&rest);
    let opened =
        tokio::task::spawn_blocking(move || -> Option<(std::fs::File, u64, Option<String>)> {
            // A plain file, not a link to one (which could lead anywhere).
            let before = std::fs::symlink_metadata(&path).ok()?;
            if !before.file_type().is_file() {
                return None;
            }
            let mut f = std::fs::File::open(&path).ok()?;
            let meta = f.metadata().ok()?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                if (meta.dev(), meta.ino()) != (before.dev(), before.ino()) {
                    return None;
                }
            }
            let tag = match tag {
                Some(t) => t,
                None => {
                    if meta.len() > MAX_POINTER {
                        return None;
                    }
                    let mut bytes = Vec::new();
                    std::io::Read::read_to_end(&mut f, &mut bytes).ok()?;
                    colsnap::publish::sha256_hex(&bytes)[..16].to_string()
                }
            };
            Some((f, meta.len(), Some(tag)))
        })
        .await?;
    let Some((f, total, Some(tag))) = opened else {
        return Err(not_found());
    };
    let etag = format!("\"{tag}\"");
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else {
        REVALIDATE
    };
    let mut r = if not_modified(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = ranged_file(Arc::new(f), total, &etag, &headers);
        // Manifests and pointers are JSON (whole or one range of it).
        if rest.ends_with(".json")
            && r.status().is_success()
            && r.headers()[header::CONTENT_TYPE] == "application/octet-stream"
        {
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        r
    };
    let ok = r.status().is_success() || r.status() == StatusCode::NOT_MODIFIED;
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if ok { cache } else { "no-store" }),
    );
    Ok(r)
}

/// The bytes of `file` (`total` long, tagged `etag`) as asked by the
/// request's `Range` and `If-Range`: whole, one range, several
/// (`multipart/byteranges`) or `416`; `application/octet-stream` unless the
/// caller sets another type. Validators and cache headers are the caller's.
fn ranged_file(
    ds_file: Arc<std::fs::File>,
    total: u64,
    etag: &str,
    headers: &HeaderMap,
) -> Response {
    // `If-Range` with another validator: the whole file.
    let if_range_ok = headers
        .get(header::IF_RANGE)
        .is_none_or(|v| v.to_str().ok() == Some(etag));
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(h) if if_range_ok => byte_ranges(h, total),
        _ => None,
    };
    let mut r = match range {
        Some(Ok(v)) if v.len() > 1 => {
            let b = boundary();
            let (body, len) = multipart_body(ds_file.clone(), &v, total, &b);
            let mut r = Response::new(body);
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            let h = r.headers_mut();
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            if let Ok(v) = HeaderValue::from_str(&format!("multipart/byteranges; boundary={b}")) {
                h.insert(header::CONTENT_TYPE, v);
            }
            r
        }
        Some(Err(())) => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{total}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            r
        }
        Some(Ok(v)) => {
            let (a, b) = v[0];
            let mut r = Response::new(file_body(ds_file.clone(), a, b + 1));
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            let h = r.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{b}/{total}")) {
                h.insert(header::CONTENT_RANGE, v);
            }
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(b + 1 - a));
            r
        }
        None => {
            let mut r = Response::new(file_body(ds_file.clone(), 0, total));
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(total));
            r
        }
    };
    let h = r.headers_mut();
    // The file's type, unless the answer is multipart.
    h.entry(header::CONTENT_TYPE)
        .or_insert(HeaderValue::from_static("application/octet-stream"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_sets() {
        let r = |h| byte_ranges(h, 100);
        assert_eq!(r("bytes=0-9"), Some(Ok(vec![(0, 9)])));
        assert_eq!(r("bytes=50-59, 0-9"), Some(Ok(vec![(50, 59), (0, 9)])));
        // Unsatisfiable ranges of a set are left out.
        assert_eq!(r("bytes=0-1,200-300,-0"), Some(Ok(vec![(0, 1)])));
        assert_eq!(r("bytes=200-300,-0"), Some(Err(())));
        // Overlapping or touching ranges: merged, sorted.
        assert_eq!(
            r("bytes=50-60,0-9,10-19"),
            Some(Ok(vec![(0, 19), (50, 60)]))
        );
        assert_eq!(r("bytes=0-,0-,0-"), Some(Ok(vec![(0, 99)])));
        assert_eq!(r("bytes=-10,95-"), Some(Ok(vec![(90, 99)])));
        // Empty list elements are allowed (RFC 9110 section 5.6.1).
        assert_eq!(r("bytes=0-1,,4-5,"), Some(Ok(vec![(0, 1), (4, 5)])));
        // Not parsed: the whole file.
        assert_eq!(r("bytes=0-1,x-2"), None);
        assert_eq!(r("bytes=0-1,5-1"), None);
        assert_eq!(r("bytes="), None);
        assert_eq!(r("bytes=,"), None);
        let many = (0..MAX_RANGES)
            .map(|i| format!("{i}-{i}"))
            .collect::<Vec<_>>();
        assert_eq!(
            r(&format!("bytes={}", many[..90].join(","))).map(|v| v.map(|v| v.len())),
            Some(Ok(1))
        );
        let h = format!("bytes={}", many.join(","));
        assert_eq!(
            byte_ranges(&h, 1000).map(|v| v.map(|v| v.len())),
            Some(Ok(1))
        );
        assert_eq!(byte_ranges(&format!("{h},999-999"), 1000), None);
    }

    #[test]
    fn ranges() {
        let byte_range = |h: &str, total| byte_ranges(h, total).map(|r| r.map(|v| v[0]));
        assert_eq!(byte_range("bytes=0-9", 100), Some(Ok((0, 9))));
        assert_eq!(byte_range("bytes=90-", 100), Some(Ok((90, 99))));
        assert_eq!(byte_range("bytes=90-500", 100), Some(Ok((90, 99))));
        assert_eq!(byte_range("bytes=-10", 100), Some(Ok((90, 99))));
        assert_eq!(byte_range("bytes=-1000", 100), Some(Ok((0, 99))));
        assert_eq!(byte_range("bytes=100-", 100), Some(Err(())));
        assert_eq!(byte_range("bytes=-0", 100), Some(Err(())));
        assert_eq!(byte_range("bytes=0-0", 0), Some(Err(())));
        assert_eq!(byte_range("bytes=5-1", 100), None);
        assert_eq!(
            byte_ranges("bytes=0-1,5-6", 100),
            Some(Ok(vec![(0, 1), (5, 6)]))
        );
        assert_eq!(byte_range("items=0-1", 100), None);
        assert_eq!(byte_range("bytes=x-1", 100), None);
        assert_eq!(
            byte_range("bytes=18446744073709551615-", 100),
            Some(Err(()))
        );
        // Positions past u64: the end, or unsatisfiable.
        assert_eq!(
            byte_range("bytes=0-99999999999999999999", 100),
            Some(Ok((0, 99)))
        );
        assert_eq!(
            byte_range("bytes=-99999999999999999999", 100),
            Some(Ok((0, 99)))
        );
        assert_eq!(
            byte_range("bytes=99999999999999999999-", 100),
            Some(Err(()))
        );
        assert_eq!(byte_range("bytes=+1-2", 100), None);
    }

    #[test]
    fn cursors_round_trip() {
        let c = encode_cursor(12345, 7, 0xdead_beef);
        assert_eq!(decode_cursor(&c), Some((12345, 7, 0xdead_beef)));
        assert_eq!(decode_cursor("zz"), None);
        assert_eq!(decode_cursor(&"é".repeat(16)), None);
    }
}
