//! Events after the snapshot (SPEC.md, "Event log"): an exact in-memory
//! overlay, new strings without rewriting the string table, compaction and
//! diffs.
//!
//! A client opens the latest snapshot, replays the events recorded since
//! and queries the view with the query engine ([`crate::query::Engine`])
//! over an [`OverlaySource`]:
//!
//! ```no_run
//! # fn main() -> colsnap::Result<()> {
//! use colsnap::events::OverlaySource;
//! use colsnap::query::{Engine, Paging, Query, parse};
//! let snap = colsnap::Snapshot::open("issues.colsnap")?;
//! let view = colsnap::events::load_overlay(snap, "events.ndjson", "id")?;
//! let engine = Engine::new(OverlaySource::new(view));
//! let q = Query { sort: parse::parse_sort("title")?, ..Default::default() };
//! let rows = engine.run(&q)?;
//! let page = engine.page(&rows, Paging::page(1, 50)?, None)?;
//! # let _ = page; Ok(()) }
//! ```
//!
//! The overlay and the source own what they use (a snapshot handle is a
//! cheap clone), so the engine can be shared between threads.

mod columns;
#[cfg(feature = "write")]
mod compact;
mod diff;
mod event;
mod order;
mod overlay;
mod path;
mod segment;
mod source;
pub mod strkey;
mod touch;

#[cfg(feature = "write")]
pub use compact::{CompactOptions, compact, compact_to_vec};
pub use diff::{diff, diff_each, diff_values};
pub use event::{Event, EventOp, count_inexact_integers, get_path, key_text};
pub use overlay::{DEFAULT_KEY_FIELD, Overlay, load_overlay};
pub use path::{join_path, parse_path};
pub use segment::{
    SEGMENT_PREFIX, SEGMENT_SUFFIX, Segment, SegmentName, list_segments, split_segments,
    store_segments, write_segments,
};
pub use source::OverlaySource;
pub use strkey::{Composite, StrKey};

/// Write events as an NDJSON event log.
pub fn write_events(w: &mut dyn std::io::Write, events: &[Event]) -> crate::Result<()> {
    for e in events {
        w.write_all(e.to_json().as_bytes())
            .and_then(|_| w.write_all(b"\n"))
            .map_err(|e| crate::Error::io(None, e))?;
    }
    w.flush().map_err(|e| crate::Error::io(None, e))
}

/// Read an NDJSON event log (blank lines are skipped) without applying it:
/// every event parsed and the sequence numbers checked to be consecutive.
/// The first bad line is an [`Error::Event`](crate::Error::Event) naming
/// its line (and seq when it could be read).
pub fn read_events(r: impl std::io::BufRead) -> crate::Result<Vec<Event>> {
    let mut out: Vec<Event> = Vec::new();
    for (i, line) in r.lines().enumerate() {
        let lno = i as u64 + 1;
        let line = line.map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => {
                event::event_error(lno, None, "the line is not valid UTF-8")
            }
            _ => crate::Error::io(None, e),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let ev = Event::parse(lno, &line)?;
        if let Some(last) = out.last().map(|e| e.seq)
            && last.checked_add(1) != Some(ev.seq)
        {
            let m = event::sequence_message(last, ev.seq);
            return Err(event::event_error(lno, Some(ev.seq), m));
        }
        out.push(ev);
    }
    Ok(out)
}
