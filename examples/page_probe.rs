//! Instruction-count probe of a sorted page as JSON (what `colsnap query
//! --sort -updated_at --page 3` and `GET /api/NAME/rows` write): opens
//! FILE, sorts by `-updated_at`, writes page 3 (50 rows) once to warm up,
//! then N more times. Under callgrind the difference between N = 100 and
//! N = 0, divided by 100, is the cost of one page, repeatable whatever else
//! the machine is doing:
//!
//! ```sh
//! cargo build --release --example page_probe
//! for n in 0 100; do valgrind --tool=callgrind --callgrind-out-file=cg.$n \
//!     target/release/examples/page_probe target/bench-data/issues-seed42-200000.colsnap $n; done
//! ```

use colsnap::Snapshot;
use colsnap::query::{Engine, Paging, SnapshotSource, SortKey};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert!(
        args.len() >= 3,
        "usage: page_probe FILE N [json|values|sort]"
    );
    let mode = args.get(3).map_or("json", |s| s.as_str());
    let iters: usize = args[2].parse().unwrap();
    let snap = Snapshot::open(&args[1]).unwrap();
    let engine = Engine::new(SnapshotSource::new(snap.clone()));
    let all: Vec<u32> = (0..snap.rows() as u32).collect();
    let sorted = engine
        .sort(
            all,
            &[SortKey {
                path: "updated_at".into(),
                desc: true,
            }],
        )
        .unwrap();
    let p = Paging::page(3, 50).unwrap();
    let mut out = Vec::new();
    engine.page_json(&sorted, p, None, false, &mut out).unwrap();
    let mut total = 0;
    for _ in 0..iters {
        match mode {
            "values" => total += engine.page(&sorted, p, None).unwrap().data.len(),
            "sort" => {
                let all: Vec<u32> = (0..snap.rows() as u32).collect();
                let key = [SortKey {
                    path: "updated_at".into(),
                    desc: true,
                }];
                total += engine.sort(all, &key).unwrap().len();
            }
            _ => {
                out.clear();
                engine.page_json(&sorted, p, None, false, &mut out).unwrap();
                total += out.len();
            }
        }
    }
    println!("{total}");
}
