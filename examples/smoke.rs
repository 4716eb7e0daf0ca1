use colsnap::{BuildOptions, Snapshot};
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let t = std::time::Instant::now();
    let f = std::fs::File::open(&path).unwrap();
    let bytes =
        colsnap::build_to_vec(std::io::BufReader::new(f), &BuildOptions::default()).unwrap();
    let bt = t.elapsed();
    if let Some(out) = std::env::args().nth(2) {
        std::fs::write(out, &bytes).unwrap();
    }
    let s = Snapshot::from_bytes(bytes.clone()).unwrap();
    println!(
        "footer+trailer bytes {}",
        bytes.len() as u64 - s.footer_offset()
    );
    println!(
        "rows {} cols {} bytes {} build {:?}",
        s.rows(),
        s.columns().len(),
        bytes.len(),
        bt
    );
    let t = std::time::Instant::now();
    let rep = s.verify().unwrap();
    println!("verify {:?} {:?}", t.elapsed(), rep.checks);
    let f = std::fs::File::open(&path).unwrap();
    let t = std::time::Instant::now();
    let n = s.verify_against(std::io::BufReader::new(f)).unwrap();
    println!("against {} rows ok {:?}", n, t.elapsed());
    // per-role sizes
    let mut by: std::collections::BTreeMap<String, u64> = Default::default();
    for e in &s.footer().sections {
        *by.entry(
            colsnap::raw::format::Role::from_u8(e.role)
                .unwrap()
                .name()
                .to_string(),
        )
        .or_default() += e.stored_len as u64;
    }
    println!("{by:?}");
    for (i, t) in s.footer().tables.iter().enumerate() {
        let st: u64 = (0..t.chunk_counts.len())
            .map(|k| s.footer().sections[t.first_chunk as usize + k].stored_len as u64)
            .sum();
        println!(
            "table {i}: {} strings {} chunks {} stored",
            t.n_strings,
            t.chunk_counts.len(),
            st
        );
    }
}
