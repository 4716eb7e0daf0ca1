//! colsnap: a columnar snapshot format for issue-tracker exports.
//!
//! A snapshot holds rows of JSON (GitHub-style issues, for instance) as typed
//! columns plus sorted string tables, in one file with a footer at the end
//! (the format is specified in `SPEC.md`). Strings are stored once, in sorted
//! order, and columns hold their ids: sorting by a string column compares
//! `u32` ids and decodes no string, and a page of results decodes only the
//! string chunks its rows reference. Every row converts back to JSON that is
//! semantically identical to the input.
//!
//! # Example
//!
//! Build a snapshot, open it, sort by string ids, fetch the strings of the
//! first rows, then ask the query engine for a page:
//!
//! ```
//! # #[cfg(feature = "write")]
//! # fn main() -> colsnap::Result<()> {
//! use colsnap::query::{Engine, Paging, Query, SnapshotSource, SortKey};
//! use colsnap::{BuildOptions, Snapshot, build_to_vec};
//!
//! let ndjson = r#"
//! {"number": 3, "title": "Crash on start", "labels": ["bug"]}
//! {"number": 1, "title": "Add dark mode", "labels": []}
//! {"number": 2, "title": "Docs typo", "labels": ["docs"]}
//! "#;
//! // Build (JSON array or NDJSON, optionally gzip/zstd compressed) and open.
//! let bytes = build_to_vec(ndjson.as_bytes(), &BuildOptions::default())?;
//! let snap = Snapshot::from_bytes(bytes)?; // or Snapshot::open("x.colsnap")
//! assert_eq!(snap.rows(), 3);
//!
//! // Sort by title: string ids are ordered like the strings, so this
//! // compares integers and decodes no string chunk.
//! let titles = snap.column("title")?;
//! let mut order: Vec<usize> = (0..snap.rows() as usize).collect();
//! order.sort_by_key(|&r| titles.str_id(r));
//! assert_eq!(snap.chunks_decoded(), 0);
//!
//! // Fetch only the strings that are shown.
//! let table = snap.table_of(snap.node_by_path("title").unwrap())?;
//! let first = titles.str_id(order[0]).unwrap();
//! assert_eq!(table.get(first)?, "Add dark mode");
//!
//! // The query engine: filter, search, sort and page, as JSON rows.
//! let engine = Engine::new(SnapshotSource::new(snap.clone()));
//! let rows = engine.run(&Query {
//!     sort: vec![SortKey { path: "number".into(), desc: true }],
//!     ..Query::default()
//! })?;
//! let page = engine.page(&rows, Paging::page(1, 2)?, None)?;
//! assert_eq!(page.data[0]["title"], "Crash on start");
//! assert_eq!(page.pagination.total, 3);
//! assert!(page.pagination.has_more);
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "write"))]
//! # fn main() {}
//! ```
//!
//! # Modules
//!
//! - [`read`]: open a snapshot ([`Snapshot`]), read columns, rows, export, verify.
//! - [`strings`]: the sorted string tables (ids, chunks, lookups).
//! - [`query`]: the query engine (filter, search, sort, page).
//! - [`events`]: edit events over a snapshot (overlay, compaction, diffs).
//! - [`write`](mod@write) (feature `write`): JSON rows to a snapshot; [`schema`] turns
//!   JSON into columns.
//! - [`model`], [`timestamp`], [`error`]: shared types.
//! - [`raw`]: the byte layer (section codecs, value encodings, file layout),
//!   for tools that inspect or repair files.
//!
//! # Features
//!
//! - `cli` (default): the `colsnap` command-line programs; implies `write`.
//! - `write`: building snapshots, with the C zstd library and `tempfile`.
//!   Also the zstd decoder used when it is compiled in.
//! - `ruzstd`: a pure-Rust zstd decoder, used when `write` is off. A
//!   read-only dependant (a server, a `wasm32-unknown-unknown` build) uses
//!   `default-features = false, features = ["ruzstd"]`. Without `write` or
//!   `ruzstd`, zstd-compressed sections cannot be read (an error says so).
//! - `publish`, `http`, `s3` (all three with `cli`): published snapshots
//!   ([`publish`]), reading over HTTP(S) ([`source::HttpSource`]), and
//!   `s3://` objects and publish roots ([`source::S3Source`]).
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[doc(hidden)]
pub mod compress;
#[doc(hidden)]
pub mod encoding;
pub mod error;
pub mod events;
#[doc(hidden)]
pub mod format;
pub mod model;
#[cfg(all(feature = "publish", not(target_arch = "wasm32")))]
pub mod publish;
pub mod query;
pub mod read;
pub mod schema;
pub mod source;
pub mod strings;
pub mod timestamp;
#[cfg(feature = "write")]
pub mod write;

pub mod raw {
    //! The byte layer, for tools that inspect, check or repair files: section
    //! codecs ([`compress`]), value encodings ([`encoding`]) and the file
    //! layout (header, section headers, footer, trailer: [`format`](mod@format)).
    //!
    //! These modules follow `SPEC.md` byte for byte and change with it; most
    //! users need [`Snapshot`](crate::Snapshot) and the [`query`](crate::query)
    //! engine instead.
    #[doc(inline)]
    pub use crate::compress;
    #[doc(inline)]
    pub use crate::encoding;
    #[doc(inline)]
    pub use crate::format;
}

pub use compress::{Codec, CodecChoice, CompressOptions};
pub use error::{Error, Result};
pub use read::{
    DEFAULT_STRING_BUDGET, ExportOptions, NodeData, OpenOptions, Snapshot, VerifyReport,
};
#[cfg(feature = "write")]
pub use write::{
    BuildOptions, BuildReport, LongTextCodec, PPMD_AUTO_MAX, PPMD_CHUNK, build, build_file,
    build_to_vec,
};
