//! Hostile JSON input: every malformed or unrepresentable input is a clean
//! `Error::Json` naming the line and column (1-based) where it went wrong;
//! nothing panics, nothing overflows the stack.
//!
//! Positions: for a syntax error, the offending character; for an error
//! about a whole value (wrong type, duplicate key, nesting, limits), where
//! the parser stopped: at or just after the value's (or key's) last
//! character, or just inside an opening bracket.

use colsnap::{BuildOptions, Error, Snapshot};

fn build(input: &[u8]) -> colsnap::Result<Vec<u8>> {
    colsnap::build_to_vec(input, &BuildOptions::default())
}

/// Build `input`, expect a JSON error at `line`:`column`, return its message.
#[track_caller]
fn json_err(input: &[u8], line: usize, column: usize) -> String {
    match build(input) {
        Err(Error::Json {
            line: l,
            column: c,
            message,
        }) => {
            if std::env::var_os("PRINT_POS").is_some() {
                eprintln!(
                    "POS {:?} expected ({line},{column}) got ({l},{c}) {message}",
                    String::from_utf8_lossy(&input[..input.len().min(30)])
                );
                return message;
            }
            assert_eq!(
                (l, c),
                (line, column),
                "position of `{message}` for {:?}",
                String::from_utf8_lossy(&input[..input.len().min(80)])
            );
            assert!(!message.is_empty());
            message
        }
        Err(e) => panic!("expected a JSON error, got {e}"),
        Ok(_) => panic!(
            "accepted {:?}",
            String::from_utf8_lossy(&input[..input.len().min(80)])
        ),
    }
}

#[test]
fn truncated_input() {
    json_err(b"[{\"a\":1},{\"a\":", 1, 14);
    json_err(b"[{\"a\":1}", 1, 8);
    json_err(b"{\"a\":1}\n{\"a\":\"unterminated", 2, 18);
    json_err(b"{\"a\":1}\n{\"a\"", 2, 4);
    json_err(b"[", 1, 1);
    json_err(b"{", 1, 1);
}

#[test]
fn trailing_garbage() {
    let m = json_err(b"[{\"a\":1}] x", 1, 11);
    assert!(m.contains("trailing"), "{m}");
    json_err(b"[{\"a\":1}]\n]", 2, 1);
    json_err(b"[{\"a\":1}][{\"a\":2}]", 1, 10);
    // NDJSON: garbage after the rows, or between them.
    let m = json_err(b"{\"a\":1}\n{\"a\":2}\nxyz\n", 3, 1);
    assert!(m.contains("expected value"), "{m}");
    let m = json_err(b"{\"a\":1}\n{\"a\":2}\n]\n", 3, 1);
    assert!(!m.is_empty());
    let m = json_err(b"{\"a\":1}\n7\n", 2, 2);
    assert!(m.contains("object"), "{m}");
    json_err(b"{\"a\":1} {\"a\":2} ,", 1, 17);
}

#[test]
fn bad_escapes_surrogates_and_utf8() {
    let m = json_err(b"[{\"a\":\"\\q\"}]", 1, 9);
    assert!(m.contains("escape"), "{m}");
    json_err(b"[{\"a\":\"\\u12\"}]", 1, 13);
    // Half a surrogate pair, wherever it is, is told as what it is (not as
    // serde_json's "unexpected end of hex escape", nor a lone low
    // surrogate as a "leading" one): a high one alone, or before a
    // character that is not a low one, and a low one alone.
    for (input, col) in [
        (&b"{\"a\":\"\\ud800\"}"[..], 13),
        (b"{\"a\":\"\\udbffx\"}", 13),
        (b"{\"a\":\"\\ud800\\u0041\"}", 18),
        (b"{\"a\":\"\\udc00x\"}", 12),
        (b"{\"a\":\"\\ude00\\ud83d\"}", 12),
        // In a key.
        (b"{\"\\ud800\":1}", 9),
    ] {
        let m = json_err(input, 1, col);
        assert!(m.contains("unpaired UTF-16 surrogate escape"), "{m}");
        assert!(!m.contains("leading") && !m.contains("end of hex"), "{m}");
    }
    // A valid pair is fine.
    build(b"{\"a\":\"\\ud83d\\ude00\"}").expect("surrogate pair");
    // Raw invalid UTF-8 in a string and in a key; a raw control character.
    let m = json_err(b"{\"a\":\"x\xff\"}", 1, 8);
    assert!(m.contains("unicode") || m.contains("UTF-8"), "{m}");
    json_err(b"{\"a\xc3\":1}", 1, 4);
    let m = json_err(b"{\"a\":\"x\ny\"}", 1, 8);
    assert!(m.contains("control character"), "{m}");
    // An escape of a newline: at the newline, on its line, though the
    // parser read the blank line and the `}` after it before reporting it
    // (the row's slice and the streaming reader agree).
    for text in [
        &b"{\"a\":1,\"s\":\"x\\\n\n}y\"}\n"[..],
        b"[{\"s\":\"x\\\n\n}y\"}]",
    ] {
        let col = if text[0] == b'[' { 10 } else { 15 };
        let m = json_err(text, 1, col);
        assert!(m.contains("escape"), "{m}");
    }
}

#[test]
fn non_finite_and_out_of_range_numbers() {
    for (input, col) in [
        (&b"[{\"a\":NaN}]"[..], 7),
        (b"[{\"a\":Infinity}]", 7),
        (b"[{\"a\":-Infinity}]", 8),
        (b"{\"a\":nan}", 7),
    ] {
        let m = json_err(input, 1, col);
        assert!(
            ["expected value", "invalid number", "expected ident"]
                .iter()
                .any(|x| m.contains(x)),
            "{m}"
        );
    }
    let m = json_err(b"[{\"a\":1e400}]", 1, 12);
    assert!(m.contains("out of range"), "{m}");
    json_err(b"{\"a\":-1e400}", 1, 12);
    // Big integers beyond u64 become floats, which is lossy only in digits
    // that f64 cannot hold; within f64 they are accepted.
    build(b"{\"a\":123456789012345678901234567890}").expect("big integer as float");
    build(b"{\"a\":1e308,\"b\":-0.0,\"c\":5e-324}").expect("extreme floats");
    // Too small for binary64: the nearest binary64, its sign kept (SPEC 1.3).
    let snap = colsnap::Snapshot::from_bytes(
        build(b"{\"a\":1e-400,\"b\":-1e-400,\"c\":2.4703282292062328e-324}").unwrap(),
    )
    .unwrap();
    assert_eq!(
        serde_json::to_string(&snap.row(0).unwrap()).unwrap(),
        r#"{"a":0.0,"b":-0.0,"c":5e-324}"#
    );
}

#[test]
fn duplicate_keys_are_rejected_naming_the_key() {
    let m = json_err(b"[{\"id\":1,\"id\":2}]", 1, 14);
    assert!(m.contains("duplicate key `id`"), "{m}");
    let m = json_err(
        b"{\"a\":1}\n{\"user\":{\"login\":\"x\",\"login\":\"y\"}}\n",
        2,
        29,
    );
    assert!(m.contains("duplicate key `login`"), "{m}");
    let m = json_err(b"{\"l\":[{\"n\":1},{\"n\":2,\"n\":3}]}", 1, 25);
    assert!(m.contains("duplicate key `n`"), "{m}");
    // The same key in different objects is of course fine.
    build(b"[{\"n\":1},{\"n\":2}]").expect("no duplicates");
}

fn nested(depth: usize, wrap_array: bool) -> Vec<u8> {
    let mut v = Vec::new();
    if wrap_array {
        v.push(b'[');
    }
    v.extend_from_slice(b"{\"a\":");
    v.extend(std::iter::repeat_n(b'[', depth));
    v.extend(std::iter::repeat_n(b']', depth));
    v.push(b'}');
    if wrap_array {
        v.push(b']');
    }
    v
}

#[test]
fn deep_nesting_is_a_clean_error_on_a_small_stack() {
    // Run where the stack is small (256 KiB), so that any recursion that is
    // not bounded by serde_json's limit would overflow and abort.
    let t = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(|| {
            for wrap in [false, true] {
                // Arrays of arrays: the 126th `[` is the 127th level (128th
                // with the array of rows): column 131 + 1 (NDJSON, just
                // after it) or 132 (array: serde_json points at it).
                let input = nested(100_000, wrap);
                let m = json_err(&input, 1, 132);
                assert!(
                    m.contains("recursion limit") || m.contains("nested deeper"),
                    "{m}"
                );
                let mut objs = if wrap { b"[".to_vec() } else { Vec::new() };
                for _ in 0..100_000 {
                    objs.extend_from_slice(b"{\"a\":");
                }
                objs.push(b'1');
                objs.extend(std::iter::repeat_n(b'}', 100_000));
                if wrap {
                    objs.push(b']');
                }
                // The 127th `{` starts at column 5 * 126 + 1 (+1 with `[`).
                let m = json_err(&objs, 1, 632);
                assert!(
                    m.contains("recursion limit") || m.contains("nested deeper"),
                    "{m}"
                );
            }
        })
        .expect("spawn");
    t.join().expect("no stack overflow, no panic");
}

#[test]
fn the_deepest_accepted_rows_round_trip_in_both_formats() {
    // 126 levels of objects and arrays (the row included) are accepted in
    // both formats, 127 in neither; what is accepted exports to JSON that
    // reads back, as an array and as NDJSON.
    let row = |levels: usize| {
        let mut v = b"{\"a\":".to_vec();
        v.extend(std::iter::repeat_n(b'[', levels - 1));
        v.extend(std::iter::repeat_n(b']', levels - 1));
        v.push(b'}');
        v
    };
    for ndjson in [true, false] {
        let wrap = |r: Vec<u8>| {
            if ndjson {
                r
            } else {
                [&b"["[..], &r, b"]"].concat()
            }
        };
        let ok = build(&wrap(row(126))).expect("126 levels");
        let s = Snapshot::from_bytes(ok).expect("open");
        s.verify().expect("verify");
        for nd in [true, false] {
            let mut out = Vec::new();
            s.export(
                &mut out,
                &colsnap::ExportOptions {
                    ndjson: nd,
                    ..Default::default()
                },
            )
            .expect("export");
            let again = build(&out).expect("the export rebuilds");
            let again = Snapshot::from_bytes(again).expect("open");
            assert_eq!(
                again.to_values().expect("values"),
                s.to_values().expect("values")
            );
        }
        let m = match build(&wrap(row(127))) {
            Err(Error::Json { message, .. }) => message,
            other => panic!("127 levels: {other:?}"),
        };
        assert!(
            m.contains("nested deeper than 126") || m.contains("recursion limit"),
            "{m}"
        );
    }
}

#[test]
fn top_level_values_that_are_not_rows() {
    for (input, line, col) in [
        (&b"\"a string\""[..], 1, 1),
        (b"42", 1, 1),
        (b"  \n  -1", 2, 3),
        (b"null", 1, 1),
        (b"true", 1, 1),
    ] {
        let m = json_err(input, line, col);
        assert!(m.contains("expected a JSON array of objects"), "{m}");
    }
    for (input, col) in [
        (&b"[1]"[..], 3),
        (b"[1,2,3]", 3),
        (b"[{\"a\":1},2]", 11),
        (b"[[{\"a\":1}]]", 3),
        (b"[\"x\"]", 4),
        (b"[null]", 5),
    ] {
        let m = json_err(input, 1, col);
        assert!(m.contains("every row must be an object"), "{m}");
    }
    // An empty array is zero rows, not an error.
    let s = Snapshot::from_bytes(build(b"[]").expect("[]")).expect("open");
    assert_eq!(s.rows(), 0);
}

#[test]
fn empty_and_whitespace_only_inputs() {
    let m = json_err(b"", 1, 1);
    assert!(m.contains("empty input"), "{m}");
    let m = json_err(b"   \n\t\n  ", 3, 3);
    assert!(m.contains("empty input"), "{m}");
    let m = json_err(b"\xEF\xBB\xBF", 1, 1);
    assert!(m.contains("empty input"), "{m}");
    // A byte order mark before real content is skipped.
    build(b"\xEF\xBB\xBF[{\"a\":1}]").expect("BOM");
}

#[test]
fn compressed_garbage_is_a_clean_error() {
    for input in [
        &[0x1f, 0x8b, 0x08, 0x00, 0xde, 0xad][..],
        &[0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x01, 0x02],
        &[0x1f, 0x8b],
    ] {
        let e = build(input).expect_err("garbage");
        assert!(e.is_data_error(), "{e}");
    }
}

#[test]
fn random_bytes_never_panic() {
    // A quick deterministic sweep in the spirit of the build_json fuzz target.
    let mut x = 0x2545F4914F6CDD1Du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let alphabet = b"{}[]\":,0123456789.eE+-truefalsnl \n\\u\xff\xc3";
    for _ in 0..2000 {
        let len = (next() % 40) as usize;
        let mut v = vec![b'{'];
        for _ in 0..len {
            v.push(alphabet[(next() % alphabet.len() as u64) as usize]);
        }
        if let Ok(bytes) = build(&v) {
            let s = Snapshot::from_bytes(bytes).expect("open");
            s.verify().expect("verify");
            s.verify_against(&v[..]).expect("same rows");
        }
    }
}
