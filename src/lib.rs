//! colsnap: a columnar snapshot format for issue-tracker exports.
#![forbid(unsafe_op_in_unsafe_fn)]

pub mod compress;
pub mod encoding;
pub mod error;
pub mod events;
pub mod model;
pub mod schema;
pub mod source;
pub mod timestamp;

pub use error::{Error, Result};
pub mod format;
pub mod generate;
pub mod query;
pub mod read;
pub mod strings;
pub mod write;

pub use read::{ExportOptions, NodeData, OpenOptions, Snapshot, VerifyReport};
pub use write::{BuildOptions, BuildReport, build, build_file, build_to_vec};
