//! Writing files so that a reader never sees half of one and a crash never leaves a torn one: the
//! registry, the patient directory and the keys are written to a temporary file in the same
//! directory, flushed to disk, then renamed (or linked) into place, and the directory is flushed
//! too.
//!
//! [`WatchedFile`] is the JSON state file the CLI writes while the server reads it (the registry,
//! the patient directory): writes under an exclusive lock on `<file>.lock`, reads from memory
//! after one `stat`, re-read when the file changed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// Replaces `path` with `bytes` atomically (readers see the old or the new file, never a mix).
pub(crate) fn replace(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let temporary = write_temporary(path, bytes, mode)?;
    let renamed = fs::rename(&temporary, path);
    if renamed.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    renamed?;
    sync_directory(path)
}

/// Creates `path` with `bytes` atomically, unless it exists: `Ok(false)` then, and the existing
/// file is left alone (two processes racing to create it agree on the winner's content).
pub(crate) fn create_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<bool> {
    let temporary = write_temporary(path, bytes, mode)?;
    // A hard link fails when the target exists, where a rename would silently replace it.
    let linked = fs::hard_link(&temporary, path);
    let _ = fs::remove_file(&temporary);
    match linked {
        Ok(()) => {
            sync_directory(path)?;
            Ok(true)
        }
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(error) => Err(error),
    }
}

fn write_temporary(path: &Path, bytes: &[u8], mode: u32) -> io::Result<PathBuf> {
    let directory = parent(path);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let mut suffix = [0u8; 8];
    aws_lc_rs::rand::fill(&mut suffix).map_err(|_| io::Error::other("no randomness"))?;
    let temporary = directory.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        suffix
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let written = (|| {
        let mut file = options.open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(error) = written {
        let _ = fs::remove_file(&temporary);
        return Err(error);
    }
    Ok(temporary)
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

fn sync_directory(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(parent(path))?.sync_all()?;
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The content of a [`WatchedFile`]: how it is read (with every rule checked) and written.
pub(crate) trait FileState: Sized {
    /// The error of reads and writes.
    type Error;
    /// An I/O error as [`FileState::Error`].
    fn io_error(error: io::Error) -> Self::Error;
    /// Parses and checks the file's bytes; a file that breaks a rule is an error as a whole.
    fn parse(bytes: &[u8]) -> Result<Self, Self::Error>;
    /// The file's bytes.
    fn serialise(&self) -> Result<Vec<u8>, Self::Error>;
}

/// A state kept in one file that one process writes (under a lock) while others read it.
///
/// - Writes take an exclusive lock on `<file>.lock`, read the file again, apply the change and
///   [`replace`] the file: two writers at once cannot lose each other's change.
/// - Reads are answered from memory after one `stat`: when the file's inode, size or
///   modification time changed, it is read again, so a change made by another process is seen on
///   the next read.
/// - When the file no longer parses, the cached state is dropped first: nothing stale is served.
#[derive(Debug)]
pub(crate) struct WatchedFile<S> {
    path: PathBuf,
    mode: u32,
    cache: Mutex<Option<(Fingerprint, S)>>,
}

/// What tells us the file changed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl Fingerprint {
    fn of(path: &Path) -> io::Result<Self> {
        let metadata = fs::metadata(path)?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
        #[cfg(not(unix))]
        let inode = 0;
        Ok(Fingerprint {
            modified: metadata.modified().ok(),
            len: metadata.len(),
            inode,
        })
    }
}

impl<S: FileState> WatchedFile<S> {
    /// Opens the file at `path`, first creating it with `empty` (and `mode`) when there is none,
    /// and reads it once.
    pub fn open(path: PathBuf, empty: &S, mode: u32) -> Result<Self, S::Error> {
        if !path.exists() {
            create_new(&path, &empty.serialise()?, mode).map_err(S::io_error)?;
        }
        let file = WatchedFile {
            path,
            mode,
            cache: Mutex::new(None),
        };
        file.read(|_| ())?;
        Ok(file)
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the current state, reading the file again when it changed.
    pub fn read<T>(&self, f: impl FnOnce(&S) -> T) -> Result<T, S::Error> {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let fingerprint = Fingerprint::of(&self.path).map_err(S::io_error)?;
        if let Some((known, state)) = &*cache
            && *known == fingerprint
        {
            return Ok(f(state));
        }
        // Forget the old state first: if the new file is bad, nothing stale is served.
        *cache = None;
        let state = S::parse(&fs::read(&self.path).map_err(S::io_error)?)?;
        let (_, state) = cache.insert((fingerprint, state));
        Ok(f(state))
    }

    /// Applies `change` to the file's current content under the write lock, and returns what it
    /// returned.
    pub fn write<T>(
        &self,
        change: impl FnOnce(&mut S) -> Result<T, S::Error>,
    ) -> Result<T, S::Error> {
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_path(&self.path))
            .map_err(S::io_error)?;
        lock.lock().map_err(S::io_error)?;
        let result = self.write_locked(change);
        // Closing the file releases the lock too; unlocking explicitly makes the order plain.
        let _ = File::unlock(&lock);
        result
    }

    fn write_locked<T>(
        &self,
        change: impl FnOnce(&mut S) -> Result<T, S::Error>,
    ) -> Result<T, S::Error> {
        let mut state = S::parse(&fs::read(&self.path).map_err(S::io_error)?)?;
        let answer = change(&mut state)?;
        replace(&self.path, &state.serialise()?, self.mode).map_err(S::io_error)?;
        let fingerprint = Fingerprint::of(&self.path).map_err(S::io_error)?;
        *self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((fingerprint, state));
        Ok(answer)
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}
