//! A snapshot file on an HTTP(S) server, read by byte range.
//!
//! [`HttpSource::open`] makes **one** request, a suffix range
//! (`Range: bytes=-N`): the answer's `Content-Range` gives the file's length,
//! its `ETag` the version, and its body the tail that holds the trailer and,
//! for typical files, the whole footer. There is no `HEAD`. Later reads ask
//! for exact ranges with `If-Match: ETAG` (or `If-Unmodified-Since` when the
//! server sends no strong `ETag`), so that a file replaced while it is read
//! is answered `412` and the read fails with [`Error::Changed`] instead of
//! mixing bytes of two versions. A `200` to a single-range request, a
//! `416`, a changed `ETag`, or a `Content-Range` with another total length
//! is the same error. A `206` longer than the ranges asked (by its
//! `Content-Length` or as it arrives) is an error, the rest left unread.
//!
//! Ranges asked together go out in **one** request
//! (`Range: bytes=a-b,c-d,...`, at most 200 ranges a request), which a
//! server such as nginx answers `206` with a `multipart/byteranges` body;
//! each part is cut by the length its own `Content-Range` gives (never by
//! searching for the boundary) and checked against the file's length. A
//! server that answers such a request with one range gets the missing
//! ranges asked one by one; one that answers `200` with the whole file (the
//! version opened: same `ETag`, same length) is served from that body when
//! it holds at most 4 MiB or 4 times the bytes asked, else the body is
//! dropped unread and the ranges asked one by one; both are asked range by
//! range from then on ([`HttpOptions::multi_range`]).
//! Single ranges are merged when they lie at most
//! [`HttpOptions::merge_gap`] apart and fetched in parallel (at most
//! [`HttpOptions::parallel`] at a time). Connection errors, timeouts, `5xx`
//! and `429` answers are retried [`HttpOptions::retries`] times with an
//! exponential backoff, or after the wait a `Retry-After` asks when that is
//! longer (up to [`HttpOptions::retry_after_max`]); the last failure is an [`Error::Remote`] that names
//! the URL and the status.

use super::{ByteSource, NetCounters, NetStats, coalesce_ranges, parallel_map, split_coalesced};
use crate::error::{Error, Result};
use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::blocking::Client;
use reqwest::header::{self, HeaderMap};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::time::Duration;

/// Ranges closer than this are asked as one part of a multi-range request
/// (a part costs about 100 bytes of multipart headers).
const MULTI_GAP: u64 = 512;

/// The most ranges in one request (the `Range` header stays well under
/// the 8 KiB a server such as nginx accepts for one header line).
const MAX_PARTS: usize = 200;
/// A whole file answered to a multi-range request is kept up to this size,
/// or 4 times the bytes asked (else dropped unread, and the ranges asked
/// one by one).
const WHOLE_MIN: u64 = 4 << 20;

/// The body of `r`, at most `max + 1` bytes (one more tells it is longer),
/// read by the time `deadline` passes: the client's timeout bounds each
/// read, not their sum, so a server sending a byte now and then would
/// otherwise hold the request for ever.
fn read_within(
    mut r: reqwest::blocking::Response,
    max: u64,
    deadline: std::time::Instant,
) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut piece = vec![0u8; 64 << 10];
    loop {
        let room = (max.saturating_add(1) - buf.len() as u64).min(piece.len() as u64) as usize;
        if room == 0 {
            return Ok(buf);
        }
        let n = match std::io::Read::read(&mut r, &mut piece[..room]) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => r?,
        };
        if n == 0 {
            return Ok(buf);
        }
        buf.extend_from_slice(&piece[..n]);
        if std::time::Instant::now() > deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the body was not whole within the request's time ({} bytes came)",
                    buf.len()
                ),
            ));
        }
    }
}

/// How an [`HttpSource`] talks to its server.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// Bytes asked for by the one request of [`HttpSource::open`] (the
    /// file's tail). Default 64 KiB, the reader's `tail_bytes`.
    pub tail_bytes: u64,
    /// Ranges at most this far apart are fetched as one. Default 64 KiB.
    pub merge_gap: u64,
    /// Requests in flight at once for one `read_ranges`. Default 8.
    pub parallel: usize,
    /// Retries of a request after a connection error, a timeout, a `5xx`
    /// or a `429`. Default 3.
    pub retries: u32,
    /// Wait before the first retry, doubled for each next one. Default 100 ms.
    pub backoff: Duration,
    /// Time allowed to connect. Default 10 s.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request (answer and body). Default 60 s.
    pub timeout: Duration,
    /// Ask for several ranges in one request (`Range: bytes=a-b,c-d`,
    /// answered `multipart/byteranges`), so that one read costs one round
    /// trip. A server that answers with one range or the whole file is
    /// asked range by range from then on. Default true.
    pub multi_range: bool,
    /// Longest wait a `Retry-After` (on a `429` or a `5xx`) is honoured
    /// for: a retry waits what the server asks when that is longer than
    /// the backoff; a server asking for more than this is an error at once,
    /// naming the wait. Default 30 s.
    pub retry_after_max: Duration,
    /// Most bytes of the whole file taken when the server ignores ranges
    /// (it answers the first request, for the tail, with `200` and every
    /// byte): past it the open is an error without reading the rest, so a
    /// server cannot fill the memory. Default 1 GiB.
    pub whole_file_max: u64,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            tail_bytes: 64 << 10,
            merge_gap: 64 << 10,
            parallel: 8,
            retries: 3,
            backoff: Duration::from_millis(100),
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            multi_range: true,
            retry_after_max: Duration::from_secs(30),
            whole_file_max: 1 << 30,
        }
    }
}

/// The wait a `Retry-After` header asks for: delta-seconds, or an HTTP
/// date (`now` when it is past); `None` without one or when unreadable.
fn retry_after(h: &HeaderMap, now: std::time::SystemTime) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// An HTTP client with the retry, timeout and counting rules of
/// [`HttpOptions`]; shared by [`HttpSource`] and the manifest reader.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: Client,
    opts: HttpOptions,
    counters: Arc<NetCounters>,
}

impl HttpClient {
    /// A client with these options and fresh counters.
    pub fn new(opts: HttpOptions) -> Result<HttpClient> {
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::custom(
                |a| match redirect_refusal(&a.previous()[0], a.url(), a.previous().len()) {
                    Some(why) => a.error(why),
                    None => a.follow(),
                },
            ))
            .connect_timeout(opts.connect_timeout)
            .timeout(opts.timeout)
            .user_agent(concat!("colsnap/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Remote {
                url: String::new(),
                status: None,
                detail: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(HttpClient {
            client,
            opts,
            counters: Arc::new(NetCounters::default()),
        })
    }

    /// The counters of every request this client (and its clones) made.
    pub fn counters(&self) -> &Arc<NetCounters> {
        &self.counters
    }

    /// The options.
    pub fn options(&self) -> &HttpOptions {
        &self.opts
    }

    /// `GET url` with `headers`, retried on connection errors, timeouts,
    /// `5xx` and `429`; the body read whole. Any other answer, success or
    /// not, is returned for the caller to judge.
    pub fn get(&self, url: &str, headers: &HeaderMap) -> Result<(StatusCode, HeaderMap, Bytes)> {
        self.get_at_most(url, headers, u64::MAX, u64::MAX)
    }

    /// [`HttpClient::get`] of an answer of at most `partial` bytes when it
    /// is a `206`, `whole` bytes when another success: a longer one (by
    /// its `Content-Length`, or as its body arrives) is an error without
    /// reading the rest, so that a broken or hostile server cannot fill
    /// the memory with an answer to a small range or object. A failure
    /// status with a longer body comes with an empty one (its status is
    /// what the caller judges).
    pub fn get_at_most(
        &self,
        url: &str,
        headers: &HeaderMap,
        partial: u64,
        whole: u64,
    ) -> Result<(StatusCode, HeaderMap, Bytes)> {
        let (status, h, body) = self.get_limited(url, headers, partial, whole)?;
        match body {
            Ok(b) => Ok((status, h, b)),
            Err(n) => Err(Error::Remote {
                url: url.into(),
                status: Some(status.as_u16()),
                detail: format!(
                    "an answer of {n} bytes or more where at most {} can come",
                    if status == StatusCode::PARTIAL_CONTENT {
                        partial
                    } else {
                        whole
                    }
                ),
            }),
        }
    }

    /// [`HttpClient::get_at_most`], where a success longer than its limit
    /// comes as `Err(bytes seen)` with the rest unread (the caller may do
    /// without it), not as an error.
    #[allow(clippy::type_complexity)]
    fn get_limited(
        &self,
        url: &str,
        headers: &HeaderMap,
        partial: u64,
        whole: u64,
    ) -> Result<(StatusCode, HeaderMap, std::result::Result<Bytes, u64>)> {
        let mut attempt = 0u32;
        loop {
            self.counters.add_request();
            if attempt > 0 {
                self.counters.add_retry();
            }
            let net = |e: reqwest::Error| {
                (
                    e.is_connect() || e.is_timeout() || e.is_request() || e.is_body(),
                    Error::Remote {
                        url: url.into(),
                        status: e.status().map(|s| s.as_u16()),
                        // The error names the URL already given.
                        detail: format!(
                            "{} (after {} attempts)",
                            error_chain(&e.without_url()),
                            attempt + 1
                        ),
                    },
                )
            };
            // The answer, its body or `Err(n)` past `max`; or (retry?, error).
            type Body = std::result::Result<Bytes, u64>;
            let started = std::time::Instant::now();
            let outcome: std::result::Result<(StatusCode, HeaderMap, Body), (bool, Error)> =
                match self.client.get(url).headers(headers.clone()).send() {
                    Err(e) => Err(net(e)),
                    Ok(r) => {
                        let (status, h) = (r.status(), r.headers().clone());
                        let max = if status == StatusCode::PARTIAL_CONTENT {
                            partial
                        } else if status.is_success() {
                            whole
                        } else {
                            // A failure's body is a message: kept when short.
                            64 << 10
                        };
                        if let Some(n) = r.content_length().filter(|&n| n > max) {
                            Ok((status, h, Err(n)))
                        } else {
                            match read_within(r, max, started + self.opts.timeout) {
                                Ok(buf) if buf.len() as u64 > max => {
                                    Ok((status, h, Err(buf.len() as u64)))
                                }
                                Ok(buf) => Ok((status, h, Ok(Bytes::from(buf)))),
                                Err(e) => Err((
                                    true,
                                    Error::Remote {
                                        url: url.into(),
                                        status: Some(status.as_u16()),
                                        detail: format!(
                                            "reading the body: {e} (after {} attempts)",
                                            attempt + 1
                                        ),
                                    },
                                )),
                            }
                        }
                    }
                };
            let mut wait = self.opts.backoff.saturating_mul(1 << attempt.min(16));
            let (retry, err) = match outcome {
                Ok((status, h, Err(n))) if status.is_success() => {
                    return Ok((status, h, Err(n)));
                }
                Ok((status, h, body)) => {
                    // A failure with a long body: its status is the answer.
                    let body = body.unwrap_or_default();
                    self.counters.add_bytes(body.len() as u64);
                    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                        let asked = retry_after(&h, std::time::SystemTime::now());
                        let err = |why: String| Error::Remote {
                            url: url.into(),
                            status: Some(status.as_u16()),
                            detail: format!(
                                "{}{why} after {} attempts",
                                status.canonical_reason().unwrap_or("error"),
                                attempt + 1
                            ),
                        };
                        match asked {
                            Some(a) if a > self.opts.retry_after_max => {
                                return Err(err(format!(
                                    " (the server asks to retry after {} s, more than the {} s waited at most)",
                                    a.as_secs(),
                                    self.opts.retry_after_max.as_secs()
                                )));
                            }
                            Some(a) => wait = wait.max(a),
                            None => {}
                        }
                        (true, err(String::new()))
                    } else {
                        return Ok((status, h, Ok(body)));
                    }
                }
                Err(e) => e,
            };
            if !retry || attempt >= self.opts.retries {
                return Err(err);
            }
            std::thread::sleep(wait);
            attempt += 1;
        }
    }

    /// `GET url` expecting `200 OK`: the whole body (a published object, a
    /// manifest).
    pub fn get_object(&self, url: &str) -> Result<Bytes> {
        self.get_object_at_most(url, u64::MAX)
    }

    /// [`HttpClient::get_object`] of at most `max` bytes (a longer answer
    /// is an error, the rest unread).
    pub fn get_object_at_most(&self, url: &str, max: u64) -> Result<Bytes> {
        let (status, _, body) = self.get_at_most(url, &HeaderMap::new(), max, max)?;
        if status != StatusCode::OK {
            return Err(status_error(url, status));
        }
        Ok(body)
    }
}

/// The most redirects one request follows.
pub const MAX_REDIRECTS: usize = 10;

/// Why a request for `first` (the URL asked for) must not follow a
/// redirect to `to` after `hops` redirects, or `None` to follow it.
/// Redirects are followed to any host (a CDN, a signed object store URL),
/// but never from `https` to plain `http`: a reader that asked for TLS
/// does not read a snapshot, whose checksums are no signature, in the
/// clear; nor to a scheme other than `http(s)`, nor past
/// [`MAX_REDIRECTS`].
pub fn redirect_refusal(first: &reqwest::Url, to: &reqwest::Url, hops: usize) -> Option<String> {
    if hops > MAX_REDIRECTS {
        return Some(format!("more than {MAX_REDIRECTS} redirects"));
    }
    match (first.scheme(), to.scheme()) {
        ("https", "https") | ("http", "http" | "https") => None,
        ("https", "http") => Some(format!(
            "redirected from https to plain http ({to}); refused: ask for the http URL to read it in the clear"
        )),
        (_, other) => Some(format!("redirected to a `{other}` URL ({to})")),
    }
}

/// An error and its causes on one line (reqwest's own message is terse).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn status_error(url: &str, status: StatusCode) -> Error {
    Error::Remote {
        url: url.into(),
        status: Some(status.as_u16()),
        detail: status
            .canonical_reason()
            .unwrap_or("unexpected status")
            .into(),
    }
}

/// One snapshot file on an HTTP(S) server (see the module documentation).
#[derive(Debug)]
pub struct HttpSource {
    url: String,
    http: HttpClient,
    len: u64,
    /// A strong `ETag`, sent as `If-Match`.
    etag: Option<String>,
    /// `Last-Modified`, sent as `If-Unmodified-Since` when there is no
    /// strong `ETag`.
    last_modified: Option<String>,
    /// The bytes the open fetched: `tail_start..len`.
    tail: Bytes,
    tail_start: u64,
    /// Whether to ask for several ranges in one request (cleared when the
    /// server answers such a request with one range or the whole file).
    multi: AtomicBool,
}

impl HttpSource {
    /// Open `url` with default options: one suffix-range request.
    pub fn open(url: &str) -> Result<HttpSource> {
        HttpSource::open_with(url, HttpClient::new(HttpOptions::default())?)
    }

    /// Open `url` through `http` (its options and counters): one request
    /// for the last [`HttpOptions::tail_bytes`] bytes.
    pub fn open_with(url: &str, http: HttpClient) -> Result<HttpSource> {
        let mut h = HeaderMap::new();
        let n = http.opts.tail_bytes.max(32);
        h.insert(header::RANGE, value(&format!("bytes=-{n}")));
        // The tail, or (a server without ranges) the whole file.
        let (status, headers, body) = http.get_at_most(url, &h, n, http.opts.whole_file_max)?;
        let (tail_start, len) = match status {
            StatusCode::PARTIAL_CONTENT => {
                let (r, total) = content_range(&headers).ok_or_else(|| Error::Remote {
                    url: url.into(),
                    status: Some(206),
                    detail: "a 206 answer without a valid Content-Range".into(),
                })?;
                if r.end - r.start != body.len() as u64 || r.end != total {
                    return Err(Error::Remote {
                        url: url.into(),
                        status: Some(206),
                        detail: format!(
                            "Content-Range {}-{}/{total} does not describe the {} bytes sent",
                            r.start,
                            r.end.saturating_sub(1),
                            body.len()
                        ),
                    });
                }
                (r.start, total)
            }
            // The server ignores ranges (or the file is smaller than asked
            // and it sent it all): the body is the whole file.
            StatusCode::OK => (0, body.len() as u64),
            // A suffix range of an empty file (`Content-Range: bytes */0`,
            // or none); of a longer one it is the server's error.
            StatusCode::RANGE_NOT_SATISFIABLE => {
                let total = headers
                    .get(header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().strip_prefix("bytes */"))
                    .and_then(|n| n.trim().parse::<u64>().ok());
                if let Some(t @ 1..) = total {
                    return Err(Error::Remote {
                        url: url.into(),
                        status: Some(416),
                        detail: format!(
                            "the server refused the last {n} bytes of a file of {t} bytes"
                        ),
                    });
                }
                (0, 0)
            }
            s => return Err(status_error(url, s)),
        };
        let etag = headers
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .filter(|e| !e.starts_with("W/"))
            .map(str::to_owned);
        let last_modified = headers
            .get(header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let multi = http.opts.multi_range;
        Ok(HttpSource {
            url: url.into(),
            http,
            len,
            etag,
            last_modified,
            tail: if len == 0 { Bytes::new() } else { body },
            tail_start,
            multi: AtomicBool::new(multi),
        })
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The requests and bytes of this source (and of every source sharing
    /// its client).
    pub fn stats(&self) -> NetStats {
        self.http.counters.get()
    }

    /// The shared counters.
    pub fn counters(&self) -> &Arc<NetCounters> {
        &self.http.counters
    }

    /// Fetch exactly `r` (not empty, inside the file) with the version
    /// pinned.
    fn fetch(&self, r: &Range<u64>) -> Result<Bytes> {
        let mut h = HeaderMap::new();
        h.insert(
            header::RANGE,
            value(&format!("bytes={}-{}", r.start, r.end - 1)),
        );
        if let Some(e) = &self.etag {
            h.insert(header::IF_MATCH, value(e));
        } else if let Some(m) = &self.last_modified {
            h.insert(header::IF_UNMODIFIED_SINCE, value(m));
        }
        // Exactly the range, or a 200 (the whole file) that is an error
        // below.
        let (status, headers, body) =
            self.http
                .get_at_most(&self.url, &h, r.end - r.start, self.len)?;
        let changed = |detail: String| Error::Changed {
            url: self.url.clone(),
            detail,
        };
        match status {
            StatusCode::PARTIAL_CONTENT => {}
            StatusCode::OK => {
                return Err(changed(
                    "a range request was answered 200 with the whole file".into(),
                ));
            }
            StatusCode::PRECONDITION_FAILED => {
                return Err(changed(format!(
                    "HTTP 412: no longer {}",
                    self.etag
                        .as_deref()
                        .or(self.last_modified.as_deref())
                        .unwrap_or("the same")
                )));
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                return Err(changed(format!(
                    "HTTP 416 for bytes {}..{} of a file of {} bytes",
                    r.start, r.end, self.len
                )));
            }
            s => return Err(status_error(&self.url, s)),
        }
        if let (Some(want), Some(got)) = (
            &self.etag,
            headers.get(header::ETAG).and_then(|v| v.to_str().ok()),
        ) && want != got
        {
            return Err(changed(format!("ETag {want} is now {got}")));
        }
        match content_range(&headers) {
            Some((got, total)) if total != self.len => Err(changed(format!(
                "length {} is now {total} (bytes {}..{})",
                self.len, got.start, got.end
            ))),
            Some((got, _)) if got == *r && body.len() as u64 == r.end - r.start => Ok(body),
            _ => Err(Error::Remote {
                url: self.url.clone(),
                status: Some(206),
                detail: format!(
                    "asked for bytes {}..{}, got {} bytes ({:?})",
                    r.start,
                    r.end,
                    body.len(),
                    headers.get(header::CONTENT_RANGE)
                ),
            }),
        }
    }

    /// The pin headers: `If-Match` or `If-Unmodified-Since`.
    fn pinned(&self, range: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, value(range));
        if let Some(e) = &self.etag {
            h.insert(header::IF_MATCH, value(e));
        } else if let Some(m) = &self.last_modified {
            h.insert(header::IF_UNMODIFIED_SINCE, value(m));
        }
        h
    }

    fn changed(&self, detail: String) -> Error {
        Error::Changed {
            url: self.url.clone(),
            detail,
        }
    }

    /// The bytes of each of `need` (not empty, inside the file, outside
    /// the tail): one multi-range request (per [`MAX_PARTS`] ranges) when
    /// the server takes them, else merged single ranges in parallel.
    fn fetch_all(&self, need: &[Range<u64>]) -> Result<Vec<Bytes>> {
        if need.is_empty() {
            return Ok(Vec::new());
        }
        let opts = &self.http.opts;
        if self.multi.load(AtomicOrdering::Relaxed) {
            let merged = coalesce_ranges(need, MULTI_GAP.min(opts.merge_gap));
            if merged.len() > 1 {
                let batches: Vec<&[Range<u64>]> = merged.chunks(MAX_PARTS).collect();
                let parts: Vec<(Range<u64>, Bytes)> =
                    parallel_map(&batches, opts.parallel, |b| self.fetch_multi(b))?
                        .into_iter()
                        .flatten()
                        .collect();
                // Each merged range from the part that holds it; what the
                // server left out is asked for separately.
                let find = |r: &Range<u64>| {
                    parts
                        .iter()
                        .find(|(p, _)| p.start <= r.start && r.end <= p.end)
                        .map(|(p, b)| {
                            b.slice((r.start - p.start) as usize..(r.end - p.start) as usize)
                        })
                };
                let mut got: Vec<Option<Bytes>> = merged.iter().map(find).collect();
                let missing: Vec<Range<u64>> = merged
                    .iter()
                    .zip(&got)
                    .filter(|(_, g)| g.is_none())
                    .map(|(r, _)| r.clone())
                    .collect();
                let mut more = self.fetch_single(&missing)?.into_iter();
                for g in got.iter_mut().filter(|g| g.is_none()) {
                    *g = more.next();
                }
                let got: Vec<Bytes> = got.into_iter().map(Option::unwrap_or_default).collect();
                return split_coalesced(need, &merged, &got);
            }
        }
        self.fetch_single(need)
    }

    /// `need` merged (gap [`HttpOptions::merge_gap`]) and fetched one range
    /// per request, in parallel.
    fn fetch_single(&self, need: &[Range<u64>]) -> Result<Vec<Bytes>> {
        if need.is_empty() {
            return Ok(Vec::new());
        }
        let merged = coalesce_ranges(need, self.http.opts.merge_gap);
        let got = parallel_map(&merged, self.http.opts.parallel, |r| self.fetch(r))?;
        split_coalesced(need, &merged, &got)
    }

    /// One request for all of `ranges` (sorted, apart): the parts the
    /// server sent, each with the range it holds. A server that answers
    /// with one range or the whole file is no longer asked for several.
    fn fetch_multi(&self, ranges: &[Range<u64>]) -> Result<Vec<(Range<u64>, Bytes)>> {
        if let [r] = ranges {
            return Ok(vec![(r.clone(), self.fetch(r)?)]);
        }
        let spec: Vec<String> = ranges
            .iter()
            .map(|r| format!("{}-{}", r.start, r.end - 1))
            .collect();
        let h = self.pinned(&format!("bytes={}", spec.join(",")));
        // The whole file (a 200), or parts within the ranges' span with
        // their headers.
        let span = ranges.last().map_or(0, |r| r.end) - ranges.first().map_or(0, |r| r.start);
        let parts = span.saturating_add((512 * ranges.len() as u64).saturating_add(4096));
        // A server without multi-range answers sends the whole file: kept
        // when it is small beside what was asked, else dropped unread (a
        // snapshot of gigabytes is not read whole for a few ranges).
        let asked: u64 = ranges.iter().map(|r| r.end - r.start).sum();
        let whole = self.len.min(WHOLE_MIN.max(asked.saturating_mul(4)));
        let (status, headers, body) = self.http.get_limited(&self.url, &h, parts, whole)?;
        self.check_status(status, ranges.first().cloned().unwrap_or_default())?;
        self.check_etag(&headers)?;
        let body = match body {
            Ok(b) => b,
            Err(_) if status == StatusCode::OK => {
                // Asked range by range from now on; the caller fetches
                // every range this answer did not give.
                self.multi.store(false, AtomicOrdering::Relaxed);
                return Ok(Vec::new());
            }
            Err(n) => {
                return Err(Error::Remote {
                    url: self.url.clone(),
                    status: Some(status.as_u16()),
                    detail: format!(
                        "an answer of {n} bytes or more where at most {parts} can come"
                    ),
                });
            }
        };
        if status == StatusCode::OK {
            // The whole file: usable when it is the version opened.
            self.multi.store(false, AtomicOrdering::Relaxed);
            if body.len() as u64 != self.len {
                return Err(self.changed(format!(
                    "length {} is now {} (a 200 answer)",
                    self.len,
                    body.len()
                )));
            }
            return Ok(vec![(0..self.len, body)]);
        }
        let ctype = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let parts = match multipart_boundary(ctype) {
            Some(boundary) => parse_byteranges(&body, &boundary).ok_or_else(|| Error::Remote {
                url: self.url.clone(),
                status: Some(206),
                detail: "a multipart/byteranges answer that does not parse".into(),
            })?,
            None => {
                // One range for several asked.
                self.multi.store(false, AtomicOrdering::Relaxed);
                match content_range(&headers) {
                    Some((r, total)) if r.end - r.start == body.len() as u64 => {
                        vec![(r, total, body)]
                    }
                    _ => {
                        return Err(Error::Remote {
                            url: self.url.clone(),
                            status: Some(206),
                            detail: format!(
                                "a 206 answer of {} bytes with neither multipart nor a valid Content-Range",
                                body.len()
                            ),
                        });
                    }
                }
            }
        };
        parts
            .into_iter()
            .map(|(r, total, b)| {
                if total != self.len {
                    return Err(self.changed(format!(
                        "length {} is now {total} (bytes {}..{})",
                        self.len, r.start, r.end
                    )));
                }
                Ok((r, b))
            })
            .collect()
    }

    /// 412, 416 and other statuses than 200 and 206 as errors.
    fn check_status(&self, status: StatusCode, r: Range<u64>) -> Result<()> {
        match status {
            StatusCode::PARTIAL_CONTENT | StatusCode::OK => Ok(()),
            StatusCode::PRECONDITION_FAILED => Err(self.changed(format!(
                "HTTP 412: no longer {}",
                self.etag
                    .as_deref()
                    .or(self.last_modified.as_deref())
                    .unwrap_or("the same")
            ))),
            StatusCode::RANGE_NOT_SATISFIABLE => Err(self.changed(format!(
                "HTTP 416 for bytes {}..{} of a file of {} bytes",
                r.start, r.end, self.len
            ))),
            s => Err(status_error(&self.url, s)),
        }
    }

    /// An answer whose `ETag` is not the one opened is a changed file.
    fn check_etag(&self, headers: &HeaderMap) -> Result<()> {
        if let (Some(want), Some(got)) = (
            &self.etag,
            headers.get(header::ETAG).and_then(|v| v.to_str().ok()),
        ) && want != got
        {
            return Err(self.changed(format!("ETag {want} is now {got}")));
        }
        Ok(())
    }
}

/// The `boundary` of a `multipart/byteranges` content type.
fn multipart_boundary(ctype: &str) -> Option<String> {
    let mut it = ctype.split(';');
    if !it
        .next()?
        .trim()
        .eq_ignore_ascii_case("multipart/byteranges")
    {
        return None;
    }
    it.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
    })
    .filter(|b| !b.is_empty())
}

/// The parts of a `multipart/byteranges` body (RFC 9110 section 14.6):
/// each part's range (from its `Content-Range`), the total length it
/// names, and its bytes. Each part's length is taken from its
/// `Content-Range`, never found by searching for the boundary (the bytes
/// may hold it). `None` when the body does not parse.
fn parse_byteranges(body: &Bytes, boundary: &str) -> Option<Vec<(Range<u64>, u64, Bytes)>> {
    let delim = format!("--{boundary}");
    let d = delim.as_bytes();
    let find = |from: usize| {
        body.get(from..)?
            .windows(d.len())
            .position(|w| w == d)
            .map(|i| from + i)
    };
    let mut at = find(0)?;
    let mut out = Vec::new();
    loop {
        at += d.len();
        if body.get(at..at + 2) == Some(b"--") {
            return Some(out);
        }
        // The rest of the delimiter line, then the part's headers.
        let line_end = |from: usize| {
            body.get(from..)?
                .windows(2)
                .position(|w| w == b"\r\n")
                .map(|i| from + i)
        };
        at = line_end(at)? + 2;
        let mut range = None;
        loop {
            let e = line_end(at)?;
            let line = std::str::from_utf8(&body[at..e]).ok()?;
            at = e + 2;
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.trim().eq_ignore_ascii_case("content-range")
            {
                range = parse_content_range(v);
            }
        }
        let (r, total) = range?;
        let n = (r.end - r.start) as usize;
        let data = body.get(at..at.checked_add(n)?)?;
        out.push((r, total, body.slice_ref(data)));
        at += n;
        // CRLF, then the next delimiter (nothing else in between).
        let next = find(at)?;
        if !body[at..next].iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        at = next;
    }
}

impl ByteSource for HttpSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_ranges(&self, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        // What the tail (fetched at open) holds costs nothing.
        super::read_with_tail(ranges, self.len, self.tail_start, &self.tail, |need| {
            self.fetch_all(need)
        })
    }

    fn version(&self) -> Option<String> {
        self.etag.clone().or_else(|| self.last_modified.clone())
    }

    fn is_remote(&self) -> bool {
        true
    }
}

fn value(s: &str) -> header::HeaderValue {
    header::HeaderValue::from_str(s).unwrap_or_else(|_| header::HeaderValue::from_static(""))
}

/// `Content-Range: bytes A-B/TOTAL` as (`A..B+1`, TOTAL).
fn content_range(h: &HeaderMap) -> Option<(Range<u64>, u64)> {
    let v = h.get(header::CONTENT_RANGE)?.to_str().ok()?;
    parse_content_range(v)
}

fn parse_content_range(v: &str) -> Option<(Range<u64>, u64)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (span, total) = rest.split_once('/')?;
    let (a, b) = span.split_once('-')?;
    let (a, b, total): (u64, u64, u64) = (
        a.trim().parse().ok()?,
        b.trim().parse().ok()?,
        total.trim().parse().ok()?,
    );
    (a <= b && b < total).then(|| (a..b + 1, total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn content_range_parses_and_refuses() {
        assert_eq!(parse_content_range("bytes 10-19/100"), Some((10..20, 100)));
        assert_eq!(parse_content_range("bytes 0-0/1"), Some((0..1, 1)));
        assert_eq!(parse_content_range("bytes 5-4/100"), None);
        assert_eq!(parse_content_range("bytes 0-99/*"), None);
        assert_eq!(parse_content_range("bytes 0-100/100"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }

    /// A tiny HTTP/1.1 server: `answer(request line, headers)` gives
    /// (status, extra headers, body) for each request; one connection per
    /// request (`Connection: close`).
    type Answer =
        dyn Fn(&str, &[(String, String)]) -> (u16, Vec<(String, String)>, Vec<u8>) + Send + Sync;

    fn serve(answer: Arc<Answer>) -> (String, Arc<Mutex<Vec<String>>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/f.colsnap", l.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let log2 = log.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut c) = conn else { continue };
                let mut r = BufReader::new(c.try_clone().unwrap());
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.trim().split_once(':') {
                        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                    }
                }
                let range = headers
                    .iter()
                    .find(|(k, _)| k == "range")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                log2.lock().unwrap().push(range);
                let (status, extra, body) = answer(line.trim(), &headers);
                let mut out = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                    body.len()
                );
                for (k, v) in extra {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                let _ = c.write_all(out.as_bytes());
                let _ = c.write_all(&body);
            }
        });
        (url, log)
    }

    /// Answer ranges of `data` like a static file server with ETag `tag`:
    /// one range as a plain 206, several as `multipart/byteranges`.
    fn ranged(data: &[u8], tag: &str, range: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let len = data.len() as u64;
        let spans: Vec<(u64, u64)> = range
            .strip_prefix("bytes=")
            .unwrap_or("")
            .split(',')
            .map(|r| {
                if let Some(n) = r.strip_prefix('-') {
                    (len.saturating_sub(n.parse().unwrap()), len - 1)
                } else {
                    let (a, b) = r.split_once('-').unwrap();
                    (a.parse().unwrap(), b.parse::<u64>().unwrap().min(len - 1))
                }
            })
            .collect();
        let etag = ("ETag".to_string(), tag.to_string());
        if let [(a, b)] = spans[..] {
            return (
                206,
                vec![
                    ("Content-Range".into(), format!("bytes {a}-{b}/{len}")),
                    etag,
                ],
                data[a as usize..=b as usize].to_vec(),
            );
        }
        let mut body = Vec::new();
        for (a, b) in spans {
            body.extend_from_slice(
                format!(
                    "\r\n--XyZ\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes {a}-{b}/{len}\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(&data[a as usize..=b as usize]);
        }
        body.extend_from_slice(b"\r\n--XyZ--\r\n");
        (
            206,
            vec![
                (
                    "Content-Type".into(),
                    "multipart/byteranges; boundary=XyZ".into(),
                ),
                etag,
            ],
            body,
        )
    }

    /// A server that answers every request with `status`, the one header
    /// `name: value` and no body.
    fn answering(status: u16, name: &str, value: &str) -> (String, Arc<Mutex<Vec<String>>>) {
        let header = (name.to_string(), value.to_string());
        serve(Arc::new(move |_, _| (status, vec![header.clone()], vec![])))
    }

    /// The error of opening `url` with [`quick`], as text.
    fn open_error(url: &str) -> String {
        HttpSource::open_with(url, quick()).unwrap_err().to_string()
    }

    fn quick() -> HttpClient {
        HttpClient::new(HttpOptions {
            tail_bytes: 100,
            backoff: Duration::from_millis(1),
            merge_gap: 10,
            ..HttpOptions::default()
        })
        .unwrap()
    }

    /// A body sent a byte every 40 ms (each read well within the client's
    /// timeout, the whole far past it) is cut off at the request's time;
    /// it used to be read to its end, however long that took.
    #[test]
    fn a_body_that_drips_is_cut_off_at_the_request_timeout() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/f.colsnap", l.local_addr().unwrap());
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut c) = conn else { continue };
                let mut r = BufReader::new(c.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let head = "HTTP/1.1 206 X\r\nContent-Range: bytes 0-199/200\r\nContent-Length: 200\r\nConnection: close\r\n\r\n";
                let _ = c.write_all(head.as_bytes());
                for _ in 0..200 {
                    if c.write_all(b"x").is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(40));
                }
            }
        });
        let http = HttpClient::new(HttpOptions {
            timeout: Duration::from_millis(400),
            retries: 0,
            ..HttpOptions::default()
        })
        .unwrap();
        let t0 = std::time::Instant::now();
        let e = HttpSource::open_with(&url, http).unwrap_err().to_string();
        assert!(e.contains("not whole within"), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    }

    /// A server that ignores ranges sends the whole file: taken up to
    /// `whole_file_max`, refused past it unread. A `416` for the tail of a
    /// file the server says is longer than empty is an error.
    #[test]
    fn a_whole_file_instead_of_the_tail_is_bounded() {
        let data: Arc<Vec<u8>> = Arc::new(vec![7; 10_000]);
        let d = data.clone();
        let (url, _) = serve(Arc::new(move |_, _| (200, vec![], d.to_vec())));
        let small = HttpClient::new(HttpOptions {
            whole_file_max: 1_000,
            ..HttpOptions::default()
        })
        .unwrap();
        let e = HttpSource::open_with(&url, small).unwrap_err().to_string();
        assert!(e.contains("10000 bytes or more where at most 1000"), "{e}");
        let s = HttpSource::open_with(&url, quick()).unwrap();
        assert_eq!(s.len(), 10_000);
        let (url, _) = answering(416, "Content-Range", "bytes */1000");
        let e = open_error(&url);
        assert!(e.contains("a file of 1000 bytes"), "{e}");
        let (url, _) = answering(416, "Content-Range", "bytes */0");
        assert_eq!(HttpSource::open_with(&url, quick()).unwrap().len(), 0);
    }

    #[test]
    fn redirects_never_go_from_https_to_http_nor_past_the_bound() {
        let u = |s: &str| reqwest::Url::parse(s).unwrap();
        let (https, http) = (u("https://a.example/f"), u("http://a.example/f"));
        assert_eq!(
            redirect_refusal(&https, &u("https://cdn.example/x"), 1),
            None
        );
        assert_eq!(redirect_refusal(&http, &u("https://b.example/f"), 1), None);
        assert_eq!(redirect_refusal(&http, &u("http://b.example/f"), 10), None);
        let e = redirect_refusal(&https, &u("http://a.example/f"), 1).unwrap();
        assert!(e.contains("from https to plain http"), "{e}");
        assert!(redirect_refusal(&http, &u("file:///etc/passwd"), 1).is_some());
        assert!(redirect_refusal(&http, &u("http://b.example/f"), 11).is_some());
    }

    /// Over the wire: a redirect to another server is followed; one to a
    /// scheme other than http(s), or a loop, is an error at once (not
    /// retried) naming why.
    #[test]
    fn redirects_are_followed_within_the_policy() {
        let data: Arc<Vec<u8>> = Arc::new(vec![5; 300]);
        let d = data.clone();
        let (target, _) = serve(Arc::new(move |_, h| {
            let range = h.iter().find(|(k, _)| k == "range").unwrap().1.clone();
            ranged(&d, "\"v1\"", &range)
        }));
        let t = target.clone();
        let (url, _) = serve(Arc::new(move |_, _| {
            (302, vec![("Location".into(), t.clone())], vec![])
        }));
        let s = HttpSource::open_with(&url, quick()).unwrap();
        assert_eq!(s.len(), 300);
        let (url, log) = answering(302, "Location", "ftp://127.0.0.1/f");
        let e = open_error(&url);
        assert!(e.contains("redirected to a `ftp` URL"), "{e}");
        assert_eq!(log.lock().unwrap().len(), 1, "not retried");
        let (url, log) = answering(302, "Location", "/f.colsnap");
        let e = open_error(&url);
        assert!(e.contains("more than 10 redirects"), "{e}");
        assert_eq!(log.lock().unwrap().len(), MAX_REDIRECTS + 1);
    }

    #[test]
    fn opens_in_one_request_and_reads_ranges() {
        let data: Arc<Vec<u8>> = Arc::new((0..1000u32).map(|i| (i % 251) as u8).collect());
        let d = data.clone();
        let (url, log) = serve(Arc::new(move |_, h| {
            let range = h.iter().find(|(k, _)| k == "range").unwrap().1.clone();
            assert_eq!(
                h.iter()
                    .find(|(k, _)| k == "if-match")
                    .map(|(_, v)| v.as_str()),
                (!range.starts_with("bytes=-")).then_some("\"v1\"")
            );
            ranged(&d, "\"v1\"", &range)
        }));
        let s = HttpSource::open_with(&url, quick()).unwrap();
        assert_eq!(s.len(), 1000);
        assert_eq!(s.stats().requests, 1);
        assert_eq!(s.version().as_deref(), Some("\"v1\""));
        // In the tail: no request.
        let t = s.read_ranges(&[950..960, 999..1000]).unwrap();
        assert_eq!(&t[0][..], &data[950..960]);
        assert_eq!(s.stats().requests, 1);
        // Two close ranges merged, one far: two requests (in parallel).
        let v = s.read_ranges(&[0..5, 8..12, 500..510, 960..961]).unwrap();
        for (r, b) in [0..5, 8..12, 500..510, 960..961].iter().zip(&v) {
            assert_eq!(&b[..], &data[r.start as usize..r.end as usize]);
        }
        // Several ranges: one multi-range request.
        assert_eq!(s.stats().requests, 2);
        let asked = log.lock().unwrap().clone();
        assert_eq!(asked, ["bytes=-100", "bytes=0-11,500-509"]);
        // Without multi-range requests: one request per merged range.
        let one = HttpClient::new(HttpOptions {
            multi_range: false,
            ..quick().options().clone()
        })
        .unwrap();
        let s1 = HttpSource::open_with(&url, one).unwrap();
        s1.read_ranges(&[0..5, 500..510]).unwrap();
        assert_eq!(s1.stats().requests, 3);
        assert!(matches!(
            s.read_range(990..1001),
            Err(Error::Truncated { .. })
        ));
    }

    #[test]
    fn byteranges_parse_by_content_range_not_by_searching() {
        // The data holds the boundary itself: lengths come from the
        // Content-Range headers, so it does not cut the part.
        let data: Vec<u8> = b"--XyZ--\r\n".repeat(40);
        let (_, h, body) = ranged(&data, "\"t\"", "bytes=0-9,100-149,290-299");
        assert_eq!(h[0].1, "multipart/byteranges; boundary=XyZ");
        let parts = parse_byteranges(&Bytes::from(body.clone()), "XyZ").unwrap();
        let got: Vec<(Range<u64>, u64, Vec<u8>)> = parts
            .into_iter()
            .map(|(r, t, b)| (r, t, b.to_vec()))
            .collect();
        assert_eq!(
            got,
            vec![
                (0..10, 360, data[0..10].to_vec()),
                (100..150, 360, data[100..150].to_vec()),
                (290..300, 360, data[290..300].to_vec()),
            ]
        );
        // Truncated or malformed bodies do not parse.
        for cut in [10, 60, body.len() - 5] {
            assert!(parse_byteranges(&Bytes::from(body[..cut].to_vec()), "XyZ").is_none());
        }
        assert!(parse_byteranges(&Bytes::from_static(b"nothing"), "XyZ").is_none());
        assert_eq!(
            multipart_boundary("multipart/byteranges; boundary=\"a b\"").as_deref(),
            Some("a b")
        );
        assert_eq!(
            multipart_boundary("Multipart/ByteRanges;boundary=00000000001").as_deref(),
            Some("00000000001")
        );
        assert_eq!(multipart_boundary("application/octet-stream"), None);
    }

    #[test]
    fn servers_that_answer_one_range_or_the_whole_file_are_handled() {
        let data: Arc<Vec<u8>> = Arc::new((0..5000u32).map(|i| (i % 241) as u8).collect());
        // mode 0: only the first range; mode 1: the whole file (200).
        for mode in 0..2 {
            let d = data.clone();
            let (url, log) = serve(Arc::new(move |_, h| {
                let range = h.iter().find(|(k, _)| k == "range").unwrap().1.clone();
                if range.contains(',') {
                    if mode == 0 {
                        let first = range.split(',').next().unwrap().to_string();
                        return ranged(&d, "\"v\"", &first);
                    }
                    return (200, vec![("ETag".into(), "\"v\"".into())], d.to_vec());
                }
                ranged(&d, "\"v\"", &range)
            }));
            let s = HttpSource::open_with(&url, quick()).unwrap();
            let asked = [0..5, 1000..1010, 2000..2001, 3000..3100];
            let v = s.read_ranges(&asked).unwrap();
            for (r, b) in asked.iter().zip(&v) {
                assert_eq!(
                    &b[..],
                    &data[r.start as usize..r.end as usize],
                    "mode {mode}"
                );
            }
            let n = log.lock().unwrap().len();
            // Then single ranges only: no more multi-range requests.
            s.read_ranges(&[10..20, 4000..4010]).unwrap();
            let log = log.lock().unwrap().clone();
            assert!(log[n..].iter().all(|r| !r.contains(',')), "{log:?}");
            assert_eq!(log.len() - n, 2, "mode {mode}: {log:?}");
            if mode == 0 {
                // First range served, the three others fetched apart.
                assert_eq!(n, 1 + 1 + 3, "{log:?}");
            } else {
                assert_eq!(n, 2, "{log:?}");
            }
        }
    }

    #[test]
    fn a_large_whole_file_for_several_ranges_is_dropped_unread() {
        // 12 MiB answered whole to a multi-range request: the ranges come
        // one by one instead, with the file left unread.
        let data: Arc<Vec<u8>> = Arc::new((0..12u32 << 20).map(|i| (i % 251) as u8).collect());
        let d = data.clone();
        let (url, log) = serve(Arc::new(move |_, h| {
            let range = h.iter().find(|(k, _)| k == "range").unwrap().1.clone();
            if range.contains(',') {
                return (200, vec![("ETag".into(), "\"v\"".into())], d.to_vec());
            }
            ranged(&d, "\"v\"", &range)
        }));
        let http = quick();
        let counters = http.counters().clone();
        let s = HttpSource::open_with(&url, http).unwrap();
        let asked = [0..5, 1 << 20..(1 << 20) + 10, 6 << 20..(6 << 20) + 100];
        let v = s.read_ranges(&asked).unwrap();
        for (r, b) in asked.iter().zip(&v) {
            assert_eq!(&b[..], &data[r.start as usize..r.end as usize]);
        }
        let st = counters.get();
        assert!(st.bytes < 1 << 20, "{st:?}");
        let log = log.lock().unwrap().clone();
        assert_eq!(log.iter().filter(|r| r.contains(',')).count(), 1, "{log:?}");
    }

    #[test]
    fn an_answer_longer_than_the_ranges_asked_is_an_error_unread() {
        // A 206 of 8 MiB for 10 bytes (one range, then two): an error that
        // says so, not 8 MiB in memory.
        let data: Arc<Vec<u8>> = Arc::new((0..5000u32).map(|i| (i % 241) as u8).collect());
        let d = data.clone();
        let (url, _) = serve(Arc::new(move |_, h| {
            let range = h.iter().find(|(k, _)| k == "range").unwrap().1.clone();
            if range.starts_with("bytes=-") {
                return ranged(&d, "\"v\"", &range);
            }
            let (status, mut extra, _) = ranged(&d, "\"v\"", range.split(',').next().unwrap());
            extra.retain(|(k, _)| k != "Content-Type");
            (status, extra, vec![0; 8 << 20])
        }));
        let s = HttpSource::open_with(&url, quick()).unwrap();
        let two = [1000..1010, 3000..3010];
        for asked in [&two[..1], &two[..]] {
            let e = s.read_ranges(asked).unwrap_err().to_string();
            assert!(e.contains("where at most"), "{asked:?}: {e}");
        }
    }

    #[test]
    fn a_server_error_is_retried_then_succeeds() {
        let data: Arc<Vec<u8>> = Arc::new(vec![7u8; 300]);
        let n = Arc::new(AtomicU64::new(0));
        let (d, n2) = (data.clone(), n.clone());
        let (url, _) = serve(Arc::new(move |_, h| {
            if n2.fetch_add(1, Ordering::SeqCst) < 2 {
                return (500, vec![], b"oops".to_vec());
            }
            let range = h.iter().find(|(k, _)| k == "range").unwrap().1.clone();
            ranged(&d, "\"x\"", &range)
        }));
        let s = HttpSource::open_with(&url, quick()).unwrap();
        assert_eq!(s.len(), 300);
        assert_eq!(s.stats().requests, 3);
        assert_eq!(s.stats().retries, 2);
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date() {
        let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let at = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::RETRY_AFTER, v.parse().unwrap());
            retry_after(&h, now)
        };
        assert_eq!(at("2"), Some(Duration::from_secs(2)));
        assert_eq!(at(" 120 "), Some(Duration::from_secs(120)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(at(&later), Some(Duration::from_secs(7)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(at(&past), Some(Duration::ZERO));
        assert_eq!(at("soon"), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    /// A `429` or `503` with `Retry-After` is retried after the wait it
    /// asks (when longer than the backoff); one asking for longer than
    /// `retry_after_max` is an error at once, naming the wait.
    #[test]
    fn retry_after_is_honoured_within_its_bound() {
        let data: Arc<Vec<u8>> = Arc::new(vec![7u8; 300]);
        let n = Arc::new(AtomicU64::new(0));
        let (d, n2) = (data.clone(), n.clone());
        let (url, _) = serve(Arc::new(move |_, h| {
            if n2.fetch_add(1, Ordering::SeqCst) < 1 {
                return (429, vec![("Retry-After".into(), "1".into())], vec![]);
            }
            let range = h.iter().find(|(k, _)| k == "range").unwrap().1.clone();
            ranged(&d, "\"x\"", &range)
        }));
        let t0 = std::time::Instant::now();
        let s = HttpSource::open_with(&url, quick()).unwrap();
        assert!(
            t0.elapsed() >= Duration::from_millis(950),
            "{:?}",
            t0.elapsed()
        );
        assert_eq!(s.stats().retries, 1);
        let (url, log) = answering(503, "Retry-After", "3600");
        let t0 = std::time::Instant::now();
        let e = open_error(&url);
        assert!(e.contains("retry after 3600 s"), "{e}");
        assert_eq!(log.lock().unwrap().len(), 1);
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    }

    #[test]
    fn retries_are_bounded_and_the_error_names_url_and_status() {
        let (url, log) = serve(Arc::new(|_, _| (503, vec![], vec![])));
        let e = HttpSource::open_with(&url, quick()).unwrap_err();
        assert!(
            matches!(&e, Error::Remote { url: u, status: Some(503), .. } if *u == url),
            "{e:?}"
        );
        assert!(e.to_string().contains(&url) && e.to_string().contains("503"));
        assert_eq!(log.lock().unwrap().len(), 4);
        let (url, _) = serve(Arc::new(|_, _| (404, vec![], vec![])));
        let e = HttpSource::open_with(&url, quick()).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Remote {
                    status: Some(404),
                    ..
                }
            ),
            "{e:?}"
        );
        // Nothing listens: a connection error, retried, then named.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/gone", l.local_addr().unwrap());
        drop(l);
        let e = HttpSource::open_with(&url, quick()).unwrap_err();
        assert!(matches!(&e, Error::Remote { status: None, .. }), "{e:?}");
        assert!(e.to_string().contains("/gone"));
    }

    #[test]
    fn a_changed_file_is_an_error_never_mixed_bytes() {
        let data: Arc<Vec<u8>> = Arc::new(vec![1u8; 1000]);
        let swapped = Arc::new(AtomicU64::new(0));
        let (d, sw) = (data.clone(), swapped.clone());
        let (url, _) = serve(Arc::new(move |_, h| {
            let range = h.iter().find(|(k, _)| k == "range").unwrap().1.clone();
            let if_match = h
                .iter()
                .find(|(k, _)| k == "if-match")
                .map(|(_, v)| v.clone());
            match sw.load(Ordering::SeqCst) {
                0 => ranged(&d, "\"a\"", &range),
                // A server that honours If-Match.
                1 if if_match.as_deref() != Some("\"b\"") => (412, vec![], vec![]),
                // A server that ignores If-Match: new ETag in the answer.
                2 => ranged(&d, "\"b\"", &range),
                // One that ignores ranges now.
                3 => (200, vec![("ETag".into(), "\"a\"".into())], d.to_vec()),
                // Shorter file.
                _ => (416, vec![], vec![]),
            }
        }));
        let s = HttpSource::open_with(&url, quick()).unwrap();
        s.read_range(0..10).unwrap();
        for mode in 1..=4 {
            swapped.store(mode, Ordering::SeqCst);
            let e = s.read_range(0..10).unwrap_err();
            assert!(matches!(&e, Error::Changed { .. }), "mode {mode}: {e:?}");
        }
    }

    #[test]
    fn small_files_and_servers_without_ranges() {
        let data: Arc<Vec<u8>> = Arc::new((0..50u8).collect());
        let d = data.clone();
        let (url, _) = serve(Arc::new(move |_, _| (200, vec![], d.to_vec())));
        let s = HttpSource::open_with(&url, quick()).unwrap();
        assert_eq!(s.len(), 50);
        assert_eq!(&s.read_range(0..50).unwrap()[..], &data[..]);
        assert_eq!(s.stats().requests, 1);
    }
}
