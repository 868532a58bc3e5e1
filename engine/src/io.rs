//! Saving files so that a failed save loses nothing: [`write_atomic`] and [`AtomicFile`].
//!
//! Every file backflow writes (weights, traces, the app's checkpoints and reports) goes
//! through here. The new contents go to a temporary file in the target's folder, are
//! flushed to disk, and only then renamed over the target. A save that fails part way (a
//! full disk, a file-size limit, a crash) leaves the previous file as it was, and no
//! temporary file behind; the temporary of a process killed mid-save is removed by the
//! next save to the same path (on Linux).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// How many names [`AtomicFile::create`] tries before giving up on finding a free one.
const NAME_TRIES: usize = 16;

/// Writes `contents` to `path` atomically: readers of `path` see the old file or the new
/// one, never a part of either, and a failed write leaves the old file untouched. See
/// [`AtomicFile`] for how, and for what happens with links and devices.
///
/// ```
/// use backflow::io::write_atomic;
/// let dir = std::env::temp_dir().join(format!("write-atomic-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("notes.txt");
/// write_atomic(&path, "first")?;
/// write_atomic(&path, "second")?;
/// assert_eq!(std::fs::read_to_string(&path)?, "second");
/// // Nothing else is left in the folder.
/// assert_eq!(std::fs::read_dir(&dir)?.count(), 1);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write_atomic(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(contents.as_ref())?;
    file.commit()
}

/// A file that replaces its target only when [`commit`](AtomicFile::commit)ted.
///
/// [`create`](AtomicFile::create) opens a new temporary file in the target's folder (so
/// that the final rename stays on one file system; an existing target keeps its
/// permissions). Writes go there. `commit` flushes it to disk, renames it over the target
/// and flushes the folder, so the new file survives a crash. Dropping an `AtomicFile`
/// without committing it, or a failed commit, removes the temporary file and leaves the
/// target as it was.
///
/// Creating one is also the check that a save to the path can work: it fails, before
/// anything is computed, where the folder is missing or read-only or the path is a folder.
///
/// A symbolic link is followed: the file it points to is replaced, the link is kept. A
/// path that is neither a regular file nor missing (a device such as `/dev/null`, a named
/// pipe) cannot be replaced, so it is written in place, as [`std::fs::write`] would.
///
/// Writes are not buffered: wrap it in a [`std::io::BufWriter`] for many small writes
/// (and call `into_inner` before `commit`).
///
/// ```
/// use backflow::io::AtomicFile;
/// use std::io::Write;
/// let path = std::env::temp_dir().join(format!("atomic-file-doc-{}.txt", std::process::id()));
/// std::fs::write(&path, "old")?;
/// let mut file = AtomicFile::create(&path)?;
/// file.write_all(b"half a new ")?;
/// drop(file); // not committed: as if the save had failed
/// assert_eq!(std::fs::read_to_string(&path)?, "old");
/// let mut file = AtomicFile::create(&path)?;
/// file.write_all(b"new")?;
/// file.commit()?;
/// assert_eq!(std::fs::read_to_string(&path)?, "new");
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct AtomicFile {
    file: Option<File>,
    /// The file that `commit` replaces.
    target: PathBuf,
    /// The temporary file beside it, or `None` when the target is written in place.
    temporary: Option<PathBuf>,
}

impl AtomicFile {
    /// Opens a temporary file beside `path` for its new contents.
    ///
    /// Fails where the folder does not exist or refuses new files, or `path` is a folder.
    pub fn create(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        if path.as_os_str().is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty path"));
        }
        let target = resolve_links(path);
        match std::fs::metadata(&target) {
            Ok(m) if m.is_dir() => {
                return Err(io::Error::new(
                    io::ErrorKind::IsADirectory,
                    "it is a folder",
                ))
            }
            Ok(m) if !m.is_file() => {
                // A device or a pipe: there is no file to keep, and renaming over it would
                // replace the device node itself.
                let file = OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(&target)?;
                return Ok(Self {
                    file: Some(file),
                    target,
                    temporary: None,
                });
            }
            _ => {}
        }
        let (file, temporary) = create_temporary(&target)?;
        if let Ok(m) = std::fs::metadata(&target) {
            // Best effort: a file we cannot give the old permissions is still written.
            let _ = file.set_permissions(m.permissions());
        }
        Ok(Self {
            file: Some(file),
            target,
            temporary: Some(temporary),
        })
    }

    /// The file that [`commit`](AtomicFile::commit) replaces (the path given to
    /// [`create`](AtomicFile::create), with symbolic links followed).
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Flushes the new contents to disk and renames them over the target. On failure the
    /// temporary file is removed and the target is as it was.
    pub fn commit(mut self) -> io::Result<()> {
        let file = self
            .file
            .take()
            .expect("an AtomicFile holds its file until committed");
        file.sync_all()?;
        drop(file);
        let Some(temporary) = &self.temporary else {
            return Ok(());
        };
        std::fs::rename(temporary, &self.target)?;
        self.temporary = None;
        sync_folder(&self.target);
        remove_stale_temporaries(&self.target);
        Ok(())
    }

    fn file(&mut self) -> &mut File {
        self.file
            .as_mut()
            .expect("an AtomicFile holds its file until committed")
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file().write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file().flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        drop(self.file.take());
        if let Some(temporary) = self.temporary.take() {
            // Nothing better to do with a failure here: the target is untouched either way.
            let _ = std::fs::remove_file(temporary);
        }
    }
}

/// `path` with its symbolic links followed, so that saving through a link replaces the
/// file it points to; `path` itself where it is not a link or the link leads nowhere.
fn resolve_links(path: &Path) -> PathBuf {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
        }
        _ => path.to_path_buf(),
    }
}

/// A new file `.NAME.PID-RANDOM.tmp` in `target`'s folder (hidden, named after the target
/// so that a stray one says where it came from, and after the process writing it so that a
/// later save can tell a killed writer's leftover from a live one's file).
fn create_temporary(target: &Path) -> io::Result<(File, PathBuf)> {
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?
        .to_string_lossy()
        .into_owned();
    let mut last = None;
    for _ in 0..NAME_TRIES {
        let temporary = target.with_file_name(format!(
            ".{name}.{}-{:016x}.tmp",
            std::process::id(),
            rand::random::<u64>()
        ));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)
        {
            Ok(file) => return Ok((file, temporary)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("at least one try"))
}

/// Removes what killed writers left beside `target`: temporaries `.NAME.PID-RANDOM.tmp`
/// of this target whose process no longer runs (a save killed before its commit or drop
/// could clean up). Linux only, where `/proc/PID` tells whether a process runs; best
/// effort. A temporary of this process, or of a running one, is never touched: it may be a
/// save in progress.
fn remove_stale_temporaries(target: &Path) {
    #[cfg(target_os = "linux")]
    {
        let (Some(name), Some(folder)) = (target.file_name(), target.parent()) else {
            return;
        };
        let folder = if folder.as_os_str().is_empty() {
            Path::new(".")
        } else {
            folder
        };
        let prefix = format!(".{}.", name.to_string_lossy());
        let Ok(entries) = std::fs::read_dir(folder) else {
            return;
        };
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(pid) = file_name
                .to_str()
                .and_then(|n| n.strip_prefix(&prefix))
                .and_then(|rest| rest.strip_suffix(".tmp"))
                .and_then(|rest| rest.split_once('-'))
                .filter(|(_, random)| {
                    random.len() == 16 && random.bytes().all(|b| b.is_ascii_hexdigit())
                })
                .and_then(|(pid, _)| pid.parse::<u32>().ok())
            else {
                continue;
            };
            let running = Path::new("/proc").join(pid.to_string()).exists();
            if pid != std::process::id() && !running {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = target;
}

/// Flushes the folder holding `path`, so the rename itself survives a crash. Best effort:
/// not every platform or file system lets a folder be opened and synced.
fn sync_folder(path: &Path) {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(dir) = File::open(folder) {
        let _ = dir.sync_all();
    }
}
