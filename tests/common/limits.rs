//! Run a program under an address-space limit and a wall-clock timeout, for
//! the hostile-resources tests: a memory bomb must end as a clean error,
//! not as an allocation abort or a machine brought to its knees, and a
//! blow-up must end within the timeout.
//!
//! Use from a test file with
//! `mod common;` then `use common::limits;`, then
//! `limits::run_limited(Command::new(cargo_bin("colsnap")).args(..), limits::AS_LIMIT, 60)`.
//!
//! The limit is set with `prlimit --as=BYTES` (util-linux) when it is on the
//! PATH, else with the shell's `ulimit -v` (no `unsafe` needed either way).
#![allow(dead_code)]

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The address-space limit of the hostile corpus: 1 GiB.
pub const AS_LIMIT: u64 = 1 << 30;

/// What a limited run gave.
#[derive(Debug)]
pub struct Limited {
    /// The program's output (status, stdout, stderr).
    pub output: Output,
    /// Wall-clock time it ran.
    pub elapsed: Duration,
}

impl Limited {
    /// The exit code (`None` when a signal ended it).
    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }
    /// Standard error as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    /// Standard output as text.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
}

fn has_prlimit() -> bool {
    Command::new("prlimit")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Wrap `cmd` so that it runs with an address space of at most `as_bytes`.
pub fn limited_command(cmd: &Command, as_bytes: u64) -> Command {
    let prog = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let mut out = if has_prlimit() {
        let mut c = Command::new("prlimit");
        c.arg(format!("--as={as_bytes}"))
            .arg("--")
            .arg(prog)
            .args(args);
        c
    } else {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(format!(
                "ulimit -v {} && exec \"$0\" \"$@\"",
                as_bytes / 1024
            ))
            .arg(prog)
            .args(args);
        c
    };
    if let Some(d) = cmd.get_current_dir() {
        out.current_dir(d);
    }
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => out.env(k, v),
            None => out.env_remove(k),
        };
    }
    out
}

/// Run `cmd` under the address-space limit, killing it after `timeout_s`
/// seconds; panics on a timeout (the hostile input was not bounded).
#[track_caller]
pub fn run_limited(cmd: &Command, as_bytes: u64, timeout_s: u64) -> Limited {
    let mut c = limited_command(cmd, as_bytes);
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let t0 = Instant::now();
    let mut child = c.spawn().expect("spawn the limited command");
    // Drain the pipes on threads so a chatty child cannot block.
    let mut so = child.stdout.take().expect("piped");
    let mut se = child.stderr.take().expect("piped");
    let o = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut so, &mut v);
        v
    });
    let e = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut se, &mut v);
        v
    });
    let deadline = t0 + Duration::from_secs(timeout_s);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{:?} ran past its {timeout_s} s timeout",
                cmd.get_args().collect::<Vec<_>>()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = t0.elapsed();
    Limited {
        output: Output {
            status,
            stdout: o.join().unwrap_or_default(),
            stderr: e.join().unwrap_or_default(),
        },
        elapsed,
    }
}
