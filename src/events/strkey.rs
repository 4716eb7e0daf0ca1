//! String cells of the overlay: table ids or composite ids of new strings.
//!
//! A string an event brings is looked up in the column's sorted table. When
//! present it is represented by its id; when absent by a **composite id**
//! packed into a `u64`:
//!
//! ```text
//! bits 63..32  insertion point: id of the first table string greater than it (0..=n_strings)
//! bits 31..12  string-bringing event index (0..2^20): the ordinal, among the overlay's
//!              events that brought at least one new string, of the event that defined it
//! bits 11..0   field index (0..2^12): the position of the string among the new
//!              strings of that event, in the order they appear in the event
//! ```
//!
//! An event bringing more than 4,096 new strings takes one event index per
//! 4,096 (SPEC.md 13.3). So an overlay addresses 1,048,576 blocks of up to
//! 4,096 new strings; past that, applying an event fails with an error that
//! asks to compact (`colsnap compact`, which itself runs in rounds). Comparing is the 3-case rule of
//! [`compare`]: ids order like their strings, and a new string sorts just
//! before the table string at its insertion point.

use std::cmp::Ordering;

/// Bits of the event index in a composite id.
pub const EVENT_BITS: u32 = 20;
/// Bits of the field index in a composite id.
pub const FIELD_BITS: u32 = 12;
/// How many string-bringing events an overlay can address.
pub const MAX_EVENTS: u64 = 1 << EVENT_BITS;
/// How many new strings one event can bring.
pub const MAX_FIELDS: u64 = 1 << FIELD_BITS;

/// A composite id: a new string's insertion point and where it was defined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Composite(pub u64);

impl Composite {
    /// Pack; `None` when the event or field index does not fit.
    pub fn new(insertion: u32, event: u64, field: u64) -> Option<Composite> {
        (event < MAX_EVENTS && field < MAX_FIELDS).then_some(Composite(
            ((insertion as u64) << 32) | (event << FIELD_BITS) | field,
        ))
    }
    /// Id of the first table string greater than this one.
    pub fn insertion(self) -> u32 {
        (self.0 >> 32) as u32
    }
    /// Ordinal of the defining event among string-bringing events.
    pub fn event(self) -> u64 {
        (self.0 >> FIELD_BITS) & (MAX_EVENTS - 1)
    }
    /// Index of the string among that event's new strings.
    pub fn field(self) -> u64 {
        self.0 & (MAX_FIELDS - 1)
    }
}

/// A string cell: in the table, or new.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StrKey {
    /// Id in the column's string table.
    Table(u32),
    /// A string the table does not hold.
    New(Composite),
}

impl StrKey {
    /// A sort key equivalent to the 3-case rule on its first component:
    /// table id `t` -> `2t+1`, new string with insertion point `i` -> `2i`.
    /// Two keys with equal rank are equal table strings, or new strings
    /// with the same insertion point (which compare by content).
    pub fn rank(self) -> u64 {
        match self {
            StrKey::Table(t) => 2 * t as u64 + 1,
            StrKey::New(c) => 2 * c.insertion() as u64,
        }
    }
}

/// Compare two string cells of one column. `load` returns a new string's
/// text and is only called when both are new with the same insertion point:
/// (1) both in the table: compare ids; (2) one in the table, one new: compare
/// the id with the insertion point, and on equality the new string comes
/// first; (3) both new: compare insertion points, then the strings.
pub fn compare<'s>(a: StrKey, b: StrKey, load: impl Fn(Composite) -> &'s str) -> Ordering {
    match (a, b) {
        (StrKey::Table(x), StrKey::Table(y)) => x.cmp(&y),
        (StrKey::Table(x), StrKey::New(n)) => x.cmp(&n.insertion()).then(Ordering::Greater),
        (StrKey::New(n), StrKey::Table(y)) => n.insertion().cmp(&y).then(Ordering::Less),
        (StrKey::New(m), StrKey::New(n)) => m.insertion().cmp(&n.insertion()).then_with(|| {
            if m == n {
                Ordering::Equal
            } else {
                load(m).cmp(load(n))
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_packs_and_refuses_overflow() {
        let c = Composite::new(u32::MAX, MAX_EVENTS - 1, MAX_FIELDS - 1).unwrap();
        assert_eq!(c.insertion(), u32::MAX);
        assert_eq!(c.event(), MAX_EVENTS - 1);
        assert_eq!(c.field(), MAX_FIELDS - 1);
        let c = Composite::new(7, 3, 2).unwrap();
        assert_eq!((c.insertion(), c.event(), c.field()), (7, 3, 2));
        assert!(Composite::new(0, MAX_EVENTS, 0).is_none());
        assert!(Composite::new(0, 0, MAX_FIELDS).is_none());
    }

    /// The 3-case rule agrees with comparing the strings, for a table and new
    /// strings before, between, equal-neighbour and after its entries.
    #[test]
    fn three_case_rule_matches_string_order() {
        let table = ["b", "bb", "d", "z", "é"];
        let news = ["", "a", "ba", "bc", "c", "da", "e", "zz", "\u{10FFFF}"];
        let mut cells: Vec<(StrKey, &str)> = Vec::new();
        for (i, s) in table.iter().enumerate() {
            cells.push((StrKey::Table(i as u32), s));
        }
        for (f, s) in news.iter().enumerate() {
            let ins = table.partition_point(|t| t < s) as u32;
            let c = Composite::new(ins, 0, f as u64).unwrap();
            cells.push((StrKey::New(c), s));
        }
        let load = |c: Composite| news[c.field() as usize];
        for &(a, sa) in &cells {
            for &(b, sb) in &cells {
                assert_eq!(compare(a, b, load), sa.cmp(sb), "{sa:?} vs {sb:?}");
                if a.rank() != b.rank() {
                    assert_eq!(a.rank().cmp(&b.rank()), sa.cmp(sb), "{sa:?} vs {sb:?}");
                }
            }
        }
    }

    #[test]
    fn the_three_cases() {
        let news = ["ab", "ac"];
        let load = |c: Composite| news[c.field() as usize];
        let n0 = StrKey::New(Composite::new(1, 0, 0).unwrap());
        let n1 = StrKey::New(Composite::new(1, 0, 1).unwrap());
        // (1) both in the table
        assert_eq!(
            compare(StrKey::Table(1), StrKey::Table(2), load),
            Ordering::Less
        );
        // (2) a new string comes just before the table string at its insertion point
        assert_eq!(compare(n0, StrKey::Table(1), load), Ordering::Less);
        assert_eq!(compare(StrKey::Table(0), n0, load), Ordering::Less);
        assert_eq!(compare(StrKey::Table(1), n0, load), Ordering::Greater);
        // (3) both new, same insertion point: by content
        assert_eq!(compare(n0, n1, load), Ordering::Less);
        assert_eq!(compare(n1, n1, load), Ordering::Equal);
    }
}
