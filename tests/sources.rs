//! Byte sources and the shared reader core: every source reads the same
//! snapshot the same way; a file changed under an open snapshot gives a
//! clean error; the handle is shareable; caches are bounded; plans fetch
//! in one read; the async path opens and decodes what it fetched.

use colsnap::encoding::Encoding;
use colsnap::read::{OpenOptions, Plan};
use colsnap::source::{AsAsync, AsyncByteSource, BoxFuture, ByteSource, MemorySource};
use colsnap::{BuildOptions, Error, ExportOptions, LongTextCodec, Snapshot};
use serde_json::{Value, json};
use std::future::Future;
use std::io::Write;
use std::ops::Range;
use std::pin::Pin;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

fn rows(n: u64) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({
                "number": i,
                "title": format!("issue title number {i}"),
                "state": if i % 3 == 0 { "closed" } else { "open" },
                // Users in no order (whose ids differences would not
                // shrink): `user.id` is `mapped` from `user.login`.
                "user": {"login": format!("user{}", user(i)), "id": 1000 + user(i)},
                "labels": (0..i % 3).map(|k| json!({"name": format!("label{k}")})).collect::<Vec<_>>(),
                "body": body(i),
                "score": if i % 4 == 0 { Value::Null } else { json!(i * 3) },
            })
        })
        .collect()
}

/// The user of row `i`: one of 17, scattered.
fn user(i: u64) -> u64 {
    (i.wrapping_mul(2_654_435_761) >> 7) % 17
}

/// Long texts sharing boilerplate, so that the long-text table trains a
/// dictionary that pays.
fn body(i: u64) -> String {
    let mut s = String::new();
    for k in 0..6 {
        s.push_str(&format!(
            "### Steps to reproduce\n\nOpen the editor with the default configuration, \
             run the command number {k} and observe the behaviour described in report {i}. \
             Expected: nothing unusual happens. Actual: the window flickers ({}).\n\n",
            (i * 7919 + k) % 1013
        ));
    }
    s
}

/// Every stream in the file, none inline in the footer (format version 3
/// keeps the small ones there, and these columns are all small): the
/// tests here are about reading sections from sources.
/// `inline_streams_come_with_the_footer` reads the default layout.
fn opts() -> BuildOptions {
    BuildOptions {
        chunk_size: 256,
        long_chunk_size: 4096,
        long_dict_size: 8 << 10,
        inline_max: 0,
        ..BuildOptions::default()
    }
}

fn build(n: u64) -> (Vec<Value>, Vec<u8>) {
    let rows = rows(n);
    let text: String = rows.iter().map(|r| r.to_string() + "\n").collect();
    let bytes = colsnap::build_to_vec(text.as_bytes(), &opts()).expect("build");
    (rows, bytes)
}

fn export(s: &Snapshot) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    s.export(&mut out, &ExportOptions::default())?;
    Ok(out)
}

fn write_file(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(bytes).unwrap();
    f.flush().unwrap();
    f
}

#[test]
fn every_source_reads_the_same_snapshot() {
    let (rows, bytes) = build(300);
    let f = write_file(&bytes);
    let mem = Snapshot::from_bytes(bytes.clone()).unwrap();
    let file = Snapshot::open(f.path()).unwrap();
    let mmap = Snapshot::open_mmap(f.path()).unwrap();
    let dynamic = Snapshot::from_source(Arc::new(MemorySource::new(bytes.clone()))).unwrap();
    let want = export(&mem).unwrap();
    for s in [&file, &mmap, &dynamic] {
        assert_eq!(export(s).unwrap(), want);
        assert_eq!(s.to_values().unwrap(), rows);
        s.verify().unwrap();
        assert_eq!(s.file_len(), bytes.len() as u64);
        assert_eq!(s.header(), mem.header());
        assert_eq!(&s.read_range(0..8).unwrap()[..], b"COLSNAP\0");
    }
    assert!(file.source_version().is_some());
}

/// Opening reads the header and a tail of the file; a file no longer than
/// that tail is one read of its bytes, each counted once (the header was
/// read, and counted, a second time: `--stats` said 19,443 bytes of a
/// 19,427-byte file). A longer file reads the two ranges.
#[test]
fn opening_a_small_file_reads_each_byte_once() {
    let (_, bytes) = build(20);
    let f = write_file(&bytes);
    for s in [
        Snapshot::from_bytes(bytes.clone()).unwrap(),
        Snapshot::open(f.path()).unwrap(),
    ] {
        let st = s.stats();
        assert_eq!((st.reads, st.ranges, st.bytes), (1, 1, bytes.len() as u64));
        assert_eq!(
            s.header(),
            Snapshot::from_bytes(bytes.clone()).unwrap().header()
        );
    }
    let tail = 64u64;
    let opts = OpenOptions {
        tail_bytes: tail,
        ..OpenOptions::default()
    };
    let s = Snapshot::from_source_with(Arc::new(MemorySource::new(bytes.clone())), opts).unwrap();
    let st = s.stats();
    assert!(st.ranges >= 2 && st.bytes < bytes.len() as u64, "{st:?}");
}

#[test]
fn a_file_truncated_after_open_gives_a_clean_error() {
    let (_, bytes) = build(300);
    let f = write_file(&bytes);
    let s = Snapshot::open(f.path()).unwrap();
    // Keep the header; drop every section (the footer was read at open).
    f.as_file().set_len(16).unwrap();
    let err = export(&s).unwrap_err();
    assert!(matches!(err, Error::Truncated { .. }), "{err}");
    assert!(s.verify().is_err());
    for c in s.columns() {
        if s.footer().nodes[c.node as usize]
            .streams
            .iter()
            .flatten()
            .count()
            > 0
        {
            assert!(s.node_data(c.node).is_err(), "{}", c.path);
        }
    }
}

#[test]
fn a_file_rewritten_in_place_after_open_gives_a_clean_error() {
    let (_, bytes) = build(300);
    let f = write_file(&bytes);
    let s = Snapshot::open(f.path()).unwrap();
    // Overwrite everything between the header and the footer, in place.
    let footer = s.footer_offset() as usize;
    let mut changed = bytes.clone();
    for b in &mut changed[16..footer] {
        *b ^= 0x5a;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(f.path())
        .unwrap()
        .write_all(&changed)
        .unwrap();
    let err = export(&s).unwrap_err();
    assert!(
        matches!(err, Error::Checksum { .. } | Error::Corrupt { .. }),
        "{err}"
    );
    let err = s.verify().unwrap_err();
    assert!(err.is_data_error(), "{err}");
    // Rewritten again with other content and a different length: still errors.
    std::fs::write(f.path(), b"short").unwrap();
    assert!(export(&s).is_err());
}

#[test]
fn handles_are_send_sync_and_share_caches() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Snapshot>();
    assert_send_sync::<colsnap::strings::StringTable>();
    assert_send_sync::<colsnap::read::RowWriter>();
    assert_send_sync::<colsnap::read::NodeData>();

    let (rows, bytes) = build(200);
    let s = Snapshot::from_bytes(bytes).unwrap();
    let t = s.table(0).unwrap();
    let s2 = s.clone();
    drop(s);
    let n = t.len() as u32;
    let strings: Vec<String> = (0..n).map(|i| t.get(i).unwrap()).collect();
    let decoded = s2.chunks_decoded();
    assert!(decoded > 0);
    // Another thread, another clone: the chunks are already decoded.
    let s3 = s2.clone();
    let again = std::thread::spawn(move || {
        let t = s3.table(0).unwrap();
        (0..n).map(|i| t.get(i).unwrap()).collect::<Vec<_>>()
    })
    .join()
    .unwrap();
    assert_eq!(again, strings);
    assert_eq!(s2.chunks_decoded(), decoded);
    // A row writer outlives the handle it came from.
    let mut w = s2.row_writer(None).unwrap();
    drop(s2);
    assert_eq!(w.row_json(5).unwrap(), rows[5]);
}

#[test]
fn threads_share_one_file_handle() {
    let (_, bytes) = build(300);
    let f = write_file(&bytes);
    let s = Snapshot::open_with(
        f.path(),
        OpenOptions {
            cache_bytes: 8 << 10,
            ..OpenOptions::default()
        },
    )
    .unwrap();
    let want = export(&Snapshot::from_bytes(bytes).unwrap()).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || export(&s).unwrap())
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), want);
    }
    assert!(s.string_cache_bytes() <= 8 << 10);
}

#[test]
fn the_string_cache_keeps_to_its_budget() {
    let (_, bytes) = build(400);
    let budget = 4096;
    let s = Snapshot::from_source_with(
        Arc::new(MemorySource::new(bytes.clone())),
        OpenOptions {
            cache_bytes: budget,
            ..OpenOptions::default()
        },
    )
    .unwrap();
    let big = Snapshot::from_bytes(bytes).unwrap();
    for t in 0..s.footer().tables.len() as u32 {
        let (a, b) = (s.table(t).unwrap(), big.table(t).unwrap());
        for id in 0..a.len() as u32 {
            assert_eq!(a.get(id).unwrap(), b.get(id).unwrap());
            assert!(s.string_cache_bytes() <= budget);
        }
    }
    assert!(
        big.string_cache_bytes() > budget,
        "the test must need eviction"
    );
    // Lookups in evicted chunks decode again: more decodes than chunks.
    let chunks: usize = s.footer().tables.iter().map(|t| t.chunk_counts.len()).sum();
    let t = s.table(0).unwrap();
    for id in (0..t.len() as u32).rev() {
        t.get(id).unwrap();
    }
    assert!(s.chunks_decoded() > chunks as u64);
}

#[test]
fn a_table_dictionary_is_decoded_once() {
    // zstd long text: PPMd chunks (the default) have no dictionary.
    let text: String = rows(400).iter().map(|r| r.to_string() + "\n").collect();
    let zstd = BuildOptions {
        long_text_codec: LongTextCodec::Zstd,
        ..opts()
    };
    let bytes = colsnap::build_to_vec(text.as_bytes(), &zstd).expect("build");
    let s = Snapshot::from_bytes(bytes).unwrap();
    let with_dict: Vec<u32> = (0..s.footer().tables.len() as u32)
        .filter(|&t| s.footer().tables[t as usize].dict_section.is_some())
        .collect();
    assert_eq!(
        with_dict.len(),
        1,
        "the long-text table should have a dictionary"
    );
    let t = s.table(with_dict[0]).unwrap();
    assert!(t.chunk_count() >= 4);
    for id in 0..t.len() as u32 {
        t.get(id).unwrap();
    }
    assert_eq!(s.stats().dicts_decoded, 1);
    assert_eq!(s.stats().chunks_decoded, t.chunk_count() as u64);
}

#[test]
fn a_node_is_fetched_in_one_read() {
    let (_, bytes) = build(300);
    let s = Snapshot::from_bytes(bytes).unwrap();
    // A node of several streams, none of which refers to another node.
    let f = s.footer();
    let n = (1..f.nodes.len() as u32)
        .find(|&n| {
            let st: Vec<u32> = f.nodes[n as usize]
                .streams
                .iter()
                .flatten()
                .copied()
                .collect();
            st.len() >= 2
                && st.iter().all(|&i| {
                    !matches!(
                        f.sections[i as usize].encoding,
                        Encoding::Mapped | Encoding::ParentMasked
                    )
                })
        })
        .expect("a column with kinds and payloads");
    s.reset_stats();
    s.node_data(n).unwrap();
    let st = s.stats();
    assert_eq!(st.reads, 1, "{st:?}");
    assert!(st.bytes > 0);
    // A planned node plus a planned chunk: one read, then decoding reads nothing.
    let mut plan = Plan::new();
    s.plan_node(&mut plan, n);
    s.plan_chunk(&mut plan, 0, 0);
    assert!(!plan.is_empty());
    assert!(!s.plan_ranges(&plan).is_empty());
    s.reset_stats();
    s.fetch(&plan).unwrap();
    assert_eq!(s.stats().reads, 1);
    assert!(s.plan_ranges(&plan).is_empty(), "everything is fetched");
    s.table(0).unwrap().chunk(0).unwrap();
    assert_eq!(s.stats().reads, 1);

    // Without room to keep fetched bytes, a node is read stream by stream.
    let bytes = build(300).1;
    let small = Snapshot::from_source_with(
        Arc::new(MemorySource::new(bytes)),
        OpenOptions {
            fetch_cache_bytes: 0,
            ..OpenOptions::default()
        },
    )
    .unwrap();
    small.reset_stats();
    let d = small.node_data(n).unwrap();
    assert_eq!(format!("{d:?}"), format!("{:?}", s.node_data(n).unwrap()));
    let streams = f.nodes[n as usize].streams.iter().flatten().count() as u64;
    assert_eq!(small.stats().reads, streams);
}

#[test]
fn a_small_tail_reads_the_footer_in_a_second_read() {
    let (_, bytes) = build(100);
    let s = Snapshot::from_source_with(
        Arc::new(MemorySource::new(bytes.clone())),
        OpenOptions {
            tail_bytes: 40,
            ..OpenOptions::default()
        },
    )
    .unwrap();
    assert_eq!(s.stats().reads, 2);
    let d = Snapshot::from_bytes(bytes).unwrap();
    assert_eq!(d.stats().reads, 1);
    assert_eq!(export(&s).unwrap(), export(&d).unwrap());
}

#[test]
fn an_async_source_decodes_every_column_after_fetching_it() {
    let (_, bytes) = build(300);
    let sync = Snapshot::from_bytes(bytes.clone()).unwrap();
    let encodings: Vec<Encoding> = sync.footer().sections.iter().map(|e| e.encoding).collect();
    assert!(encodings.contains(&Encoding::Mapped), "{encodings:?}");
    let src: Arc<dyn ByteSource> = Arc::new(MemorySource::new(bytes));
    let s = block_on(Snapshot::open_async(
        Arc::new(AsAsync(src)),
        OpenOptions::default(),
    ))
    .unwrap();
    for c in s.columns() {
        let got = block_on(s.node_async(c.node)).unwrap();
        let want = sync.node_data(c.node).unwrap();
        assert_eq!(format!("{got:?}"), format!("{want:?}"), "{}", c.path);
    }
    // Strings: plan the chunk (and dictionary), fetch, then look up.
    for t in 0..s.footer().tables.len() as u32 {
        let table = s.table(t).unwrap();
        let mut plan = Plan::new();
        s.plan_index(&mut plan, t);
        for k in 0..table.chunk_count() {
            s.plan_chunk(&mut plan, t, k);
        }
        block_on(s.fetch_async(&plan)).unwrap();
        let other = sync.table(t).unwrap();
        for id in 0..table.len() as u32 {
            let v = table.get(id).unwrap();
            assert_eq!(v, other.get(id).unwrap());
            // `find` answers ranks (ids in a sorted table, SPEC.md 7.6).
            let rank = table.find(&v).unwrap().expect("found");
            assert_eq!(table.id_at(rank).unwrap(), id);
        }
    }
}

/// Poll a future that never waits to completion (the sources here are ready at once).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// An async source over `bytes` whose reads, once `gate` is called, wait
/// until `open` is called (each read is recorded when it starts); with
/// `fail_next`, its next read fails.
#[derive(Debug)]
struct Gated {
    mem: MemorySource,
    gated: AtomicBool,
    open: AtomicBool,
    fail_next: AtomicBool,
    reads: Mutex<Vec<Vec<Range<u64>>>>,
}

impl Gated {
    fn new(bytes: Vec<u8>) -> Arc<Gated> {
        Arc::new(Gated {
            mem: MemorySource::new(bytes),
            gated: AtomicBool::new(false),
            open: AtomicBool::new(false),
            fail_next: AtomicBool::new(false),
            reads: Mutex::new(Vec::new()),
        })
    }
    fn gate(&self) {
        self.open.store(false, SeqCst);
        self.gated.store(true, SeqCst);
        self.reads.lock().unwrap().clear();
    }
    fn open(&self) {
        self.open.store(true, SeqCst);
    }
    fn reads(&self) -> Vec<Vec<Range<u64>>> {
        self.reads.lock().unwrap().clone()
    }
}

impl AsyncByteSource for Gated {
    fn len(&self) -> BoxFuture<'_, colsnap::Result<u64>> {
        let n = self.mem.len();
        Box::pin(async move { Ok(n) })
    }
    fn read_ranges<'a>(
        &'a self,
        ranges: &'a [Range<u64>],
    ) -> BoxFuture<'a, colsnap::Result<Vec<bytes::Bytes>>> {
        Box::pin(async move {
            if self.gated.load(SeqCst) {
                self.reads.lock().unwrap().push(ranges.to_vec());
                // Polled by hand below: no waker to keep.
                std::future::poll_fn(|_| {
                    if self.open.load(SeqCst) {
                        Poll::Ready(())
                    } else {
                        Poll::Pending
                    }
                })
                .await;
            }
            if self.fail_next.swap(false, SeqCst) {
                return Err(Error::Invalid("the connection was reset".into()));
            }
            self.mem.read_ranges(ranges)
        })
    }
}

/// A waker that counts its wakes.
struct Wakes(AtomicUsize);
impl std::task::Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// Poll `f` once with a waker whose wakes `w` counts.
fn poll_once<F: Future + ?Sized>(f: Pin<&mut F>, w: &Arc<Wakes>) -> Poll<F::Output> {
    let waker = Waker::from(w.clone());
    f.poll(&mut Context::from_waker(&waker))
}

fn gated_snapshot(bytes: &[u8]) -> (Arc<Gated>, Snapshot) {
    let src = Gated::new(bytes.to_vec());
    let opts = OpenOptions {
        // Each section its own range: the reads below are compared range by range.
        coalesce_gap: 0,
        ..OpenOptions::default()
    };
    let s = block_on(Snapshot::open_async(src.clone(), opts)).unwrap();
    src.gate();
    (src, s)
}

#[test]
fn tasks_sharing_an_async_snapshot_read_each_section_once() {
    let (_, bytes) = build(200);
    let sync = Snapshot::from_bytes(bytes.clone()).unwrap();
    let (src, s) = gated_snapshot(&bytes);
    let title = s.node_by_path("title").unwrap();
    let number = s.node_by_path("number").unwrap();
    let mut one = Plan::new();
    s.plan_node(&mut one, title);
    let mut both = one.clone();
    s.plan_node(&mut both, number);
    let title_ranges = s.plan_ranges(&one);
    assert!(!title_ranges.is_empty());

    // Two tasks on one thread (as on wasm or a current-thread runtime).
    let (wa, wb) = (
        Arc::new(Wakes(AtomicUsize::new(0))),
        Arc::new(Wakes(AtomicUsize::new(0))),
    );
    let mut a = Box::pin(s.fetch_async(&one));
    fn assert_send<T: Send>(_: &T) {}
    assert_send(&a);
    let mut b = Box::pin(s.fetch_async(&both));
    assert!(poll_once(a.as_mut(), &wa).is_pending());
    assert!(poll_once(b.as_mut(), &wb).is_pending());
    let reads = src.reads();
    assert_eq!(reads.len(), 2, "{reads:?}");
    assert_eq!(reads[0], title_ranges, "a reads the title's sections");
    assert!(!reads[1].is_empty());
    assert!(
        reads[1].iter().all(|r| title_ranges
            .iter()
            .all(|t| r.end <= t.start || t.end <= r.start)),
        "b reads only what a is not reading: {reads:?}"
    );
    src.open();
    // b has its own sections; it waits for a's without blocking.
    assert!(poll_once(b.as_mut(), &wb).is_pending());
    assert_eq!(wb.0.load(SeqCst), 0);
    assert!(matches!(poll_once(a.as_mut(), &wa), Poll::Ready(Ok(()))));
    assert_eq!(wb.0.load(SeqCst), 1, "a's release wakes b");
    assert!(matches!(poll_once(b.as_mut(), &wb), Poll::Ready(Ok(()))));
    assert_eq!(src.reads().len(), 2, "no section read twice");
    for n in [title, number] {
        let got = s.node_data(n).unwrap();
        assert_eq!(
            format!("{got:?}"),
            format!("{:?}", sync.node_data(n).unwrap())
        );
    }
    // Fetched: a third task reads nothing.
    assert!(matches!(
        poll_once(Box::pin(s.fetch_async(&both)).as_mut(), &wa),
        Poll::Ready(Ok(()))
    ));
    assert_eq!(src.reads().len(), 2);
}

#[test]
fn an_async_read_that_fails_or_is_dropped_is_read_again_by_its_waiters() {
    let (_, bytes) = build(200);
    let sync = Snapshot::from_bytes(bytes.clone()).unwrap();
    for fail in [false, true] {
        let (src, s) = gated_snapshot(&bytes);
        let title = s.node_by_path("title").unwrap();
        let mut plan = Plan::new();
        s.plan_node(&mut plan, title);
        let (wa, wb) = (
            Arc::new(Wakes(AtomicUsize::new(0))),
            Arc::new(Wakes(AtomicUsize::new(0))),
        );
        let mut a = Box::pin(s.fetch_async(&plan));
        let mut b = Box::pin(s.fetch_async(&plan));
        assert!(poll_once(a.as_mut(), &wa).is_pending());
        assert!(poll_once(b.as_mut(), &wb).is_pending());
        assert_eq!(src.reads().len(), 1, "b waits for a's read");
        if fail {
            src.fail_next.store(true, SeqCst);
            src.open();
            let Poll::Ready(Err(e)) = poll_once(a.as_mut(), &wa) else {
                panic!("a's read failed")
            };
            assert!(e.to_string().contains("reset"), "{e}");
        } else {
            // A cancelled request: its future dropped mid-read.
            drop(a);
            src.open();
        }
        assert_eq!(wb.0.load(SeqCst), 1, "the release wakes b");
        assert!(matches!(poll_once(b.as_mut(), &wb), Poll::Ready(Ok(()))));
        assert_eq!(src.reads().len(), 2, "b read the sections itself");
        let got = s.node_data(title).unwrap();
        assert_eq!(
            format!("{got:?}"),
            format!("{:?}", sync.node_data(title).unwrap())
        );
    }
}

/// An async source over `bytes` whose reads take 20 ms on the runtime's
/// timer, recording the ranges each read asked for.
#[derive(Debug)]
struct Slow {
    mem: MemorySource,
    reads: Mutex<Vec<Range<u64>>>,
}

impl AsyncByteSource for Slow {
    fn len(&self) -> BoxFuture<'_, colsnap::Result<u64>> {
        let n = self.mem.len();
        Box::pin(async move { Ok(n) })
    }
    fn read_ranges<'a>(
        &'a self,
        ranges: &'a [Range<u64>],
    ) -> BoxFuture<'a, colsnap::Result<Vec<bytes::Bytes>>> {
        Box::pin(async move {
            self.reads.lock().unwrap().extend_from_slice(ranges);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            self.mem.read_ranges(ranges)
        })
    }
}

#[test]
fn eight_tasks_on_a_runtime_read_every_byte_once() {
    let (_, bytes) = build(300);
    let sync = Snapshot::from_bytes(bytes.clone()).unwrap();
    for workers in [0, 4] {
        // 0: one thread for every task (a current-thread runtime, as on wasm).
        let rt = if workers == 0 {
            tokio::runtime::Builder::new_current_thread()
        } else {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(workers);
            b
        }
        .enable_time()
        .build()
        .unwrap();
        let src = Arc::new(Slow {
            mem: MemorySource::new(bytes.clone()),
            reads: Mutex::new(Vec::new()),
        });
        let opts = OpenOptions {
            coalesce_gap: 0,
            ..OpenOptions::default()
        };
        let s = rt
            .block_on(Snapshot::open_async(src.clone(), opts))
            .unwrap();
        src.reads.lock().unwrap().clear();
        let cols: Vec<u32> = s.columns().iter().map(|c| c.node).collect();
        let results = rt.block_on(async {
            let tasks: Vec<_> = (0..8)
                .map(|k| {
                    let s = s.clone();
                    // Each task its own order of the same columns.
                    let mut mine = cols.clone();
                    mine.rotate_left(k * cols.len() / 8);
                    tokio::spawn(async move { s.fetch_nodes_async(&mine).await })
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        });
        assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
        let mut asked = src.reads.lock().unwrap().clone();
        assert!(!asked.is_empty());
        asked.sort_by_key(|r| r.start);
        for w in asked.windows(2) {
            assert!(
                w[0].end <= w[1].start,
                "{workers} workers: bytes {:?} and {:?} were both asked",
                w[0],
                w[1]
            );
        }
        for &n in &cols {
            let got = s.node_data(n).unwrap();
            assert_eq!(
                format!("{got:?}"),
                format!("{:?}", sync.node_data(n).unwrap())
            );
        }
    }
}

#[test]
fn an_async_source_opens_then_decodes_what_it_fetched() {
    let (rows, bytes) = build(150);
    for tail in [40u64, 64 << 10] {
        let src: Arc<dyn ByteSource> = Arc::new(MemorySource::new(bytes.clone()));
        let a: Arc<dyn AsyncByteSource> = Arc::new(AsAsync(src));
        let opts = OpenOptions {
            tail_bytes: tail,
            ..OpenOptions::default()
        };
        let fut = Snapshot::open_async(a, opts);
        fn assert_send<T: Send>(_: &T) {}
        assert_send(&fut);
        let s = block_on(fut).unwrap();
        assert_eq!(s.rows(), rows.len() as u64);
        assert!(s.stats().reads <= 2);
        let n = s.node_by_path("number").unwrap();
        // Not fetched yet: a clean error, no read.
        assert!(matches!(s.node_data(n), Err(Error::Invalid(_))));
        let mut plan = Plan::new();
        s.plan_node(&mut plan, n);
        block_on(s.fetch_async(&plan)).unwrap();
        let d = s.node_data(n).unwrap();
        assert_eq!(d.len(), rows.len());
        assert_eq!(d.kind(7), colsnap::model::Kind::Int);
    }
}

/// Format version 3 and later keep small node streams in the footer (SPEC.md 5.4):
/// a reader that has opened the snapshot has them. Their columns decode
/// with no read, from a file cut back to its header after open and from an
/// async source that fetched nothing but the tail; the other columns still
/// fail cleanly there.
#[test]
fn inline_streams_come_with_the_footer() {
    let rows = rows(300);
    let text: String = rows.iter().map(|r| r.to_string() + "\n").collect();
    let opts = BuildOptions {
        inline_max: 64,
        ..opts()
    };
    let bytes = colsnap::build_to_vec(text.as_bytes(), &opts).expect("build");
    let f = write_file(&bytes);
    let s = Snapshot::open(f.path()).unwrap();
    assert_eq!(s.header().version, colsnap::format::VERSION_4);
    // Columns whose streams are all inline and name no source.
    let foot = s.footer();
    let inline: Vec<u32> = (1..foot.nodes.len() as u32)
        .filter(|&n| {
            let st = &foot.nodes[n as usize].streams;
            st.iter().flatten().count() > 0
                && st.iter().flatten().all(|&i| {
                    let e = &foot.sections[i as usize];
                    e.inline && !e.encoding.has_source()
                })
        })
        .collect();
    assert!(inline.len() >= 3, "{inline:?}");
    let number = s.node_by_path("number").unwrap();
    assert!(inline.contains(&number));
    let want: Vec<_> = inline
        .iter()
        .map(|&n| s.node_data(n).unwrap().len())
        .collect();
    // Cut the file back to its header: the sections are gone, the inline
    // streams are not.
    let s = Snapshot::open(f.path()).unwrap();
    f.as_file().set_len(16).unwrap();
    s.reset_stats();
    for (&n, &len) in inline.iter().zip(&want) {
        assert_eq!(s.node_data(n).unwrap().len(), len);
    }
    assert_eq!(s.stats().reads, 0);
    // The string tables' chunks are in the file: gone.
    assert!(s.table(0).and_then(|t| t.get(0)).is_err());
    // Async: after the tail, the inline columns decode without a fetch.
    let src: Arc<dyn ByteSource> = Arc::new(MemorySource::new(bytes));
    let a: Arc<dyn AsyncByteSource> = Arc::new(AsAsync(src));
    let s = block_on(Snapshot::open_async(a, OpenOptions::default())).unwrap();
    let reads = s.stats().reads;
    let d = s.node_data(number).unwrap();
    assert_eq!(d.len(), rows.len());
    assert_eq!(d.kind(7), colsnap::model::Kind::Int);
    assert_eq!(s.stats().reads, reads);
}
