//! PPMd sections (codec 3, SPEC.md section 3): a 5-byte header (model
//! order, then the model's memory size as a little-endian u32) followed by
//! a PPMd variant H stream with 7-Zip's range coder (`Ppmd7`, as in `.7z`
//! archives), which decodes to exactly the section's `raw_len` bytes. No
//! end marker: the length is the section's.
//!
//! PPMd models text by its preceding characters instead of matching earlier
//! copies of it, so on prose, wiki markup and code it stores 10-20% less
//! than zstd at level 19 and compresses about five times faster; decoding
//! costs as much as encoding (about 10 MB/s), which is why the writer uses
//! it only for long-text chunks of a few MiB (issue 15).

use std::io::Read;

/// Model order the writer uses (the longest context, in bytes, it predicts
/// from): 16, the best of the orders measured on real bodies (issue 15).
pub const PPMD_ORDER: u32 = 16;

/// Least model memory a section may declare (7-Zip's minimum).
pub const PPMD_MIN_MEM: u32 = 2048;

/// Most model memory a section may declare: 256 MiB. A reader allocates
/// it (and zeroes it) for the section's decoding.
pub const PPMD_MAX_MEM: u32 = 256 << 20;

/// Model memory the writer gives a section of `raw_len` bytes: 24 times
/// the raw length rounded up to whole MiB, at least 1 MiB, at most
/// [`PPMD_MAX_MEM`]. With less, an order-16 model fills its memory before
/// the chunk ends and starts again (16 times: +3% on jira's 2 MiB chunks).
pub fn ppmd_mem_for(raw_len: usize) -> u32 {
    let mib = (raw_len as u64).saturating_mul(24).div_ceil(1 << 20).max(1);
    mib.saturating_mul(1 << 20).min(PPMD_MAX_MEM as u64) as u32
}

/// Bytes before the PPMd stream: order (u8), memory size (u32 LE).
const HEADER: usize = 5;

/// `raw` compressed: the header, then the stream.
#[cfg(feature = "write")]
pub(super) fn compress(raw: &[u8]) -> crate::error::Result<Vec<u8>> {
    use std::io::Write;
    let mem = ppmd_mem_for(raw.len());
    let mut out = Vec::with_capacity(raw.len() / 4 + 64);
    out.push(PPMD_ORDER as u8);
    out.extend_from_slice(&mem.to_le_bytes());
    let err = |e: &dyn std::fmt::Display| super::codec_err("ppmd", e);
    let mut e = ppmd_rust::Ppmd7Encoder::new(out, PPMD_ORDER, mem).map_err(|e| err(&e))?;
    e.write_all(raw).map_err(|e| err(&e))?;
    let mut out = e.finish(false).map_err(|e| err(&e))?;
    out.shrink_to_fit();
    Ok(out)
}

/// The order and memory size of a section's header, checked.
fn header(stored: &[u8]) -> std::result::Result<(u32, u32), String> {
    let Some(h) = stored.get(..HEADER) else {
        return Err(format!(
            "{} bytes, shorter than the {HEADER}-byte header",
            stored.len()
        ));
    };
    let order = h[0] as u32;
    let mem = u32::from_le_bytes([h[1], h[2], h[3], h[4]]);
    if !(2..=64).contains(&order) {
        return Err(format!("model order {order}, not within 2..=64"));
    }
    if !(PPMD_MIN_MEM..=PPMD_MAX_MEM).contains(&mem) {
        return Err(format!(
            "model memory {mem} bytes, not within {PPMD_MIN_MEM}..={PPMD_MAX_MEM}"
        ));
    }
    Ok((order, mem))
}

/// Model memory the PPMd decodes of one process hold at once, at most:
/// 512 MiB. Each decode allocates its section's declared model (the
/// writer's: 48 MiB for a 2 MiB chunk; up to [`PPMD_MAX_MEM`] in a hostile
/// file), and searches, exports and pages decode chunks on several threads
/// while a server runs many of them: past this a decode waits for others
/// to end (one alone always runs). Eight of the writer's models fit, as
/// many as a snapshot's decode threads; more would only share the cores.
pub const PPMD_DECODE_MEMORY: u64 = 512 << 20;

/// The process's PPMd decodes' model memory ([`PPMD_DECODE_MEMORY`]).
#[cfg(not(target_arch = "wasm32"))]
static DECODES: Gate = Gate::new(PPMD_DECODE_MEMORY);

/// A counting gate on bytes: [`Gate::enter`] waits while others hold so
/// much that its share would pass the cap (unless nothing is held).
#[cfg(not(target_arch = "wasm32"))]
struct Gate {
    held: std::sync::Mutex<u64>,
    freed: std::sync::Condvar,
    cap: u64,
}

#[cfg(not(target_arch = "wasm32"))]
impl Gate {
    const fn new(cap: u64) -> Gate {
        Gate {
            held: std::sync::Mutex::new(0),
            freed: std::sync::Condvar::new(),
            cap,
        }
    }

    /// Hold `bytes` of the gate until the pass is dropped.
    fn enter(&self, bytes: u64) -> Pass<'_> {
        // A panic elsewhere while holding the lock leaves a plain count.
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        while *held > 0 && *held + bytes > self.cap {
            held = self.freed.wait(held).unwrap_or_else(|e| e.into_inner());
        }
        *held += bytes;
        Pass { gate: self, bytes }
    }
}

/// Bytes held in a [`Gate`], given back when dropped.
#[cfg(not(target_arch = "wasm32"))]
struct Pass<'g> {
    gate: &'g Gate,
    bytes: u64,
}

#[cfg(not(target_arch = "wasm32"))]
impl Drop for Pass<'_> {
    fn drop(&mut self) {
        let mut held = self.gate.held.lock().unwrap_or_else(|e| e.into_inner());
        *held -= self.bytes;
        self.gate.freed.notify_all();
    }
}

/// A decoder that holds its model's share of [`PPMD_DECODE_MEMORY`] for
/// as long as it lives.
struct Gated<R> {
    inner: R,
    #[cfg(not(target_arch = "wasm32"))]
    _pass: Pass<'static>,
}

impl<R: Read> Read for Gated<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

/// A reader of what `stored` decodes to (the caller bounds it: a stream
/// decodes on past its section's length as long as it has bytes). Its
/// model counts against [`PPMD_DECODE_MEMORY`] until it is dropped.
pub(super) fn reader(stored: &[u8]) -> std::result::Result<impl Read + '_, String> {
    let (order, mem) = header(stored)?;
    #[cfg(not(target_arch = "wasm32"))]
    let pass = DECODES.enter(mem as u64);
    let inner =
        ppmd_rust::Ppmd7Decoder::new(&stored[HEADER..], order, mem).map_err(|e| e.to_string())?;
    Ok(Gated {
        inner,
        #[cfg(not(target_arch = "wasm32"))]
        _pass: pass,
    })
}

/// Decode `stored` into exactly `raw_len` bytes (fewer is an error; the
/// caller has checked `raw_len` against the section limit). The output
/// grows with what is decoded, never allocated whole from a declaration.
pub(super) fn decompress(stored: &[u8], raw_len: usize) -> std::result::Result<Vec<u8>, String> {
    let d = reader(stored)?;
    let out = super::read_bounded(
        d.take(raw_len as u64),
        raw_len,
        super::plausible_len(stored.len()),
    )
    .map_err(|e| e.to_string())?;
    if out.len() < raw_len {
        return Err(format!(
            "the stream ends after {} of the {raw_len} bytes the header declares",
            out.len()
        ));
    }
    Ok(out)
}

#[cfg(all(test, feature = "write"))]
mod tests {
    use super::*;

    fn text(n: usize) -> Vec<u8> {
        let words = [
            "the ",
            "issue ",
            "reader ",
            "fails ",
            "when ",
            "a ",
            "column ",
            "is ",
            "empty. ",
            "Steps:\n",
            "```rust\n",
            "let x = 1;\n",
            "```\n",
            "thanks! ",
        ];
        let mut s = 7u64;
        let mut out = Vec::new();
        while out.len() < n {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            out.extend_from_slice(words[(s >> 33) as usize % words.len()].as_bytes());
        }
        out.truncate(n);
        out
    }

    #[test]
    fn round_trips_and_beats_raw() {
        for n in [0, 1, 31, 1000, 300_000] {
            let raw = text(n);
            let c = compress(&raw).unwrap();
            assert_eq!(c[0] as u32, PPMD_ORDER);
            assert_eq!(
                u32::from_le_bytes(c[1..5].try_into().unwrap()),
                ppmd_mem_for(n)
            );
            if n >= 1000 {
                assert!(c.len() * 4 < raw.len(), "{n}: {} bytes", c.len());
            }
            assert_eq!(decompress(&c, raw.len()).unwrap(), raw);
        }
    }

    /// However many threads enter, the gate never holds more than its cap
    /// (but always lets one in, whatever it asks), and every pass given
    /// back frees its share.
    #[test]
    fn the_decode_gate_holds_at_most_its_cap() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let gate = Gate::new(100);
        let (now, most) = (AtomicU64::new(0), AtomicU64::new(0));
        std::thread::scope(|s| {
            for t in 0..12u64 {
                let (gate, now, most) = (&gate, &now, &most);
                s.spawn(move || {
                    for _ in 0..50 {
                        let bytes = if t == 0 { 150 } else { 10 + t * 5 };
                        let pass = gate.enter(bytes);
                        let n = now.fetch_add(bytes, Ordering::SeqCst) + bytes;
                        most.fetch_max(n, Ordering::SeqCst);
                        assert!(n <= 100 || n == bytes, "{n} bytes held at once");
                        std::thread::yield_now();
                        now.fetch_sub(bytes, Ordering::SeqCst);
                        drop(pass);
                    }
                });
            }
        });
        assert_eq!(*gate.held.lock().unwrap(), 0);
        assert!(
            most.load(Ordering::SeqCst) > 10,
            "the threads never overlapped"
        );
    }

    #[test]
    fn model_memory_follows_the_raw_length() {
        assert_eq!(ppmd_mem_for(0), 1 << 20);
        assert_eq!(ppmd_mem_for(10_000), 1 << 20);
        assert_eq!(ppmd_mem_for(2 << 20), 48 << 20);
        assert_eq!(ppmd_mem_for(64 << 20), PPMD_MAX_MEM);
        assert_eq!(ppmd_mem_for(usize::MAX), PPMD_MAX_MEM);
    }

    #[test]
    fn hostile_headers_and_streams_are_errors() {
        let raw = text(50_000);
        let c = compress(&raw).unwrap();
        // Bad headers are refused before any model is allocated.
        for (bad, want) in [
            (vec![], "shorter"),
            (c[..4].to_vec(), "shorter"),
            ([&[1u8][..], &c[1..]].concat(), "order 1"),
            ([&[65u8][..], &c[1..]].concat(), "order 65"),
            (
                [&c[..1], &(PPMD_MAX_MEM + 1).to_le_bytes()[..], &c[5..]].concat(),
                "model memory",
            ),
            (
                [&c[..1], &100u32.to_le_bytes()[..], &c[5..]].concat(),
                "model memory",
            ),
        ] {
            let e = decompress(&bad, raw.len()).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
        // A truncated stream ends early; more bytes than it holds is an
        // error, never a panic.
        for cut in [5, 6, 10, c.len() / 2] {
            let e = decompress(&c[..cut], raw.len()).unwrap_err();
            assert!(!e.is_empty());
        }
        // Flipped bytes decode to other bytes or fail; they never panic.
        let mut s = 99u64;
        for _ in 0..200 {
            let mut m = c.clone();
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
            let i = HEADER + (s >> 33) as usize % (m.len() - HEADER);
            m[i] ^= 1 + (s >> 20) as u8 % 255;
            if let Ok(out) = decompress(&m, raw.len()) {
                assert_eq!(out.len(), raw.len());
            }
        }
    }
}
