//! Library quick start: build a snapshot in memory, sort rows by a string
//! column without reading a single string, then fetch only the strings of
//! the rows "on screen".
//!
//! Run with `cargo run --example quickstart`.

use colsnap::{BuildOptions, Snapshot, build_to_vec};

fn main() -> colsnap::Result<()> {
    let ndjson = r#"
{"number": 3, "title": "Crash on start", "user": {"login": "carol"}, "labels": ["bug"], "closed_at": "2024-03-01T10:00:00Z"}
{"number": 1, "title": "Add dark mode", "user": {"login": "alice"}, "labels": [], "closed_at": null}
{"number": 2, "title": "Docs typo", "user": null, "labels": ["docs", "good first issue"], "closed_at": "2024-03-02T08:30:00.5+01:00"}
"#;
    // 1. Build: JSON (array or NDJSON, optionally gzip/zstd) to snapshot bytes.
    //    (`colsnap::build_file` does the same from file to file, atomically.)
    let bytes = build_to_vec(ndjson.as_bytes(), &BuildOptions::default())?;
    let snap = Snapshot::from_bytes(bytes)?; // or Snapshot::open("x.colsnap")
    println!("{} rows, columns:", snap.rows());
    for c in snap.columns() {
        println!("  {:<14} {}", c.path, c.ty);
    }

    // 2. Sort by title: string ids are ordered like the strings, so sorting
    //    compares u32 ids and decodes no string chunk.
    let titles = snap.column("title")?;
    let mut order: Vec<u64> = (0..snap.rows()).collect();
    order.sort_by_key(|&r| titles.str_id(r as usize));
    assert_eq!(snap.chunks_decoded(), 0);

    // 3. Show the first two rows of the sorted view: only now are strings read.
    let table = snap.table_of(snap.node_by_path("title").expect("title column"))?;
    for &r in order.iter().take(2) {
        let id = titles.str_id(r as usize).expect("a string");
        println!("row {r}: {}", table.get(id)?);
    }
    println!("string chunks decoded: {}", snap.chunks_decoded());

    // 4. Typed values by row: `None` for null, absent or another type (a
    //    null never reads as zero); timestamps print as RFC 3339.
    let closed = snap.column("closed_at")?;
    let logins = snap.column("user.login")?;
    let login_table = snap.table_of(logins.node())?;
    for r in 0..snap.rows() as usize {
        let who = match logins.str_id(r) {
            Some(id) => login_table.get(id)?,
            None => format!("({})", logins.kind(r).name()),
        };
        match closed.timestamp(r) {
            Some(t) => println!("row {r}: by {who}, closed at {t}"),
            None => println!("row {r}: by {who}, still open"),
        }
    }
    assert_eq!(
        closed.timestamp(2).map(|t| t.to_string()).as_deref(),
        Some("2024-03-02T08:30:00.5+01:00")
    );
    assert_eq!(closed.timestamp(1), None);

    // 5. Any row back as JSON, semantically identical to the input
    //    (null vs absent kept; `export` also keeps the key order).
    println!("{}", snap.row(2)?);
    Ok(())
}
