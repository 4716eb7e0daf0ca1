//! A file read with positional reads.
//!
//! Unlike a memory map, a positional read cannot fault: a file truncated or
//! rewritten in place while it is read gives a short read (an
//! [`Error::Truncated`]) or changed bytes (a checksum mismatch when the
//! reader checks the section), never a `SIGBUS`.

use super::{ByteSource, check_range};
use crate::error::{Error, Result};
use bytes::Bytes;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A file read with positional reads (`pread` on unix; a lock and a seek
/// elsewhere). Its length and version are those it had when opened.
#[derive(Debug)]
pub struct FileSource {
    #[cfg(unix)]
    file: File,
    #[cfg(not(unix))]
    file: std::sync::Mutex<File>,
    path: PathBuf,
    len: u64,
    version: Option<String>,
}

impl FileSource {
    /// Open `path` for reading.
    pub fn open(path: impl AsRef<Path>) -> Result<FileSource> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::io(Some(path), e))?;
        FileSource::new(file, path)
    }

    /// A source over an open file; `path` is used in error messages.
    pub fn new(file: File, path: impl AsRef<Path>) -> Result<FileSource> {
        let path = path.as_ref();
        let meta = file.metadata().map_err(|e| Error::io(Some(path), e))?;
        let version = meta.modified().ok().map(|m| {
            let d = m.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            format!("{}-{}.{:09}", meta.len(), d.as_secs(), d.subsec_nanos())
        });
        Ok(FileSource {
            #[cfg(unix)]
            file,
            #[cfg(not(unix))]
            file: std::sync::Mutex::new(file),
            path: path.to_path_buf(),
            len: meta.len(),
            version,
        })
    }

    fn read_at(&self, buf: &mut [u8], at: u64) -> std::io::Result<()> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt;
            self.file.read_exact_at(buf, at)
        }
        #[cfg(not(unix))]
        {
            use std::io::{Read, Seek, SeekFrom};
            let mut f = self
                .file
                .lock()
                .map_err(|_| std::io::Error::other("file lock poisoned"))?;
            f.seek(SeekFrom::Start(at))?;
            f.read_exact(buf)
        }
    }
}

impl ByteSource for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_ranges(&self, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        ranges
            .iter()
            .map(|r| {
                check_range(r, self.len)?;
                let n = usize::try_from(r.end - r.start).map_err(|_| Error::Truncated {
                    what: "byte range".into(),
                    start: r.start,
                    end: r.end,
                    len: self.len,
                })?;
                let mut buf = vec![0u8; n];
                match self.read_at(&mut buf, r.start) {
                    Ok(()) => Ok(Bytes::from(buf)),
                    // The file shrank since it was opened.
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        Err(Error::Truncated {
                            what: format!(
                                "{} (the file shrank while it was read)",
                                self.path.display()
                            ),
                            start: r.start,
                            end: r.end,
                            len: self.len,
                        })
                    }
                    Err(e) => Err(Error::io(Some(&self.path), e)),
                }
            })
            .collect()
    }

    fn version(&self) -> Option<String> {
        self.version.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_ranges_and_fails_cleanly_when_the_file_shrinks() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&(0u8..200).collect::<Vec<u8>>()).unwrap();
        f.flush().unwrap();
        let s = FileSource::open(f.path()).unwrap();
        assert_eq!(s.len(), 200);
        assert!(s.version().is_some());
        let v = s.read_ranges(&[10..13, 198..200]).unwrap();
        assert_eq!(&v[0][..], &[10, 11, 12]);
        assert_eq!(&v[1][..], &[198, 199]);
        assert!(matches!(
            s.read_range(150..201),
            Err(Error::Truncated { .. })
        ));
        f.as_file().set_len(100).unwrap();
        assert!(matches!(
            s.read_range(90..110),
            Err(Error::Truncated {
                start: 90,
                end: 110,
                ..
            })
        ));
        assert_eq!(&s.read_range(0..2).unwrap()[..], &[0, 1]);
    }
}
