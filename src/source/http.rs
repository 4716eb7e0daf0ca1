//! A snapshot file on an HTTP(S) server, read by byte range.
//!
//! [`HttpSource::open`] makes **one** request, a suffix range
//! (`Range: bytes=-N`): the answer's `Content-Range` gives the file's length,
//! its `ETag` the version, and its body the tail that holds the trailer and,
//! for typical files, the whole footer. There is no `HEAD`. Later reads ask
//! for exact ranges with `If-Match: ETAG` (or `If-Unmodified-Since` when the
//! server sends no strong `ETag`), so that a file replaced while it is read
//! is answered `412` and the read fails with [`Error::Changed`] instead of
//! mixing bytes of two versions. A `200` to a range request, a `416`, or a
//! `Content-Range` with another total length is the same error.
//!
//! Ranges asked together are merged when they lie at most
//! [`HttpOptions::merge_gap`] apart and fetched in parallel (at most
//! [`HttpOptions::parallel`] at a time). Connection errors, timeouts, `5xx`
//! and `429` answers are retried [`HttpOptions::retries`] times with an
//! exponential backoff; the last failure is an [`Error::Remote`] that names
//! the URL and the status.

use super::{ByteSource, NetCounters, NetStats, coalesce_ranges, parallel_map, split_coalesced};
use crate::error::{Error, Result};
use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};
use reqwest::header::{self, HeaderMap};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

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
        }
    }
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
        let mut attempt = 0u32;
        loop {
            self.counters.add_request();
            if attempt > 0 {
                self.counters.add_retry();
            }
            let outcome = self
                .client
                .get(url)
                .headers(headers.clone())
                .send()
                .and_then(|r: Response| {
                    let status = r.status();
                    let h = r.headers().clone();
                    r.bytes().map(|b| (status, h, b))
                });
            let (retry, err) = match outcome {
                Ok((status, h, body)) => {
                    self.counters.add_bytes(body.len() as u64);
                    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                        (
                            true,
                            Error::Remote {
                                url: url.into(),
                                status: Some(status.as_u16()),
                                detail: format!(
                                    "{} after {} attempts",
                                    status.canonical_reason().unwrap_or("error"),
                                    attempt + 1
                                ),
                            },
                        )
                    } else {
                        return Ok((status, h, body));
                    }
                }
                Err(e) => (
                    e.is_connect() || e.is_timeout() || e.is_request() || e.is_body(),
                    Error::Remote {
                        url: url.into(),
                        status: e.status().map(|s| s.as_u16()),
                        detail: format!("{} (after {} attempts)", error_chain(&e), attempt + 1),
                    },
                ),
            };
            if !retry || attempt >= self.opts.retries {
                return Err(err);
            }
            std::thread::sleep(self.opts.backoff.saturating_mul(1 << attempt.min(16)));
            attempt += 1;
        }
    }

    /// `GET url` expecting `200 OK`: the whole body (a published object, a
    /// manifest).
    pub fn get_object(&self, url: &str) -> Result<Bytes> {
        let (status, _, body) = self.get(url, &HeaderMap::new())?;
        if status != StatusCode::OK {
            return Err(status_error(url, status));
        }
        Ok(body)
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
        let (status, headers, body) = http.get(url, &h)?;
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
            // A suffix range of an empty file.
            StatusCode::RANGE_NOT_SATISFIABLE => (0, 0),
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
        Ok(HttpSource {
            url: url.into(),
            http,
            len,
            etag,
            last_modified,
            tail: if len == 0 { Bytes::new() } else { body },
            tail_start,
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
        let (status, headers, body) = self.http.get(&self.url, &h)?;
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
        ) {
            if want != got {
                return Err(changed(format!("ETag {want} is now {got}")));
            }
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
}

impl ByteSource for HttpSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_ranges(&self, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        for r in ranges {
            super::check_range(r, self.len)?;
        }
        // What the tail (fetched at open) holds costs nothing.
        let in_tail = |r: &Range<u64>| r.start >= self.tail_start || r.start == r.end;
        let need: Vec<Range<u64>> = ranges.iter().filter(|r| !in_tail(r)).cloned().collect();
        let merged = coalesce_ranges(&need, self.http.opts.merge_gap);
        let got = parallel_map(&merged, self.http.opts.parallel, |r| self.fetch(r))?;
        let fetched = split_coalesced(&need, &merged, &got)?;
        let mut fetched = fetched.into_iter();
        ranges
            .iter()
            .map(|r| {
                if r.start == r.end {
                    Ok(Bytes::new())
                } else if in_tail(r) {
                    let at = (r.start - self.tail_start) as usize;
                    Ok(self.tail.slice(at..at + (r.end - r.start) as usize))
                } else {
                    fetched.next().ok_or_else(|| Error::Truncated {
                        what: "byte range".into(),
                        start: r.start,
                        end: r.end,
                        len: self.len,
                    })
                }
            })
            .collect()
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

    /// Answer ranges of `data` like a static file server with ETag `tag`.
    fn ranged(data: &[u8], tag: &str, range: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let len = data.len() as u64;
        let r = range.strip_prefix("bytes=").unwrap_or("");
        let (a, b) = if let Some(n) = r.strip_prefix('-') {
            (len.saturating_sub(n.parse().unwrap()), len - 1)
        } else {
            let (a, b) = r.split_once('-').unwrap();
            (a.parse().unwrap(), b.parse::<u64>().unwrap().min(len - 1))
        };
        (
            206,
            vec![
                ("Content-Range".into(), format!("bytes {a}-{b}/{len}")),
                ("ETag".into(), tag.into()),
            ],
            data[a as usize..=b as usize].to_vec(),
        )
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
        assert_eq!(s.stats().requests, 3);
        let mut asked = log.lock().unwrap().clone();
        asked.sort();
        assert_eq!(asked, ["bytes=-100", "bytes=0-11", "bytes=500-509"]);
        assert!(matches!(
            s.read_range(990..1001),
            Err(Error::Truncated { .. })
        ));
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
