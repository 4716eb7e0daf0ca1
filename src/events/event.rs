//! The event log: one JSON object per line (SPEC.md, "Event log").

use super::path::parse_path;
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
    pub op: Op,
}

/// The operation of an event.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
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

impl Op {
    /// The operation's name in the log.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Create { .. } => "create",
            Op::Update { .. } => "update",
            Op::Delete => "delete",
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

impl Event {
    /// Parse the event on `line` (1-based, for error messages) from its text.
    pub fn parse(line: u64, text: &str) -> Result<Event> {
        let v: Value = serde_json::from_str(text).map_err(|e| {
            event_error(
                line,
                None,
                format!("malformed JSON at column {}: {e}", e.column()),
            )
        })?;
        Event::from_value(line, v)
    }

    /// Interpret a parsed JSON value as an event.
    pub fn from_value(line: u64, v: Value) -> Result<Event> {
        let Value::Object(mut m) = v else {
            return Err(event_error(line, None, "an event must be a JSON object"));
        };
        let seq = match m.remove("seq") {
            Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64().unwrap_or(0),
            Some(other) => {
                return Err(event_error(
                    line,
                    None,
                    format!(
                        "`seq` must be a non-negative integer, not {}",
                        key_text(&other)
                    ),
                ));
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
                        return Err(err(format!(
                            "`at` must be a non-negative integer, not {}",
                            key_text(&other)
                        )));
                    }
                };
                Op::Create { row, at }
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
                    return Err(err("an update needs `set` or `remove`".into()));
                }
                Op::Update { set, remove }
            }
            "delete" => Op::Delete,
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
        Ok(Event { seq, key, op })
    }

    /// The event as one line of JSON (no newline).
    pub fn to_json(&self) -> String {
        let mut m = Map::new();
        m.insert("seq".into(), Value::from(self.seq));
        m.insert("op".into(), Value::from(self.op.name()));
        m.insert("key".into(), self.key.clone());
        match &self.op {
            Op::Create { row, at } => {
                if let Some(at) = at {
                    m.insert("at".into(), Value::from(*at));
                }
                m.insert("row".into(), Value::Object(row.clone()));
            }
            Op::Update { set, remove } => {
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
            Op::Delete => {}
        }
        serde_json::to_string(&Value::Object(m)).unwrap_or_default()
    }
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
    let touches_key = |p: &[String]| {
        let n = p.len().min(key_path.len());
        p[..n] == key_path[..n]
    };
    for (p, v) in set {
        if touches_key(p) {
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
        if touches_key(p) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
