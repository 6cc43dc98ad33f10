//! A JSON file store for one machine: `tokens.json` (mode 0600) in a directory of mode 0700,
//! replaced atomically (temp file, fsync, rename, fsync of the directory), with advisory locks.
//!
//! Two kinds of lock, on separate files so that neither is lost when `tokens.json` is replaced:
//! - `tokens.json.lock`: held for the few milliseconds of a read-modify-write, so that writers of
//!   different keys never lose each other's updates;
//! - `locks/<key>.lock`: the refresh lock of [`TokenStore::lock`], held across a network refresh so
//!   that exactly one process on the machine refreshes a given key.
//!
//! It refuses files and directories that other users can access, and never overwrites a file it
//! cannot parse: the user decides what to do with it.
//!
//! Windows (compiled, never run here): the same files, locks (`LockFileEx` through std's
//! `File::lock`) and rename (std's, with POSIX semantics: see [`crate::local_file::replace`]); no modes (the directory's ACL,
//! private under the user's profile, is what protects it, and it is not checked), lock files
//! never opened through a symbolic link or junction, and no directory sync (see
//! [`crate::local_file::sync_dir`]). docs/DECISIONS.md lists each rule's Windows form.

use std::collections::BTreeMap;
use std::fs::{self, File, TryLockError};
use std::io::{self, Write};
#[cfg(unix)]
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tessera_core::{Error, StoreErrorKind, TokenSet};

use super::{LockGuard, StoreLock, TokenStore};
use crate::SpentRefreshTokens;

const FILE_NAME: &str = "tokens.json";
const SPENT_FILE_NAME: &str = "spent-refresh-tokens.json";
const WRITE_LOCK_NAME: &str = "tokens.json.lock";
const LOCK_DIR: &str = "locks";
const FORMAT_VERSION: u32 = 1;
const TEMP_PREFIX: &str = ".tokens-";
const TEMP_SUFFIX: &str = ".tmp";

#[derive(Serialize, Deserialize, Default)]
struct Document {
    version: u32,
    #[serde(default)]
    tokens: BTreeMap<String, TokenSet>,
}

/// Tokens in a file, shared by every process of this user on this machine.
///
/// Beside `tokens.json`, `spent-refresh-tokens.json` remembers the refresh tokens no session may
/// present again (see [`SpentRefreshTokens`]); it is written only when one is spent.
#[derive(Clone, Debug)]
pub struct FileStore {
    dir: Arc<PathBuf>,
    spent: Arc<SpentRefreshTokens>,
}

impl FileStore {
    /// A store in `dir` (created with mode 0700 on first write). Nothing is touched until used.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        let spent = Arc::new(SpentRefreshTokens::file(dir.join(SPENT_FILE_NAME)));
        FileStore { dir: Arc::new(dir), spent }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The token file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&FileStore) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || work(&store)).await.map_err(|e| {
            Error::store(StoreErrorKind::Io, store_location(&self.dir), format!("store task failed: {e}"))
        })?
    }

    /// The tokens saved under `key`, read on the calling thread: what [`TokenStore::load`] returns,
    /// without a runtime or a thread. For a process that only wants a stored token and should
    /// start nothing to get it (the CLI's `tessera token` on a valid token); async code uses `load`,
    /// which keeps the file system off the runtime's threads.
    pub fn load_now(&self, key: &str) -> Result<Option<TokenSet>, Error> {
        Ok(self.read_document()?.and_then(|mut document| document.tokens.remove(key)))
    }

    fn read_document(&self) -> Result<Option<Document>, Error> {
        let path = self.path();
        match fs::metadata(self.dir.as_path()) {
            Ok(metadata) => check_private(self.dir.as_path(), &metadata, 0o700)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(self.dir.as_path(), "cannot read directory", &e)),
        }
        // A regular file of at most 16 MiB, owned by you or root: a FIFO or `/dev/zero` in its
        // place is refused before anything is read.
        let bytes = match crate::local_file::read(&path, crate::local_file::FileKind::Tokens) {
            Ok(bytes) => bytes,
            Err(refused) if refused.not_found => return Ok(None),
            Err(refused) => {
                return Err(Error::store(StoreErrorKind::Io, path.display().to_string(), refused.problem));
            }
        };
        let metadata = fs::metadata(&path).map_err(|e| io_error(&path, "cannot stat", &e))?;
        check_private(&path, &metadata, 0o600)?;
        parse_document(&bytes, &path).map(Some)
    }

    /// Parses the contents of a token file exactly as a load does, without touching the disk: the
    /// token sets by key, or the typed error a load returns (`Corrupt`, `UnsupportedVersion`).
    /// `location` names the file in errors. For fuzzing and for tools that inspect token files.
    pub fn parse_document(bytes: &[u8], location: &Path) -> Result<BTreeMap<String, TokenSet>, Error> {
        parse_document(bytes, location).map(|document| document.tokens)
    }

    fn ensure_dir(&self) -> Result<(), Error> {
        let dir = self.dir.as_path();
        match fs::metadata(dir) {
            Ok(metadata) => check_private(dir, &metadata, 0o700),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                crate::local_file::create_private_dir(dir).map_err(|e| io_error(dir, "cannot create directory", &e))
            }
            Err(e) => Err(io_error(dir, "cannot read directory", &e)),
        }
    }

    /// Read-modify-write of the whole document under the short write lock.
    fn update(&self, change: impl FnOnce(&mut Document)) -> Result<(), Error> {
        self.ensure_dir()?;
        let lock_path = self.dir.join(WRITE_LOCK_NAME);
        let lock = open_lock_file(&lock_path)?;
        lock.lock().map_err(|e| io_error(&lock_path, "cannot lock", &e))?;
        let mut document =
            self.read_document()?.unwrap_or_else(|| Document { version: FORMAT_VERSION, tokens: BTreeMap::new() });
        document.version = FORMAT_VERSION;
        change(&mut document);
        self.remove_orphaned_temp_files();
        self.write_document(&document)
        // `lock` is dropped (and the lock released) only after the rename is durable.
    }

    /// Temporary files exist only while their writer holds the write lock; we hold it now, so any
    /// that remain were left by a writer killed (or a machine powered off) mid-write. Best effort.
    fn remove_orphaned_temp_files(&self) {
        let Ok(entries) = fs::read_dir(self.dir.as_path()) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    fn write_document(&self, document: &Document) -> Result<(), Error> {
        let path = self.path();
        let dir = self.dir.as_path();
        let mut builder = tempfile::Builder::new();
        builder.prefix(TEMP_PREFIX).suffix(TEMP_SUFFIX);
        // Windows: the new file inherits the directory's ACL (no mode to set).
        #[cfg(unix)]
        builder.permissions(fs::Permissions::from_mode(0o600));
        let mut temp = builder.tempfile_in(dir).map_err(|e| io_error(dir, "cannot create temporary file", &e))?;
        let bytes = serde_json::to_vec_pretty(document)
            .map_err(|e| Error::store(StoreErrorKind::Io, path.display().to_string(), format!("cannot encode: {e}")))?;
        temp.write_all(&bytes).map_err(|e| io_error(temp.path(), "cannot write", &e))?;
        temp.as_file().sync_all().map_err(|e| io_error(temp.path(), "cannot sync", &e))?;
        crate::local_file::replace(temp, &path).map_err(|e| io_error(&path, "cannot replace", &e))?;
        // The rename itself is durable only once the directory entry is synced (Unix only).
        crate::local_file::sync_dir(dir).map_err(|e| io_error(dir, "cannot sync directory", &e))
    }

    fn key_lock_path(&self, key: &str) -> PathBuf {
        let mut name = String::with_capacity(key.len() + 5);
        for byte in key.bytes() {
            if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
                name.push(byte as char);
            } else {
                name.push_str(&format!("%{byte:02X}"));
            }
        }
        name.push_str(".lock");
        self.dir.join(LOCK_DIR).join(name)
    }
}

/// The document in `bytes` (the file at `path`), or why it cannot be used.
fn parse_document(bytes: &[u8], path: &Path) -> Result<Document, Error> {
    let document: Document = serde_json::from_slice(bytes).map_err(|e| {
        Error::store(
            StoreErrorKind::Corrupt,
            path.display().to_string(),
            // serde's message quotes the offending value (it may be a token): only its place.
            format!(
                "not a token store ({} at line {}, column {}); left untouched: fix or delete it",
                json_problem(&e),
                e.line(),
                e.column()
            ),
        )
    })?;
    if document.version > FORMAT_VERSION {
        return Err(Error::store(
            StoreErrorKind::UnsupportedVersion,
            path.display().to_string(),
            format!("format version {} is newer than this tessera understands ({FORMAT_VERSION})", document.version),
        ));
    }
    Ok(document)
}

/// What kind of JSON problem `error` is, in words that quote nothing from the input.
pub(crate) fn json_problem(error: &serde_json::Error) -> &'static str {
    match error.classify() {
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Eof => "JSON cut short",
        serde_json::error::Category::Data => "a value of the wrong type or shape",
        serde_json::error::Category::Io => "unreadable input",
    }
}

fn store_location(dir: &Path) -> String {
    dir.join(FILE_NAME).display().to_string()
}

fn open_lock_file(path: &Path) -> Result<File, Error> {
    crate::local_file::open_lock_file(path).map_err(|e| io_error(path, "cannot open lock file", &e))
}

#[cfg(unix)]
fn check_private(path: &Path, metadata: &fs::Metadata, expected: u32) -> Result<(), Error> {
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::store(
            StoreErrorKind::InsecurePermissions,
            path.display().to_string(),
            format!(
                "is accessible by other users (mode {mode:04o}); tokens are refused here until you run `chmod {expected:o} {}`",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// Windows: no check. Mode bits do not exist there and reading the ACL needs Win32 calls std does
/// not wrap (and `unsafe`, which the workspace forbids); the store relies on the directory's ACL,
/// private to the user under their profile (the CLI's `%APPDATA%\tessera\tessera\data\tokens`). Documented in
/// docs/token-stores.md and docs/DECISIONS.md.
#[cfg(not(unix))]
fn check_private(_path: &Path, _metadata: &fs::Metadata, _expected: u32) -> Result<(), Error> {
    Ok(())
}

fn io_error(path: &Path, what: &str, error: &io::Error) -> Error {
    Error::store(StoreErrorKind::Io, path.display().to_string(), format!("{what}: {error}"))
}

struct FileLockGuard {
    file: File,
}

#[async_trait]
impl LockGuard for FileLockGuard {
    async fn release(self: Box<Self>) -> Result<(), Error> {
        // Closing the descriptor releases the lock too; unlocking first makes it explicit.
        let _ = self.file.unlock();
        Ok(())
    }
}

#[async_trait]
impl TokenStore for FileStore {
    async fn load(&self, key: &str) -> Result<Option<TokenSet>, Error> {
        let key = key.to_owned();
        self.blocking(move |store| store.load_now(&key)).await
    }

    async fn save(&self, key: &str, tokens: &TokenSet) -> Result<(), Error> {
        let (key, tokens) = (key.to_owned(), tokens.clone());
        self.blocking(move |store| {
            store.update(|document| {
                document.tokens.insert(key, tokens);
            })
        })
        .await
    }

    async fn clear(&self, key: &str) -> Result<(), Error> {
        let key = key.to_owned();
        self.blocking(move |store| {
            if store.read_document()?.is_none_or(|document| !document.tokens.contains_key(&key)) {
                return Ok(());
            }
            store.update(|document| {
                document.tokens.remove(&key);
            })
        })
        .await
    }

    fn spent_refresh_tokens(&self) -> Option<Arc<SpentRefreshTokens>> {
        Some(Arc::clone(&self.spent))
    }

    async fn lock(&self, key: &str, timeout: Duration) -> Result<StoreLock, Error> {
        let path = self.key_lock_path(key);
        let file = self
            .blocking(move |store| {
                store.ensure_dir()?;
                let lock_dir = store.dir.join(LOCK_DIR);
                crate::local_file::create_private_dir(&lock_dir)
                    .map_err(|e| io_error(&lock_dir, "cannot create directory", &e))?;
                open_lock_file(&path).map(|file| (file, path))
            })
            .await?;
        let (file, path) = file;
        let deadline = Instant::now() + timeout;
        let mut delay = Duration::from_millis(2);
        loop {
            // A non-blocking flock: polling keeps the runtime's threads free while we wait.
            match file.try_lock() {
                Ok(()) => return Ok(StoreLock::new(Box::new(FileLockGuard { file }))),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(io_error(&path, "cannot lock", &e)),
            }
            if Instant::now() >= deadline {
                return Err(Error::store(
                    StoreErrorKind::LockTimeout,
                    path.display().to_string(),
                    format!("another process held the refresh lock for more than {timeout:?}"),
                ));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(50));
        }
    }

    fn location(&self) -> String {
        store_location(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::{Secret, Timestamp};

    fn tokens(access: &str) -> TokenSet {
        let mut tokens = TokenSet::bearer(access, Some(Timestamp::from_unix_secs(100)), Timestamp::from_unix_secs(1));
        tokens.refresh_token = Some(Secret::new(format!("{access}-refresh")));
        tokens
    }

    #[cfg(unix)] // modes: Unix only
    #[tokio::test]
    async fn round_trips_with_private_modes() {
        let root = tempfile::tempdir().unwrap();
        let store = FileStore::new(root.path().join("store"));
        assert_eq!(store.load("a").await.unwrap(), None);
        store.save("a", &tokens("one")).await.unwrap();
        store.save("b/c", &tokens("two")).await.unwrap();
        assert_eq!(store.load("a").await.unwrap(), Some(tokens("one")));
        assert_eq!(store.load("b/c").await.unwrap(), Some(tokens("two")));
        assert_eq!(fs::metadata(store.path()).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(store.dir()).unwrap().permissions().mode() & 0o777, 0o700);
        store.clear("a").await.unwrap();
        assert_eq!(store.load("a").await.unwrap(), None);
        assert_eq!(store.load("b/c").await.unwrap(), Some(tokens("two")));
    }

    #[cfg(unix)] // ends on a mode check
    #[test]
    fn load_now_reads_what_load_reads_without_a_runtime() {
        let root = tempfile::tempdir().unwrap();
        let store = FileStore::new(root.path().join("store"));
        assert_eq!(store.load_now("a").unwrap(), None, "no directory yet");
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(store.save("a", &tokens("one"))).unwrap();
        drop(runtime);
        assert_eq!(store.load_now("a").unwrap(), Some(tokens("one")));
        assert_eq!(store.load_now("b").unwrap(), None);
        fs::set_permissions(store.path(), fs::Permissions::from_mode(0o644)).unwrap();
        let error = store.load_now("a").unwrap_err();
        assert!(matches!(error, Error::Store { kind: StoreErrorKind::InsecurePermissions, .. }), "{error}");
    }

    #[cfg(unix)] // modes: Unix only
    #[tokio::test]
    async fn refuses_lax_permissions_and_corrupt_files_without_touching_them() {
        let root = tempfile::tempdir().unwrap();
        let store = FileStore::new(root.path().join("store"));
        store.save("a", &tokens("one")).await.unwrap();

        fs::set_permissions(store.path(), fs::Permissions::from_mode(0o644)).unwrap();
        let error = store.load("a").await.unwrap_err();
        assert!(matches!(error, Error::Store { kind: StoreErrorKind::InsecurePermissions, .. }), "{error}");
        assert!(error.to_string().contains("chmod 600"), "{error}");
        assert!(store.save("a", &tokens("two")).await.is_err());
        fs::set_permissions(store.path(), fs::Permissions::from_mode(0o600)).unwrap();

        fs::write(store.path(), b"{\"version\":1,\"tokens\":{\"a\":").unwrap();
        let error = store.load("a").await.unwrap_err();
        assert!(matches!(error, Error::Store { kind: StoreErrorKind::Corrupt, .. }), "{error}");
        assert!(store.save("a", &tokens("three")).await.is_err(), "never overwrites what it cannot read");
        assert_eq!(fs::read(store.path()).unwrap(), b"{\"version\":1,\"tokens\":{\"a\":");

        fs::write(store.path(), b"{\"version\":99}").unwrap();
        let error = store.load("a").await.unwrap_err();
        assert!(matches!(error, Error::Store { kind: StoreErrorKind::UnsupportedVersion, .. }), "{error}");

        fs::set_permissions(store.dir(), fs::Permissions::from_mode(0o755)).unwrap();
        let error = store.load("a").await.unwrap_err();
        assert!(error.to_string().contains("chmod 700"), "{error}");
    }

    #[tokio::test]
    async fn refresh_lock_excludes_other_holders_until_released() {
        let root = tempfile::tempdir().unwrap();
        let store = FileStore::new(root.path().join("store"));
        let held = store.lock("dev/peer", Duration::from_secs(1)).await.unwrap();
        let error = store.lock("dev/peer", Duration::from_millis(50)).await.unwrap_err();
        assert!(matches!(error, Error::Store { kind: StoreErrorKind::LockTimeout, .. }), "{error}");
        let other_key = store.lock("dev/other", Duration::from_millis(50)).await.unwrap();
        held.release().await.unwrap();
        let again = store.lock("dev/peer", Duration::from_millis(50)).await.unwrap();
        again.release().await.unwrap();
        other_key.release().await.unwrap();
        assert!(store.key_lock_path("dev/peer").ends_with("locks/dev%2Fpeer.lock"));
    }

    #[tokio::test]
    async fn concurrent_writers_of_different_keys_lose_nothing() {
        let root = tempfile::tempdir().unwrap();
        let store = FileStore::new(root.path().join("store"));
        let writers: Vec<_> = (0..16)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { store.save(&format!("key{i}"), &tokens(&format!("t{i}"))).await })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap().unwrap();
        }
        for i in 0..16 {
            assert_eq!(store.load(&format!("key{i}")).await.unwrap(), Some(tokens(&format!("t{i}"))));
        }
    }
}
