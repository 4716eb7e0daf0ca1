//! The sorted string table: deduplicated strings in byte-wise order, split
//! into independently compressed chunks, plus a separator index so that
//! `find` touches one chunk and `get` decodes only the chunk holding the id.
//!
//! ```text
//! CHUNK (plain)       := ( len:varint bytes )*                 count from the footer
//! CHUNK (front-coded) := ( shared:varint suffix_len:varint suffix )*
//!                        shared = bytes in common with the previous string of the chunk
//! INDEX               := ( len:varint separator )*             one per chunk after the first
//! ```
//! The separator of chunk k is the shortest prefix of its first string that
//! sorts after the last string of chunk k-1, so `find(s)` picks the last
//! chunk whose separator is <= s by binary search over small keys.

pub mod builder;
pub mod reader;

pub use builder::{ChunkBuilder, ChunkPlan, TablePolicy, build_chunks};
pub use reader::Chunk;
// The table handle reads through a snapshot, so it lives with the reader;
// re-exported here, where it has always been.
pub use crate::read::StringTable;
