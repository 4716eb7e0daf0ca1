//! Crafting snapshots byte by byte with the library's own format types and
//! valid checksums, for the hostile-input tests: the claims a file makes
//! (counts, lengths, offsets, mapped sources) are then what the reader must
//! judge.

use colsnap::compress::{self, Codec, CodecChoice, CompressOptions};
use colsnap::encoding::Encoding;
use colsnap::format::{
    self, Footer, Header, NodeMeta, Role, STREAM_ROLES, SectionEntry, SectionHeader, Stats,
    Trailer, VERSION_1,
};
use colsnap::model::{KIND_COUNT, Kind, NodeName};

/// One section to write: role, encoding, codec, declared raw length, stored bytes.
pub struct Sec {
    pub role: Role,
    pub enc: Encoding,
    pub codec: Codec,
    pub raw_len: u32,
    pub stored: Vec<u8>,
}

pub fn raw(role: Role, enc: Encoding, payload: Vec<u8>) -> Sec {
    Sec {
        role,
        enc,
        codec: Codec::None,
        raw_len: payload.len() as u32,
        stored: payload,
    }
}

/// Header, sections, the footer made by `footer` (given the directory),
/// stored with `footer_codec`, and a trailer; every checksum valid. Crafted
/// files use format version 1 (framed sections), which readers keep
/// reading; the writer's version 2 output is what the other tests read.
pub fn assemble_with(
    secs: Vec<Sec>,
    footer_codec: Codec,
    footer: impl FnOnce(Vec<SectionEntry>) -> Footer,
) -> Vec<u8> {
    let mut out = Header { version: VERSION_1 }.to_bytes().to_vec();
    let mut dir = Vec::new();
    for s in secs {
        let h = SectionHeader {
            codec: s.codec,
            encoding: s.enc,
            role: s.role as u8,
            raw_len: s.raw_len,
            stored_len: s.stored.len() as u32,
            crc: format::crc32c(&s.stored),
        };
        dir.push(SectionEntry {
            offset: out.len() as u64,
            stored_len: h.stored_len,
            raw_len: h.raw_len,
            codec: h.codec,
            encoding: h.encoding,
            role: h.role,
            crc: h.crc,
            framed: true,
            inline: false,
        });
        out.extend_from_slice(&h.to_bytes());
        out.extend_from_slice(&s.stored);
        let pad = format::section::padding((format::SECTION_HEADER_LEN + s.stored.len()) as u64);
        out.extend(std::iter::repeat_n(0u8, pad as usize));
    }
    let footer_raw = footer(dir).to_bytes(VERSION_1);
    finish(out, &footer_raw, footer_codec)
}

pub fn assemble(secs: Vec<Sec>, footer: impl FnOnce(Vec<SectionEntry>) -> Footer) -> Vec<u8> {
    assemble_with(secs, Codec::None, footer)
}

/// Append footer bytes (compressed with `codec`) and a valid trailer.
pub fn finish(mut out: Vec<u8>, footer_raw: &[u8], codec: Codec) -> Vec<u8> {
    let stored = match codec {
        Codec::None => footer_raw.to_vec(),
        c => {
            let (got, bytes) = compress::compress(
                footer_raw,
                &CompressOptions {
                    choice: CodecChoice::Force(c),
                    level: 3,
                },
                None,
            )
            .expect("compress");
            assert_eq!(got, c, "footer did not compress");
            bytes
        }
    };
    let t = Trailer {
        footer_offset: out.len() as u64,
        footer_stored_len: stored.len() as u32,
        footer_raw_len: footer_raw.len() as u32,
        footer_crc: format::crc32c(&stored),
        footer_codec: codec,
        version: VERSION_1,
    };
    out.extend_from_slice(&stored);
    out.extend_from_slice(&t.to_bytes());
    out
}

pub fn node(parent: u32, name: NodeName, items: u64, kinds: &[(Kind, u64)]) -> NodeMeta {
    let mut counts = [0u64; KIND_COUNT];
    for &(k, c) in kinds {
        counts[k as usize] = c;
    }
    NodeMeta {
        parent,
        name,
        items,
        counts,
        streams: [None; STREAM_ROLES.len()],
        table: 0,
        ts_layout: 0,
        stats: Stats::default(),
    }
}

pub fn root(rows: u64) -> NodeMeta {
    node(0, NodeName::Root, rows, &[(Kind::Object, rows)])
}

pub fn with_stream(mut n: NodeMeta, role: Role, section: u32) -> NodeMeta {
    n.streams[role.stream_index().expect("stream role")] = Some(section);
    n
}

/// The one (empty) string table of a snapshot without strings.
pub fn empty_table() -> format::TableMeta {
    format::TableMeta {
        flags: 0,
        n_strings: 0,
        first_chunk: 0,
        chunk_counts: Vec::new(),
        index_section: None,
        dict_section: None,
    }
}

pub fn footer(rows: u64, sections: Vec<SectionEntry>, nodes: Vec<NodeMeta>) -> Footer {
    Footer {
        rows,
        sections,
        tables: Vec::new(),
        nodes,
        inline: Vec::new(),
    }
}
