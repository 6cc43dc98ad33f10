//! The refresh tokens a [`crate::Session`] must never present again, remembered by fingerprint.
//!
//! Two kinds of refresh token are spent without the store knowing it for sure:
//! - one whose refresh was sent and whose answer was lost ([`tessera_core::Error::OutcomeUnknown`]):
//!   the server may have rotated it;
//! - the refresh-token grant's *configured* token, once a refresh presenting it came back with a
//!   new one (rotation seen).
//!
//! Presenting either again is reuse to a server that detects it, and that revokes the whole grant.
//! The token store forgets them (it holds the newest set), but a store can be wiped (a Redis
//! restart without persistence) and the configuration still holds the first token: so the ledger
//! remembers them apart from the store, as fingerprints (128 bits of SHA-256, see
//! [`tessera_core::Secret::fingerprint`]), never the tokens. In memory by default; in a file of its
//! own to survive the process: beside a `FileStore`'s `tokens.json` (the CLI's
//! `$TESSERA_HOME/tokens/spent-refresh-tokens.json`, and one beside each local copy of a Redis
//! store under `tokens/shared-copy/`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tessera_core::{Error, Secret, StoreErrorKind};

use crate::local_file::{self, FileKind};

/// Fingerprints kept per key (oldest forgotten first): a key spends one configured token per
/// configuration change and one per lost answer, so this is years of history.
const MAX_PER_KEY: usize = 64;
/// Keys kept in the file (an arbitrary other one is forgotten first): keeps it far below its
/// 1 MiB cap, so that it never stops every refresh by growing.
const MAX_KEYS: usize = 256;
const FORMAT_VERSION: u32 = 1;

/// Fingerprints of refresh tokens never to be presented again, per store key.
///
/// Cheap to share (`Arc`); one ledger may serve every session of a process.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use tessera::{Secret, SpentRefreshTokens};
/// let spent = SpentRefreshTokens::in_memory();
/// let token = Secret::new("rt-1");
/// assert!(!spent.contains("dev/api", &token).await?);
/// spent.record("dev/api", &token).await?;
/// assert!(spent.contains("dev/api", &token).await?);
/// # Ok::<_, tessera::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Default)]
pub struct SpentRefreshTokens {
    file: Option<PathBuf>,
    memory: Mutex<HashMap<String, VecDeque<String>>>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    version: u32,
    #[serde(default)]
    spent: BTreeMap<String, Vec<String>>,
}

impl SpentRefreshTokens {
    /// A ledger that lives as long as the process (the library's default).
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// A ledger also kept in `path` (created 0600 on the first record, its directory 0700), so
    /// that every process on this machine that uses the same file knows what any of them spent.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        SpentRefreshTokens { file: Some(path.into()), memory: Mutex::default() }
    }

    /// The file, when there is one.
    pub fn path(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// True when `token` was recorded as spent for `key` (here, or in the file by any process).
    pub async fn contains(&self, key: &str, token: &Secret) -> Result<bool, Error> {
        let fingerprint = token.fingerprint();
        if self.memory().get(key).is_some_and(|spent| spent.contains(&fingerprint)) {
            return Ok(true);
        }
        let Some(path) = self.file.clone() else { return Ok(false) };
        let key = key.to_owned();
        blocking(move || {
            Ok(read(&path)?.is_some_and(|document| document.spent.get(&key).is_some_and(|s| s.contains(&fingerprint))))
        })
        .await
    }

    /// Records `token` as spent for `key`: it is never presented again.
    pub async fn record(&self, key: &str, token: &Secret) -> Result<(), Error> {
        let fingerprint = token.fingerprint();
        remember(self.memory().entry(key.to_owned()).or_default(), &fingerprint);
        let Some(path) = self.file.clone() else { return Ok(()) };
        let key = key.to_owned();
        blocking(move || {
            let lock = lock(&path)?;
            let mut document = read(&path)?.unwrap_or(Document { version: FORMAT_VERSION, ..Document::default() });
            let mut spent: VecDeque<String> = document.spent.remove(&key).unwrap_or_default().into();
            remember(&mut spent, &fingerprint);
            while document.spent.len() >= MAX_KEYS && !document.spent.contains_key(&key) {
                let Some(other) = document.spent.keys().next().cloned() else { break };
                document.spent.remove(&other);
            }
            document.spent.insert(key, spent.into());
            write(&path, &document)?;
            let _ = lock.unlock();
            Ok(())
        })
        .await
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<String>>> {
        self.memory.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn remember(spent: &mut VecDeque<String>, fingerprint: &str) {
    if !spent.iter().any(|known| known == fingerprint) {
        if spent.len() >= MAX_PER_KEY {
            spent.pop_front();
        }
        spent.push_back(fingerprint.to_owned());
    }
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T, Error> + Send + 'static) -> Result<T, Error> {
    tokio::task::spawn_blocking(work).await.map_err(|_| Error::internal("the spent-token ledger's thread panicked"))?
}

fn ledger_error(path: &Path, kind: StoreErrorKind, problem: String) -> Error {
    Error::store(kind, path.display().to_string(), problem)
}

fn read(path: &Path) -> Result<Option<Document>, Error> {
    let bytes = match local_file::read(path, FileKind::SpentLedger) {
        Ok(bytes) => bytes,
        Err(refused) if refused.not_found => return Ok(None),
        Err(refused) => return Err(ledger_error(path, StoreErrorKind::Io, refused.problem)),
    };
    let document: Document = serde_json::from_slice(&bytes).map_err(|e| {
        ledger_error(
            path,
            StoreErrorKind::Corrupt,
            format!(
                "not a spent-refresh-token ledger ({} at line {}, column {}): fix or delete it (deleting it forgets which refresh tokens must not be presented again)",
                crate::store::json_problem(&e),
                e.line(),
                e.column()
            ),
        )
    })?;
    if document.version > FORMAT_VERSION {
        return Err(ledger_error(
            path,
            StoreErrorKind::UnsupportedVersion,
            format!("format version {} is newer than this tessera understands ({FORMAT_VERSION})", document.version),
        ));
    }
    Ok(Some(document))
}

/// An exclusive lock on `<path>.lock` (never through a symlink), held while the file is rewritten.
fn lock(path: &Path) -> Result<File, Error> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        local_file::create_private_dir(dir).map_err(|e| {
            ledger_error(path, StoreErrorKind::Io, format!("cannot create its directory: {}", e.kind()))
        })?;
    }
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let file = local_file::open_lock_file(Path::new(&lock_path))
        .map_err(|e| ledger_error(path, StoreErrorKind::Io, format!("cannot open its lock file: {e}")))?;
    file.lock().map_err(|e| ledger_error(path, StoreErrorKind::Io, format!("cannot lock it: {}", e.kind())))?;
    Ok(file)
}

/// Writes `document` to a private temporary file beside `path`, then renames it over `path`.
fn write(path: &Path, document: &Document) -> Result<(), Error> {
    let dir = path.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let io = |what: &str, e: std::io::Error| ledger_error(path, StoreErrorKind::Io, format!("{what}: {}", e.kind()));
    let mut builder = tempfile::Builder::new();
    builder.prefix(".spent-refresh-tokens");
    // Windows: the new file inherits the directory's ACL (no mode to set).
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600));
    let mut temporary = builder.tempfile_in(dir).map_err(|e| io("cannot create a temporary file", e))?;
    let bytes = serde_json::to_vec_pretty(document).map_err(|_| Error::internal("the ledger did not encode"))?;
    temporary.write_all(&bytes).map_err(|e| io("cannot write", e))?;
    temporary.as_file().sync_all().map_err(|e| io("cannot sync", e))?;
    local_file::replace(temporary, path).map_err(|e| io("cannot replace it", e))?;
    // The rename is durable once the directory is (Unix; see `local_file::sync_dir`).
    local_file::sync_dir(dir).map_err(|e| io("cannot sync its directory", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;

    #[cfg(unix)]
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[tokio::test]
    async fn the_file_is_shared_private_capped_and_holds_no_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("home/spent-refresh-tokens.json");
        let one = SpentRefreshTokens::file(&path);
        let other = SpentRefreshTokens::file(&path);
        let token = Secret::new("refresh-token-secret-1");
        assert!(!other.contains("k", &token).await.unwrap());
        one.record("k", &token).await.unwrap();
        assert!(other.contains("k", &token).await.unwrap(), "another process sees it");
        assert!(!other.contains("other-key", &token).await.unwrap());
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains("refresh-token-secret"), "{text}");
        assert!(text.contains(&token.fingerprint()));
        #[cfg(unix)]
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        for n in 0..(MAX_PER_KEY + 5) {
            one.record("k", &Secret::new(format!("t{n}"))).await.unwrap();
        }
        let document = read(&path).unwrap().unwrap();
        assert_eq!(document.spent["k"].len(), MAX_PER_KEY);
        assert!(!document.spent["k"].contains(&token.fingerprint()), "the oldest went first");
    }

    #[tokio::test]
    async fn a_corrupt_ledger_is_a_typed_error_quoting_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spent-refresh-tokens.json");
        fs::write(&path, r#"{"version":1,"spent":{"k":"eyJSECRET"}}"#).unwrap();
        let ledger = SpentRefreshTokens::file(&path);
        let error = ledger.contains("k", &Secret::new("x")).await.unwrap_err();
        assert!(matches!(error, Error::Store { kind: StoreErrorKind::Corrupt, .. }), "{error}");
        assert!(error.to_string().contains("column") && !error.to_string().contains("eyJSECRET"), "{error}");
        assert!(ledger.record("k", &Secret::new("x")).await.is_err(), "never overwritten blindly");
    }
}
