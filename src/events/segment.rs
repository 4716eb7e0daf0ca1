//! Event-log segments (SPEC.md 13.5): a log split into numbered, immutable
//! files that a publisher can put on a CDN, so a client fetches only the
//! segments after the last event it applied.
//!
//! A segment holds the events `first..=last` (consecutive sequence
//! numbers), one per line in the event-log format, each line ending with
//! `\n`. Its name says its range and its content:
//! `events-{first:020}-{last:020}-{crc:08x}.ndjson`, `crc` being the
//! CRC-32C of the file's bytes. Names sort by range.

use super::event::{Event, event_error};
use super::overlay::Overlay;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Name prefix of segment files.
pub const SEGMENT_PREFIX: &str = "events-";
/// Name suffix of segment files.
pub const SEGMENT_SUFFIX: &str = ".ndjson";

/// One segment: its range and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Sequence number of its first event.
    pub first: u64,
    /// Sequence number of its last event.
    pub last: u64,
    /// The events as NDJSON, one line each.
    pub bytes: Vec<u8>,
}

/// What a segment's file name says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentName {
    /// First sequence number.
    pub first: u64,
    /// Last sequence number.
    pub last: u64,
    /// CRC-32C of the file.
    pub crc: u32,
}

impl SegmentName {
    /// Parse `events-{first:020}-{last:020}-{crc:08x}.ndjson`; `None` for
    /// any other name.
    pub fn parse(name: &str) -> Option<SegmentName> {
        let body = name
            .strip_prefix(SEGMENT_PREFIX)?
            .strip_suffix(SEGMENT_SUFFIX)?;
        let mut it = body.split('-');
        let (a, b, c) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() || a.len() != 20 || b.len() != 20 || c.len() != 8 {
            return None;
        }
        let digits = |s: &str| s.bytes().all(|c| c.is_ascii_digit());
        let hex = |s: &str| s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        if !digits(a) || !digits(b) || !hex(c) {
            return None;
        }
        let n = SegmentName {
            first: a.parse().ok()?,
            last: b.parse().ok()?,
            crc: u32::from_str_radix(c, 16).ok()?,
        };
        (n.first <= n.last).then_some(n)
    }

    /// The file name.
    pub fn file_name(&self) -> String {
        format!(
            "{SEGMENT_PREFIX}{:020}-{:020}-{:08x}{SEGMENT_SUFFIX}",
            self.first, self.last, self.crc
        )
    }
}

impl Segment {
    /// A segment of `events` (consecutive sequence numbers, at least one).
    pub fn new(events: &[Event]) -> Result<Segment> {
        let (Some(a), Some(b)) = (events.first(), events.last()) else {
            return Err(Error::Invalid("a segment holds at least one event".into()));
        };
        for w in events.windows(2) {
            if w[0].seq.checked_add(1) != Some(w[1].seq) {
                return Err(Error::Invalid(format!(
                    "a segment holds consecutive events: seq {} follows {}",
                    w[1].seq, w[0].seq
                )));
            }
        }
        let mut bytes = Vec::new();
        for e in events {
            bytes.extend_from_slice(e.to_json().as_bytes());
            bytes.push(b'\n');
        }
        Ok(Segment {
            first: a.seq,
            last: b.seq,
            bytes,
        })
    }

    /// Its name.
    pub fn name(&self) -> SegmentName {
        SegmentName {
            first: self.first,
            last: self.last,
            crc: crate::format::crc32c(&self.bytes),
        }
    }

    /// Check bytes read from a file named `name` and make the segment.
    pub fn from_bytes(name: SegmentName, bytes: Vec<u8>) -> Result<Segment> {
        let crc = crate::format::crc32c(&bytes);
        if crc != name.crc {
            // Damaged bytes (bad data, exit 1), not a bad argument.
            return Err(Error::Checksum {
                what: format!("segment {} (the CRC-32C its name says)", name.file_name()),
                offset: 0,
                expected: name.crc,
                got: crc,
            });
        }
        Ok(Segment {
            first: name.first,
            last: name.last,
            bytes,
        })
    }

    /// The segment's events, checked against its range.
    pub fn events(&self) -> Result<Vec<Event>> {
        let text = std::str::from_utf8(&self.bytes)
            .map_err(|_| event_error(0, None, "the segment is not valid UTF-8"))?;
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            out.push(Event::parse(i as u64 + 1, line)?);
        }
        // `last - first + 1` overflows for the range 0..=u64::MAX: no
        // segment holds that many events.
        let expect = (self.last - self.first).checked_add(1);
        let ok = Some(out.len() as u64) == expect
            && out
                .iter()
                .enumerate()
                .all(|(i, e)| e.seq == self.first + i as u64);
        if !ok {
            return Err(Error::Invalid(format!(
                "segment {}: it should hold events {}..={} in order",
                self.name().file_name(),
                self.first,
                self.last
            )));
        }
        Ok(out)
    }
}

/// Split `events` (consecutive sequence numbers) into segments of at most
/// `per_segment` events. Boundaries fall on multiples of `per_segment`
/// of the sequence number, so that a log split again after more events
/// keeps its full segments byte for byte (only the last one grows).
pub fn split_segments(events: &[Event], per_segment: u64) -> Result<Vec<Segment>> {
    if per_segment == 0 {
        return Err(Error::Invalid("segments hold at least one event".into()));
    }
    let mut out = Vec::new();
    let mut start = 0;
    while start < events.len() {
        let block = events[start].seq / per_segment;
        let mut end = start + 1;
        while end < events.len() && events[end].seq / per_segment == block {
            end += 1;
        }
        out.push(Segment::new(&events[start..end])?);
        start = end;
    }
    Ok(out)
}

/// The segment files of `dir`, sorted by range (other files are ignored).
/// Ranges may overlap: a partial segment stays when a longer one covering
/// it is published.
pub fn list_segments(dir: &Path) -> Result<Vec<(PathBuf, SegmentName)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(Some(dir), e))? {
        let e = e.map_err(|e| Error::io(Some(dir), e))?;
        if let Some(n) = e.file_name().to_str().and_then(SegmentName::parse) {
            out.push((e.path(), n));
        }
    }
    out.sort_by_key(|(_, n)| (n.first, n.last));
    Ok(out)
}

impl Overlay {
    /// Apply a segment: the events after the last one applied. Events the
    /// overlay already has (a segment overlapping the last applied event)
    /// are skipped; a gap is an error. Returns the events applied.
    pub fn apply_segment(&mut self, seg: &Segment) -> Result<u64> {
        if let Some(last) = self.last_seq()
            && seg.last <= last
        {
            return Ok(0);
        }
        let mut n = 0;
        // The events' lines, for the integers they hold (`events` checked
        // the text is UTF-8).
        let text = std::str::from_utf8(&seg.bytes).unwrap_or_default();
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        for (i, e) in seg.events()?.iter().enumerate() {
            let line = lines.next();
            if self.last_seq().is_some_and(|l| e.seq <= l) {
                continue;
            }
            self.apply(e, i as u64 + 1)?;
            if let Some((k, l)) = line {
                self.note_event_text(l, k as u64 + 1);
            }
            n += 1;
        }
        Ok(n)
    }

    /// Catch up with the segment files of `dir`: apply, in order, those
    /// after the last applied event (all of them for a fresh overlay). A
    /// client holding segments `1..k` gets the state of a fresh load of
    /// `1..n`. Returns the events applied.
    pub fn catch_up(&mut self, dir: &Path) -> Result<u64> {
        let segs = list_segments(dir)?;
        let mut n = 0;
        loop {
            let l = self.last_seq();
            let pending = || {
                segs.iter()
                    .filter(move |(_, s)| l.is_none_or(|l| s.last > l))
            };
            // The segment going furthest among those continuing the overlay
            // (for a fresh one: starting first); else the next one, whose
            // gap is then the error.
            let next = match l {
                None => pending().min_by_key(|(_, s)| (s.first, std::cmp::Reverse(s.last))),
                Some(l) => pending()
                    .filter(|(_, s)| s.first <= l.saturating_add(1))
                    .max_by_key(|(_, s)| s.last)
                    .or_else(|| pending().next()),
            };
            let Some((path, name)) = next else {
                return Ok(n);
            };
            // Two files of one range with other bytes: which one is right
            // cannot be told, and a reader must not pick by directory order.
            if let Some((other, _)) = segs.iter().find(|(p, s)| {
                p != path && s.first == name.first && s.last == name.last && s.crc != name.crc
            }) {
                return Err(Error::Invalid(format!(
                    "{} and {}: two segments of events {}..={} with different bytes",
                    path.display(),
                    other.display(),
                    name.first,
                    name.last
                )));
            }
            let bytes = std::fs::read(path).map_err(|e| Error::io(Some(path), e))?;
            // Errors name the file (an event's line is the file's).
            let in_file = |e: Error| match e {
                Error::Invalid(m) => Error::Invalid(format!("{}: {m}", path.display())),
                e @ Error::Checksum { .. } => Error::InFile {
                    path: path.clone(),
                    source: Box::new(e),
                },
                Error::Event { line, seq, message } => Error::Event {
                    line,
                    seq,
                    message: format!("{message} (segment {})", path.display()),
                },
                e => e,
            };
            let seg = Segment::from_bytes(*name, bytes).map_err(in_file)?;
            n += self.apply_segment(&seg).map_err(in_file)?;
            // Every segment chosen ends past the last event applied, so
            // applying it must reach its end; anything else would choose
            // it again.
            if self.last_seq() != Some(name.last) {
                return Err(Error::Invalid(format!(
                    "{}: applying it left the last event at {:?}, not {}",
                    path.display(),
                    self.last_seq(),
                    name.last
                )));
            }
        }
    }
}

/// Write `segs` into `dir` (a file per segment; an existing file of the same
/// name is left as is: segments are immutable). Returns the paths.
pub fn write_segments(dir: &Path, segs: &[Segment]) -> Result<Vec<PathBuf>> {
    Ok(store_segments(dir, segs)?
        .into_iter()
        .map(|(p, _)| p)
        .collect())
}

/// [`write_segments`], saying for each path whether it was written now
/// (`true`) or was already there with the same bytes (`false`). A file of
/// the same name holding other bytes (a damaged copy) is an error, found
/// before anything is written.
pub fn store_segments(dir: &Path, segs: &[Segment]) -> Result<Vec<(PathBuf, bool)>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(Some(dir), e))?;
    let mut out = Vec::new();
    for s in segs {
        let p = dir.join(s.name().file_name());
        let present = match std::fs::read(&p) {
            Ok(old) if old == s.bytes => true,
            Ok(_) => {
                return Err(Error::Invalid(format!(
                    "{}: the segment file exists with other bytes than the log's events {}..={} (a damaged copy? remove it to write it again)",
                    p.display(),
                    s.first,
                    s.last
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(Error::io(Some(&p), e)),
        };
        out.push((p, !present));
    }
    for (s, (p, new)) in segs.iter().zip(&out) {
        if *new {
            let tmp = dir.join(format!(".{}.tmp", s.name().file_name()));
            std::fs::write(&tmp, &s.bytes).map_err(|e| Error::io(Some(&tmp), e))?;
            std::fs::rename(&tmp, p).map_err(|e| Error::io(Some(p), e))?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(seq: u64) -> Event {
        Event {
            seq,
            key: json!(seq),
            op: super::super::EventOp::Delete,
        }
    }

    #[test]
    fn names_round_trip_and_refuse_others() {
        let n = SegmentName {
            first: 17,
            last: 42,
            crc: 0xdead_beef,
        };
        let s = n.file_name();
        assert_eq!(
            s,
            "events-00000000000000000017-00000000000000000042-deadbeef.ndjson"
        );
        assert_eq!(SegmentName::parse(&s), Some(n));
        for bad in [
            "events-1-2-deadbeef.ndjson",
            "events-00000000000000000042-00000000000000000017-deadbeef.ndjson",
            "events-00000000000000000017-00000000000000000042-DEADBEEF.ndjson",
            "x.ndjson",
        ] {
            assert_eq!(SegmentName::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn split_on_multiples_keeps_full_segments() {
        let evs: Vec<Event> = (5..=27).map(ev).collect();
        let segs = split_segments(&evs, 10).unwrap();
        let ranges: Vec<(u64, u64)> = segs.iter().map(|s| (s.first, s.last)).collect();
        assert_eq!(ranges, [(5, 9), (10, 19), (20, 27)]);
        let more: Vec<Event> = (5..=33).map(ev).collect();
        let again = split_segments(&more, 10).unwrap();
        assert_eq!(again[..2], segs[..2]);
        assert_eq!((again[2].first, again[2].last), (20, 29));
        assert_eq!(segs[1].events().unwrap(), evs[5..15]);
        assert!(Segment::new(&[ev(1), ev(3)]).is_err());
        let bad = Segment::from_bytes(
            SegmentName {
                crc: segs[0].name().crc ^ 1,
                ..segs[0].name()
            },
            segs[0].bytes.clone(),
        );
        assert!(bad.is_err());
    }

    /// A segment named for every sequence number there is, holding none:
    /// its count no longer wraps to 0 (a reader applied it forever), and
    /// a reader refuses it.
    #[test]
    #[cfg(feature = "write")]
    fn a_segment_of_every_seq_is_refused_not_looped_over() {
        let name = SegmentName {
            first: 0,
            last: u64::MAX,
            crc: crate::format::crc32c(b""),
        };
        let seg = Segment::from_bytes(name, Vec::new()).unwrap();
        assert!(seg.events().is_err());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(name.file_name()), b"").unwrap();
        let snap = crate::Snapshot::from_bytes(
            crate::build_to_vec(&b"{\"id\":1}\n"[..], &Default::default()).unwrap(),
        )
        .unwrap();
        let mut o = Overlay::new(snap, "id").unwrap();
        let e = o.catch_up(dir.path()).unwrap_err().to_string();
        assert!(e.contains(&name.file_name()), "{e}");
    }

    /// Two files of one range with different events: an error naming both,
    /// whatever the directory order.
    #[test]
    #[cfg(feature = "write")]
    fn two_segments_of_one_range_that_disagree_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let one = |v: &str| {
            let e = Event::parse(
                1,
                &format!(r#"{{"seq":1,"op":"update","key":1,"set":{{"t":"{v}"}}}}"#),
            )
            .unwrap();
            Segment::new(&[e]).unwrap()
        };
        write_segments(dir.path(), &[one("A"), one("B")]).unwrap();
        let snap = crate::Snapshot::from_bytes(
            crate::build_to_vec(&b"{\"id\":1,\"t\":\"x\"}\n"[..], &Default::default()).unwrap(),
        )
        .unwrap();
        let mut o = Overlay::new(snap, "id").unwrap();
        let e = o.catch_up(dir.path()).unwrap_err().to_string();
        assert!(e.contains("two segments of events 1..=1"), "{e}");
    }
}
