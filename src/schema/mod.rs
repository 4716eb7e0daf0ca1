//! From JSON rows to columns: input detection, streaming parse, the column
//! builder. No DOM of the input is built: each value is routed straight into
//! its column while serde_json parses it.

pub mod builder;
pub mod colspill;
pub mod distinct;
mod frame;
pub mod idx;
pub mod input;
pub mod interner;
pub mod leftovers;
pub mod memtrace;

pub use builder::{ColumnsBuilder, Limits, NodeBuf};
pub use input::{InputFormat, read_rows};
