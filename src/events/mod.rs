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

#[cfg(feature = "write")]
pub use compact::{CompactOptions, compact, compact_to_vec};
pub use diff::{diff, diff_values};
pub use event::{Event, EventOp, get_path, key_text};
pub use overlay::{DEFAULT_KEY_FIELD, Overlay, load_overlay};
pub use path::{join_path, parse_path};
pub use segment::{
    SEGMENT_PREFIX, SEGMENT_SUFFIX, Segment, SegmentName, list_segments, split_segments,
    write_segments,
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
