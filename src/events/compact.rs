//! Compaction: a new snapshot holding the snapshot plus its events.

use super::overlay::{DEFAULT_KEY_FIELD, Overlay};
use crate::error::Result;
use crate::read::Snapshot;
use crate::write::{BuildOptions, BuildReport, build_with};
use std::io::{BufRead, Write};

/// Options of [`compact`].
#[derive(Clone, Debug)]
pub struct CompactOptions {
    /// The key field events address rows by (a display path).
    pub key_field: String,
    /// How to write the new snapshot.
    pub build: BuildOptions,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            key_field: DEFAULT_KEY_FIELD.into(),
            build: BuildOptions::default(),
        }
    }
}

impl Overlay {
    /// Write the view as a new snapshot: the same file as building from the
    /// view's rows exported as JSON, without re-parsing the original JSON.
    pub fn write_snapshot<W: Write>(&mut self, out: W, opts: &BuildOptions) -> Result<BuildReport> {
        build_with(out, opts, |b| self.feed(b))
    }
}

/// Apply the event log `events` to `snap` and write the result as a new
/// snapshot to `out`. Fails, writing nothing useful, on the first bad event.
pub fn compact<W: Write>(
    snap: &Snapshot,
    events: impl BufRead,
    opts: &CompactOptions,
    out: W,
) -> Result<BuildReport> {
    let mut o = Overlay::new(snap.clone(), &opts.key_field)?;
    o.apply_reader(events)?;
    o.write_snapshot(out, &opts.build)
}

/// [`compact`] into memory.
pub fn compact_to_vec(
    snap: &Snapshot,
    events: impl BufRead,
    opts: &CompactOptions,
) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    compact(snap, events, opts, &mut v)?;
    Ok(v)
}
