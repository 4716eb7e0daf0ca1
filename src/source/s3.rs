//! Snapshots and published snapshots in an S3-compatible object store
//! (`s3://bucket/key`), through the `object_store` crate.
//!
//! Credentials, region and endpoint come from the standard environment
//! variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, ...), as `object_store` reads them.
//!
//! [`S3Source`] reads one `.colsnap` object by byte range like
//! [`super::HttpSource`] reads a file: [`S3Source::open`] makes **one**
//! request (a suffix range: the answer gives the object's size, its `ETag`
//! and the tail that holds the footer), later reads are pinned to that
//! `ETag` with `If-Match`, and an object replaced while it is read fails
//! with [`Error::Changed`] instead of mixing two versions. [`S3Client`] also
//! gets, lists and puts whole objects for the publish reader and writer
//! (`crate::publish`).

use super::{ByteSource, NetCounters, NetStats, coalesce_ranges, parallel_map, split_coalesced};
use crate::error::{Error, Result};
use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as KeyPath;
use object_store::{BackoffConfig, GetOptions, GetRange, ObjectStore, PutPayload, RetryConfig};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

/// `s3://bucket/key` split into its bucket and key (the key without a
/// leading `/`; empty for the bucket's root).
pub fn parse_s3_url(url: &str) -> Result<(String, String)> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| Error::Invalid(format!("{url}: not an s3:// URL")))?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(Error::Invalid(format!("{url}: the URL names no bucket")));
    }
    // The key as given: `s3://b//k` names the key `/k`, which is not `k`.
    Ok((bucket.to_string(), key.to_string()))
}

/// One bucket of an S3-compatible store, with a small runtime to drive
/// `object_store`'s async client from synchronous code, and the request
/// counters of everything read through it. Cheap to clone.
#[derive(Clone)]
pub struct S3Client {
    bucket: String,
    store: Arc<dyn ObjectStore>,
    rt: Arc<tokio::runtime::Runtime>,
    counters: Arc<NetCounters>,
    parallel: usize,
    merge_gap: u64,
}

impl std::fmt::Debug for S3Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Client")
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

impl S3Client {
    /// A client for `bucket`, configured from the `AWS_*` environment
    /// variables (timeouts are `object_store`'s: 5 s to connect, 30 s a
    /// request); connection errors, timeouts and `5xx` answers are retried
    /// 3 times with doubling backoff from 100 ms.
    pub fn from_env(bucket: &str) -> Result<S3Client> {
        S3Client::with_config(bucket, &[])
    }

    /// Like [`S3Client::from_env`], with `config` on top: pairs of
    /// `object_store` S3 keys and values, named like the variables in lower
    /// case (`("aws_endpoint_url", "http://127.0.0.1:9000")`,
    /// `("aws_allow_http", "true")`, `("aws_access_key_id", ...)`).
    pub fn with_config(bucket: &str, config: &[(&str, &str)]) -> Result<S3Client> {
        let fail = |detail: String| Error::Remote {
            url: format!("s3://{bucket}"),
            status: None,
            detail,
        };
        let mut builder = AmazonS3Builder::from_env();
        for (k, v) in config {
            let key: object_store::aws::AmazonS3ConfigKey = k
                .to_ascii_lowercase()
                .parse()
                .map_err(|e| fail(format!("{k}: {e}")))?;
            builder = builder.with_config(key, *v);
        }
        // An endpoint object_store cannot sign requests for made it panic
        // at the first request (`127.0.0.1:9000` without a scheme, a port
        // past 65535, a space).
        if let Some(ep) = builder.get_config_value(&object_store::aws::AmazonS3ConfigKey::Endpoint)
        {
            check_endpoint(&ep).map_err(|why| {
                Error::Invalid(format!("AWS_ENDPOINT_URL {}: {why}", without_userinfo(&ep)))
            })?;
        }
        let store = builder
            .with_bucket_name(bucket)
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(5),
                    base: 2.0,
                },
                max_retries: 3,
                retry_timeout: Duration::from_secs(120),
            })
            .build()
            .map_err(|e| fail(format!("cannot configure the S3 client: {e}")))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| fail(format!("cannot start the S3 client's runtime: {e}")))?;
        Ok(S3Client {
            bucket: bucket.to_string(),
            store: Arc::new(store),
            rt: Arc::new(rt),
            counters: Arc::new(NetCounters::default()),
            parallel: 8,
            merge_gap: 64 << 10,
        })
    }

    /// Ranges at most `gap` bytes apart are fetched as one (default 64 KiB).
    pub fn with_merge_gap(mut self, gap: u64) -> S3Client {
        self.merge_gap = gap;
        self
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The counters of every request this client (and its clones) made.
    pub fn counters(&self) -> &Arc<NetCounters> {
        &self.counters
    }

    /// Requests in flight at once.
    pub fn parallel(&self) -> usize {
        self.parallel
    }

    /// `s3://bucket/key`
    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// `key` as `object_store` addresses it: as given (`Path::from` would
    /// percent-encode `ü`, `?`, `#`, `%`, `~` ... into a different key). A
    /// key `object_store` cannot address is an error naming it.
    fn key_path(&self, key: &str) -> Result<KeyPath> {
        // `Path::parse` drops a leading or trailing `/`: another key.
        let edge = (key.starts_with('/') || key.ends_with('/')).then(|| {
            object_store::path::Error::EmptySegment {
                path: key.to_string(),
            }
        });
        edge.map_or_else(|| KeyPath::parse(key), Err).map_err(|e| {
            Error::Invalid(format!(
                "{}: keys with an empty segment (`a//b`), a `.` or `..` segment or a control character cannot be read or written here ({e})",
                self.url(key)
            ))
        })
    }

    fn error(&self, key: &str, e: object_store::Error) -> Error {
        let url = self.url(key);
        // The answer's code tells a missing bucket from a missing object
        // (a listing's 404 comes as a generic error).
        if error_chain(&e).contains("<Code>NoSuchBucket</Code>") {
            return Error::Remote {
                url,
                status: Some(404),
                detail: format!("no such bucket: {}", self.bucket),
            };
        }
        match e {
            object_store::Error::NotFound { .. } => Error::Remote {
                url,
                status: Some(404),
                detail: "no such object".into(),
            },
            object_store::Error::Precondition { .. } => Error::Changed {
                url,
                detail: "HTTP 412: the object's ETag changed".into(),
            },
            e => Error::Remote {
                url,
                status: None,
                detail: error_chain(&e),
            },
        }
    }

    async fn get_async(
        &self,
        key: &str,
        opts: GetOptions,
        max: u64,
    ) -> Result<(Bytes, Range<u64>, u64, Option<String>)> {
        let path = self.key_path(key)?;
        self.counters.add_request();
        let r = self
            .store
            .get_opts(&path, opts)
            .await
            .map_err(|e| self.error(key, e))?;
        let (range, size, etag) = (r.range.clone(), r.meta.size, r.meta.e_tag.clone());
        // Refused before its body is read (which reserves what the answer
        // claims): a broken or hostile endpoint cannot fill the memory.
        if range.end.saturating_sub(range.start) > max {
            return Err(Error::Remote {
                url: self.url(key),
                status: None,
                detail: format!(
                    "an answer of {} bytes where at most {max} can come",
                    range.end.saturating_sub(range.start)
                ),
            });
        }
        // The body, no longer than the range it claims: `bytes()` takes
        // whatever a chunked body brings (a 32-byte range answered with
        // 256 MiB was read whole).
        let claimed = range.end.saturating_sub(range.start);
        let mut body = r.into_stream();
        let mut first: Option<Bytes> = None;
        let mut buf: Vec<u8> = Vec::new();
        let mut got: u64 = 0;
        while let Some(part) = futures::StreamExt::next(&mut body).await {
            let part = part.map_err(|e| self.error(key, e))?;
            got += part.len() as u64;
            if got > claimed {
                return Err(Error::Remote {
                    url: self.url(key),
                    status: None,
                    detail: format!(
                        "the answer's body runs past the {claimed} bytes of the range it claims ({}-{})",
                        range.start,
                        range.end.saturating_sub(1)
                    ),
                });
            }
            match first.take() {
                // One part (the usual answer): kept without a copy.
                None if buf.is_empty() => first = Some(part),
                Some(f) => {
                    buf.reserve_exact(claimed as usize);
                    buf.extend_from_slice(&f);
                    buf.extend_from_slice(&part);
                }
                None => buf.extend_from_slice(&part),
            }
        }
        let b = first.unwrap_or_else(|| Bytes::from(buf));
        self.counters.add_bytes(b.len() as u64);
        Ok((b, range, size, etag))
    }

    /// `GET key` with `opts`: the body, the range it holds, the object's
    /// size and its `ETag`.
    fn get_opts(
        &self,
        key: &str,
        opts: GetOptions,
        max: u64,
    ) -> Result<(Bytes, Range<u64>, u64, Option<String>)> {
        self.rt.block_on(self.get_async(key, opts, max))
    }

    /// The whole object at `key`.
    pub fn get(&self, key: &str) -> Result<Bytes> {
        self.get_at_most(key, u64::MAX)
    }

    /// The whole object at `key`, of at most `max` bytes (a longer one is
    /// an error, its body unread).
    pub fn get_at_most(&self, key: &str, max: u64) -> Result<Bytes> {
        Ok(self.get_opts(key, GetOptions::default(), max)?.0)
    }

    /// The keys of the objects directly under `prefix` (`a/b`: `a/b/x`,
    /// `a/b/y`, ...), with their sizes and `ETag`s, every page of the
    /// listing.
    pub fn list(&self, prefix: &str) -> Result<HashMap<String, Listed>> {
        let p = self.key_path(prefix)?;
        self.counters.add_request();
        let r = self
            .rt
            .block_on(self.store.list_with_delimiter(Some(&p)))
            .map_err(|e| self.error(prefix, e))?;
        Ok(r.objects
            .into_iter()
            .map(|o| {
                let listed = Listed {
                    size: o.size,
                    e_tag: o.e_tag,
                };
                (o.location.to_string(), listed)
            })
            .collect())
    }

    /// Whether an object exists at `key` (one `HEAD`).
    pub fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.head(key)?.is_some())
    }

    /// The size and `ETag` of the object at `key` (one `HEAD`), `None`
    /// when there is none.
    fn head(&self, key: &str) -> Result<Option<(u64, Option<String>)>> {
        let path = self.key_path(key)?;
        self.counters.add_request();
        match self.rt.block_on(self.store.head(&path)) {
            Ok(m) => Ok(Some((m.size, m.e_tag))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error(key, e)),
        }
    }

    /// Store `bytes` at `key` (replacing what is there).
    pub fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        let path = self.key_path(key)?;
        self.counters.add_request();
        self.rt
            .block_on(self.store.put(&path, PutPayload::from(bytes)))
            .map(|_| ())
            .map_err(|e| self.error(key, e))
    }
}

/// An object as a listing names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its length in bytes.
    pub size: u64,
    /// Its `ETag` as the store gave it (quoted), if it gave one.
    pub e_tag: Option<String>,
}

impl Listed {
    /// Whether the object holds `bytes`, as far as the listing tells:
    /// `Some(true)` or `Some(false)` when its `ETag` is an MD5 (what S3 and
    /// the stores like it give an object stored by one `PUT` without
    /// KMS encryption), `Some(false)` when the size differs, `None` when
    /// only reading it back can tell (an `ETag` of another form: a
    /// multipart upload's, a KMS-encrypted object's, or none).
    pub fn holds(&self, bytes: &[u8]) -> Option<bool> {
        use md5::Digest;
        if self.size != bytes.len() as u64 {
            return Some(false);
        }
        let tag = self.e_tag.as_deref()?;
        let tag = tag.strip_prefix("W/").unwrap_or(tag).trim_matches('"');
        if tag.len() != 32 || !tag.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let md5 = md5::Md5::digest(bytes);
        let hex: String = md5.iter().map(|b| format!("{b:02x}")).collect();
        Some(tag.eq_ignore_ascii_case(&hex))
    }
}

/// An error and its causes on one line, without the credentials a URL in
/// it may carry (`http://user:secret@host/` is written `http://host/`).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    without_userinfo(&s)
}

/// Why `ep` is not an endpoint URL requests can be signed for: an
/// `http(s)://` URL with a host, no user information, query or fragment.
fn check_endpoint(ep: &str) -> std::result::Result<(), String> {
    let u = reqwest::Url::parse(ep).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none_or(str::is_empty) {
        return Err("give http(s)://HOST[:PORT]".into());
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(
            "credentials go in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, not in the URL".into(),
        );
    }
    if u.query().is_some() || u.fragment().is_some() || ep.contains(char::is_whitespace) {
        return Err("a query, a fragment or a space has no place in it".into());
    }
    Ok(())
}

/// `s` with the user information (`user:password@`) of every URL in it
/// removed.
fn without_userinfo(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let authority = rest
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
            .unwrap_or(rest.len());
        if let Some(at) = rest[..authority].rfind('@') {
            rest = &rest[at + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// One `.colsnap` object in an S3-compatible store (see the module
/// documentation).
#[derive(Debug)]
pub struct S3Source {
    client: S3Client,
    key: String,
    len: u64,
    etag: Option<String>,
    tail: Bytes,
    tail_start: u64,
}

impl S3Source {
    /// Open `s3://bucket/key` with a client from the environment: one
    /// request for the last `tail_bytes` bytes.
    pub fn open(url: &str, tail_bytes: u64) -> Result<S3Source> {
        let (bucket, key) = parse_s3_url(url)?;
        S3Source::open_with(S3Client::from_env(&bucket)?, &key, tail_bytes)
    }

    /// Open `key` through `client`: one suffix-range request.
    pub fn open_with(client: S3Client, key: &str, tail_bytes: u64) -> Result<S3Source> {
        if key.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: the URL names a bucket, not an object (give s3://bucket/key)",
                client.url(key)
            )));
        }
        let opts = GetOptions {
            range: Some(GetRange::Suffix(tail_bytes.max(32))),
            ..GetOptions::default()
        };
        let (tail, range, len, etag) = match client.get_opts(key, opts, tail_bytes.max(32)) {
            Ok(got) => got,
            Err(e @ Error::Remote { .. })
                if e.to_string().contains("non-partial response")
                    || e.to_string().contains("416")
                    || e.to_string().contains("InvalidRange") =>
            {
                // A range of an empty object cannot be satisfied: stores
                // answer 416 or a whole (empty) 200, which is no answer to
                // a range. An empty object is read as an empty file (the
                // reader then says what a snapshot of 0 bytes lacks).
                match client.head(key) {
                    Ok(Some((0, etag))) => (Bytes::new(), 0..0, 0, etag),
                    _ => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        if range.end != len || tail.len() as u64 != range.end - range.start {
            return Err(Error::Remote {
                url: client.url(key),
                status: Some(206),
                detail: format!(
                    "asked for the last {tail_bytes} bytes, got bytes {}..{} of {len} ({} bytes)",
                    range.start,
                    range.end,
                    tail.len()
                ),
            });
        }
        Ok(S3Source {
            key: key.to_string(),
            len,
            etag,
            tail_start: range.start,
            tail,
            client,
        })
    }

    /// `s3://bucket/key`
    pub fn url(&self) -> String {
        self.client.url(&self.key)
    }

    /// The requests and bytes so far.
    pub fn stats(&self) -> NetStats {
        self.client.counters.get()
    }

    /// The shared counters.
    pub fn counters(&self) -> &Arc<NetCounters> {
        &self.client.counters
    }

    fn fetch(&self, r: &Range<u64>) -> Result<Bytes> {
        let opts = GetOptions {
            range: Some(GetRange::Bounded(r.clone())),
            if_match: self.etag.clone(),
            ..GetOptions::default()
        };
        let (b, got, len, etag) = self.client.get_opts(&self.key, opts, r.end - r.start)?;
        let changed = |detail: String| Error::Changed {
            url: self.url(),
            detail,
        };
        if etag != self.etag {
            return Err(changed(format!("ETag {:?} is now {etag:?}", self.etag)));
        }
        if len != self.len {
            return Err(changed(format!("length {} is now {len}", self.len)));
        }
        if got != *r || b.len() as u64 != r.end - r.start {
            return Err(Error::Remote {
                url: self.url(),
                status: Some(206),
                detail: format!(
                    "asked for bytes {}..{}, got {}..{} ({} bytes)",
                    r.start,
                    r.end,
                    got.start,
                    got.end,
                    b.len()
                ),
            });
        }
        Ok(b)
    }
}

impl ByteSource for S3Source {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_ranges(&self, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        super::read_with_tail(ranges, self.len, self.tail_start, &self.tail, |need| {
            let merged = coalesce_ranges(need, self.client.merge_gap);
            let got = parallel_map(&merged, self.client.parallel, |r| self.fetch(r))?;
            split_coalesced(need, &merged, &got)
        })
    }

    fn version(&self) -> Option<String> {
        self.etag.clone()
    }

    fn is_remote(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_tells_its_objects_bytes_by_their_md5_etag() {
        // MD5("hello") = 5d41402abc4b2a76b9719d911017c592.
        let l = |size: u64, tag: Option<&str>| Listed {
            size,
            e_tag: tag.map(str::to_string),
        };
        let md5 = "\"5d41402abc4b2a76b9719d911017c592\"";
        assert_eq!(l(5, Some(md5)).holds(b"hello"), Some(true));
        assert_eq!(
            l(5, Some("\"5D41402ABC4B2A76B9719D911017C592\"")).holds(b"hello"),
            Some(true)
        );
        assert_eq!(l(5, Some(md5)).holds(b"hellp"), Some(false));
        assert_eq!(l(4, Some(md5)).holds(b"hello"), Some(false));
        assert_eq!(l(6, None).holds(b"hello"), Some(false));
        // A multipart upload's tag, a KMS one, none: reading back tells.
        let multipart = "\"5d41402abc4b2a76b9719d911017c592-2\"";
        assert_eq!(l(5, Some(multipart)).holds(b"hello"), None);
        assert_eq!(l(5, Some("\"xyz\"")).holds(b"hello"), None);
        assert_eq!(l(5, None).holds(b"hello"), None);
    }

    #[test]
    fn an_answer_longer_than_asked_is_refused_before_its_body() {
        // An endpoint that says 1 TiB (and sends 64 KiB): object_store
        // reserved what Content-Length claimed, and the process aborted.
        use std::io::{BufRead, BufReader, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(mut c) = c else { continue };
                let mut r = BufReader::new(c.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let head = "HTTP/1.1 200 OK\r\nContent-Length: 1099511627776\r\nETag: \"e\"\r\nConnection: close\r\n\r\n";
                let _ = c.write_all(head.as_bytes());
                let _ = c.write_all(&[b'x'; 64 << 10]);
            }
        });
        let c = S3Client::with_config(
            "b",
            &[
                ("aws_endpoint_url", base.as_str()),
                ("aws_allow_http", "true"),
                ("aws_access_key_id", "x"),
                ("aws_secret_access_key", "y"),
                ("aws_region", "us-east-1"),
            ],
        )
        .unwrap();
        let e = c
            .get_at_most("root/objects/abc", 1000)
            .unwrap_err()
            .to_string();
        assert!(e.contains("where at most 1000"), "{e}");
    }

    #[test]
    fn credentials_in_urls_are_left_out_of_messages() {
        assert_eq!(
            without_userinfo("Error performing GET http://user:s3cret@127.0.0.1:9/b/k in 1s: x@y"),
            "Error performing GET http://127.0.0.1:9/b/k in 1s: x@y"
        );
        assert_eq!(
            without_userinfo("https://a@h and s3://b/k@v"),
            "https://h and s3://b/k@v"
        );
        assert_eq!(without_userinfo("no url: a@b"), "no url: a@b");
    }

    #[test]
    fn s3_urls_split_into_bucket_and_key() {
        assert_eq!(
            parse_s3_url("s3://b/a/c.colsnap").unwrap(),
            ("b".into(), "a/c.colsnap".into())
        );
        assert_eq!(parse_s3_url("s3://b").unwrap(), ("b".into(), "".into()));
        assert_eq!(
            parse_s3_url("s3://b/p/").unwrap(),
            ("b".into(), "p/".into())
        );
        assert_eq!(
            parse_s3_url("s3://b//k").unwrap(),
            ("b".into(), "/k".into())
        );
        for (ep, ok) in [
            ("http://127.0.0.1:9000", true),
            ("https://s3.example.com/base", true),
            ("127.0.0.1:9000", false),
            ("localhost:9000", false),
            ("http://h:99999", false),
            ("http://u:p@h", false),
            ("http://h/ x", false),
            ("http://[::1", false),
        ] {
            assert_eq!(check_endpoint(ep).is_ok(), ok, "{ep}");
        }
        assert!(parse_s3_url("s3:///k").is_err());
        assert!(parse_s3_url("http://b/k").is_err());
    }
}
