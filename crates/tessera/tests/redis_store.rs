//! `RedisStore` against a real `redis-server` (started per test on a free loopback port):
//! storage and TTLs, URLs with credentials and db numbers, the lease lock under contention, lease
//! renewal, a stalled holder fenced off, a Redis restart mid-run, and sessions on several "machines"
//! (separate stores and connections) sharing one rotating refresh token through Redis.
#![cfg(feature = "redis")]

#[path = "support/redis_server.rs"]
mod redis_server;
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redis_server::{RedisOptions, RedisServer};
use support::*;
use tessera::store::{RedisSettings, RedisStore, TokenStore};
use tessera::{Error, Secret, Session, StoreErrorKind, Timestamp, TokenSet};

fn tokens(access: &str, refresh_ttl: Option<Duration>) -> TokenSet {
    let now = tessera::clock::system_now();
    let mut tokens = TokenSet::bearer(access, Some(now + Duration::from_secs(60)), now);
    tokens.refresh_token = Some(Secret::new(format!("{access}-refresh")));
    tokens.refresh_expires_at = refresh_ttl.map(|ttl| now + ttl);
    tokens
}

fn settings(lease: Duration) -> RedisSettings {
    RedisSettings { lease, ..RedisSettings::default() }
}

async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap()
}

#[tokio::test]
async fn stores_tokens_with_a_ttl_from_the_refresh_token_under_a_prefix() {
    let server = RedisServer::start(RedisOptions::default());
    let store =
        RedisStore::with_settings(&server.url(), RedisSettings { prefix: "app1:".into(), ..RedisSettings::default() })
            .unwrap();
    assert_eq!(store.load("dev/peer").await.unwrap(), None);
    let saved = tokens("one", Some(Duration::from_secs(3600)));
    store.save("dev/peer", &saved).await.unwrap();
    assert_eq!(store.load("dev/peer").await.unwrap(), Some(saved.clone()));

    let mut redis = raw(&server.url()).await;
    let ttl: i64 = redis::cmd("PTTL").arg("app1:tokens:dev/peer").query_async(&mut redis).await.unwrap();
    assert!((3_590_000..=3_600_000).contains(&ttl), "TTL follows the refresh token: {ttl} ms");

    // Another namespace does not see it.
    let other = RedisStore::new(&server.url()).unwrap();
    assert_eq!(other.load("dev/peer").await.unwrap(), None);

    // No refresh token: the access token's expiry, with a floor.
    let mut short =
        TokenSet::bearer("a", Some(tessera::clock::system_now() + Duration::from_secs(1)), Timestamp::EPOCH);
    short.refresh_token = None;
    store.save("short", &short).await.unwrap();
    let ttl: i64 = redis::cmd("PTTL").arg("app1:tokens:short").query_async(&mut redis).await.unwrap();
    assert!((290_000..=300_000).contains(&ttl), "floor of 5 min: {ttl} ms");

    store.clear("dev/peer").await.unwrap();
    assert_eq!(store.load("dev/peer").await.unwrap(), None);

    // Garbage under our key is a typed error, and is left alone.
    let _: () = redis::cmd("SET").arg("app1:tokens:bad").arg("{not json").query_async(&mut redis).await.unwrap();
    let error = store.load("bad").await.unwrap_err();
    assert!(matches!(error, Error::Store { kind: StoreErrorKind::Corrupt, .. }), "{error}");
}

#[tokio::test]
async fn urls_with_user_password_and_db_number_and_redacted_errors() {
    let server = RedisServer::start(RedisOptions {
        password: Some("hunter2-default".into()),
        user: Some(("fleet".into(), "hunter2-fleet".into())),
        ..RedisOptions::default()
    });
    let url = format!("redis://fleet:hunter2-fleet@127.0.0.1:{}/3", server.port());
    let store = RedisStore::new(&url).unwrap();
    store.save("k", &tokens("in-db-3", None)).await.unwrap();
    assert!(store.load("k").await.unwrap().is_some());
    let mut db3 = raw(&format!("redis://:hunter2-default@127.0.0.1:{}/3", server.port())).await;
    let mut db0 = raw(&format!("redis://:hunter2-default@127.0.0.1:{}/0", server.port())).await;
    let exists = |n: i64| n == 1;
    let in3: i64 = redis::cmd("EXISTS").arg("tessera:tokens:k").query_async(&mut db3).await.unwrap();
    let in0: i64 = redis::cmd("EXISTS").arg("tessera:tokens:k").query_async(&mut db0).await.unwrap();
    assert!(exists(in3) && !exists(in0), "db number honoured");

    // The default user with requirepass.
    let store = RedisStore::new(&format!("redis://:hunter2-default@127.0.0.1:{}", server.port())).unwrap();
    store.save("k", &tokens("db0", None)).await.unwrap();

    // Wrong password: a clear error that never shows the password.
    let wrong = RedisStore::new(&format!("redis://fleet:not-hunter2@127.0.0.1:{}", server.port())).unwrap();
    let error = wrong.load("k").await.unwrap_err();
    assert!(matches!(error, Error::Store { .. }), "{error}");
    let shown = format!("{error} {error:?} {wrong:?} {}", wrong.location());
    assert!(!shown.contains("not-hunter2") && !shown.contains("hunter2-fleet"), "{shown}");
    assert!(shown.contains("fleet:***@127.0.0.1"), "{shown}");
}

/// Eight stores (eight connections, standing for eight machines) take the lock 10 times each:
/// never two holders at once, and fencing tokens strictly increase.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_contention_admits_one_holder_at_a_time_with_increasing_fencing() {
    let server = RedisServer::start(RedisOptions::default());
    let inside = Arc::new(AtomicBool::new(false));
    let entries = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..8)
        .map(|i| {
            let store = RedisStore::with_settings(&server.url(), settings(Duration::from_secs(5))).unwrap();
            let (inside, entries) = (Arc::clone(&inside), Arc::clone(&entries));
            tokio::spawn(async move {
                for round in 0..10 {
                    let lock = store.lock("shared", Duration::from_secs(20)).await.unwrap();
                    assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
                    let n = entries.fetch_add(1, Ordering::SeqCst);
                    // A fenced save succeeds while we hold the lock.
                    store.save("shared", &tokens(&format!("w{i}-r{round}-n{n}"), None)).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    inside.store(false, Ordering::SeqCst);
                    lock.release().await.unwrap();
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    assert_eq!(entries.load(Ordering::SeqCst), 80);
    let mut redis = raw(&server.url()).await;
    let fence: u64 = redis::cmd("GET").arg("tessera:fence:shared").query_async(&mut redis).await.unwrap();
    assert_eq!(fence, 80, "one fencing token per acquisition");
    let held: i64 = redis::cmd("EXISTS").arg("tessera:lock:shared").query_async(&mut redis).await.unwrap();
    assert_eq!(held, 0, "released");

    // A waiter gives up after its timeout with a typed, transient error.
    let store = RedisStore::new(&server.url()).unwrap();
    let held = store.lock("k", Duration::from_secs(1)).await.unwrap();
    let started = Instant::now();
    let error = RedisStore::new(&server.url()).unwrap().lock("k", Duration::from_millis(200)).await.unwrap_err();
    assert!(matches!(error, Error::Store { kind: StoreErrorKind::LockTimeout, .. }), "{error}");
    assert!(error.is_transient());
    assert!(started.elapsed() < Duration::from_secs(2), "bounded wait: {:?}", started.elapsed());
    held.release().await.unwrap();
}

/// A holder that keeps working past its lease keeps the lock: the lease is renewed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_is_renewed_while_the_holder_works() {
    let server = RedisServer::start(RedisOptions::default());
    let holder = RedisStore::with_settings(&server.url(), settings(Duration::from_secs(1))).unwrap();
    let waiter = RedisStore::with_settings(&server.url(), settings(Duration::from_secs(1))).unwrap();
    let lock = holder.lock("k", Duration::from_secs(1)).await.unwrap();
    let error = waiter.lock("k", Duration::from_millis(3500)).await.unwrap_err();
    assert!(matches!(error, Error::Store { kind: StoreErrorKind::LockTimeout, .. }), "{error}");
    holder.save("k", &tokens("holder", None)).await.expect("still ours after 3.5 leases");
    lock.release().await.unwrap();
    let lock = waiter.lock("k", Duration::from_millis(500)).await.unwrap();
    lock.release().await.unwrap();

    // Dropping a guard without release() also frees the lock (in the background).
    let dropped = holder.lock("k", Duration::from_secs(1)).await.unwrap();
    drop(dropped);
    let again = waiter.lock("k", Duration::from_millis(600)).await.expect("freed well before the lease ends");
    again.release().await.unwrap();
}

/// Child mode of the next test: when `TESSERA_LEASE_HOLDER_URL` is set, this test binary takes
/// the refresh lock of `crash` with the default settings, says so, and works until it is killed.
#[test]
fn lease_holder_child() {
    let Ok(url) = std::env::var("TESSERA_LEASE_HOLDER_URL") else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    runtime.block_on(async move {
        let store = RedisStore::new(&url).unwrap();
        let _lock = store.lock("crash", Duration::from_secs(5)).await.unwrap();
        println!("locked");
        std::io::Write::flush(&mut std::io::stdout()).unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await; // "mid-refresh" until killed
    });
}

/// A process holding the refresh lock (default settings: a 3 s lease renewed every second) is
/// killed with SIGKILL: the next waiter proceeds within one lease, not after a long one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_lease_holder_delays_the_next_waiter_by_at_most_one_lease() {
    use std::io::BufRead;
    let server = RedisServer::start(RedisOptions::default());
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "lease_holder_child", "--nocapture", "--test-threads=1", "--quiet"])
        .env("TESSERA_LEASE_HOLDER_URL", server.url())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.trim() == "locked" {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20)).expect("the child took the lock");
    let waiter = RedisStore::new(&server.url()).unwrap();
    // Held for longer than a lease while the holder lives: the heartbeat renews it.
    let error = waiter.lock("crash", Duration::from_millis(4000)).await.unwrap_err();
    assert!(matches!(error, Error::Store { kind: StoreErrorKind::LockTimeout, .. }), "{error}");

    child.kill().unwrap(); // SIGKILL: no release, no more renewals
    child.wait().unwrap();
    let killed = Instant::now();
    let lock = waiter.lock("crash", Duration::from_secs(10)).await.expect("the dead holder's lease ends");
    let waited = killed.elapsed();
    eprintln!("the next waiter proceeded {waited:?} after the holder was killed");
    assert!(waited <= Duration::from_millis(3300), "within one 3 s lease (and a poll): {waited:?}");
    lock.release().await.unwrap();
}

/// The holder stalls (its runtime thread is blocked, so nothing renews the lease): the next holder
/// proceeds after the lease, and the stale holder's write is rejected by the fencing check and its
/// release does not free the new holder's lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_holder_loses_the_lease_and_its_write_is_fenced_off() {
    let server = RedisServer::start(RedisOptions::default());
    let url = server.url();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (wake_tx, wake_rx) = std::sync::mpsc::channel::<()>();
    let stale = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let store = RedisStore::with_settings(&url, settings(Duration::from_millis(300))).unwrap();
            let lock = store.lock("k", Duration::from_secs(1)).await.unwrap();
            locked_tx.send(()).unwrap();
            // The stall: this thread (the runtime's only one) sleeps, so the renewal task cannot run.
            wake_rx.recv_timeout(Duration::from_secs(30)).unwrap();
            let fenced = store.save("k", &tokens("stale", None)).await;
            lock.release().await.unwrap();
            fenced
        })
    });
    locked_rx.recv_timeout(Duration::from_secs(10)).unwrap();

    let next = RedisStore::with_settings(&server.url(), settings(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let lock = next.lock("k", Duration::from_secs(5)).await.expect("the lease expires and the next holder proceeds");
    assert!(started.elapsed() >= Duration::from_millis(200), "only after the lease: {:?}", started.elapsed());
    next.save("k", &tokens("next", None)).await.unwrap();

    wake_tx.send(()).unwrap();
    let error = stale.join().unwrap().unwrap_err();
    assert!(matches!(error, Error::Store { kind: StoreErrorKind::LockLost, .. }), "{error}");
    assert_eq!(next.load("k").await.unwrap().unwrap().access_token, Secret::new("next"), "store kept the newer write");
    // The stale holder's release (compare-and-delete) left the new holder's lock in place.
    let error = RedisStore::new(&server.url()).unwrap().lock("k", Duration::from_millis(100)).await.unwrap_err();
    assert!(matches!(error, Error::Store { kind: StoreErrorKind::LockTimeout, .. }), "{error}");
    next.save("k", &tokens("next-2", None)).await.expect("the new holder still holds it");
    lock.release().await.unwrap();
}

/// Four "machines" (each its own RedisStore and connection) × two sessions share one rotating
/// refresh token at the reference IdP: one refresh per window, no reuse, one token everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_on_several_machines_refresh_once_per_window_through_redis() {
    let server = RedisServer::start(RedisOptions::default());
    let idp = idp(Duration::from_secs(2)).await;
    let sessions: Vec<Session> = (0..4)
        .flat_map(|_| {
            let store: Arc<dyn TokenStore> = Arc::new(RedisStore::new(&server.url()).unwrap());
            let issuer = idp.issuer();
            (0..2).map(move |_| session_with_store("fleet/alice", alice(&issuer), store.clone()))
        })
        .collect();
    let mut current = sessions[0].login().await.unwrap().tokens().clone();
    for round in 1..=3u64 {
        let left = current.expires_at.unwrap().duration_since(tessera::clock::system_now());
        tokio::time::sleep(left + Duration::from_millis(100)).await;
        let access = access_tokens_at_once(&sessions).await.unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(access.len(), 1, "round {round}: every session adopted the one refreshed token");
        let stats = idp.stats();
        assert_eq!(stats.refresh_grants, round, "round {round}: one refresh per window: {stats:?}");
        assert_eq!(stats.refresh_token_reuse_detected, 0, "{stats:?}");
        current = sessions[0].store().load("fleet/alice").await.unwrap().expect("stored");
        assert!(access.contains(current.access_token.expose_secret()));
    }
    assert_eq!(idp.stats().password_grants, 1, "never fell back to a new login");
}

/// Redis goes away mid-run and comes back (with its append-only file): the session keeps serving
/// its valid token, a refresh meanwhile fails with a clear `Unavailable` error, and afterwards the
/// stored token is still there and refreshes without reuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_mid_run_gives_a_clear_error_then_recovers_without_losing_the_token() {
    let mut server = RedisServer::start(RedisOptions {
        persistent: true,
        password: Some("hunter2-restart".into()),
        ..RedisOptions::default()
    });
    let idp = idp(Duration::from_secs(60)).await;
    let url = format!("redis://:hunter2-restart@127.0.0.1:{}", server.port());
    let store: Arc<dyn TokenStore> = Arc::new(
        RedisStore::with_settings(
            &url,
            RedisSettings { command_timeout: Duration::from_millis(500), ..RedisSettings::default() },
        )
        .unwrap(),
    );
    let session = session_with_store("k", alice(&idp.issuer()), store.clone());
    let first = session.authorization_header().await.unwrap();

    server.stop();
    let cached = session.authorization_header().await.expect("a valid cached token needs no store");
    assert_eq!(cached.access_token(), first.access_token());
    let started = Instant::now();
    let error = session.force_refresh().await.unwrap_err();
    assert!(matches!(error, Error::Store { kind: StoreErrorKind::Unavailable, .. }), "{error}");
    assert!(error.is_transient());
    assert!(started.elapsed() < Duration::from_secs(10), "fails fast: {:?}", started.elapsed());
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("hunter2-restart"), "{shown}");
    assert!(shown.contains("127.0.0.1"), "names the store: {shown}");
    assert_eq!(idp.stats().refresh_grants, 0, "no refresh without the store's lock");

    server.restart();
    let mut recovered = None;
    for _ in 0..50 {
        match store.load("k").await {
            Ok(tokens) => {
                recovered = Some(tokens);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(recovered.expect("reconnects").as_ref(), Some(first.tokens()), "no lost token");
    // The failed read during the outage postponed the next attempt (1 s doubling, jittered): calls
    // until then get that error at once and send nothing; the first one after it refreshes.
    let mut refreshed = None;
    for _ in 0..40 {
        match session.force_refresh().await {
            Ok(header) => {
                refreshed = Some(header);
                break;
            }
            Err(error) => {
                assert!(matches!(error, Error::Store { .. }), "{error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let refreshed = refreshed.expect("the session recovers once the postponement is over");
    assert_ne!(refreshed.access_token(), first.access_token());
    let stats = idp.stats();
    assert_eq!((stats.refresh_grants, stats.refresh_token_reuse_detected), (1, 0), "{stats:?}");
    assert_eq!(store.load("k").await.unwrap().as_ref(), Some(refreshed.tokens()));
    assert!(introspect(&idp, refreshed.tokens().refresh_token.as_ref().unwrap().expose_secret()).await);
}

/// A context's `store = { kind = "redis", url = "file:..." }` opens a RedisStore (the URL, which
/// may hold a password, is given by reference) that sessions then share.
#[tokio::test]
async fn a_context_store_entry_opens_a_redis_store() {
    let server =
        RedisServer::start(RedisOptions { password: Some("hunter2-config".into()), ..RedisOptions::default() });
    let dir = tempfile::tempdir().unwrap();
    let url_file = dir.path().join("redis-url");
    std::fs::write(&url_file, format!("redis://:hunter2-config@127.0.0.1:{}/2\n", server.port())).unwrap();
    let text = format!(
        r#"
current_context = "fleet"
[[contexts]]
name = "fleet"
store = {{ kind = "redis", url = "file:{}", prefix = "cfg:" }}
[[contexts.auth_providers]]
name = "peer"
provider = "client_credentials"
token_url = "http://127.0.0.1:1/token"
client_id = "c"
client_secret = "env:TESSERA_TEST_UNSET_SECRET"
"#,
        url_file.display()
    );
    let config = tessera::config::Config::from_toml_str(&text, "test.toml").unwrap();
    let context = config.context(None).unwrap();
    let store = tessera::store::open(context.store.as_ref().expect("a store entry"), dir.path()).unwrap();
    assert!(store.location().contains(":***@127.0.0.1") && store.location().contains("cfg:"), "{}", store.location());
    assert!(!format!("{:?} {store:?}", context.store).contains("hunter2"));
    store.save("fleet/peer", &tokens("via-config", None)).await.unwrap();
    let mut redis = raw(&format!("redis://:hunter2-config@127.0.0.1:{}/2", server.port())).await;
    let exists: i64 = redis::cmd("EXISTS").arg("cfg:tokens:fleet/peer").query_async(&mut redis).await.unwrap();
    assert_eq!(exists, 1);
}

/// A waiter whose lock wait times out re-reads the store before giving up: the holder saved a fresh
/// token while it waited (and is still busy), so the waiter serves that token, with no request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_that_times_out_serves_what_the_holder_saved_meanwhile() {
    let server = RedisServer::start(RedisOptions::default());
    let idp = idp(Duration::from_secs(60)).await;
    let holder = RedisStore::new(&server.url()).unwrap();
    let now = tessera::clock::system_now();
    let mut expired = tokens("expired", None);
    expired.expires_at = Some(now - Duration::from_secs(1));
    holder.save("k", &expired).await.unwrap();

    let lock = holder.lock("k", Duration::from_secs(1)).await.unwrap();
    let waiter_store: Arc<dyn TokenStore> = Arc::new(RedisStore::new(&server.url()).unwrap());
    let waiter = Session::builder("k", alice(&idp.issuer()))
        .store(waiter_store)
        .settings(tessera::SessionSettings { lock_timeout: Duration::from_millis(1500), ..Default::default() })
        .build();
    let waiting = tokio::spawn(async move { waiter.authorization_header().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    holder.save("k", &tokens("fresh-from-holder", None)).await.unwrap();
    let header = waiting.await.unwrap().expect("served the holder's token after the lock wait timed out");
    assert_eq!(header.access_token(), &Secret::new("fresh-from-holder"));
    assert_eq!(idp.stats().token_requests, 0, "no request while another process holds the lock");
    lock.release().await.unwrap();
}

/// `rediss://` works (rustls over ring, provider installed on demand): a server certificate from a
/// private CA is refused with a clear error by default, and accepted once that CA is given.
#[tokio::test]
async fn rediss_urls_connect_over_tls_with_a_private_ca() {
    let server =
        RedisServer::start(RedisOptions { tls: true, password: Some("hunter2-tls".into()), ..RedisOptions::default() });
    let url = format!("rediss://:hunter2-tls@127.0.0.1:{}/1", server.tls_port());
    let public_roots = RedisStore::new(&url).unwrap();
    let error = public_roots.load("k").await.unwrap_err();
    assert!(matches!(error, Error::Store { .. }), "{error}");
    assert!(!format!("{error}").contains("hunter2-tls"), "{error}");
    assert!(error.to_string().contains("certificate"), "says why: {error}");

    let ca = std::fs::read(server.dir().join("ca.pem")).unwrap();
    let private_ca =
        RedisStore::with_settings(&url, RedisSettings { ca_certificate_pem: Some(ca), ..RedisSettings::default() })
            .unwrap();
    private_ca.save("k", &tokens("over-tls", None)).await.expect("TLS connection");
    assert_eq!(private_ca.load("k").await.unwrap().unwrap().access_token, Secret::new("over-tls"));
    assert!(private_ca.location().starts_with("rediss://:***@127.0.0.1"), "{}", private_ca.location());

    // The same CA named by the configuration's `ca_file`, read as every CA bundle is.
    let config: tessera::store::StoreConfig = serde_json::from_value(serde_json::json!({
        "kind": "redis", "url": url, "ca_file": server.dir().join("ca.pem"),
    }))
    .unwrap();
    let configured = tessera::store::open(&config, std::path::Path::new("/nonexistent")).unwrap();
    assert_eq!(configured.load("k").await.unwrap().unwrap().access_token, Secret::new("over-tls"));
}

/// A Redis without persistence restarts empty: a process still holding the tokens in memory
/// refreshes with its own (newest) refresh token and writes them back — the login survives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_redis_after_a_restart_is_refilled_from_a_process_that_holds_the_tokens() {
    let mut server = RedisServer::start(RedisOptions::default());
    let idp = idp(Duration::from_secs(60)).await;
    let store: Arc<dyn TokenStore> = Arc::new(RedisStore::new(&server.url()).unwrap());
    let session = session_with_store("k", alice(&idp.issuer()), store.clone());
    let first = session.authorization_header().await.unwrap();
    server.restart();
    let mut empty = None;
    for _ in 0..50 {
        if let Ok(loaded) = store.load("k").await {
            empty = Some(loaded);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(empty.expect("reconnects"), None, "nothing persisted");
    let refreshed = session.force_refresh().await.unwrap();
    assert_ne!(refreshed.access_token(), first.access_token());
    let stats = idp.stats();
    assert_eq!(
        (stats.password_grants, stats.refresh_grants, stats.refresh_token_reuse_detected),
        (1, 1, 0),
        "{stats:?}"
    );
    assert_eq!(store.load("k").await.unwrap().as_ref(), Some(refreshed.tokens()), "written back");
}

/// DPoP (RFC 9449): the generated key is stored with the tokens, so a session on another "machine"
/// (its own store connection, its own engine) refreshes oidc-provider's key-bound refresh token
/// with the key it is bound to: a refresh, not a new login.
#[tokio::test]
async fn a_generated_dpop_key_travels_with_the_tokens_between_machines() {
    use support::oidc_provider::{ALICE, ALICE_PASSWORD, DPOP_CLIENT_ID, OidcProvider, OidcProviderOptions};
    let server = RedisServer::start(RedisOptions::default());
    let op = OidcProvider::start(OidcProviderOptions::default());
    let mut client = tessera::ClientAuth::public(DPOP_CLIENT_ID);
    client.dpop = Some(tessera::DpopSettings::generated());
    let config = tessera::ProviderConfig {
        client,
        endpoints: tessera::Endpoints::discover(op.issuer()),
        scope: Some("openid api:read offline_access".into()),
        grant: tessera::Grant::Password { username: ALICE.into(), password: Secret::new(ALICE_PASSWORD), totp: None },
    };
    let machine =
        |config| Session::builder("dev/api", config).store(Arc::new(RedisStore::new(&server.url()).unwrap())).build();
    let first = machine(config.clone()).tokens().await.unwrap();
    assert_eq!(first.token_type, "DPoP");
    let stored = RedisStore::new(&server.url()).unwrap().load("dev/api").await.unwrap().unwrap();
    assert_eq!(stored.dpop_key, first.dpop_key, "Redis holds the key with the tokens");
    assert!(stored.dpop_key.is_some());

    op.reset_stats().await;
    let renewed = machine(config).force_refresh().await.unwrap();
    assert_eq!(renewed.tokens().dpop_key, first.dpop_key);
    assert_ne!(renewed.tokens().refresh_token, first.refresh_token, "rotated");
    let stats = op.stats().await;
    assert_eq!((stats.grant_type("refresh_token"), stats.grant_type("password")), (2, 0), "{stats:?}");
    assert_eq!((stats.refresh_token_reuses, stats.grants_revoked), (0, 0), "{stats:?}");
}
