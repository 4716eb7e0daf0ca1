//! The README's command-line examples are real: every ```console block is
//! run (in a scratch directory holding `fixtures/`, with `COLUMNS=80`) and
//! its output compared with the README, timings aside.
//!
//! `COLSNAP_UPDATE_README=1 cargo test --test readme` rewrites the outputs
//! in README.md (`scripts/readme-examples.sh` does that and shows the diff).

mod common;

use std::path::Path;
use std::process::Command;

/// Timings vary from run to run: `0.17 s, 1.0 MB/s` compares equal to any
/// other timing.
fn normalize(s: &str) -> String {
    let mut out = String::new();
    for line in s.lines() {
        let mut l = line.to_string();
        if let Some(at) = l.find(" s, ")
            && let Some(start) = l[..at].rfind(", ")
            && l[at..].contains(" MB/s")
        {
            let end = at + l[at..].find(" MB/s").unwrap() + " MB/s".len();
            l.replace_range(start + 2..end, "T s, R MB/s");
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// Files the error examples need.
fn prepare(dir: &Path) {
    std::os::unix::fs::symlink(common::fixture(""), dir.join("fixtures")).unwrap();
    std::fs::write(dir.join("bad.ndjson"), "{\"n\": 1}\n{\"n\": tru}\n").unwrap();
    std::fs::write(
        dir.join("events.ndjson"),
        concat!(
            "{\"seq\":1,\"op\":\"update\",\"key\":2116092234,\"set\":{\"state\":\"closed\"}}\n",
            "{\"seq\":2,\"op\":\"delete\",\"key\":2115098687}\n",
        ),
    )
    .unwrap();
}

#[test]
fn readme_examples_are_real() {
    let readme_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    prepare(dir.path());
    let bin = Path::new(env!("CARGO_BIN_EXE_colsnap")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let mut out = String::new();
    let mut diffs = Vec::new();
    let mut lines = readme.lines().peekable();
    let mut last_rc = 0;
    while let Some(line) = lines.next() {
        out.push_str(line);
        out.push('\n');
        if line != "```console" {
            continue;
        }
        // A block: `$ command` lines, each followed by its output.
        let mut shown = String::new();
        let mut cmd: Option<String> = None;
        let mut run = |cmd: &str, shown: &str, out: &mut String, diffs: &mut Vec<String>| {
            let got = if cmd == "echo $?" {
                format!("{last_rc}\n")
            } else {
                let o = Command::new("sh")
                    .arg("-c")
                    .arg(format!("{cmd} 2>&1"))
                    .current_dir(dir.path())
                    .env("PATH", &path)
                    .env("COLUMNS", "80")
                    .output()
                    .unwrap();
                last_rc = o.status.code().unwrap_or(-1);
                String::from_utf8(o.stdout).unwrap()
            };
            if normalize(&got) != normalize(shown) {
                diffs.push(format!("$ {cmd}\n--- README\n{shown}--- real\n{got}"));
                out.push_str(&got);
            } else {
                out.push_str(shown);
            }
        };
        for l in lines.by_ref() {
            if l == "```" || l.starts_with("$ ") {
                if let Some(c) = cmd.take() {
                    run(&c, &shown, &mut out, &mut diffs);
                }
                shown.clear();
                out.push_str(l);
                out.push('\n');
                if l == "```" {
                    break;
                }
                cmd = Some(l[2..].to_string());
            } else {
                shown.push_str(l);
                shown.push('\n');
            }
        }
    }
    if std::env::var_os("COLSNAP_UPDATE_README").is_some() {
        std::fs::write(&readme_path, out).unwrap();
        return;
    }
    assert!(
        diffs.is_empty(),
        "README.md examples differ from the real output (COLSNAP_UPDATE_README=1 cargo test --test readme rewrites them):\n\n{}",
        diffs.join("\n")
    );
}

/// The README's query example, as written there.
#[test]
fn readme_library_query_example() -> colsnap::Result<()> {
    use colsnap::Snapshot;
    use colsnap::query::{Engine, Paging, Query, SnapshotSource, parse};
    let ndjson = std::fs::read_to_string(common::fixture("github-sample.ndjson")).unwrap();

    let snap = colsnap::build_to_vec(ndjson.as_bytes(), &Default::default())
        .and_then(Snapshot::from_bytes)?; // or Snapshot::open("x.colsnap")
    let engine = Engine::new(SnapshotSource::new(snap)); // Send + Sync, cheap to clone
    let q = Query {
        filters: vec![parse::parse_where("state=open")?],
        sort: parse::parse_sort("-comments,number")?,
        ..Default::default()
    };
    let rows = engine.run(&q)?; // every matching row, in order
    let fields = ["number".to_string(), "title".to_string()];
    let page = engine.page(&rows, Paging::page(1, 20)?, Some(&fields))?;
    println!(
        "{} of {} open issues",
        page.data.len(),
        page.pagination.total
    );
    for row in &page.data {
        println!("#{} {}", row["number"], row["title"]); // serde_json::Value
    }

    assert_eq!(page.pagination.total, rows.len());
    assert!(page.data.len() <= 20 && !page.data.is_empty());
    let keys: Vec<&String> = page.data[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["number", "title"]);
    Ok(())
}
