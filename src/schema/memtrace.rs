//! Phase markers of a build's memory (issue 16): with the environment
//! variable `COLSNAP_MEM_TRACE` set, each [`mark`] prints to stderr the
//! process's resident set size now and its peak since the previous mark
//! (Linux: `/proc/self/status`, the peak reset through
//! `/proc/self/clear_refs`), so that the memory of each phase of a build
//! can be told apart. Without the variable (or off Linux) it does nothing.

use std::sync::OnceLock;

/// 0: off, 1: phases, 2: phases and every node (`COLSNAP_MEM_TRACE=nodes`).
fn level() -> u8 {
    static ON: OnceLock<u8> = OnceLock::new();
    *ON.get_or_init(|| match std::env::var("COLSNAP_MEM_TRACE") {
        Ok(v) if v == "nodes" => 2,
        Ok(_) => 1,
        Err(_) => 0,
    })
}

fn enabled() -> bool {
    level() > 0
}

/// [`mark`] with a detail (one node's encoding), only under `COLSNAP_MEM_TRACE=nodes`.
pub fn mark_detail(what: impl FnOnce() -> String) {
    if level() > 1 {
        mark(&what());
    }
}

/// `(VmRSS, VmHWM)` in KiB, if the system tells.
fn rss_kib() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|r| r.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Print the memory at the end of phase `what` (when tracing is on).
pub fn mark(what: &str) {
    if !enabled() {
        return;
    }
    if let Some((rss, hwm)) = rss_kib() {
        static T0: OnceLock<std::time::Instant> = OnceLock::new();
        let t = T0
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_secs_f64();
        eprintln!(
            "colsnap mem: {t:>8.2}s {what:<28} rss {:>7.1} MB, peak since last mark {:>7.1} MB",
            rss as f64 / 1024.0,
            hwm as f64 / 1024.0
        );
        // "5" resets the peak (VmHWM) to the current RSS.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }
}
