//! Temporary files and directories that a build killed outright (SIGKILL,
//! the out-of-memory killer, a power loss) had no chance to remove: the
//! next build that writes the same output, or spills into the same
//! directory, removes them.
//!
//! A live build holds an exclusive lock ([`std::fs::File::try_lock`]) on
//! each of them for as long as it runs, and the operating system drops
//! the lock when the process ends, however it ends. So an entry that is
//! ours by its name, that no one holds locked and that is older than
//! [`MIN_AGE`] (the moment between a file's creation and its lock) is a
//! leftover. Where locks are not supported, nothing is ever taken for one.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How old (by its modification time) a temporary file must be before it
/// can be taken for a leftover.
pub const MIN_AGE: Duration = Duration::from_secs(5);

/// Mark `f`'s file as in use by this process until `f` is closed. Without
/// file locks (some network filesystems) this does nothing, and
/// [`sweep`] then leaves every entry alone.
pub fn hold(f: &File) {
    let _ = f.try_lock();
}

/// Whether the file `lock` is abandoned: older than [`MIN_AGE`] and not
/// held by any process ([`hold`]).
fn abandoned(lock: &Path) -> bool {
    let old = std::fs::metadata(lock)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age >= MIN_AGE);
    // Opened to test its lock, released when `f` is closed.
    old && File::open(lock).is_ok_and(|f| f.try_lock().is_ok())
}

/// Remove the entries of `dir` whose names `ours` accepts (files when
/// `dirs` is false, directories when true, never a symbolic link) and that
/// are abandoned: a file by its own lock, a directory by the lock of the
/// file `lock_name` inside it. Returns how many were removed; errors
/// (another process removing the same entry) leave an entry alone.
pub fn sweep(dir: &Path, dirs: bool, lock_name: &str, ours: impl Fn(&str) -> bool) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let Ok(t) = e.file_type() else { continue };
        let named = e.file_name().to_str().is_some_and(&ours);
        if !named || (if dirs { !t.is_dir() } else { !t.is_file() }) {
            continue;
        }
        let path = e.path();
        let lock: PathBuf = if dirs {
            path.join(lock_name)
        } else {
            path.clone()
        };
        if !abandoned(&lock) {
            continue;
        }
        let gone = if dirs {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed += usize::from(gone.is_ok());
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(p: &Path, secs: u64) {
        let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(secs))
            .unwrap();
    }

    #[test]
    fn only_old_unlocked_entries_of_ours_are_removed() {
        let d = tempfile::tempdir().unwrap();
        let p = |n: &str| d.path().join(n);
        for n in ["ours.old", "ours.new", "ours.held", "other.old"] {
            std::fs::write(p(n), b"x").unwrap();
        }
        for n in ["ours.old", "ours.held", "other.old"] {
            age(&p(n), 60);
        }
        let held = File::open(p("ours.held")).unwrap();
        hold(&held);
        // A directory named like ours is not a file, and the reverse.
        std::fs::create_dir(p("ours.dir")).unwrap();
        std::fs::write(p("ours.dir").join("lock"), b"").unwrap();
        age(&p("ours.dir").join("lock"), 60);
        let n = sweep(d.path(), false, "", |n| n.starts_with("ours."));
        assert_eq!(n, 1);
        assert!(!p("ours.old").exists());
        for n in ["ours.new", "ours.held", "other.old", "ours.dir"] {
            assert!(p(n).exists(), "{n}");
        }
        // Directories by the lock file inside them.
        std::fs::create_dir(p("ours.live")).unwrap();
        let live = File::create(p("ours.live").join("lock")).unwrap();
        hold(&live);
        age(&p("ours.live").join("lock"), 60);
        std::fs::create_dir(p("ours.nolock")).unwrap();
        assert_eq!(sweep(d.path(), true, "lock", |n| n.starts_with("ours.")), 1);
        assert!(!p("ours.dir").exists());
        assert!(p("ours.live").exists() && p("ours.nolock").exists());
        drop(held);
        assert_eq!(sweep(d.path(), false, "", |n| n.starts_with("ours.")), 1);
        assert!(!p("ours.held").exists());
    }
}
