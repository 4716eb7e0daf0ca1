//! The only module that knows byte offsets: header, sections, footer,
//! trailer. See SPEC.md for the grammar:
//!
//! ```text
//! FILE    := HEADER SECTION* FOOTER TRAILER
//! HEADER  := magic(8) version(u16) flags(u16) reserved(u32)          16 bytes
//! SECTION := payload                                      (version 2)
//! SECTION := codec(u8) encoding(u8) role(u8) reserved(u8)
//!            raw_len(u32) stored_len(u32) crc32c(u32) payload pad   (version 1, 8-aligned)
//! TRAILER := footer_offset(u64) footer_stored_len(u32) footer_raw_len(u32)
//!            footer_crc32c(u32) footer_codec(u8) reserved(u8) version(u16)
//!            trailer_crc32c(u32) magic(4)                            32 bytes
//! ```

pub mod footer;
pub mod header;
pub mod section;
pub mod trailer;

pub use footer::{Footer, NodeMeta, Role, STREAM_ROLES, SectionEntry, Stats, TableMeta};
pub use header::{
    FILE_MAGIC, HEADER_LEN, Header, VERSION, VERSION_1, VERSION_2, VERSION_3, VERSION_4, VERSION_5,
    is_known_version,
};
pub use section::{ALIGN, SECTION_HEADER_LEN, SectionHeader, ZSTD_MAGIC};
pub use trailer::{TRAILER_LEN, TRAILER_MAGIC, Trailer};

/// crc32c (Castagnoli), the checksum used for every section, the footer and
/// the trailer.
pub fn crc32c(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}
