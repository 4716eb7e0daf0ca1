//! Every build limit (`colsnap::schema::Limits`) is enforced with a clear
//! error naming the limit and, where there is one, the field and position.

use colsnap::schema::Limits;
use colsnap::{BuildOptions, Error};

fn build(input: &str, limits: Limits) -> colsnap::Result<Vec<u8>> {
    colsnap::build_to_vec(
        input.as_bytes(),
        &BuildOptions {
            limits,
            ..BuildOptions::default()
        },
    )
}

#[track_caller]
fn json_err(input: &str, limits: Limits) -> (usize, usize, String) {
    match build(input, limits) {
        Err(Error::Json {
            line,
            column,
            message,
        }) => (line, column, message),
        other => panic!("expected a JSON error, got {other:?}"),
    }
}

#[test]
fn max_rows() {
    let limits = Limits {
        max_rows: 2,
        ..Limits::default()
    };
    build("{\"a\":1}\n{\"a\":2}\n", limits).expect("at the limit");
    let (line, col, m) = json_err("{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n", limits);
    // At the row's `{` (serde_json's slice parser has not consumed the
    // byte after it that its reader-based parser has peeked).
    assert_eq!((line, col), (3, 1), "{m}");
    assert!(
        m.contains("more than 2 rows") && m.contains("max_rows"),
        "{m}"
    );
    let (line, _, m) = json_err("[{\"a\":1},{\"a\":2},\n{\"a\":3}]", limits);
    assert_eq!(line, 2, "{m}");
    assert!(m.contains("max_rows"), "{m}");
}

#[test]
fn max_string_len() {
    let limits = Limits {
        max_string_len: 5,
        ..Limits::default()
    };
    build("{\"a\":\"12345\"}", limits).expect("at the limit");
    let (line, col, m) = json_err("{\"a\":\"ok\"}\n{\"b\":{\"c\":\"123456\"}}", limits);
    assert_eq!((line, col), (2, 18), "{m}");
    assert!(
        m.contains("field `b.c`")
            && m.contains("6 bytes exceeds the limit of 5")
            && m.contains("max_string_len"),
        "{m}"
    );
    // Keys count too.
    let (_, _, m) = json_err("{\"abcdef\":1}", limits);
    assert!(
        m.contains("key of 6 bytes") && m.contains("max_string_len"),
        "{m}"
    );
}

#[test]
fn max_strings() {
    let limits = Limits {
        max_strings: 2,
        ..Limits::default()
    };
    build("[{\"a\":\"x\"},{\"a\":\"y\"},{\"a\":\"x\"}]", limits).expect("2 distinct");
    let (_, col, m) = json_err("[{\"a\":\"x\"},{\"a\":\"y\"},{\"a\":\"z\"}]", limits);
    assert_eq!(col, 29, "{m}");
    assert!(
        m.contains("field `a`") && m.contains("more than 2 distinct strings"),
        "{m}"
    );
}

#[test]
fn max_columns() {
    // The root counts as one node.
    let limits = Limits {
        max_columns: 3,
        ..Limits::default()
    };
    build("{\"a\":1,\"b\":2}", limits).expect("at the limit");
    let (line, _, m) = json_err("{\"a\":1,\"b\":2}\n{\"c\":3}", limits);
    assert_eq!(line, 2, "{m}");
    assert!(
        m.contains("new column `c`") && m.contains("max_columns"),
        "{m}"
    );
    let limits = Limits {
        max_columns: 4,
        ..Limits::default()
    };
    let (_, _, m) = json_err("{\"a\":[1]}\n{\"b\":[2]}", limits);
    assert!(
        m.contains("new column `b[]`") && m.contains("max_columns"),
        "{m}"
    );
}

#[test]
fn max_items() {
    let limits = Limits {
        max_items: 5,
        ..Limits::default()
    };
    build("{\"a\":[1,2,3]}\n{\"a\":[4,5]}", limits).expect("at the limit");
    match build("{\"a\":[1,2,3]}\n{\"a\":[4,5,6]}", limits) {
        Err(Error::Limit { what, got, max }) => {
            assert_eq!((what, got, max), ("items in one column", 6, 5));
        }
        other => panic!("expected a limit error, got {other:?}"),
    }
    let e = build("{\"a\":[1,2,3]}\n{\"a\":[4,5,6]}", limits).expect_err("limit");
    assert!(
        e.to_string()
            .contains("items in one column is 6, the maximum is 5"),
        "{e}"
    );
}

#[test]
fn limits_beyond_the_format_are_clamped() {
    // Asking for more than the format can hold does not wrap ids silently.
    let limits = Limits {
        max_rows: u64::MAX,
        max_columns: usize::MAX,
        max_string_len: usize::MAX,
        max_strings: usize::MAX,
        max_items: u64::MAX,
    };
    let bytes = build("{\"a\":\"x\",\"b\":[1,2]}", limits).expect("build");
    let s = colsnap::Snapshot::from_bytes(bytes).expect("open");
    s.verify().expect("verify");
}
