//! `colsnap-serve FILE... [--addr 127.0.0.1:8080] [--events NAME=LOG] [--rate-limit N] [--cors ORIGIN] [--write-token-file F] [--key id]`:
//! serve snapshots as an HTTP API (see docs/http.md).

use clap::Parser;
use colsnap_server::{AppState, ServerConfig, serve};
use std::path::PathBuf;
use std::time::Duration;

/// Serve colsnap snapshots as a paged, searchable, streaming HTTP API.
#[derive(Debug, Parser)]
#[command(
    name = "colsnap-serve",
    version,
    after_help = "Each FILE is served under its file stem NAME:
  GET  /api/NAME              schema, row count, columns and statistics
  GET  /api/NAME/rows         ?page=&limit=&offset=&sort=&where=&search=&in=&fields=&cursor=
  GET  /api/NAME/rows/KEY     one row by its key field (--key)
  GET  /api/NAME/stream       every matching row as Server-Sent Events (?chunkSize=, resume with Last-Event-ID)
  GET  /api/NAME/events       the applied events as Server-Sent Events (?since=SEQ)
  POST /api/NAME/events       append NDJSON events (Authorization: Bearer TOKEN, see --write-token-file)
  GET  /files/NAME.colsnap    the snapshot's bytes (Range requests)
  GET  /published/...         with --publish-dir: NAME.latest.json, manifests/, objects/ (immutable)
  GET  /api, /healthz, /web/  the list, health, the browser grid
Also run as `colsnap serve ARGS`. Ctrl-C or SIGTERM: finish the requests in flight, then exit.
Every endpoint with examples: docs/http.md."
)]
struct Args {
    /// Snapshot files.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Requests per second per client address (token bucket); no limit when absent.
    #[arg(long, value_name = "N")]
    rate_limit: Option<u32>,
    /// Allowed CORS origin (`*` for any).
    #[arg(long, value_name = "ORIGIN")]
    cors: Option<String>,
    /// Apply the event log LOG (NDJSON) to the snapshot NAME (repeatable).
    #[arg(long, value_name = "NAME=LOG")]
    events: Vec<String>,
    /// Key field for /api/NAME/rows/KEY and the event logs.
    #[arg(long, value_name = "FIELD", default_value = "id")]
    key: String,
    /// Largest `limit` and `chunkSize`.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    max_limit: usize,
    /// Seconds before a request without response headers gets a 503.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    timeout: u64,
    /// Seconds a connection may take to send a request's headers, or sit
    /// idle between requests, before it is closed.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    header_timeout: u64,
    /// Megabytes of decoded string chunks cached per snapshot: random pages
    /// of whole rows of a large snapshot decode a chunk per string when the
    /// chunks they touch do not fit.
    #[arg(long, value_name = "MB", default_value_t = 64)]
    cache_mb: usize,
    /// Megabytes of single strings cached per snapshot: the strings of the
    /// rows served recently (read from chunks not worth caching whole), so
    /// that pages asked again decode nothing.
    #[arg(long, value_name = "MB", default_value_t = 32)]
    string_cache_mb: usize,
    /// Megabytes of strings each SSE stream reads ahead at once: a window
    /// of rows whose strings are read together, each string chunk once
    /// (more: fewer passes over the string tables, more memory a stream).
    #[arg(long, value_name = "MB", default_value_t = 128)]
    stream_window_mb: usize,
    /// When to write each snapshot's row store: every row's JSON in small
    /// compressed blocks on disk, so that pages and streams of whole rows
    /// read a block per row instead of decoding string chunks.
    /// `background` (default): after start, whole rows written from the
    /// snapshot until it is ready; `startup`: before listening; `off`.
    #[arg(long, value_name = "WHEN", default_value = "background")]
    row_store: colsnap_server::RowStoreMode,
    /// Keep row stores in DIR across restarts (one file per snapshot
    /// version, reused when intact; older versions of a name removed).
    /// Default: a temporary directory removed at exit.
    #[arg(long, value_name = "DIR")]
    row_store_dir: Option<PathBuf>,
    /// Publish every snapshot into DIR (content-addressed objects, a
    /// manifest, the pointer NAME.latest.json; only new objects are
    /// written, also when a file is replaced) and serve DIR at /published/:
    /// objects and manifests `Cache-Control: immutable`, the pointer
    /// revalidated. For CDNs and for clients that read the snapshot
    /// themselves (`colsnap query URL`, the browser grid).
    #[arg(long, value_name = "DIR")]
    publish_dir: Option<PathBuf>,
    /// With --publish-dir: the smallest object a snapshot is cut into;
    /// consecutive sections are grouped up to this size (`4K`, `16K`,
    /// `1M`). Smaller objects carry fewer bytes a page does not need, but
    /// cost more requests: over HTTP/2 (CDNs) they pay, over HTTP/1.1
    /// (six requests at a time) every six more cost a round trip
    /// (docs/design.md, "Published snapshots over a slow link").
    #[arg(long, value_name = "SIZE", default_value = "16K", value_parser = parse_size, requires = "publish_dir")]
    publish_min_object: u64,
    /// Seconds between looks for replaced snapshot files (0: never).
    #[arg(long, value_name = "SECS", default_value_t = 2)]
    reload: u64,
    /// Directory of the browser grid served at /web/ (`/` redirects there);
    /// defaults to the source tree's web/www (build it with web/build.sh).
    #[arg(long, value_name = "DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../web/www"))]
    web: PathBuf,
    /// Serve no page at / and /web/.
    #[arg(long)]
    no_web: bool,
    /// Accept `POST /api/NAME/events` with `Authorization: Bearer TOKEN`,
    /// TOKEN being the contents of the file F (surrounding whitespace
    /// trimmed; not empty; on unix not readable by others: `chmod 600 F`).
    #[arg(long, value_name = "F", conflicts_with = "events_token")]
    write_token_file: Option<PathBuf>,
    /// Accept `POST /api/NAME/events` with `Authorization: Bearer TOKEN`
    /// (default: the COLSNAP_EVENTS_TOKEN environment variable; without
    /// a token, POSTs are refused). Prefer --write-token-file: a command
    /// line is visible to every local user.
    #[arg(long, value_name = "TOKEN")]
    events_token: Option<String>,
}

/// The token in `path`: its text trimmed, which must not be empty; on unix
/// the file must not be readable or writable by others.
fn read_token_file(path: &std::path::Path) -> anyhow::Result<String> {
    let at = |m: String| anyhow::anyhow!("--write-token-file {}: {m}", path.display());
    let meta = std::fs::metadata(path).map_err(|e| at(e.to_string()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o006 != 0 {
            return Err(at(format!(
                "other users can read or write it (mode {:o}): `chmod 600 {}`",
                mode & 0o777,
                path.display()
            )));
        }
    }
    if !meta.is_file() {
        return Err(at("not a file".into()));
    }
    let bytes = std::fs::read(path).map_err(|e| at(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| at("the token is not UTF-8 text".into()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(at(
            "the file is empty: write the bearer token into it".into()
        ));
    }
    if token.chars().any(|c| c.is_control() || c == ' ') {
        return Err(at(
            "the token holds a space, a line break or a control character: one line, no spaces"
                .into(),
        ));
    }
    Ok(token.to_string())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args
        .get(1)
        .is_some_and(|a| a == colsnap_server::BUILDER_ARG)
    {
        return colsnap_server::builder_main(&args[2..]);
    }
    // Blocking work (pages, stream batches) runs on a few threads: every
    // thread that allocates gets a malloc arena of its own that keeps its
    // high-water mark, so 32 clients at once would otherwise leave tens of
    // arenas of freed page buffers behind.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads((2 * cores).max(4))
        .build()?;
    let r = rt.block_on(server());
    // `serve` gave the requests in flight --timeout to finish; a blocking
    // task still running then (a long stream batch) does not keep the
    // process (dropping the runtime waited for it, unbounded).
    rt.shutdown_timeout(Duration::from_secs(1));
    r
}

async fn server() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=info".into()),
        )
        .with_target(false)
        // A log line that cannot be written (stderr closed: `colsnap-serve
        // ... 2>&1 | head`) is dropped; the default reports it with
        // `eprintln!`, which panics on the same closed stderr and takes the
        // request down with it.
        .log_internal_errors(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let a = Args::parse();
    if a.max_limit == 0 {
        anyhow::bail!("--max-limit must be at least 1");
    }
    let mut cfg = ServerConfig::new(a.files);
    cfg.rate_limit = a.rate_limit;
    cfg.cors = a.cors;
    cfg.key = a.key;
    for e in &a.events {
        let (n, l) = e
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--events takes NAME=LOG (got `{e}`)"))?;
        cfg.events.push((n.to_string(), PathBuf::from(l)));
    }
    cfg.events_token = match &a.write_token_file {
        Some(f) => Some(read_token_file(f)?),
        None => a
            .events_token
            .or_else(|| std::env::var("COLSNAP_EVENTS_TOKEN").ok())
            .filter(|t| !t.is_empty()),
    };
    cfg.max_limit = a.max_limit;
    cfg.cache_bytes = a.cache_mb.saturating_mul(1 << 20);
    cfg.string_cache_bytes = a.string_cache_mb.saturating_mul(1 << 20);
    cfg.stream_window_bytes = a.stream_window_mb.max(1).saturating_mul(1 << 20);
    cfg.publish_dir = a.publish_dir;
    cfg.publish_min_object = a.publish_min_object;
    cfg.row_store.mode = a.row_store;
    cfg.row_store.dir = a.row_store_dir;
    cfg.row_store.window_bytes = cfg.stream_window_bytes;
    // Stores are built by this program in a process of their own.
    cfg.row_store.builder = std::env::current_exe().ok();
    cfg.default_limit = cfg.default_limit.min(a.max_limit);
    cfg.timeout = Duration::from_secs(a.timeout);
    cfg.header_timeout = Duration::from_secs(a.header_timeout.max(1));
    cfg.reload_interval = (a.reload > 0).then(|| Duration::from_secs(a.reload));
    if !a.no_web {
        if a.web.join("index.html").is_file() {
            cfg.web = Some(a.web.clone());
        } else {
            tracing::warn!(dir = %a.web.display(), "no index.html there: the browser grid is not served (--web DIR)");
        }
    }
    let web = cfg.web.is_some();
    let state = AppState::load(cfg)?;
    let listener = tokio::net::TcpListener::bind(&a.addr).await?;
    let names = state.names();
    let addr = listener.local_addr()?;
    tracing::info!(%addr, snapshots = ?names, "listening");
    if web {
        // The one line a person needs: where the grid is.
        println!("open http://{addr}/ (the browser grid; API at http://{addr}/api)");
    }
    serve(listener, state, shutdown_signal()).await?;
    Ok(())
}

/// Ctrl-C or SIGTERM: stop accepting, finish the requests in flight.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

/// A byte size: `4096`, `4K`, `16KiB`, `1M`.
fn parse_size(s: &str) -> Result<u64, String> {
    let lower = s.trim().to_ascii_lowercase();
    let body = lower.trim_end_matches("ib").trim_end_matches('b');
    let (digits, shift) = match body.strip_suffix('k') {
        Some(d) => (d, 10),
        None => body.strip_suffix('m').map_or((body, 0), |d| (d, 20)),
    };
    digits
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|n| (1..=u32::MAX as u64).contains(n))
        .ok_or_else(|| format!("`{s}` is not a size from 1 byte to 4 GiB (examples: 4096, 4K, 1M)"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("16KiB"), Ok(16 << 10));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert_eq!(parse_size("2MB"), Ok(2 << 20));
        assert_eq!(parse_size("4194303K"), Ok(4_294_966_272));
        for bad in ["", "0", "K", "1G", "-1", "5T", "4194304K"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
