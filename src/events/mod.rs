//! Events after the snapshot (SPEC.md, "Event log"): an exact in-memory
//! overlay, new strings without rewriting the string table, compaction and
//! diffs.
//!
//! A client opens the latest snapshot, replays the events recorded since
//! and keeps applying events as they arrive:
//!
//! ```no_run
//! # fn main() -> colsnap::Result<()> {
//! use colsnap::events::{Overlay, Query, Sort};
//! let snap = colsnap::Snapshot::open("issues.colsnap")?;
//! let mut view = colsnap::events::load_overlay(&snap, "events.ndjson", "id")?;
//! let page = view.query_rows(&Query {
//!     sort: Some(Sort { path: "title".into(), desc: false }),
//!     limit: Some(50),
//!     ..Default::default()
//! })?;
//! # let _ = page; Ok(()) }
//! ```

#[cfg(feature = "write")]
mod compact;
mod diff;
mod event;
mod order;
mod overlay;
mod path;
mod query;
mod source;
pub mod strkey;

#[cfg(feature = "write")]
pub use compact::{CompactOptions, compact, compact_to_vec};
pub use diff::{diff, diff_values};
pub use event::{Event, Op, get_path, key_text};
pub use overlay::{Cell, DEFAULT_KEY_FIELD, Overlay, load_overlay};
pub use path::{join_path, parse_path};
pub use query::{Filter, Query, Sort};
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
