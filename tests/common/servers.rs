//! Servers for the remote-reading tests: a real **nginx** (the Debian
//! package) on 127.0.0.1, and a tiny fault-injecting HTTP server.
//!
//! When nginx is not installed the tests that need it print a notice and
//! return, unless `COLSNAP_REQUIRE_SERVERS=1` (set by `.ci/run`), which makes
//! a missing server a failure, so CI never skips silently.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// True when a missing server must fail the test.
pub fn servers_required() -> bool {
    std::env::var("COLSNAP_REQUIRE_SERVERS").is_ok_and(|v| v == "1")
}

/// Say that a server is missing: a notice (and `None`), or a panic when
/// servers are required.
pub fn missing<T>(what: &str) -> Option<T> {
    assert!(
        !servers_required(),
        "{what} is not available and COLSNAP_REQUIRE_SERVERS=1"
    );
    eprintln!(
        "NOTICE: {what} is not available: test skipped (COLSNAP_REQUIRE_SERVERS=1 makes this a failure)"
    );
    None
}

/// A port free at the time of asking.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn nginx_binary() -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("nginx"))
            .find(|c| c.is_file())
    });
    from_path.or_else(|| {
        [
            "/usr/sbin/nginx",
            "/usr/local/sbin/nginx",
            "/usr/local/nginx/sbin/nginx",
        ]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
    })
}

/// nginx serving `root` on 127.0.0.1 (a random free port), with its own
/// temporary prefix, configuration and logs; stopped when dropped.
pub struct Nginx {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    prefix: tempfile::TempDir,
}

impl Nginx {
    /// Start nginx over `root`; `None` (with a notice) when nginx is not
    /// installed and servers are not required.
    pub fn start(root: &Path) -> Option<Nginx> {
        let Some(bin) = nginx_binary() else {
            return missing("nginx");
        };
        let prefix = tempfile::tempdir().expect("temp dir");
        let p = prefix.path();
        std::fs::create_dir_all(p.join("tmp")).expect("nginx temp dir");
        for attempt in 0..5 {
            let port = free_port();
            let conf = format!(
                "daemon off;\nmaster_process off;\nworker_processes 1;\nerror_log {p}/error.log;\npid {p}/nginx.pid;\n\
                 events {{ worker_connections 256; }}\n\
                 http {{\n  access_log {p}/access.log;\n  client_body_temp_path {p}/tmp; proxy_temp_path {p}/tmp;\n  \
                 fastcgi_temp_path {p}/tmp; uwsgi_temp_path {p}/tmp; scgi_temp_path {p}/tmp;\n  \
                 types {{ application/json json; }}\n  default_type application/octet-stream;\n  \
                 server {{ listen 127.0.0.1:{port}; root {root}; }}\n}}\n",
                p = p.display(),
                root = root.display()
            );
            std::fs::write(p.join("nginx.conf"), conf).expect("nginx.conf");
            let mut child = Command::new(&bin)
                .arg("-p")
                .arg(p)
                .arg("-c")
                .arg(p.join("nginx.conf"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start nginx");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(Nginx {
                        child,
                        base: format!("http://127.0.0.1:{port}"),
                        prefix,
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(p.join("error.log")).unwrap_or_default();
            eprintln!("nginx attempt {attempt} on port {port} failed: {log}");
        }
        panic!("nginx did not start");
    }

    /// `http://127.0.0.1:PORT/PATH`
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    /// The lines of nginx's access log (one per request it answered).
    pub fn access_log(&self) -> Vec<String> {
        std::fs::read_to_string(self.prefix.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Requests nginx answered so far. nginx writes a request's log line
    /// after the last byte is sent, so wait until the count holds still.
    pub fn requests(&self) -> usize {
        let mut n = self.access_log().len();
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let m = self.access_log().len();
            if m == n {
                return n;
            }
            n = m;
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny HTTP/1.1 server over bytes in memory that honours `Range` (one
/// range), sends a fixed strong `ETag`, and answers `500` to the first
/// `fail_first` requests it gets.
pub struct FaultServer {
    /// `http://127.0.0.1:PORT/file.colsnap`
    pub url: String,
    /// Requests received so far.
    pub requests: Arc<AtomicU64>,
    /// Ranges asked, in order (`""` when none).
    pub ranges: Arc<Mutex<Vec<String>>>,
}

impl FaultServer {
    /// Serve `data` (the thread lives as long as the test process).
    pub fn start(data: Vec<u8>, fail_first: u64) -> FaultServer {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/file.colsnap", l.local_addr().expect("addr"));
        let requests = Arc::new(AtomicU64::new(0));
        let ranges = Arc::new(Mutex::new(Vec::new()));
        let (n, log) = (requests.clone(), ranges.clone());
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(c) = conn else { continue };
                let (data, n, log) = (&data, n.clone(), log.clone());
                let k = n.fetch_add(1, Ordering::SeqCst);
                let _ = answer(c, data, k < fail_first, &log);
            }
        });
        FaultServer {
            url,
            requests,
            ranges,
        }
    }
}

fn answer(
    mut c: TcpStream,
    data: &[u8],
    fail: bool,
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut r = BufReader::new(c.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut range = String::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.trim().eq_ignore_ascii_case("range")
        {
            range = v.trim().to_string();
        }
    }
    log.lock().unwrap().push(range.clone());
    let len = data.len() as u64;
    let (status, extra, body): (&str, String, &[u8]) = if fail {
        ("500 Internal Server Error", String::new(), b"try again")
    } else if let Some(spec) = range.strip_prefix("bytes=") {
        let (a, b) = match spec.strip_prefix('-') {
            Some(n) => (len.saturating_sub(n.parse().unwrap_or(0)), len - 1),
            None => {
                let (a, b) = spec.split_once('-').unwrap_or(("0", ""));
                (
                    a.parse().unwrap_or(0),
                    b.parse::<u64>().unwrap_or(len - 1).min(len - 1),
                )
            }
        };
        (
            "206 Partial Content",
            format!("Content-Range: bytes {a}-{b}/{len}\r\n"),
            &data[a as usize..=b as usize],
        )
    } else {
        ("200 OK", String::new(), data)
    };
    write!(
        c,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nETag: \"fixed\"\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    )?;
    c.write_all(body)?;
    c.flush()
}

/// The moto server program: `$COLSNAP_MOTO_SERVER`, or `moto_server` on
/// the `PATH`.
fn moto_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("COLSNAP_MOTO_SERVER") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("moto_server"))
            .find(|c| c.is_file())
    })
}

/// Whether a server on `127.0.0.1:port` answers `GET /` with a status
/// line within a few seconds.
fn http_answers(port: u16) -> bool {
    let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = c.set_write_timeout(Some(Duration::from_secs(5)));
    if write!(
        c,
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .is_err()
    {
        return false;
    }
    let mut line = String::new();
    BufReader::new(c).read_line(&mut line).is_ok() && line.starts_with("HTTP/")
}

/// moto's server mode (an S3-compatible server from PyPI, `moto[server]`)
/// on 127.0.0.1 (a random free port); stopped when dropped. Its request
/// log (one line per request) is kept in a file.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    port: u16,
    dir: tempfile::TempDir,
}

impl Moto {
    /// Start moto; `None` (with a notice) when it is not installed and
    /// servers are not required.
    pub fn start() -> Option<Moto> {
        let Some(bin) = moto_binary() else {
            return missing("moto_server (pip install 'moto[server]')");
        };
        let dir = tempfile::tempdir().expect("temp dir");
        for attempt in 0..5 {
            let port = free_port();
            let log = std::fs::File::create(dir.path().join("moto.log")).expect("moto log");
            let mut child = Command::new(&bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("start moto_server");
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                // Ready when it answers HTTP, not when its port accepts:
                // a connection made while it is still starting can be reset.
                if http_answers(port) {
                    return Some(Moto {
                        child,
                        endpoint: format!("http://127.0.0.1:{port}"),
                        port,
                        dir,
                    });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.path().join("moto.log")).unwrap_or_default();
            eprintln!("moto_server attempt {attempt} on port {port} failed: {log}");
        }
        panic!("moto_server did not start");
    }

    /// The environment a client needs to reach this server (the standard
    /// `AWS_*` variables).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    /// One plain HTTP request (moto does not check signatures): the status.
    fn request(&self, method: &str, path: &str, body: &[u8]) -> u16 {
        let mut c = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to moto");
        write!(
            c,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        )
        .expect("send");
        c.write_all(body).expect("send body");
        let mut line = String::new();
        BufReader::new(c).read_line(&mut line).expect("answer");
        line.split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// Create `bucket`.
    pub fn create_bucket(&self, bucket: &str) {
        let s = self.request("PUT", &format!("/{bucket}"), b"");
        assert_eq!(s, 200, "create bucket {bucket}");
    }

    /// Store `bytes` at `key` of `bucket` (behind the client's back).
    pub fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let s = self.request("PUT", &format!("/{bucket}/{key}"), bytes);
        assert_eq!(s, 200, "put {bucket}/{key}");
    }

    /// The request lines moto logged so far (`GET /bucket/key HTTP/1.1`),
    /// those of [`Moto::put`] and [`Moto::create_bucket`] included.
    pub fn requests(&self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(200));
        std::fs::read_to_string(self.dir.path().join("moto.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let a = l.find('"')?;
                let b = l[a + 1..].find('"')?;
                Some(l[a + 1..a + 1 + b].to_string())
            })
            .filter(|r| r.contains(" HTTP/"))
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
