//! Compaction: a new snapshot holding the snapshot plus its events.

use super::event::{Event, EventOp, count_inexact_integers, event_error};
use super::overlay::{DEFAULT_KEY_FIELD, Overlay, walk_strings};
use super::strkey::{MAX_EVENTS, MAX_FIELDS};
use crate::error::{Error, Result};
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
///
/// Any log an overlay accepts event by event compacts, however many new
/// strings it brings: when the next event would need more composite-id event
/// indexes than an overlay has left ([`MAX_EVENTS`]), or would pass the
/// columns an overlay counts (every path events brought, even those no row
/// holds any more), the events so far are compacted into an intermediate
/// snapshot in memory and the rest are applied to that.
///
/// The report's `inexact_integers` counts the integers outside
/// `[-2^63, 2^64)` of the events (the first one's line and column in the
/// log): events are read as JSON values, so each is written as its nearest
/// binary64. The snapshot's own are kept as written.
pub fn compact<W: Write>(
    snap: &Snapshot,
    events: impl BufRead,
    opts: &CompactOptions,
    out: W,
) -> Result<BuildReport> {
    let mut inexact = crate::schema::builder::InexactIntegers::default();
    let mut report = {
        let mut lines = events.lines().enumerate().inspect(|(i, l)| {
            if let Ok(l) = l {
                count_inexact_integers(l, *i as u64 + 1, &mut inexact);
            }
        });
        compact_from(snap, &mut lines, None, None, opts, out, MAX_EVENTS)?
    };
    let r = &mut report.inexact_integers;
    r.count += inexact.count;
    r.first = r.first.or(inexact.first);
    Ok(report)
}

/// Apply `pending` (an event that did not fit the previous overlay, with
/// its line) then the rest of `lines` to `snap`; `last_seq` is the sequence
/// number of the event applied before.
fn compact_from<W: Write>(
    snap: &Snapshot,
    lines: &mut impl Iterator<Item = (usize, std::io::Result<String>)>,
    mut pending: Option<(u64, Event)>,
    last_seq: Option<u64>,
    opts: &CompactOptions,
    out: W,
    max_events: u64,
) -> Result<BuildReport> {
    let mut o = Overlay::new(snap.clone(), &opts.key_field)?;
    if let Some((lno, ev)) = &pending {
        // The new overlay knows no previous event: check the sequence here.
        if let Some(last) = last_seq
            && last.checked_add(1) != Some(ev.seq)
        {
            return Err(event_error(
                *lno,
                Some(ev.seq),
                format!(
                    "sequence number {} does not follow the previous event's {last}",
                    ev.seq
                ),
            ));
        }
    }
    loop {
        let (lno, ev) = match pending.take() {
            Some(p) => p,
            None => {
                let Some((i, line)) = lines.next() else { break };
                let lno = i as u64 + 1;
                let line = line.map_err(|e| match e.kind() {
                    std::io::ErrorKind::InvalidData => {
                        event_error(lno, None, "the line is not valid UTF-8")
                    }
                    _ => Error::io(None, e),
                })?;
                if line.trim().is_empty() {
                    continue;
                }
                (lno, Event::parse(lno, &line)?)
            }
        };
        // Out of composite-id event indexes, or of columns (the view's
        // count never falls: the paths of replaced objects and deleted rows
        // stay counted), after earlier events: compact those first.
        if (o.string_events() > 0 && !room_for(&o, &ev, max_events))
            || (o.applied() > 0 && !o.columns_fit(&ev))
        {
            let last = o.last_seq();
            let mut bytes = Vec::new();
            o.write_snapshot(&mut bytes, &opts.build)?;
            drop(o);
            let next = Snapshot::from_bytes(bytes)?;
            return compact_from(&next, lines, Some((lno, ev)), last, opts, out, max_events);
        }
        o.apply(&ev, lno)?;
    }
    o.write_snapshot(out, &opts.build)
}

/// Whether `o` has the composite-id event indexes `ev` may need: one per
/// [`MAX_FIELDS`] distinct strings of its values (at least as many as the
/// new strings it brings).
fn room_for(o: &Overlay, ev: &Event, max_events: u64) -> bool {
    let values: Vec<&serde_json::Value> = match &ev.op {
        EventOp::Create { row, .. } => row.values().collect(),
        EventOp::Update { set, .. } => set.iter().map(|(_, v)| v).collect(),
        EventOp::Delete => Vec::new(),
    };
    let mut seen = std::collections::HashSet::new();
    for v in values {
        walk_strings(v, &mut |s| {
            seen.insert(s);
        });
    }
    let need = (seen.len() as u64).div_ceil(MAX_FIELDS);
    o.string_events() as u64 + need <= max_events
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;

    fn snap() -> Snapshot {
        let rows = (0..5).map(|i| serde_json::json!({"id": i, "t": format!("old{i}")}));
        let bytes = crate::write::build_to_vec(
            rows.map(|r| r.to_string() + "\n")
                .collect::<String>()
                .as_bytes(),
            &BuildOptions::default(),
        )
        .unwrap();
        Snapshot::from_bytes(bytes).unwrap()
    }

    fn log() -> String {
        let mut s = String::new();
        for i in 0..30u64 {
            let e = if i % 3 == 0 {
                serde_json::json!({"seq": i + 1, "op": "create", "key": 100 + i,
                    "row": {"id": 100 + i, "t": format!("new{i}"), "tags": [format!("a{i}"), format!("b{i}")]}})
            } else {
                serde_json::json!({"seq": i + 1, "op": "update", "key": i % 5,
                    "set": {"t": format!("upd{i}")}})
            };
            s.push_str(&e.to_string());
            s.push('\n');
        }
        s
    }

    fn run(text: &str, max_events: u64) -> Result<Vec<u8>> {
        let s = snap();
        let mut lines = text.as_bytes().lines().enumerate();
        let mut out = Vec::new();
        compact_from(
            &s,
            &mut lines,
            None,
            None,
            &CompactOptions::default(),
            &mut out,
            max_events,
        )?;
        Ok(out)
    }

    /// Compacting in rounds (an intermediate snapshot each time the overlay
    /// runs out of composite-id event indexes) gives the same file as one
    /// round.
    #[test]
    fn rounds_give_the_same_snapshot() {
        let text = log();
        let one = run(&text, MAX_EVENTS).unwrap();
        for max in [1, 2, 3, 7] {
            assert_eq!(run(&text, max).unwrap(), one, "max_events {max}");
        }
    }

    /// The sequence stays checked across a round boundary.
    #[test]
    fn rounds_keep_checking_seq() {
        let mut text = log();
        text.push_str(r#"{"seq":40,"op":"update","key":1,"set":{"t":"zz-gap"}}"#);
        for max in [1, MAX_EVENTS] {
            match run(&text, max) {
                Err(Error::Event {
                    line: 31,
                    seq: Some(40),
                    ..
                }) => {}
                other => panic!("max {max}: {other:?}"),
            }
        }
    }
}
