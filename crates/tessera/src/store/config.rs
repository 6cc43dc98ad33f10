//! Choosing a store from configuration: `store = { kind = "redis", url = "env:REDIS_URL" }`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tessera_core::Error;

use super::{FileStore, MemoryStore, TokenStore};

/// A store described in configuration (e.g. a context's `store = { ... }` in the CLI's TOML).
///
/// ```toml
/// store = { kind = "file" }                                   # default: the CLI's token directory
/// store = { kind = "file", dir = "/var/lib/app/tokens" }
/// store = { kind = "memory" }
/// store = { kind = "redis", url = "env:REDIS_URL" }           # env:NAME | file:PATH | literal
/// store = { kind = "redis", url = "env:REDIS_URL", prefix = "billing:", lease_ms = 3000 }
/// store = { kind = "redis", url = "rediss://cache:6380", ca_file = "/etc/ssl/private-ca.pem" }
/// ```
///
/// `Debug` never shows the Redis URL (it may hold a password), only whether it is a reference.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum StoreConfig {
    /// [`MemoryStore`]: nothing persists.
    Memory,
    /// [`FileStore`] in `dir`, or in the default directory of whoever opens it.
    File {
        /// The directory; a leading `~` is the home directory ([`crate::config::expand_home`]).
        #[serde(default)]
        dir: Option<PathBuf>,
    },
    /// `RedisStore` (feature `redis`).
    Redis {
        /// `redis://[user:password@]host[:port][/db]` or `rediss://...`, given as `env:NAME`,
        /// `file:PATH` or literally.
        url: String,
        /// Key prefix (namespace). Default `tessera:`.
        #[serde(default)]
        prefix: Option<String>,
        /// Lease of the refresh lock, in milliseconds. Default 3 000 (renewed every third of it).
        #[serde(default)]
        lease_ms: Option<u64>,
        /// For `rediss://`: a PEM file with the CA certificate(s) to trust instead of the public roots.
        #[serde(default)]
        ca_file: Option<PathBuf>,
    },
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreConfig::Memory => f.write_str("Memory"),
            StoreConfig::File { dir } => f.debug_struct("File").field("dir", dir).finish(),
            StoreConfig::Redis { url, prefix, lease_ms, ca_file } => {
                let url = if url.starts_with("env:") || url.starts_with("file:") { url.as_str() } else { "[redacted]" };
                f.debug_struct("Redis")
                    .field("url", &url)
                    .field("prefix", prefix)
                    .field("lease_ms", lease_ms)
                    .field("ca_file", ca_file)
                    .finish()
            }
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig::File { dir: None }
    }
}

/// Opens the store `config` describes. `default_dir` is where a `file` store without `dir` lives
/// (the CLI passes its token directory). Secret references (`env:`, `file:`) are resolved here;
/// nothing connects until the store is used.
pub fn open(config: &StoreConfig, default_dir: &Path) -> Result<Arc<dyn TokenStore>, Error> {
    open_by_kind(config, default_dir).map(OpenedStore::into_dyn)
}

/// A store [`open_by_kind`] opened, with its type: for a binding that gives each kind a class of
/// its own (Python's `open_store`).
#[non_exhaustive]
pub enum OpenedStore {
    /// `kind = "memory"`.
    Memory(MemoryStore),
    /// `kind = "file"`, in its directory (`~` expanded) or the default one.
    File(FileStore),
    /// `kind = "redis"`, its URL resolved and its CA file read.
    #[cfg(feature = "redis")]
    Redis(super::RedisStore),
}

impl OpenedStore {
    /// The store, as a [`TokenStore`] like any other.
    pub fn into_dyn(self) -> Arc<dyn TokenStore> {
        match self {
            OpenedStore::Memory(store) => Arc::new(store),
            OpenedStore::File(store) => Arc::new(store),
            #[cfg(feature = "redis")]
            OpenedStore::Redis(store) => Arc::new(store),
        }
    }
}

/// [`open`], keeping the store's type.
pub fn open_by_kind(config: &StoreConfig, default_dir: &Path) -> Result<OpenedStore, Error> {
    match config {
        StoreConfig::Memory => Ok(OpenedStore::Memory(MemoryStore::new())),
        StoreConfig::File { dir } => {
            let dir = match dir {
                Some(dir) => crate::config::expand_home(dir),
                None => default_dir.to_path_buf(),
            };
            Ok(OpenedStore::File(FileStore::new(dir)))
        }
        StoreConfig::Redis { url, prefix, lease_ms, ca_file } => {
            open_redis(url, prefix.as_deref(), *lease_ms, ca_file.as_deref())
        }
    }
}

/// Reads the PEM CA bundle a Redis store trusts (`ca_file` here, `ca_certificate` in Python) as
/// every CA bundle tessera trusts is read: a leading `~` is the home directory; it must be a
/// regular file (a FIFO or `/dev/zero` is refused before any read) of at most 4 MiB, owned by you
/// or root, that group and others cannot write (whoever can add a root can read every command).
/// The error names `field`, never the path or the file's content.
pub fn read_ca_file(path: &Path, field: &str) -> Result<Vec<u8>, Error> {
    let path = crate::config::expand_home(path);
    crate::local_file::read(&path, crate::local_file::FileKind::CaBundle)
        .map_err(|refused| Error::configuration(format!("{field}: {}", refused.problem)))
}

#[cfg(feature = "redis")]
fn open_redis(
    url: &str,
    prefix: Option<&str>,
    lease_ms: Option<u64>,
    ca_file: Option<&Path>,
) -> Result<OpenedStore, Error> {
    let resolved =
        crate::config::resolve_reference(url).map_err(|e| Error::configuration(format!("store url: {e}")))?;
    let mut settings = super::RedisSettings::default();
    if let Some(prefix) = prefix {
        settings.prefix = prefix.to_owned();
    }
    if let Some(lease_ms) = lease_ms {
        if lease_ms < 100 {
            return Err(Error::configuration("store lease_ms must be at least 100"));
        }
        settings.lease = Duration::from_millis(lease_ms);
    }
    if let Some(ca_file) = ca_file {
        settings.ca_certificate_pem = Some(read_ca_file(ca_file, "store ca_file")?);
    }
    Ok(OpenedStore::Redis(super::RedisStore::with_settings(resolved.expose_secret(), settings)?))
}

#[cfg(not(feature = "redis"))]
fn open_redis(
    _url: &str,
    _prefix: Option<&str>,
    _lease_ms: Option<u64>,
    _ca_file: Option<&Path>,
) -> Result<OpenedStore, Error> {
    let _ = Duration::ZERO;
    Err(Error::configuration("store kind \"redis\" needs tessera built with the `redis` feature"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Holder {
        store: StoreConfig,
    }

    fn parse(text: &str) -> Result<StoreConfig, String> {
        toml::from_str::<Holder>(text).map(|h| h.store).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_every_kind_and_refuses_unknown_fields() {
        assert_eq!(parse(r#"store = { kind = "memory" }"#).unwrap(), StoreConfig::Memory);
        assert_eq!(parse(r#"store = { kind = "file" }"#).unwrap(), StoreConfig::File { dir: None });
        assert_eq!(
            parse(r#"store = { kind = "redis", url = "env:REDIS_URL", prefix = "p:" }"#).unwrap(),
            StoreConfig::Redis {
                url: "env:REDIS_URL".into(),
                prefix: Some("p:".into()),
                lease_ms: None,
                ca_file: None
            }
        );
        assert!(parse(r#"store = { kind = "redis" }"#).unwrap_err().contains("url"));
        assert!(parse(r#"store = { kind = "redis", url = "x", port = 1 }"#).unwrap_err().contains("port"));
        assert!(parse(r#"store = { kind = "etcd" }"#).is_err());
        let literal =
            StoreConfig::Redis { url: "redis://u:hunter2@h".into(), prefix: None, lease_ms: None, ca_file: None };
        assert!(!format!("{literal:?}").contains("hunter2"));
    }

    #[test]
    fn opens_stores_and_resolves_the_url_reference() {
        let dir = Path::new("/nonexistent/tessera-default");
        assert_eq!(open(&StoreConfig::Memory, dir).unwrap().location(), "memory");
        assert!(open(&StoreConfig::default(), dir).unwrap().location().starts_with("/nonexistent/tessera-default"));
        let redis = StoreConfig::Redis {
            url: "env:TESSERA_TEST_STORE_URL_UNSET".into(),
            prefix: None,
            lease_ms: None,
            ca_file: None,
        };
        let error = open(&redis, dir).unwrap_err();
        assert!(error.to_string().contains("TESSERA_TEST_STORE_URL_UNSET"), "{error}");
        #[cfg(feature = "redis")]
        {
            let literal = StoreConfig::Redis {
                url: "redis://u:hunter2@127.0.0.1:1/4".into(),
                prefix: Some("ns:".into()),
                lease_ms: Some(5000),
                ca_file: None,
            };
            let store = open(&literal, dir).unwrap();
            assert!(store.location().contains("u:***@127.0.0.1:1/4"), "{}", store.location());
            assert!(store.location().contains("ns:"), "{}", store.location());
        }
    }

    #[test]
    fn a_file_store_dir_starting_with_a_tilde_is_in_the_home_directory() {
        let Some(home) = std::env::var_os("HOME").filter(|home| !home.is_empty()) else { return };
        let home = PathBuf::from(home);
        let dir = Path::new("/nonexistent/tessera-default");
        let at = |path: &str| open(&StoreConfig::File { dir: Some(path.into()) }, dir).unwrap().location();
        assert!(
            at("~/.cache/my-app").starts_with(home.join(".cache/my-app").to_str().unwrap()),
            "{}",
            at("~/.cache/my-app")
        );
        assert!(at("~").starts_with(home.to_str().unwrap()) && !at("~").starts_with("~"), "{}", at("~"));
        // Only a leading `~` component: `~user` and a `~` further in are kept as written.
        assert!(at("~nobody/x").starts_with("~nobody/x"), "{}", at("~nobody/x"));
        assert!(at("/srv/~/x").starts_with("/srv/~/x"), "{}", at("/srv/~/x"));
        assert_eq!(crate::config::expand_home("~"), home);
        assert_eq!(crate::config::expand_home("~/a/b"), home.join("a/b"));
    }
}
