//! Per-column breakdown of a snapshot's bytes: `cargo run --release --example sizes -- FILE.json [N]`.
use colsnap::raw::format::Role;
use colsnap::{BuildOptions, Snapshot};
use std::collections::BTreeMap;

fn main() {
    let path = std::env::args().nth(1).expect("FILE");
    let top: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let f = std::fs::File::open(&path).unwrap();
    let t = std::time::Instant::now();
    let bytes =
        colsnap::build_to_vec(std::io::BufReader::new(f), &BuildOptions::default()).unwrap();
    let secs = t.elapsed().as_secs_f64();
    let s = Snapshot::from_bytes(bytes.clone()).unwrap();
    let foot = s.footer();
    let mut by_role: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for e in &foot.sections {
        let r = by_role
            .entry(Role::from_u8(e.role).map_or("?", |r| r.name()))
            .or_default();
        r.0 += 1;
        r.1 += e.stored_len as u64 + 16;
    }
    let sec_total: u64 = by_role.values().map(|v| v.1).sum();
    println!(
        "{path}: {} bytes, build {secs:.2}s, sections {} (+frames) footer+trailer+pad {}",
        bytes.len(),
        sec_total,
        bytes.len() as u64 - sec_total
    );
    for (r, (n, b)) in &by_role {
        println!("  {r:14} {n:5} sections {b:10} B");
    }
    for (i, t) in foot.tables.iter().enumerate() {
        let st: u64 = (0..t.chunk_counts.len())
            .map(|k| foot.sections[t.first_chunk as usize + k].stored_len as u64)
            .sum();
        let raw: u64 = (0..t.chunk_counts.len())
            .map(|k| foot.sections[t.first_chunk as usize + k].raw_len as u64)
            .sum();
        println!(
            "  table {i}: {} strings, {} chunks, raw {raw}, stored {st}, dict {:?}",
            t.n_strings,
            t.chunk_counts.len(),
            t.dict_section.map(|d| foot.sections[d as usize].stored_len)
        );
    }
    let mut cols: Vec<(u64, String, String)> = Vec::new();
    for (i, n) in foot.nodes.iter().enumerate() {
        let mut tot = 0;
        let mut parts = String::new();
        for (k, sidx) in n.streams.iter().enumerate() {
            if let Some(x) = sidx {
                let e = &foot.sections[*x as usize];
                tot += e.stored_len as u64 + 16;
                parts += &format!(
                    " {}={}/{}:{}",
                    colsnap::raw::format::STREAM_ROLES[k].name(),
                    e.stored_len,
                    e.raw_len,
                    e.encoding.name()
                );
            }
        }
        cols.push((tot, s.path(i as u32).to_string(), parts));
    }
    cols.sort_by_key(|c| std::cmp::Reverse(c.0));
    for (t, p, parts) in cols.iter().take(top) {
        println!("  {t:8} {p:40} {parts}");
    }
}
