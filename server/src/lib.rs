//! `colsnap-serve`: an HTTP API over colsnap snapshots.
//!
//! Each snapshot is served under its file stem `NAME`: paged, filtered,
//! searched and sorted rows (`/api/NAME/rows`, the same answers as
//! `colsnap query`), one row by key, the schema, a Server-Sent-Events
//! stream of every row, and the file itself with `Range` support. Every
//! snapshot is opened once and shared behind an `Arc`; its query
//! [`Engine`] loads each column once for all requests. See `docs/http.md`.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! let cfg = colsnap_server::ServerConfig::new(vec!["issues.colsnap".into()]);
//! let state = colsnap_server::AppState::load(cfg)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! colsnap_server::serve(listener, state, std::future::pending()).await?;
//! # Ok(()) }
//! ```

mod api;
pub mod error;
mod live;
pub mod params;
mod rowstore;
mod stream;

pub use rowstore::{BUILDER_ARG, RowStoreConfig, RowStoreMode, builder_main};

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use colsnap::Snapshot;
use colsnap::query::Engine;
use error::ApiError;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rowstore::{StoreSlot, StoredSource};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// Everything the server is told at start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Snapshot files, each served under its file stem.
    pub files: Vec<PathBuf>,
    /// Key field for `/api/NAME/rows/KEY` (and of the event logs).
    pub key: String,
    /// Event logs (NDJSON) applied to snapshots, by snapshot name: their
    /// queries answer from the snapshot with the events, as
    /// `colsnap query --events` does.
    pub events: Vec<(String, PathBuf)>,
    /// Rows per page when `limit` is not given.
    pub default_limit: usize,
    /// Largest `limit` (and SSE `chunkSize`).
    pub max_limit: usize,
    /// Requests per second per client address (token bucket, burst of the
    /// same size); `None` for no limit.
    pub rate_limit: Option<u32>,
    /// Allowed CORS origin (`*` for any); `None` sends no CORS headers.
    pub cors: Option<String>,
    /// Time to the response's headers before a 503.
    pub timeout: Duration,
    /// Time a connection may take to send a request's headers (and may sit
    /// idle between two requests) before it is closed: a client sending
    /// headers a byte at a time holds a connection that long at most.
    pub header_timeout: Duration,
    /// Longest query string, in bytes (longer: 414).
    pub max_query_bytes: usize,
    /// Interval of the SSE heartbeat comment.
    pub heartbeat: Duration,
    /// `retry:` sent to SSE clients, in milliseconds.
    pub sse_retry_ms: u64,
    /// Pause between two SSE `data` events (pacing; zero for none).
    pub stream_pause: Duration,
    /// Row numbers kept for recent query results, all queries together
    /// (4 bytes each); repeated pages of one query then skip the sort.
    pub result_cache_rows: usize,
    /// How often to look for a replaced snapshot file (length, modification
    /// time or inode changed) and swap it in; `None` never looks.
    pub reload_interval: Option<Duration>,
    /// A directory of static files (the browser grid, `web/www`) served at
    /// `/web/`, with `/` redirecting there; `None` serves no page.
    pub web: Option<PathBuf>,
    /// Bearer token that `POST /api/NAME/events` requires; `None` refuses
    /// every POST (403).
    pub events_token: Option<String>,
    /// Largest `POST /api/NAME/events` body, in bytes (larger: 413).
    pub max_events_body: usize,
    /// Byte budget of each snapshot's decoded string chunks (the library's
    /// [`colsnap::OpenOptions::cache_bytes`]). Pages of whole rows at random
    /// positions of a large snapshot decode a chunk per string when the
    /// chunks they touch do not fit.
    pub cache_bytes: usize,
    /// Byte budget of each snapshot's single strings kept apart from their
    /// chunks (the library's [`colsnap::OpenOptions::string_cache_bytes`]):
    /// the strings of the rows served recently, so that pages asked again
    /// decode nothing.
    pub string_cache_bytes: usize,
    /// Bytes of strings an SSE stream reads ahead at once (a window of
    /// rows whose strings are read together, each string chunk once, then
    /// written as the client takes them): the stream's memory, against the
    /// passes over the string tables (one a window).
    pub stream_window_bytes: usize,
    /// The row stores: every row's JSON in small compressed blocks, built
    /// once per snapshot version, so pages and streams of whole rows read
    /// a block per row instead of decoding string chunks (see
    /// `docs/http.md`).
    pub row_store: RowStoreConfig,
    /// Publish every snapshot served into this directory (SPEC.md section
    /// 15: content-addressed objects, manifests, the pointer
    /// `NAME.latest.json`; only new objects are written) and serve it at
    /// `/published/`: objects and manifests cached forever (`immutable`),
    /// the pointer revalidated. `None`: nothing published.
    pub publish_dir: Option<PathBuf>,
    /// The smallest object a published snapshot is cut into
    /// (`colsnap::publish::PublishOptions::min_object`; 16 KiB by default).
    pub publish_min_object: u64,
}

impl ServerConfig {
    /// Defaults for `files`: key `id`, 50 rows a page, at most 1,000, no
    /// rate limit, no CORS, 30 s timeout, 8 KiB query strings.
    pub fn new(files: Vec<PathBuf>) -> Self {
        ServerConfig {
            files,
            key: colsnap::events::DEFAULT_KEY_FIELD.to_string(),
            events: Vec::new(),
            default_limit: 50,
            max_limit: 1000,
            rate_limit: None,
            cors: None,
            timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            max_query_bytes: 8 * 1024,
            heartbeat: Duration::from_secs(15),
            sse_retry_ms: 3000,
            stream_pause: Duration::ZERO,
            result_cache_rows: 16 << 20,
            reload_interval: Some(Duration::from_secs(2)),
            web: None,
            events_token: None,
            max_events_body: 8 << 20,
            cache_bytes: colsnap::OpenOptions::default().cache_bytes,
            string_cache_bytes: colsnap::OpenOptions::default().string_cache_bytes,
            stream_window_bytes: 128 << 20,
            row_store: RowStoreConfig {
                mode: RowStoreMode::Background,
                dir: None,
                window_bytes: 128 << 20,
                builder: None,
            },
            publish_dir: None,
            publish_min_object: colsnap::publish::DEFAULT_MIN_OBJECT,
        }
    }
}

/// One served snapshot.
pub struct Dataset {
    /// URL name (the file stem).
    pub name: String,
    /// The file.
    pub path: PathBuf,
    /// The open snapshot.
    pub snap: Snapshot,
    /// Its query engine, shared by every request.
    pub engine: Engine,
    /// File length in bytes.
    pub file_len: u64,
    /// Content identity of what the API answers from: the file's identity,
    /// and with an event log, the CRC-32C of the log's bytes.
    pub identity: String,
    /// The file's identity: 64 bits of the SHA-256 of its trailer, its
    /// footer (which holds every section's checksum) and its length.
    pub file_identity: String,
    /// The event log applied, if any.
    pub events: Option<PathBuf>,
    /// Events applied from the log.
    pub events_applied: u64,
    key: String,
    events_sig: Option<FileSig>,
    /// The engine over the snapshot alone (its columns, loaded once, are
    /// the base of every later view with events).
    pub(crate) base: Engine,
    /// Every event applied, in order (replayed for `GET /api/NAME/events`
    /// and to build the next view).
    pub(crate) history: Arc<Vec<Arc<colsnap::events::Event>>>,
    /// The source the engine queries (the overlay of every event
    /// applied): the next POST applies its events to a clone of it.
    overlay: Option<Arc<colsnap::events::OverlaySource>>,
    /// CRC-32C of the event log's bytes, when there is a log.
    log_crc: Option<u32>,
    /// What the file looked like when opened (length, mtime, inode).
    signature: Option<FileSig>,
    /// The file as opened: `/files/NAME.colsnap` reads this version even
    /// after a new build was renamed over the path.
    file: Arc<std::fs::File>,
    results: Mutex<ResultCache>,
    /// The row store of this version (whole rows), once built.
    pub(crate) store: Arc<StoreSlot>,
}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset")
            .field("name", &self.name)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// What identifies a file version on disk without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileSig {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

impl FileSig {
    pub(crate) fn of(m: &std::fs::Metadata) -> FileSig {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(m);
        #[cfg(not(unix))]
        let inode = 0;
        FileSig {
            len: m.len(),
            modified: m.modified().ok(),
            inode,
        }
    }
}

/// What a snapshot file's version is, for its identity (ETags, cursors,
/// stream ids) and its row store: the SHA-256, in hex, of its trailer, its
/// stored footer (which holds every section's checksum) and its length.
/// (Not a CRC of the trailer: the trailer ends with its own CRC-32C and a
/// fixed magic, so a CRC-32C over it is the same for every file.)
pub(crate) fn file_version(f: &mut std::fs::File, len: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    const TRAILER: u64 = colsnap::format::TRAILER_LEN as u64;
    let tail = len.min(TRAILER);
    let mut bytes = vec![0; tail as usize];
    f.seek(SeekFrom::End(-(tail as i64)))?;
    f.read_exact(&mut bytes)?;
    if tail == TRAILER {
        let at = u64::from_le_bytes(bytes[0..8].try_into().expect("8 bytes"));
        let stored = u64::from(u32::from_le_bytes(
            bytes[8..12].try_into().expect("4 bytes"),
        ));
        if at.checked_add(stored) == Some(len - TRAILER) {
            let mut footer = vec![0; stored as usize];
            f.seek(SeekFrom::Start(at))?;
            f.read_exact(&mut footer)?;
            bytes.extend_from_slice(&footer);
        }
    }
    bytes.extend_from_slice(&len.to_le_bytes());
    Ok(colsnap::publish::sha256_hex(&bytes).into_bytes())
}

/// A file's identity from its [`file_version`]: its first 16 hex digits
/// (64 bits).
fn identity_of(version: &[u8]) -> String {
    String::from_utf8_lossy(&version[..16]).into_owned()
}

/// Recent query results (row numbers in result order), bounded by rows.
#[derive(Default)]
struct ResultCache {
    map: HashMap<String, Arc<Vec<u32>>>,
    order: VecDeque<String>,
    rows: usize,
}

impl Dataset {
    /// Open `path` as the dataset `name`, with the event log `events`
    /// applied (rows identified by `key`), decoded string chunks cached up
    /// to `cache_bytes` (and single strings to `cache_bytes.1`); its row
    /// store built per `store` (the configuration and the directory of
    /// temporary stores), none when `None`.
    pub fn open(
        name: String,
        path: PathBuf,
        key: &str,
        events: Option<PathBuf>,
        cache_bytes: (usize, usize),
        store: Option<(&RowStoreConfig, &std::path::Path)>,
    ) -> anyhow::Result<Dataset> {
        let at = |e: &dyn std::fmt::Display| anyhow::anyhow!("{}: {e}", path.display());
        // The snapshot and the kept file handle must be one version: retry
        // when a new build was renamed over the path between the two opens.
        let mut tries = 0;
        let (snap, mut f, meta) = loop {
            let f = std::fs::File::open(&path).map_err(|e| at(&e))?;
            let opts = colsnap::OpenOptions {
                cache_bytes: cache_bytes.0,
                string_cache_bytes: cache_bytes.1,
                ..Default::default()
            };
            let snap = Snapshot::open_with(&path, opts).map_err(|e| at(&e))?;
            let meta = f.metadata().map_err(|e| at(&e))?;
            let now = std::fs::metadata(&path).map_err(|e| at(&e))?;
            tries += 1;
            if FileSig::of(&meta) == FileSig::of(&now) || tries == 3 {
                break (snap, f, meta);
            }
        };
        let file_len = meta.len();
        let signature = Some(FileSig::of(&meta));
        let version = file_version(&mut f, file_len).map_err(|e| at(&e))?;
        let file_identity = identity_of(&version);
        let mut identity = file_identity.clone();
        let mut events_applied = 0;
        let mut events_sig = None;
        let mut log_crc = None;
        let mut history = Vec::new();
        let mut overlay = None;
        let slot = Arc::new(StoreSlot::default());
        if let Some((cfg, tmp)) = store {
            let at = (name.as_str(), path.as_path(), file_identity.as_str());
            rowstore::start(cfg, tmp, at, version, &snap, &slot);
        }
        let base = Engine::new(StoredSource::new(snap.clone(), slot.clone()));
        let engine = match &events {
            Some(log) => {
                let at = |e: &dyn std::fmt::Display| anyhow::anyhow!("{}: {e}", log.display());
                // The signature before the bytes: a line appended while
                // they are read changes the file after it, so the next
                // look reads the log again (taken after, it would hide
                // that line for ever, and a POST could append after it).
                events_sig = Some(FileSig::of(&std::fs::metadata(log).map_err(|e| at(&e))?));
                let bytes = std::fs::read(log).map_err(|e| at(&e))?;
                let crc = crc32c::crc32c(&bytes);
                log_crc = Some(crc);
                identity.push_str(&format!("{crc:08x}"));
                let mut ov =
                    colsnap::events::Overlay::new(snap.clone(), key).map_err(|e| at(&e))?;
                for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
                    let lno = i as u64 + 1;
                    let text = std::str::from_utf8(line).map_err(|_| {
                        at(&format!("event at line {lno}: the line is not valid UTF-8"))
                    })?;
                    if text.trim().is_empty() {
                        continue;
                    }
                    let ev = colsnap::events::Event::parse(lno, text).map_err(|e| at(&e))?;
                    ov.apply(&ev, lno).map_err(|e| at(&e))?;
                    history.push(Arc::new(ev));
                }
                events_applied = ov.applied();
                let src = Arc::new(colsnap::events::OverlaySource::with_base(ov, base.clone()));
                overlay = Some(src.clone());
                Engine::from_source(src)
            }
            None => base.clone(),
        };
        Ok(Dataset {
            name,
            path,
            snap,
            engine,
            file_len,
            identity,
            file_identity,
            events,
            events_applied,
            key: key.to_string(),
            events_sig,
            base,
            history: Arc::new(history),
            overlay,
            log_crc,
            signature,
            file: Arc::new(f),
            results: Mutex::new(ResultCache::default()),
            store: slot,
        })
    }

    /// A strong entity tag for the response to `path?query`.
    pub fn etag(&self, path: &str, query: &str) -> String {
        let a = crc32c::crc32c_append(crc32c::crc32c(path.as_bytes()), b"?");
        let a = crc32c::crc32c_append(a, query.as_bytes());
        format!("\"{}-{a:08x}{:04x}\"", self.identity, query.len() & 0xffff)
    }

    /// The rows matching `sel` in result order, from the cache or the engine.
    pub(crate) fn result(
        &self,
        sel: &params::Selection,
        cap: usize,
    ) -> Result<Arc<Vec<u32>>, ApiError> {
        if let Some(r) = self
            .results
            .lock()
            .ok()
            .and_then(|c| c.map.get(&sel.canonical).cloned())
        {
            return Ok(r);
        }
        let e = &self.engine;
        let q = &sel.query;
        let mut set = e
            .filter(&q.filters)
            .map_err(|x| ApiError::lib(Some("where"), x))?;
        if let Some(s) = &q.search {
            set.and_with(&e.search(s).map_err(|x| ApiError::lib(Some("search"), x))?);
        }
        let rows = Arc::new(
            e.sort(set.to_vec(), &q.sort)
                .map_err(|x| ApiError::lib(Some("sort"), x))?,
        );
        if rows.len() <= cap
            && let Ok(mut c) = self.results.lock()
            && !c.map.contains_key(&sel.canonical)
        {
            while c.rows + rows.len() > cap {
                let Some(old) = c.order.pop_front() else {
                    break;
                };
                if let Some(v) = c.map.remove(&old) {
                    c.rows -= v.len();
                }
            }
            c.rows += rows.len();
            c.order.push_back(sel.canonical.clone());
            c.map.insert(sel.canonical.clone(), rows.clone());
        }
        Ok(rows)
    }
}

/// The server's shared state.
pub struct AppState {
    /// Configuration.
    pub config: ServerConfig,
    /// Snapshots by name; a replaced file swaps its entry whole, and every
    /// request takes one `Arc` at its start, so it sees one version only.
    datasets: RwLock<HashMap<String, Arc<Dataset>>>,
    /// SSE streams now open (a stream decrements it when dropped, also
    /// when its client goes away mid-stream).
    pub active_streams: Arc<AtomicUsize>,
    limiter: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
    /// Per dataset: the lock that serializes event POSTs and the channel
    /// of applied events.
    live: HashMap<String, Arc<live::Live>>,
    /// Set when the server shuts down: event streams end.
    down: tokio::sync::watch::Sender<bool>,
    /// Where temporary row stores live (removed with the state).
    store_dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("datasets", &self.names())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Open every file of `config`; names are file stems and must be unique.
    pub fn load(config: ServerConfig) -> anyhow::Result<Arc<AppState>> {
        let mut datasets = HashMap::new();
        let store_dir = match (&config.row_store.mode, &config.row_store.dir) {
            (RowStoreMode::Off, _) | (_, Some(_)) => None,
            _ => Some(
                tempfile::Builder::new()
                    .prefix("colsnap-serve-rows.")
                    .tempdir()
                    .map_err(|e| anyhow::anyhow!("a temporary directory for row stores: {e}"))?,
            ),
        };
        let store = store_config(&config.row_store, store_dir.as_ref());
        for p in &config.files {
            let name = p
                .file_stem()
                .and_then(|s| s.to_str())
                .ok_or_else(|| {
                    anyhow::anyhow!("{}: no UTF-8 file stem to serve it as", p.display())
                })?
                .to_string();
            if datasets.contains_key(&name) {
                anyhow::bail!("two snapshots would be served as `{name}`: rename one file");
            }
            let log = log_of(&config, &name, p);
            datasets.insert(
                name.clone(),
                Arc::new(Dataset::open(
                    name,
                    p.clone(),
                    &config.key,
                    log,
                    (config.cache_bytes, config.string_cache_bytes),
                    store.as_ref().map(|(c, d)| (c, d.as_path())),
                )?),
            );
        }
        if let Some(dir) = &config.publish_dir {
            for ds in datasets.values() {
                publish(ds, dir, config.publish_min_object)?;
            }
        }
        if let Some((n, _)) = config
            .events
            .iter()
            .find(|(n, _)| !datasets.contains_key(n))
        {
            anyhow::bail!("--events {n}=...: no snapshot is served as `{n}`");
        }
        let limiter = match config.rate_limit {
            Some(n) => {
                let n = NonZeroU32::new(n)
                    .ok_or_else(|| anyhow::anyhow!("--rate-limit must be at least 1"))?;
                Some(Arc::new(RateLimiter::keyed(Quota::per_second(n))))
            }
            None => None,
        };
        let live = datasets
            .keys()
            .map(|n| (n.clone(), Arc::new(live::Live::new())))
            .collect();
        Ok(Arc::new(AppState {
            config,
            live,
            down: tokio::sync::watch::channel(false).0,
            store_dir,
            datasets: RwLock::new(datasets),
            active_streams: Arc::new(AtomicUsize::new(0)),
            limiter,
        }))
    }

    /// The dataset `name`, or a 404 naming it.
    pub fn dataset(&self, name: &str) -> Result<Arc<Dataset>, ApiError> {
        let found = self.datasets.read().ok().and_then(|d| d.get(name).cloned());
        found.ok_or_else(|| {
            let known = self.names();
            ApiError::not_found(
                Some("name"),
                format!("no snapshot `{name}`; served: {}", known.join(", ")),
            )
        })
    }

    /// Names served, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = match self.datasets.read() {
            Ok(d) => d.keys().cloned().collect(),
            Err(_) => Vec::new(),
        };
        v.sort();
        v
    }

    /// Every dataset, by name.
    pub fn all(&self) -> Vec<Arc<Dataset>> {
        let mut v: Vec<Arc<Dataset>> = match self.datasets.read() {
            Ok(d) => d.values().cloned().collect(),
            Err(_) => Vec::new(),
        };
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Reopen every snapshot whose file changed on disk since it was
    /// opened, and swap it in. A file that does not open (yet) keeps the old
    /// version served. Returns the names swapped.
    pub fn reload_changed(&self) -> Vec<String> {
        let mut swapped = Vec::new();
        for ds in self.all() {
            // An event POST in progress writes the log and swaps the new
            // view in itself: look again next time.
            let _posting = match self.live.get(&ds.name).map(|l| l.lock.try_lock()) {
                Some(Ok(g)) => Some(g),
                Some(Err(_)) => continue,
                None => None,
            };
            let Ok(meta) = std::fs::metadata(&ds.path) else {
                continue;
            };
            // The log as at start: the configured one, else
            // `NAME.events.ndjson` when it exists now (it may have appeared,
            // or gone with a compacted snapshot put in its place).
            let log = log_of(&self.config, &ds.name, &ds.path);
            let log_now = log
                .as_ref()
                .and_then(|l| std::fs::metadata(l).ok())
                .map(|m| FileSig::of(&m));
            if ds.signature.as_ref() == Some(&FileSig::of(&meta))
                && ds.events == log
                && ds.events_sig == log_now
            {
                continue;
            }
            match Dataset::open(
                ds.name.clone(),
                ds.path.clone(),
                &ds.key,
                log,
                (self.config.cache_bytes, self.config.string_cache_bytes),
                self.store_config().as_ref().map(|(c, d)| (c, d.as_path())),
            ) {
                Ok(new) => {
                    if let Some(dir) = &self.config.publish_dir
                        && let Err(e) = publish(&new, dir, self.config.publish_min_object)
                    {
                        tracing::warn!(name = %ds.name, error = %e, "the new version was not published: /published/ keeps the old one");
                    }
                    tracing::info!(name = %ds.name, identity = %new.identity, "snapshot replaced on disk: now serving the new version");
                    let new = Arc::new(new);
                    if let Ok(mut d) = self.datasets.write() {
                        d.insert(ds.name.clone(), new.clone());
                        swapped.push(ds.name.clone());
                    }
                    if let Some(l) = self.live.get(&ds.name) {
                        l.reloaded(&ds, &new);
                    }
                }
                Err(e) => {
                    tracing::warn!(name = %ds.name, error = %e, "snapshot changed on disk but does not open: still serving the old version");
                }
            }
        }
        swapped
    }

    /// The row-store configuration and directory, `None` when off.
    fn store_config(&self) -> Option<(RowStoreConfig, PathBuf)> {
        store_config(&self.config.row_store, self.store_dir.as_ref())
    }

    /// SSE streams open now.
    pub fn streams(&self) -> usize {
        self.active_streams.load(Ordering::SeqCst)
    }
}

/// The configured log of `name`, else `NAME.events.ndjson` beside the
/// snapshot `path` when it exists (where `POST /api/NAME/events` writes).
fn log_of(config: &ServerConfig, name: &str, path: &std::path::Path) -> Option<PathBuf> {
    config
        .events
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, l)| l.clone())
        .or_else(|| Some(live::default_log(path, name)).filter(|l| l.is_file()))
}

/// Publish `ds`'s file into `dir` (objects first, the pointer last), cut
/// into objects of at least `min_object` bytes.
fn publish(ds: &Dataset, dir: &std::path::Path, min_object: u64) -> anyhow::Result<()> {
    let opts = colsnap::publish::PublishOptions {
        name: ds.name.clone(),
        min_object: min_object.max(1),
        events: Vec::new(),
        key: colsnap::events::DEFAULT_KEY_FIELD.into(),
    };
    let r = colsnap::publish::publish_file(&ds.path, dir, &opts).map_err(|e| {
        anyhow::anyhow!(
            "publishing {} into {}: {e}",
            ds.path.display(),
            dir.display()
        )
    })?;
    tracing::info!(name = %ds.name, manifest = %r.manifest, objects = r.objects, written = r.objects_written, "published");
    Ok(())
}

/// The row-store configuration and the directory its stores go to (the
/// configured one, else the temporary `tmp`); `None` when off.
fn store_config(
    rs: &RowStoreConfig,
    tmp: Option<&tempfile::TempDir>,
) -> Option<(RowStoreConfig, PathBuf)> {
    match (&rs.mode, &rs.dir, tmp) {
        (RowStoreMode::Off, _, _) => None,
        (_, Some(dir), _) => Some((rs.clone(), dir.clone())),
        (_, None, Some(t)) => Some((rs.clone(), t.path().to_path_buf())),
        _ => None,
    }
}

async fn guard(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if req
        .uri()
        .query()
        .is_some_and(|q| q.len() > st.config.max_query_bytes)
    {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            Some("query"),
            format!(
                "query string longer than {} bytes",
                st.config.max_query_bytes
            ),
        )
        .into_response();
    }
    if let Some(lim) = &st.limiter {
        let ip = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        if let Err(nu) = lim.check_key(&ip) {
            let wait = nu.wait_time_from(DefaultClock::default().now());
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                None,
                format!(
                    "rate limit of {} requests per second exceeded",
                    st.config.rate_limit.unwrap_or(0)
                ),
            );
            e.retry_after = Some(secs.max(1));
            return e.into_response();
        }
    }
    next.run(req).await
}

/// The application: every route and layer (compression, CORS, timeout,
/// rate limit, query-string limit, request logs).
pub fn router(state: Arc<AppState>) -> Router {
    // A file's bytes go out as they are: whole, one range
    // (`application/octet-stream`) or several (`multipart/byteranges`).
    let compress = CompressionLayer::new().compress_when(
        tower_http::compression::DefaultPredicate::new()
            .and(NotForContentType::const_new("application/octet-stream"))
            .and(NotForContentType::const_new("multipart/byteranges"))
            // A range of a JSON file (a published manifest) is those bytes.
            .and(
                |_: StatusCode,
                 _: axum::http::Version,
                 h: &axum::http::HeaderMap,
                 _: &axum::http::Extensions| {
                    !h.contains_key(header::CONTENT_RANGE)
                },
            ),
    );
    let mut app = api::routes()
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(compress)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            state.config.timeout,
        ));
    if let Some(origin) = &state.config.cors {
        let allow = if origin == "*" {
            AllowOrigin::any()
        } else {
            AllowOrigin::exact(
                HeaderValue::from_str(origin).unwrap_or(HeaderValue::from_static("null")),
            )
        };
        app = app.layer(
            CorsLayer::new()
                .allow_origin(allow)
                .allow_methods([
                    axum::http::Method::GET,
                    axum::http::Method::HEAD,
                    axum::http::Method::POST,
                ])
                .allow_headers([
                    header::IF_NONE_MATCH,
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    header::RANGE,
                    "last-event-id".parse().unwrap_or(header::ACCEPT),
                ])
                .expose_headers([
                    header::ETAG,
                    header::LINK,
                    header::CONTENT_RANGE,
                    header::RETRY_AFTER,
                ]),
        );
    }
    if let Some(dir) = &state.config.web {
        // The browser grid: static files, compressed (the wasm module
        // too): a file's `.gz` beside it when there is one (web/build.sh
        // writes them with zopfli, smaller than any on-the-fly gzip) to a
        // client that takes gzip, else compressed here on the fly.
        let page = Router::new()
            .route(
                "/",
                axum::routing::get(|| async { axum::response::Redirect::temporary("/web/") }),
            )
            .nest_service(
                "/web",
                tower_http::services::ServeDir::new(dir).precompressed_gzip(),
            )
            .layer(middleware::from_fn(web_redirects))
            .layer(middleware::from_fn_with_state(dir.clone(), web_hidden))
            .layer(CompressionLayer::new());
        app = app.merge(page);
    }
    app.layer(middleware::from_fn(weak_tags_when_encoded))
        .layer(middleware::from_fn(json_errors))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// What `/web/` never serves (a `404`): a name starting with a dot
/// (`.git/`, `.env`) anywhere in the path, and a file or directory whose
/// real path, symbolic links followed, lies outside the directory.
async fn web_hidden(State(dir): State<PathBuf>, req: Request, next: Next) -> Response {
    let Some(rest) = req.uri().path().strip_prefix("/web") else {
        return next.run(req).await;
    };
    let mut inside = dir.clone();
    for seg in rest.split('/').filter(|s| !s.is_empty()) {
        let seg = percent_encoding::percent_decode_str(seg).decode_utf8_lossy();
        if seg.starts_with('.') || seg.contains('/') || seg.contains('\\') {
            return ApiError::not_found(None, format!("no file at `{}`", req.uri().path()))
                .into_response();
        }
        inside.push(seg.as_ref());
    }
    let outside = match (std::fs::canonicalize(&inside), std::fs::canonicalize(&dir)) {
        (Ok(real), Ok(root)) => !real.starts_with(root),
        _ => false, // missing: ServeDir answers 404
    };
    if outside {
        return ApiError::not_found(None, format!("no file at `{}`", req.uri().path()))
            .into_response();
    }
    next.run(req).await
}

/// `ServeDir` under `/web` sees paths without the prefix, so it redirects
/// a directory asked without its slash (`/web/pkg`) to `/pkg/`: the prefix
/// is put back.
async fn web_redirects(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    if r.status().is_redirection()
        && let Some(to) = r.headers().get(header::LOCATION)
        && to.as_bytes().starts_with(b"/")
        && !to.as_bytes().starts_with(b"/web/")
    {
        let mut fixed = b"/web".to_vec();
        fixed.extend_from_slice(to.as_bytes());
        if let Ok(v) = HeaderValue::from_bytes(&fixed) {
            r.headers_mut().insert(header::LOCATION, v);
        }
    }
    r
}

/// An answer compressed on the way out is other bytes than the one its
/// strong tag names: its tag goes out weak (`W/"..."`), as nginx's gzip
/// does. `If-None-Match` compares tags weakly, so it still revalidates;
/// `If-Range` needs strong tags and is only for files, never compressed.
async fn weak_tags_when_encoded(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    if r.headers().contains_key(header::CONTENT_ENCODING)
        && let Some(tag) = r.headers().get(header::ETAG)
        && tag.as_bytes().starts_with(b"\"")
    {
        let mut weak = b"W/".to_vec();
        weak.extend_from_slice(tag.as_bytes());
        if let Ok(v) = HeaderValue::from_bytes(&weak) {
            r.headers_mut().insert(header::ETAG, v);
        }
    }
    r
}

/// Errors answered without a body by a layer or a library (the router's
/// `405`, the timeout's `503`, a static directory's `404`) get the body
/// and `no-store` every other error has: `{"error":{"parameter":null,
/// "message":...}}`. Their other headers (`Allow`, `Retry-After`) stay.
async fn json_errors(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let r = next.run(req).await;
    let status = r.status();
    if !(status.is_client_error() || status.is_server_error())
        || r.headers().contains_key(header::CONTENT_TYPE)
    {
        return r;
    }
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => format!("{method} is not allowed on {path}"),
        StatusCode::SERVICE_UNAVAILABLE => {
            "no answer within the server's timeout (--timeout); try again later".to_string()
        }
        StatusCode::NOT_FOUND => format!("nothing at {path}"),
        s => s.canonical_reason().unwrap_or("error").to_string(),
    };
    let (parts, _) = r.into_parts();
    let mut e = error::ApiError::new(status, None, message).into_response();
    for (k, v) in &parts.headers {
        if k != header::CONTENT_LENGTH
            && k != header::CONTENT_ENCODING
            && k != header::TRANSFER_ENCODING
            && !e.headers().contains_key(k)
        {
            e.headers_mut().insert(k.clone(), v.clone());
        }
    }
    e
}

/// Serve `state` on `listener` until `shutdown` completes (then finish the
/// requests in flight).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Some(lim) = state.limiter.clone() {
        // Forget idle clients now and then so the limiter's memory stays bounded.
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                lim.retain_recent();
            }
        });
    }
    if let Some(every) = state.config.reload_interval {
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let st = st.clone();
                let _ = tokio::task::spawn_blocking(move || st.reload_changed()).await;
            }
        });
    }
    let header_timeout = state.config.header_timeout;
    let grace = state.config.timeout;
    let down = state.down.clone();
    let app = router(state);
    // The accept loop of `axum::serve`, with hyper's header read timeout
    // (which needs a timer, and axum's loop sets none): without it a client
    // sending its headers a byte at a time held a connection for ever.
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let svc = tower::ServiceExt::map_request(
            app.clone(),
            move |req: axum::http::Request<hyper::body::Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(addr));
                req
            },
        );
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(
                hyper_util::rt::TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(svc),
            );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::trace!(error = %e, "connection ended");
            }
        });
    }
    drop(listener);
    // Event streams end now (they never finish by themselves); the other
    // requests in flight get the request time (--timeout) to finish: a
    // client that stops reading a long answer does not hold the server.
    down.send_replace(true);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still in flight {:.0} s after the shutdown began (--timeout): closed",
            grace.as_secs_f64()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two builds of the same length (one title's letter changed) have two
    /// versions, hence two identities; the same file has one.
    #[test]
    fn files_of_the_same_length_have_their_own_versions() {
        let dir = tempfile::tempdir().unwrap();
        let mut by_len: HashMap<u64, (Vec<u8>, u8)> = HashMap::new();
        for c in b'a'..=b'z' {
            let rows: String = (0..50)
                .map(|i| {
                    let t = if i == 7 { c as char } else { 'x' };
                    format!("{{\"id\":{i},\"title\":\"issue {i} {t}\"}}\n")
                })
                .collect();
            let bytes = colsnap::build_to_vec(rows.as_bytes(), &Default::default()).unwrap();
            let path = dir.path().join(format!("{}.colsnap", c as char));
            std::fs::write(&path, &bytes).unwrap();
            let len = bytes.len() as u64;
            let v = file_version(&mut std::fs::File::open(&path).unwrap(), len).unwrap();
            assert_eq!(
                v,
                file_version(&mut std::fs::File::open(&path).unwrap(), len).unwrap()
            );
            if let Some((w, other)) = by_len.get(&len) {
                assert_ne!(
                    identity_of(&v),
                    identity_of(w),
                    "{} and {} share an identity",
                    c as char,
                    *other as char
                );
                return;
            }
            by_len.insert(len, (v, c));
        }
        panic!("no two builds of the same length");
    }
}
