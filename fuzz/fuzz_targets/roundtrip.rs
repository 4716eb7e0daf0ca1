//! Structured rows (objects of nested values: integer and float extremes,
//! unicode strings, timestamp-like strings, null vs absent) through a build
//! and an export: the rows that come back equal the rows that went in.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Number, Value};

/// Nesting beyond this becomes `null` (the format's limit is 126 levels;
/// deep inputs are covered by `build_json` and the hostile-JSON tests).
const MAX_LEVEL: usize = 12;

#[derive(Debug, Arbitrary)]
enum Gen {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    SmallInt(i8),
    Extreme(u8),
    F64(f64),
    Str(String),
    /// A string drawn from a few values, so that columns repeat strings.
    Common(u8),
    Time(TimeGen),
    Array(Vec<Gen>),
    Object(Vec<(Key, Gen)>),
}

#[derive(Debug, Arbitrary)]
enum Key {
    Common(u8),
    Any(String),
}

#[derive(Debug, Arbitrary)]
struct TimeGen {
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    frac: Option<(u8, u32)>,
    offset: Option<(bool, u8, u8)>,
    lower: bool,
    space: bool,
}

const COMMON_KEYS: [&str; 12] = [
    "id",
    "title",
    "user",
    "login",
    "labels",
    "name",
    "created_at",
    "body",
    "a.b",
    "x[]",
    "",
    "\\",
];
const COMMON_STRS: [&str; 8] = [
    "open",
    "closed",
    "",
    "ünïcødé",
    "😀",
    "2024-01-01T00:00:00Z",
    "a\u{0}b",
    "line\nbreak \"quoted\" \\",
];

impl Key {
    fn text(&self) -> String {
        match self {
            Key::Common(i) => COMMON_KEYS[*i as usize % COMMON_KEYS.len()].to_string(),
            Key::Any(s) => s.clone(),
        }
    }
}

impl TimeGen {
    fn text(&self) -> String {
        let mut s = format!(
            "{:04}-{:02}-{:02}{}{:02}:{:02}:{:02}",
            self.year % 10000,
            self.month % 14,
            self.day % 33,
            match (self.space, self.lower) {
                (true, _) => ' ',
                (false, true) => 't',
                (false, false) => 'T',
            },
            self.hour % 25,
            self.minute % 61,
            self.second % 62,
        );
        if let Some((digits, v)) = self.frac {
            let digits = (digits % 10) as usize;
            if digits > 0 {
                let v = format!("{:09}", v % 1_000_000_000);
                s.push('.');
                s.push_str(&v[..digits]);
            }
        }
        match self.offset {
            None => s.push(if self.lower { 'z' } else { 'Z' }),
            Some((neg, h, m)) => s.push_str(&format!(
                "{}{:02}:{:02}",
                if neg { '-' } else { '+' },
                h % 25,
                m % 61
            )),
        }
        s
    }
}

fn extreme(i: u8) -> Value {
    match i % 16 {
        0 => Value::from(i64::MIN),
        1 => Value::from(i64::MAX),
        2 => Value::from(u64::MAX),
        3 => Value::from(i64::MAX as u64 + 1),
        4 => Value::from(0),
        5 => Value::from(-1),
        6 => Value::from(f64::MAX),
        7 => Value::from(f64::MIN),
        8 => Value::from(f64::MIN_POSITIVE),
        9 => Value::from(5e-324),
        10 => Value::from(-0.0),
        11 => Value::from(0.1),
        12 => Value::from(1e21),
        13 => Value::from(u32::MAX),
        14 => Value::from(-9007199254740993i64),
        _ => Value::from(2.0),
    }
}

fn to_value(g: &Gen, level: usize) -> Value {
    match g {
        Gen::Null => Value::Null,
        Gen::Bool(b) => Value::Bool(*b),
        Gen::I64(v) => Value::from(*v),
        Gen::U64(v) => Value::from(*v),
        Gen::SmallInt(v) => Value::from(*v),
        Gen::Extreme(i) => extreme(*i),
        Gen::F64(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Gen::Str(s) => Value::String(s.clone()),
        Gen::Common(i) => Value::String(COMMON_STRS[*i as usize % COMMON_STRS.len()].into()),
        Gen::Time(t) => Value::String(t.text()),
        Gen::Array(v) if level < MAX_LEVEL => {
            Value::Array(v.iter().map(|g| to_value(g, level + 1)).collect())
        }
        Gen::Object(kv) if level < MAX_LEVEL => object(kv, level),
        Gen::Array(_) | Gen::Object(_) => Value::Null,
    }
}

fn object(kv: &[(Key, Gen)], level: usize) -> Value {
    let mut m = Map::new();
    for (k, g) in kv {
        m.insert(k.text(), to_value(g, level + 1));
    }
    Value::Object(m)
}

/// The whole input: build options selector and rows (objects). Typed, so
/// that `cargo fuzz fmt roundtrip FILE` prints a crash's rows.
#[derive(Debug, Arbitrary)]
struct Input {
    sel: u8,
    rows: Vec<Vec<(Key, Gen)>>,
}

fuzz_target!(|input: Input| {
    let rows: Vec<Value> = input.rows.iter().map(|kv| object(kv, 1)).collect();
    colsnap_fuzz::harness::roundtrip(&rows, input.sel);
});
