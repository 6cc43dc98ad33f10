//! Local files that are not what they should be: a device, a FIFO, a 200 MB file, a file another
//! user can write or owns, a dangling lock symlink, a token or config file holding a secret where
//! the parser stops. Each gives a typed error that names the file and never its content, without
//! hanging and without reading the file into memory.

// Unix scenarios (FIFOs, /dev/zero, modes, owners, symlinks): their Windows forms are
// described in docs/DECISIONS.md and compiled, but there is no Windows machine here to run them on.
#![cfg(unix)]

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use tessera::config::{Config, resolve_reference};
use tessera::store::{FileStore, TokenStore};
use tessera::{Error, Secret, SpentRefreshTokens, StoreErrorKind, TokenSet};

const SECRET: &str = "eyJSECRET-hunter2";

fn config_text() -> String {
    "[[contexts]]\nname = \"dev\"\n[[contexts.auth_providers]]\nname = \"peer\"\ntype = \"client_credentials\"\n\
     token_endpoint = \"https://idp.example/token\"\nclient_id = \"c\"\nclient_secret = \"s\"\n"
        .to_owned()
}

/// Runs `f` on a thread and fails the test if it takes longer than 10 s (a FIFO read would hang).
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || sender.send(f()).ok());
    receiver.recv_timeout(Duration::from_secs(10)).expect("returned instead of hanging")
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().expect("mkfifo runs");
    assert!(status.success());
}

fn private_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

fn load(path: PathBuf) -> Result<Config, Error> {
    bounded(move || Config::load(&path))
}

#[test]
fn config_files_that_are_devices_fifos_huge_or_loose_are_refused_before_reading() {
    let dir = private_dir();
    let config = dir.path().join("config.toml");

    symlink("/dev/zero", &config).unwrap();
    let error = load(config.clone()).unwrap_err();
    assert!(matches!(error, Error::Configuration { .. }), "{error:?}");
    assert!(error.to_string().contains(&format!("{} is not a regular file", config.display())), "{error}");
    std::fs::remove_file(&config).unwrap();

    mkfifo(&config);
    let error = load(config.clone()).unwrap_err();
    assert!(error.to_string().contains("is not a regular file"), "{error}");
    std::fs::remove_file(&config).unwrap();

    let huge = std::fs::File::create(&config).unwrap();
    huge.set_len(200 << 20).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let error = load(config.clone()).unwrap_err();
    assert!(error.to_string().contains("209715200 bytes, more than the 1048576"), "{error}");
    std::fs::remove_file(&config).unwrap();

    std::fs::write(&config, config_text()).unwrap();
    for (mode, accepted) in [(0o600, true), (0o644, true), (0o664, false), (0o666, false), (0o646, false)] {
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(mode)).unwrap();
        match load(config.clone()) {
            Ok(_) => assert!(accepted, "mode {mode:o} must be refused"),
            Err(error) => {
                assert!(!accepted, "mode {mode:o}: {error}");
                assert!(error.to_string().contains("writable by group or others"), "{error}");
            }
        }
    }
}

#[test]
fn a_config_file_owned_by_another_user_is_refused() {
    let dir = private_dir();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, config_text()).unwrap();
    if rustix::process::geteuid().is_root() {
        // As root (CI): hand the file to `nobody`, the other user.
        rustix::fs::chown(&config, Some(rustix::process::Uid::from_raw(65534)), None).unwrap();
        let error = load(config.clone()).unwrap_err();
        assert!(error.to_string().contains("is owned by uid 65534, not by you (uid 0)"), "{error}");
    } else {
        // As another user: a file of our own is accepted; one owned by root (a system path) too.
        load(config.clone()).unwrap();
        assert!(Config::load(Path::new("/etc/hostname")).unwrap_err().to_string().contains("line"));
    }
}

#[test]
fn a_toml_error_names_line_and_column_but_never_the_line() {
    let text = format!("{}client_auth = \"{SECRET}\" trailing\n", config_text());
    let error = Config::from_toml_str(&text, "/etc/tessera.toml").unwrap_err().to_string();
    assert!(error.contains("/etc/tessera.toml: line 9, column"), "{error}");
    assert!(!error.contains("hunter2") && !error.contains("trailing"), "{error}");
    // A value of the wrong type, quoted by the parser: not repeated either.
    let text = format!("current_context = [\"{SECRET}\"]\n{}", config_text());
    let error = Config::from_toml_str(&text, "c.toml").unwrap_err().to_string();
    assert!(!error.contains("hunter2"), "{error}");
}

#[test]
fn file_secrets_that_are_fifos_or_loose_are_refused_without_their_content() {
    let dir = private_dir();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let reference = format!("file:{}", fifo.display());
    let problem = bounded(move || resolve_reference(&reference)).unwrap_err();
    assert!(problem.contains("is not a regular file"), "{problem}");

    let loose = dir.path().join("secret");
    std::fs::write(&loose, SECRET).unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o666)).unwrap();
    let problem = resolve_reference(&format!("file:{}", loose.display())).unwrap_err();
    assert!(problem.contains("writable by group or others") && !problem.contains("hunter2"), "{problem}");
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(resolve_reference(&format!("file:{}", loose.display())).unwrap().expose_secret(), SECRET);
}

#[tokio::test]
async fn token_files_that_are_devices_fifos_or_hold_a_token_where_the_parser_stops() {
    let dir = private_dir();
    let store = FileStore::new(dir.path());
    let tokens = store.path();

    symlink("/dev/zero", &tokens).unwrap();
    let error = store.load("dev/peer").await.unwrap_err();
    assert!(matches!(error, Error::Store { kind: StoreErrorKind::Io, .. }), "{error:?}");
    assert!(error.to_string().contains("is not a regular file"), "{error}");
    std::fs::remove_file(&tokens).unwrap();

    mkfifo(&tokens);
    let loaded = tokio::time::timeout(Duration::from_secs(10), store.load("dev/peer")).await;
    assert!(loaded.expect("no hang").unwrap_err().to_string().contains("is not a regular file"));
    std::fs::remove_file(&tokens).unwrap();

    // The reproduction: a token where a token set was expected.
    std::fs::write(&tokens, format!("{{\"version\":1,\"tokens\":{{\"dev/peer\":\"{SECRET}\"}}}}")).unwrap();
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o600)).unwrap();
    let error = store.load("dev/peer").await.unwrap_err();
    assert!(matches!(error, Error::Store { kind: StoreErrorKind::Corrupt, .. }), "{error:?}");
    let message = error.to_string();
    assert!(!message.contains("hunter2") && !message.contains("eyJ"), "{message}");
    assert!(message.contains("a value of the wrong type or shape at line 1, column"), "{message}");
}

#[tokio::test]
async fn a_dangling_lock_symlink_is_not_followed() {
    let dir = private_dir();
    let store = FileStore::new(dir.path());
    let locks = dir.path().join("locks");
    std::fs::create_dir(&locks).unwrap();
    std::fs::set_permissions(&locks, std::fs::Permissions::from_mode(0o700)).unwrap();
    let target = dir.path().join("created-through-the-link");
    symlink(&target, locks.join("dev%2Fpeer.lock")).unwrap();
    let error = store.lock("dev/peer", Duration::from_millis(200)).await.unwrap_err();
    assert!(matches!(error, Error::Store { .. }), "{error:?}");
    assert!(!target.exists(), "the link's target was created");
}

/// A FIFO where a lock file goes (the store's write lock, a key's refresh lock, the ledger's lock)
/// is refused at once: opening it for writing used to wait for a reader, forever.
#[tokio::test]
async fn lock_files_that_are_fifos_are_refused_without_waiting() {
    let dir = private_dir();
    let store = FileStore::new(dir.path());
    mkfifo(&dir.path().join("tokens.json.lock"));
    let tokens = TokenSet::bearer("a", None, tessera::Timestamp::EPOCH);
    let saved = tokio::time::timeout(Duration::from_secs(10), store.save("dev/peer", &tokens)).await;
    let error = saved.expect("no hang").unwrap_err();
    assert!(matches!(error, Error::Store { kind: StoreErrorKind::Io, .. }), "{error:?}");
    assert!(
        error.to_string().contains("tokens.json.lock") && error.to_string().contains("not a regular file"),
        "{error}"
    );

    let locks = dir.path().join("locks");
    std::fs::create_dir(&locks).unwrap();
    std::fs::set_permissions(&locks, std::fs::Permissions::from_mode(0o700)).unwrap();
    mkfifo(&locks.join("dev%2Fpeer.lock"));
    let locked =
        tokio::time::timeout(Duration::from_secs(10), store.lock("dev/peer", Duration::from_millis(200))).await;
    let error = locked.expect("no hang").unwrap_err();
    assert!(error.to_string().contains("not a regular file"), "{error}");

    let ledger = SpentRefreshTokens::file(dir.path().join("spent-refresh-tokens.json"));
    mkfifo(&dir.path().join("spent-refresh-tokens.json.lock"));
    let recorded = tokio::time::timeout(Duration::from_secs(10), ledger.record("dev/peer", &Secret::new("rt"))).await;
    let error = recorded.expect("no hang").unwrap_err();
    assert!(matches!(error, Error::Store { kind: StoreErrorKind::Io, .. }), "{error:?}");
    assert!(error.to_string().contains("cannot open its lock file: is not a regular file"), "{error}");
}

/// A Redis store's `ca_file` is read as the HTTPS `ca_file` is: a FIFO or `/dev/zero` is refused
/// before any read (a FIFO hung the open, `/dev/zero` filled the memory), and so is a CA bundle
/// others can write (who can add a root can read every command); the error names the field.
#[test]
fn a_redis_ca_file_that_is_a_fifo_a_device_or_loose_is_refused_before_reading() {
    let dir = private_dir();
    let fifo = dir.path().join("ca-fifo.pem");
    mkfifo(&fifo);
    let loose = dir.path().join("ca-loose.pem");
    std::fs::write(&loose, "-----BEGIN CERTIFICATE-----\n").unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o666)).unwrap();
    for (ca_file, says) in [
        (fifo, "is not a regular file"),
        (PathBuf::from("/dev/zero"), "is not a regular file"),
        (loose, "is writable by group or others"),
    ] {
        let config: tessera::store::StoreConfig = serde_json::from_value(serde_json::json!({
            "kind": "redis", "url": "rediss://127.0.0.1:1", "ca_file": ca_file,
        }))
        .unwrap();
        let opened = bounded(move || tessera::store::open(&config, Path::new("/nonexistent")).map(|_| ()));
        let error = opened.unwrap_err();
        assert!(matches!(error, Error::Configuration { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains("store ca_file: ") && message.contains(says), "{message}");
        assert!(!message.contains(dir.path().to_str().unwrap()), "the path is a value: {message}");
    }
}

#[test]
fn error_messages_are_capped() {
    let mut text = String::from("[[contexts]]\nname = \"dev\"\n");
    for n in 0..1000 {
        text.push_str(&format!(
            "[[contexts.auth_providers]]\nname = \"p{n}\"\ntype = \"static\"\naccess_token = \"t\"\n"
        ));
    }
    let config = Config::from_toml_str(&text, "c.toml").unwrap();
    let error = config.context(None).unwrap().provider(None).unwrap_err().to_string();
    assert!(error.contains("p0, p1,") && error.contains("and 990 more"), "{error}");
    assert!(error.len() < 300, "{} bytes", error.len());
    let long = Error::configuration("x".repeat(1_000_000)).to_string();
    assert!(
        long.len() < tessera::core::MAX_MESSAGE_LEN + 100 && long.ends_with("(998000 more bytes)"),
        "{}",
        long.len()
    );
}

/// Every field of the provider description, given a value that is wrong (of the wrong type, or a
/// string where a URL, a name from a list or a path was expected) holding a marker secret, through
/// the TOML configuration and the JSON API, and as a token file's content: no error message
/// contains a byte of the marker.
#[test]
fn no_error_message_repeats_a_value_from_a_file() {
    use tessera::core::json::JsonEngine;
    use tessera::core::provider_spec::{FIELDS, FieldType, ProviderKind};
    const MARKER: &str = "S3CR3T-marker-value";
    let mut messages = Vec::new();
    for field in FIELDS {
        let kinds: Vec<ProviderKind> = ProviderKind::ALL.into_iter().filter(|kind| field.applies_to(*kind)).collect();
        for kind in kinds {
            let wrong_type = match field.ty {
                FieldType::Count | FieldType::Port | FieldType::Seconds | FieldType::UnixSeconds => {
                    toml::Value::String(MARKER.into())
                }
                _ => toml::Value::Array(vec![toml::Value::String(MARKER.into())]),
            };
            for value in [wrong_type, toml::Value::String(MARKER.into())] {
                let mut section = toml::Table::new();
                section.insert("name".into(), "p".into());
                section.insert("type".into(), kind.as_str().into());
                section.insert("client_id".into(), "c".into());
                section.insert(field.name.into(), value.clone());
                let text = format!("[[contexts]]\nname = \"dev\"\n[[contexts.auth_providers]]\n{section}");
                if let Err(error) = Config::from_toml_str(&text, "c.toml") {
                    messages.push((field.name, error.to_string()));
                }
                let mut json = serde_json::to_value(&section).unwrap();
                json.as_object_mut().unwrap().remove("name");
                if let Err(error) = JsonEngine::new().register("k", &json.to_string()) {
                    messages.push((field.name, error.to_string()));
                }
            }
        }
    }
    // Token files with the marker where the parser stops.
    for document in [
        format!("{{\"version\":1,\"tokens\":{{\"k\":\"{MARKER}\"}}}}"),
        format!("{{\"version\":1,\"tokens\":{{\"k\":{{\"access_token\":[\"{MARKER}\"]}}}}}}"),
        format!("{{\"version\":\"{MARKER}\"}}"),
        format!("{{\"version\":1,\"tokens\":{{\"k\":{{\"access_token\":\"{MARKER}\" {MARKER}"),
    ] {
        if let Err(error) = FileStore::parse_document(document.as_bytes(), Path::new("tokens.json")) {
            messages.push(("tokens.json", error.to_string()));
        }
    }
    assert!(messages.len() > 60, "the scan saw {} error messages", messages.len());
    for (what, message) in &messages {
        assert!(!message.contains("S3CR3T") && !message.contains("marker-value"), "{what}: {message}");
    }
}
