//! The event log: one JSON object per line (SPEC.md, "Event log").

use super::path::parse_path;
use crate::schema::builder::InexactIntegers;

/// What is wrong with event `seq` after event `last` (`seq` is not
/// `last + 1`).
pub(crate) fn sequence_message(last: u64, seq: u64) -> String {
    if seq <= last {
        format!(
            "sequence number {seq} is not after the previous event's {last} (events must be strictly consecutive)"
        )
    } else {
        format!(
            "sequence gap: expected seq {} after {last}, got {seq} ({} events missing)",
            last + 1,
            seq - last - 1
        )
    }
}

/// Count in `into` the integer literals outside `[-2^63, 2^64)` of the
/// event text `line` (line `lno` of its log): an event is read as JSON
/// values, so each is applied as its nearest binary64 (SPEC.md 1.3), unlike
/// the snapshot's own, which are kept as written.
pub fn count_inexact_integers(line: &str, lno: u64, into: &mut InexactIntegers) {
    let b = line.as_bytes();
    // Such a literal has 19 digits at least: most lines have no such run.
    let mut run = 0;
    if !b.iter().any(|c| {
        run = if c.is_ascii_digit() { run + 1 } else { 0 };
        run >= 19
    }) {
        return;
    }
    for (a, z) in crate::schema::input::number_spans(b) {
        if crate::encoding::numtext::is_num_text(&b[a..z]) {
            into.count += 1;
            let column = line[..a].chars().count() + 1;
            into.first.get_or_insert((lno as usize, column));
        }
    }
}
use crate::error::{Error, Result};
use serde_json::{Map, Value};

/// One parsed event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Sequence number; consecutive events have consecutive numbers.
    pub seq: u64,
    /// The value of the key field of the row the event is about.
    pub key: Value,
    /// What the event does.
    pub op: EventOp,
}

/// The operation of an event.
#[derive(Clone, Debug, PartialEq)]
pub enum EventOp {
    /// Insert a new row at position `at` (appended when `None`).
    Create {
        /// The full row.
        row: Map<String, Value>,
        /// Insert position, `0..=rows`.
        at: Option<u64>,
    },
    /// Change fields of an existing row: every `set` in order, then every `remove`.
    Update {
        /// `(keys of the path, value)`; missing intermediate objects are created.
        set: Vec<(Vec<String>, Value)>,
        /// Paths of fields to remove (a field already absent is left absent).
        remove: Vec<Vec<String>>,
    },
    /// Remove the row.
    Delete,
}

impl EventOp {
    /// The operation's name in the log.
    pub fn name(&self) -> &'static str {
        match self {
            EventOp::Create { .. } => "create",
            EventOp::Update { .. } => "update",
            EventOp::Delete => "delete",
        }
    }
}

/// An error about the event on `line` (with `seq` when known).
pub(crate) fn event_error(line: u64, seq: Option<u64>, message: impl Into<String>) -> Error {
    Error::Event {
        line,
        seq,
        message: message.into(),
    }
}

/// The key of a row: the canonical JSON text of the key value, so that
/// `"7"` and `7` are different keys and equal values are equal keys.
pub fn key_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// A key value must be a string or a number.
pub(crate) fn check_key(v: &Value) -> std::result::Result<(), String> {
    match v {
        Value::String(_) | Value::Number(_) => Ok(()),
        other => Err(format!(
            "the key must be a string or a number, not {}",
            key_text(other)
        )),
    }
}

/// The value at `keys` inside `row`, if present.
pub fn get_path<'v>(row: &'v Map<String, Value>, keys: &[String]) -> Option<&'v Value> {
    let (first, rest) = keys.split_first()?;
    let mut v = row.get(first)?;
    for k in rest {
        v = v.as_object()?.get(k)?;
    }
    Some(v)
}

/// A JSON value parsed with the rules `build` applies to its input: a key
/// repeated in one object is an error (serde_json would keep the last).
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> std::result::Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> std::result::Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<Value, D::Error> {
        serde::Deserialize::deserialize(d).map(|Strict(v)| v)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Value, A::Error> {
        let mut v = Vec::new();
        while let Some(Strict(x)) = seq.next_element()? {
            v.push(x);
        }
        Ok(Value::Array(v))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Value, A::Error> {
        let mut m = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if m.contains_key(&k) {
                return Err(serde::de::Error::custom(format!(
                    "duplicate key `{k}` in an object"
                )));
            }
            let Strict(v) = map.next_value()?;
            m.insert(k, v);
        }
        Ok(Value::Object(m))
    }
}

/// Levels of objects and arrays in `v` (0 for a scalar, 1 for `{}`).
fn depth(v: &Value) -> usize {
    // Iterative: a hand-built value may be deeper than the stack allows.
    let mut max = 0;
    let mut stack = vec![(v, 1usize)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Object(m) => {
                max = max.max(d);
                stack.extend(m.values().map(|c| (c, d + 1)));
            }
            Value::Array(a) => {
                max = max.max(d);
                stack.extend(a.iter().map(|c| (c, d + 1)));
            }
            _ => {}
        }
    }
    max
}

/// Every string (`false`) and object key (`true`) in `v`.
fn walk_texts(v: &Value, out: &mut impl FnMut(&str, bool)) {
    match v {
        Value::String(s) => out(s, false),
        Value::Array(a) => a.iter().for_each(|x| walk_texts(x, out)),
        Value::Object(o) => {
            for (k, x) in o {
                out(k, true);
                walk_texts(x, out);
            }
        }
        _ => {}
    }
}

impl Event {
    /// Parse the event on `line` (1-based, for error messages) from its text.
    /// A key repeated in any object of the event (its own fields, `row`,
    /// `set` or a value) is refused, as `build` refuses it in its input.
    pub fn parse(line: u64, text: &str) -> Result<Event> {
        let Strict(v) = serde_json::from_str(text).map_err(|e| {
            event_error(
                line,
                None,
                format!(
                    "malformed JSON at column {}: {}",
                    e.column(),
                    crate::error::json_message(&e.to_string())
                ),
            )
        })?;
        Event::from_value(line, v)
    }

    /// Check what an event makes of a row against the rules `build` applies
    /// to its input: the rows it creates or leaves nest objects and arrays
    /// at most [`MAX_NESTING`](crate::schema::builder::MAX_NESTING) levels
    /// deep (the row is level 1), and no string or key is longer than
    /// `build`'s `max_string_len`, so that a compaction of any accepted log
    /// builds. The message is for [`Error::Event`].
    pub fn check(&self) -> std::result::Result<(), String> {
        use crate::schema::builder::MAX_NESTING;
        match &self.op {
            EventOp::Create { row, .. } => {
                let d = row.values().map(depth).max().unwrap_or(0) + 1;
                if d > MAX_NESTING {
                    return Err(format!(
                        "the row nests objects and arrays {d} levels deep, more than the {MAX_NESTING} a snapshot row may have"
                    ));
                }
            }
            EventOp::Update { set, .. } => {
                // Two spellings of one path (`a.b` and `"a"."b"`) would
                // leave the row with the last silently.
                let mut seen = std::collections::HashSet::with_capacity(set.len());
                if let Some((p, _)) = set.iter().find(|(p, _)| !seen.insert(p)) {
                    return Err(format!(
                        "`set` names the path `{}` twice",
                        super::path::join_path(p)
                    ));
                }
                for (p, v) in set {
                    // The row (1), the objects along the path, the value.
                    let d = p.len() + depth(v);
                    if d > MAX_NESTING {
                        return Err(format!(
                            "`set` of `{}` nests objects and arrays {d} levels deep, more than the {MAX_NESTING} a snapshot row may have",
                            super::path::join_path(p)
                        ));
                    }
                }
            }
            EventOp::Delete => {}
        }
        // No string or key longer than `build` takes.
        let max = crate::schema::Limits::default().max_string_len;
        let long = |what: &str, n: usize| {
            format!(
                "{what} of {n} bytes exceeds the limit of {max} bytes (max_string_len) that `build` and `compact` apply"
            )
        };
        let mut found: Option<String> = None;
        let mut look = |v: &Value| {
            walk_texts(v, &mut |s, is_key| {
                if found.is_none() && s.len() > max {
                    found = Some(long(if is_key { "a key" } else { "a string" }, s.len()));
                }
            })
        };
        match &self.op {
            EventOp::Create { row, .. } => {
                for (k, v) in row {
                    if k.len() > max {
                        return Err(long("a key", k.len()));
                    }
                    look(v);
                }
            }
            EventOp::Update { set, remove } => {
                for (p, v) in set {
                    look(v);
                    if let Some(k) = p.iter().find(|k| k.len() > max) {
                        return Err(long("a key", k.len()));
                    }
                }
                if let Some(k) = remove.iter().flatten().find(|k| k.len() > max) {
                    return Err(long("a key", k.len()));
                }
            }
            EventOp::Delete => {}
        }
        match found {
            Some(m) => Err(m),
            None => Ok(()),
        }
    }

    /// Interpret a parsed JSON value as an event.
    pub fn from_value(line: u64, v: Value) -> Result<Event> {
        let Value::Object(mut m) = v else {
            return Err(event_error(line, None, "an event must be a JSON object"));
        };
        let seq = match m.remove("seq") {
            Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64().unwrap_or(0),
            Some(other) => {
                return Err(event_error(line, None, not_a_count("seq", &other)));
            }
            None => return Err(event_error(line, None, "missing `seq`")),
        };
        let err = |msg: String| event_error(line, Some(seq), msg);
        let op = match m.remove("op") {
            Some(Value::String(s)) => s,
            Some(other) => {
                return Err(err(format!(
                    "`op` must be a string, not {}",
                    key_text(&other)
                )));
            }
            None => return Err(err("missing `op`".into())),
        };
        let key = m.remove("key").ok_or_else(|| err("missing `key`".into()))?;
        check_key(&key).map_err(&err)?;
        let op = match op.as_str() {
            "create" => {
                let row = match m.remove("row") {
                    Some(Value::Object(r)) => r,
                    Some(_) => return Err(err("`row` must be a JSON object".into())),
                    None => return Err(err("a create needs `row`".into())),
                };
                let at = match m.remove("at") {
                    None => None,
                    Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
                    Some(other) => {
                        return Err(err(not_a_count("at", &other)));
                    }
                };
                EventOp::Create { row, at }
            }
            "update" => {
                let mut set = Vec::new();
                match m.remove("set") {
                    None => {}
                    Some(Value::Object(s)) => {
                        for (p, v) in s {
                            set.push((parse_path(&p).map_err(&err)?, v));
                        }
                    }
                    Some(_) => return Err(err("`set` must be a JSON object".into())),
                }
                let mut remove = Vec::new();
                match m.remove("remove") {
                    None => {}
                    Some(Value::Array(a)) => {
                        for p in a {
                            match p {
                                Value::String(p) => remove.push(parse_path(&p).map_err(&err)?),
                                other => {
                                    return Err(err(format!(
                                        "`remove` must list path strings, not {}",
                                        key_text(&other)
                                    )));
                                }
                            }
                        }
                    }
                    Some(_) => return Err(err("`remove` must be an array of paths".into())),
                }
                if set.is_empty() && remove.is_empty() {
                    return Err(err(match m.keys().next() {
                        // A misspelled `set` or `remove`.
                        Some(k) => format!(
                            "unexpected field `{k}` in an update event, which needs `set` or `remove`"
                        ),
                        None => "an update needs `set` or `remove` with at least one field".into(),
                    }));
                }
                EventOp::Update { set, remove }
            }
            "delete" => EventOp::Delete,
            other => {
                return Err(err(format!(
                    "unknown operation `{other}` (expected create, update or delete)"
                )));
            }
        };
        if let Some(k) = m.keys().next() {
            return Err(err(format!(
                "unexpected field `{k}` in a {} event",
                op.name()
            )));
        }
        let ev = Event { seq, key, op };
        ev.check().map_err(err)?;
        Ok(ev)
    }

    /// The event as one line of JSON (no newline).
    pub fn to_json(&self) -> String {
        let mut m = Map::new();
        m.insert("seq".into(), Value::from(self.seq));
        m.insert("op".into(), Value::from(self.op.name()));
        m.insert("key".into(), self.key.clone());
        match &self.op {
            EventOp::Create { row, at } => {
                if let Some(at) = at {
                    m.insert("at".into(), Value::from(*at));
                }
                m.insert("row".into(), Value::Object(row.clone()));
            }
            EventOp::Update { set, remove } => {
                if !set.is_empty() {
                    let s: Map<String, Value> = set
                        .iter()
                        .map(|(p, v)| (super::path::join_path(p), v.clone()))
                        .collect();
                    m.insert("set".into(), Value::Object(s));
                }
                if !remove.is_empty() {
                    m.insert(
                        "remove".into(),
                        Value::Array(
                            remove
                                .iter()
                                .map(|p| Value::from(super::path::join_path(p)))
                                .collect(),
                        ),
                    );
                }
            }
            EventOp::Delete => {}
        }
        serde_json::to_string(&Value::Object(m)).unwrap_or_default()
    }
}

/// Whether an update's `path` touches the key field at `key_path`: one is a
/// prefix of the other (a `set` of `a` replaces `a.id`; a `set` of `id.x`
/// would change `id`).
pub(crate) fn touches_key(path: &[String], key_path: &[String]) -> bool {
    let n = path.len().min(key_path.len());
    path[..n] == key_path[..n]
}

/// Apply the `set`s and `remove`s of an update to a copy-in-progress of a
/// row. `key_path` may not be touched. Errors are messages (the caller adds
/// line and seq).
pub(crate) fn apply_update(
    row: &mut Map<String, Value>,
    set: &[(Vec<String>, Value)],
    remove: &[Vec<String>],
    key_path: &[String],
) -> std::result::Result<(), String> {
    for (p, v) in set {
        if touches_key(p, key_path) {
            return Err(format!(
                "`set` of `{}` would change the key field `{}`",
                super::path::join_path(p),
                super::path::join_path(key_path)
            ));
        }
        let (last, parents) = p.split_last().expect("paths are not empty");
        let mut obj = &mut *row;
        for (i, k) in parents.iter().enumerate() {
            let slot = obj
                .entry(k.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            obj = match slot {
                Value::Object(o) => o,
                other => {
                    return Err(format!(
                        "cannot set `{}`: `{}` is {}, not an object",
                        super::path::join_path(p),
                        super::path::join_path(&p[..=i]),
                        kind_name(other)
                    ));
                }
            };
        }
        obj.insert(last.clone(), v.clone());
    }
    for p in remove {
        if touches_key(p, key_path) {
            return Err(format!(
                "`remove` of `{}` would remove the key field `{}`",
                super::path::join_path(p),
                super::path::join_path(key_path)
            ));
        }
        let (last, parents) = p.split_last().expect("paths are not empty");
        let mut obj = Some(&mut *row);
        for k in parents {
            obj = obj
                .and_then(|o| o.get_mut(k))
                .and_then(|v| v.as_object_mut());
        }
        if let Some(o) = obj {
            o.shift_remove(last);
        }
    }
    Ok(())
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The error for a `seq` or `at` that is not a u64: an integer past
/// 2^64 - 1 (which JSON reads as a float) says so rather than showing the
/// float.
fn not_a_count(name: &str, v: &Value) -> String {
    match v {
        Value::Number(n)
            if n.as_f64()
                .is_some_and(|f| f >= 18446744073709551615.0 && f.fract() == 0.0) =>
        {
            format!("`{name}` must be at most 18446744073709551615 (2^64 - 1)")
        }
        _ => format!(
            "`{name}` must be a non-negative integer, not {}",
            key_text(v)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seq_past_u64_says_so() {
        let e = Event::parse(1, r#"{"seq":18446744073709551616,"op":"delete","key":2}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`seq` must be at most 18446744073709551615"),
            "{e}"
        );
        let e = Event::parse(1, r#"{"seq":-1,"op":"delete","key":2}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("non-negative integer, not -1"), "{e}");
        let e = Event::parse(
            1,
            r#"{"seq":1,"op":"create","key":2,"row":{"id":2},"at":1e20}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`at` must be at most"), "{e}");
    }

    #[test]
    fn parse_and_print_round_trip() {
        for line in [
            r#"{"seq":1,"op":"create","key":5,"at":0,"row":{"id":5,"t":"x"}}"#,
            r#"{"seq":2,"op":"update","key":"a","set":{"user.login":"bob","x\\.y":null},"remove":["t"]}"#,
            r#"{"seq":3,"op":"delete","key":5}"#,
        ] {
            let e = Event::parse(1, line).unwrap();
            assert_eq!(Event::parse(1, &e.to_json()).unwrap(), e);
        }
    }

    #[test]
    fn bad_events_name_line_and_seq() {
        let cases = [
            ("{", None, "malformed JSON"),
            (
                r#"{"seq":1,"op":"delete","key":"\udc00"}"#,
                None,
                "malformed JSON at column 36: an unpaired UTF-16 surrogate escape",
            ),
            ("[1]", None, "JSON object"),
            (r#"{"op":"delete","key":1}"#, None, "missing `seq`"),
            (r#"{"seq":-1,"op":"delete","key":1}"#, None, "`seq`"),
            (
                r#"{"seq":4,"op":"merge","key":1}"#,
                Some(4),
                "unknown operation `merge`",
            ),
            (r#"{"seq":4,"op":"delete"}"#, Some(4), "missing `key`"),
            (
                r#"{"seq":4,"op":"delete","key":null}"#,
                Some(4),
                "string or a number",
            ),
            (
                r#"{"seq":4,"op":"delete","key":1,"row":{}}"#,
                Some(4),
                "unexpected field `row`",
            ),
            (r#"{"seq":4,"op":"create","key":1}"#, Some(4), "needs `row`"),
            (
                r#"{"seq":4,"op":"update","key":1}"#,
                Some(4),
                "needs `set` or `remove`",
            ),
            (
                r#"{"seq":4,"op":"update","key":1,"set":{"a[]":1}}"#,
                Some(4),
                "array",
            ),
        ];
        for (text, seq, msg) in cases {
            match Event::parse(9, text) {
                Err(Error::Event {
                    line,
                    seq: s,
                    message,
                }) => {
                    assert_eq!(line, 9, "{text}");
                    assert_eq!(s, seq, "{text}");
                    assert!(message.contains(msg), "{text}: {message}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn updates_set_nested_and_keep_key() {
        let mut row: Map<String, Value> =
            serde_json::from_str(r#"{"id":1,"user":{"login":"a"},"n":2}"#).unwrap();
        let key = vec!["id".to_string()];
        apply_update(
            &mut row,
            &[
                (vec!["user".into(), "login".into()], Value::from("b")),
                (vec!["new".into(), "deep".into()], Value::from(3)),
            ],
            &[vec!["n".into()], vec!["gone".into(), "x".into()]],
            &key,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&row).unwrap(),
            r#"{"id":1,"user":{"login":"b"},"new":{"deep":3}}"#
        );
        assert!(apply_update(&mut row, &[(key.clone(), Value::from(2))], &[], &key).is_err());
        assert!(apply_update(&mut row, &[], std::slice::from_ref(&key), &key).is_err());
        let bad = [(vec!["user".into(), "login".into(), "x".into()], Value::Null)];
        assert!(
            apply_update(&mut row, &bad, &[], &key)
                .unwrap_err()
                .contains("not an object")
        );
    }
}
