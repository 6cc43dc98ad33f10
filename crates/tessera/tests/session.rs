//! End-to-end behaviour of `Session` against the reference IdP: logins, refresh, rotation,
//! single flight, early refresh, logout, and the cross-process protocol over a shared FileStore.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::*;
use tessera::clock::Clock;
use tessera::store::{FileStore, TokenStore};
use tessera::{Endpoints, Error, Grant, OAuthErrorCode, ProviderConfig, Secret, Session, SessionSettings};
use tessera_idp::{Fault, FaultEndpoint, FaultKind};

#[tokio::test]
async fn password_login_is_cached_then_refreshed_with_rotation() {
    let idp = idp(Duration::from_secs(2)).await;
    let session = session("alice", alice(&idp.issuer()));
    let first = session.authorization_header().await.unwrap();
    assert!(first.expose_secret().starts_with("Bearer "));
    assert_eq!(whoami(&idp, first.expose_secret()).await, 200);
    let refresh_token = first.tokens().refresh_token.clone().expect("password grant returns a refresh token");
    for _ in 0..100 {
        session.authorization_header().await.unwrap();
    }
    assert_eq!(idp.stats().token_requests, 1, "cached: one request for 101 calls");

    // A 2-second token refreshes in its last second (half its lifetime, plus up to a quarter of
    // that as jitter), not on every call.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let second = session.authorization_header().await.unwrap();
    assert_ne!(second.access_token(), first.access_token());
    assert_eq!(idp.stats().refresh_grants, 1);
    let rotated = second.tokens().refresh_token.clone().unwrap();
    assert_ne!(rotated, refresh_token, "the IdP rotates refresh tokens and the session keeps the new one");
    assert!(!introspect(&idp, refresh_token.expose_secret()).await, "old refresh token is spent");
    assert!(introspect(&idp, rotated.expose_secret()).await);
}

#[tokio::test]
async fn totp_is_generated_from_the_secret() {
    let idp = idp(Duration::from_secs(60)).await;
    let header = session("bob", bob(&idp.issuer())).authorization_header().await.unwrap();
    assert_eq!(whoami(&idp, header.expose_secret()).await, 200);

    let mut no_code = bob(&idp.issuer());
    if let Grant::Password { totp, .. } = &mut no_code.grant {
        *totp = None;
    }
    let error = session("bob2", no_code).authorization_header().await.unwrap_err();
    assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidGrant), "{error}");
}

#[tokio::test]
async fn client_credentials_has_no_refresh_token_and_requests_again() {
    let idp = idp(Duration::from_secs(1)).await;
    let session = session("machine", machine(&idp.issuer()));
    let first = session.authorization_header().await.unwrap();
    assert!(first.tokens().refresh_token.is_none());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = session.authorization_header().await.unwrap();
    assert_ne!(first.access_token(), second.access_token());
    assert_eq!(idp.stats().client_credentials_grants, 2);
    assert_eq!(idp.stats().refresh_grants, 0);
}

#[tokio::test]
async fn refresh_token_grant_starts_from_a_given_refresh_token_and_static_tokens_are_served() {
    let idp = idp(Duration::from_secs(60)).await;
    let seed = session("seed", alice(&idp.issuer())).tokens().await.unwrap();
    let config = ProviderConfig {
        grant: Grant::RefreshToken { refresh_token: seed.refresh_token.clone().unwrap() },
        ..alice(&idp.issuer())
    };
    let session = session("from-refresh", config);
    let tokens = session.tokens().await.unwrap();
    assert_eq!(idp.stats().refresh_grants, 1);
    assert!(tokens.refresh_token.is_some());

    let fixed = ProviderConfig {
        grant: Grant::Static { access_token: Secret::new("fixed-token"), expires_at: None },
        ..alice("http://127.0.0.1:9")
    };
    let header = support::session("static", fixed).authorization_header().await.unwrap();
    assert_eq!(header.expose_secret(), "Bearer fixed-token");
}

#[tokio::test]
async fn thousand_concurrent_callers_on_an_expired_session_cause_one_request() {
    let idp = idp(Duration::from_secs(1)).await;
    let session = session("herd", machine(&idp.issuer()));
    session.authorization_header().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1050)).await; // expired, not merely due
    let before = idp.stats().token_requests;
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let session = session.clone();
            tokio::spawn(async move { session.authorization_header().await.map(|h| h.access_token().clone()) })
        })
        .collect();
    let mut tokens = std::collections::HashSet::new();
    for task in tasks {
        tokens.insert(task.await.unwrap().unwrap().expose_secret().to_owned());
    }
    assert_eq!(idp.stats().token_requests - before, 1, "exactly one token request");
    assert_eq!(tokens.len(), 1, "every caller got the same fresh token");
}

#[tokio::test]
async fn concurrent_force_refreshes_after_a_401_share_one_request() {
    let idp = idp(Duration::from_secs(300)).await;
    let session = session("forced", alice(&idp.issuer()));
    let rejected = session.authorization_header().await.unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let session = session.clone();
            tokio::spawn(async move { session.force_refresh().await })
        })
        .collect();
    for task in tasks {
        let header = task.await.unwrap().unwrap();
        assert_ne!(header.access_token(), rejected.access_token());
    }
    assert_eq!(idp.stats().refresh_grants, 1);
}

#[tokio::test]
async fn a_failed_early_refresh_keeps_serving_the_valid_token() {
    let idp = idp(Duration::from_secs(4)).await;
    let session = Session::builder("early", alice(&idp.issuer()))
        .settings(SessionSettings { jitter: false, ..SessionSettings::default() })
        .build();
    let first = session.authorization_header().await.unwrap();
    idp.faults().push(FaultEndpoint::Token, Fault::status(500, "boom"), 1);
    tokio::time::sleep(Duration::from_millis(2200)).await; // inside the 2 s window, still valid
    let during = session.authorization_header().await.unwrap();
    assert_eq!(during.access_token(), first.access_token(), "still valid: served despite the failed refresh");
    assert_eq!(idp.stats().token_requests, 2, "one failed refresh attempt (500 on a refresh is not retried)");
    // Retries later (after half the remaining time) and succeeds.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let after = session.authorization_header().await.unwrap();
    assert_ne!(after.access_token(), first.access_token());
}

#[tokio::test]
async fn an_expired_token_that_cannot_be_refreshed_is_a_typed_error() {
    let idp = idp(Duration::from_secs(1)).await;
    let seed = session("seed", alice(&idp.issuer())).tokens().await.unwrap();
    let config = ProviderConfig {
        grant: Grant::RefreshToken { refresh_token: seed.refresh_token.clone().unwrap() },
        ..alice(&idp.issuer())
    };
    let session = session("revoked", config);
    session.authorization_header().await.unwrap();
    idp.revoke_all_refresh_tokens_of("alice");
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let error = session.authorization_header().await.unwrap_err();
    assert!(error.requires_reauthentication(), "{error}");
    assert!(!error.is_transient());
}

#[tokio::test]
async fn a_password_session_logs_in_again_when_its_refresh_token_is_revoked() {
    let idp = idp(Duration::from_secs(1)).await;
    let session = session("relogin", alice(&idp.issuer()));
    session.authorization_header().await.unwrap();
    idp.revoke_all_refresh_tokens_of("alice");
    tokio::time::sleep(Duration::from_millis(1050)).await;
    idp.set_access_token_ttl(Duration::from_secs(60)); // the new token outlives a loaded machine
    let header = session.authorization_header().await.unwrap();
    assert_eq!(whoami(&idp, header.expose_secret()).await, 200);
    let stats = idp.stats();
    // Logged in, the refresh was refused (issued grants count only successes), logged in again.
    assert_eq!((stats.token_requests, stats.password_grants, stats.refresh_grants), (3, 2, 0));
}

#[tokio::test]
async fn logout_revokes_at_the_server_and_clears_the_store() {
    let idp = idp(Duration::from_secs(60)).await;
    let store = memory();
    let session = session_with_store("bye", alice(&idp.issuer()), store.clone());
    let tokens = session.tokens().await.unwrap();
    assert!(store.load("bye").await.unwrap().is_some());
    let outcome = session.logout().await.unwrap();
    assert!(outcome.revoked && outcome.had_tokens && outcome.revocation_error.is_none());
    assert!(!introspect(&idp, tokens.refresh_token.unwrap().expose_secret()).await);
    assert!(
        !introspect(&idp, tokens.access_token.expose_secret()).await,
        "revoking the refresh token revokes its family"
    );
    assert!(store.load("bye").await.unwrap().is_none());
    assert!(session.cached_header().is_none());

    let outcome = session.logout().await.unwrap();
    assert!(!outcome.had_tokens && !outcome.revoked);
}

#[tokio::test]
async fn logout_without_a_revocation_endpoint_still_forgets_tokens() {
    let idp = idp(Duration::from_secs(60)).await;
    let config = ProviderConfig { endpoints: Endpoints::explicit(idp.url("/token")), ..alice(&idp.issuer()) };
    let session = session("norevoke", config);
    session.authorization_header().await.unwrap();
    let outcome = session.logout().await.unwrap();
    assert!(outcome.had_tokens && !outcome.revoked && outcome.revocation_error.is_none());
    assert!(session.cached_header().is_none());
    assert_eq!(idp.stats().revocations, 0);
}

#[tokio::test]
async fn sessions_sharing_a_file_store_refresh_once_and_never_reuse_a_rotated_token() {
    let idp = idp(Duration::from_secs(1)).await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(dir.path().join("tokens")));
    // Eight sessions stand for eight processes: separate caches and gates, one store.
    let sessions: Vec<_> = (0..8).map(|_| session_with_store("shared", alice(&idp.issuer()), store.clone())).collect();
    sessions[0].login().await.unwrap();
    for round in 0..3 {
        tokio::time::sleep(Duration::from_millis(1050)).await;
        let tasks: Vec<_> =
            sessions.iter().cloned().map(|s| tokio::spawn(async move { s.authorization_header().await })).collect();
        for task in tasks {
            task.await.unwrap().unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
    }
    let stats = idp.stats();
    assert_eq!(stats.refresh_grants, 3, "one refresh per expiry window across all sessions");
    assert_eq!(stats.refresh_token_reuse_detected, 0);
    assert_eq!(stats.password_grants, 1);
}

#[tokio::test]
async fn wrong_credentials_are_typed_errors() {
    let idp = idp(Duration::from_secs(60)).await;
    let mut wrong_password = alice(&idp.issuer());
    wrong_password.grant = Grant::Password { username: "alice".into(), password: Secret::new("nope"), totp: None };
    let error = session("a", wrong_password).authorization_header().await.unwrap_err();
    assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidGrant));

    let mut wrong_client = alice(&idp.issuer());
    wrong_client.client.client_secret = Some(Secret::new("not-the-secret"));
    let error = session("b", wrong_client).authorization_header().await.unwrap_err();
    assert!(matches!(&error, Error::OAuth { code: OAuthErrorCode::InvalidClient, status: 401, .. }), "{error}");
    assert_eq!(idp.stats().token_requests, 2, "credential errors are not retried");
}

/// Every fault of the reference IdP becomes a typed error, and a store holding a good token is left intact.
#[tokio::test]
async fn bad_responses_are_typed_errors_and_leave_the_store_intact() {
    let idp = idp(Duration::from_secs(60)).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::new(dir.path().join("tokens")));
    let settings = SessionSettings {
        transport: tessera::transport::TransportSettings {
            timeout: Duration::from_millis(500),
            max_response_bytes: 64 * 1024,
            ..Default::default()
        },
        ..SessionSettings::default()
    };
    let seeded = Session::builder("intact", alice(&idp.issuer())).store(store.clone()).build();
    let mut good = seeded.tokens().await.unwrap();

    // `lost`: sent without an answer, the outcome is unknown: the refresh token is dropped for good
    // and alice's password grant logs in again (tests/lost_answer.rs has the server's side).
    let cases: Vec<(FaultKind, Option<Duration>, &str, bool)> = vec![
        (FaultKind::MalformedJson, None, "malformed response", false),
        (FaultKind::HtmlErrorPage { status: 502 }, None, "HTTP 502 (text/html)", false),
        (
            FaultKind::Status { status: 500, body: "oops".into(), content_type: "text/plain".into() },
            None,
            "HTTP 500",
            false,
        ),
        (
            FaultKind::Status { status: 503, body: "late".into(), content_type: "text/plain".into() },
            Some(Duration::from_secs(2)),
            "timed out",
            true,
        ),
        (FaultKind::Oversize { bytes: 200_000 }, None, "too large", false),
        (FaultKind::WrongContentType, None, "expected application/json, got text/plain", false),
        (FaultKind::DropConnection, None, "connection", true),
    ];
    for (kind, delay, expected, lost) in cases {
        let mut fault = Fault::new(kind.clone());
        if let Some(delay) = delay {
            fault = fault.with_delay(delay);
        }
        // Forced refresh: a refresh token is never retried after an ambiguous failure, so exactly one request.
        idp.faults().push(FaultEndpoint::Token, fault, 1);
        let session =
            Session::builder("intact", alice(&idp.issuer())).store(store.clone()).settings(settings.clone()).build();
        let before = idp.stats();
        if lost {
            let header = session.force_refresh().await.unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            let after = idp.stats();
            assert_eq!(after.token_requests - before.token_requests, 2, "{kind:?}: the refresh, then one login");
            assert_eq!(after.password_grants - before.password_grants, 1, "{kind:?}");
            let stored = store.load("intact").await.unwrap().unwrap();
            assert_eq!(&stored, header.tokens(), "{kind:?}: the new login is stored");
            assert_ne!(stored.refresh_token, good.refresh_token, "{kind:?}: the maybe-spent token is gone");
            good = stored;
        } else {
            let error = session.force_refresh().await.unwrap_err();
            assert!(error.to_string().contains(expected), "{kind:?}: {error} should mention {expected:?}");
            assert_eq!(idp.stats().token_requests - before.token_requests, 1, "{kind:?}: not retried");
            assert_eq!(store.load("intact").await.unwrap().as_ref(), Some(&good), "{kind:?}: store untouched");
        }
        idp.faults().clear();
    }
    // After all that, the stored refresh token is still good.
    let session = Session::builder("intact", alice(&idp.issuer())).store(store.clone()).build();
    session.force_refresh().await.unwrap();
    assert_eq!(idp.stats().refresh_token_reuse_detected, 0);
}

#[tokio::test]
async fn transient_login_failures_are_retried_with_backoff() {
    let idp = idp(Duration::from_secs(60)).await;
    idp.faults().push(FaultEndpoint::Token, Fault::new(FaultKind::HtmlErrorPage { status: 503 }), 2);
    let header = session("retry", machine(&idp.issuer())).authorization_header().await.unwrap();
    assert_eq!(whoami(&idp, header.expose_secret()).await, 200);
    let stats = idp.stats();
    assert_eq!((stats.token_requests, stats.client_credentials_grants), (3, 1), "two 503s, then success");
}

#[tokio::test]
async fn unreachable_and_misdescribed_servers_are_typed_errors() {
    let error = session("down", alice("http://127.0.0.1:9")).authorization_header().await.unwrap_err();
    assert!(matches!(error, Error::Transport { kind: tessera::TransportErrorKind::Connect, .. }), "{error}");
    assert!(error.is_transient());

    let idp = idp(Duration::from_secs(60)).await;
    let other_issuer = alice(&format!("{}/", idp.url("/.well-known/..")));
    let error = session("mismatch", other_issuer).authorization_header().await.unwrap_err();
    assert!(matches!(error, Error::MalformedResponse { .. } | Error::UnexpectedStatus { .. }), "{error}");
}

#[cfg(unix)] // file modes
#[tokio::test]
async fn unreadable_stores_are_typed_errors_and_are_not_overwritten() {
    use std::os::unix::fs::PermissionsExt;
    let idp = idp(Duration::from_secs(60)).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::new(dir.path().join("tokens")));
    let session = session_with_store("k", alice(&idp.issuer()), store.clone());
    session.tokens().await.unwrap();

    std::fs::write(store.path(), b"{ not json").unwrap();
    let fresh = session_with_store("k", alice(&idp.issuer()), store.clone());
    let error = fresh.authorization_header().await.unwrap_err();
    assert!(matches!(error, Error::Store { kind: tessera::StoreErrorKind::Corrupt, .. }), "{error}");
    assert_eq!(std::fs::read(store.path()).unwrap(), b"{ not json");

    std::fs::remove_file(store.path()).unwrap();
    // The failed attempt postponed the next one (0.5–1 s after a first failure).
    tokio::time::sleep(Duration::from_secs(1)).await;
    fresh.tokens().await.unwrap();
    std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = session_with_store("k", alice(&idp.issuer()), store.clone()).authorization_header().await.unwrap_err();
    assert!(matches!(error, Error::Store { kind: tessera::StoreErrorKind::InsecurePermissions, .. }), "{error}");
    assert!(error.to_string().contains("chmod 600"));
}

/// A refresh-token grant whose configured token was rotated never presents it again, even after the
/// store was wiped (the spent-token ledger beside the FileStore remembers its fingerprint): the
/// reference IdP would take it for reuse and revoke the grant.
#[tokio::test]
async fn a_rotated_configured_refresh_token_is_never_presented_again_after_a_wipe() {
    let idp = idp(Duration::from_secs(60)).await;
    let seed = session("seed", alice(&idp.issuer())).tokens().await.unwrap().refresh_token.unwrap();
    let config = ProviderConfig { grant: Grant::RefreshToken { refresh_token: seed.clone() }, ..alice(&idp.issuer()) };
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::new(dir.path().join("tokens")));
    let first = Session::builder("rt", config.clone()).store(store.clone()).build();
    let tokens = first.tokens().await.unwrap();
    assert_ne!(tokens.refresh_token.as_ref(), Some(&seed), "the reference IdP rotates");

    store.clear("rt").await.unwrap(); // wiped
    let before = idp.stats();
    let after_wipe = Session::builder("rt", config).store(store.clone()).build();
    let error = after_wipe.authorization_header().await.unwrap_err();
    assert!(error.requires_reauthentication() && error.to_string().contains("spent"), "{error}");
    assert!(!error.to_string().contains(seed.expose_secret()), "{error}");
    let after = idp.stats();
    assert_eq!(after.token_requests, before.token_requests, "nothing sent");
    assert_eq!(after.refresh_token_reuse_detected, 0);
    // The grant is alive: the rotated token still refreshes.
    let (mut live, now) = (tokens.clone(), tessera::clock::system_now());
    live.expires_at = Some(now);
    store.save("live", &live).await.unwrap();
    let holder = Session::builder("live", alice(&idp.issuer())).store(store).build();
    holder.force_refresh().await.expect("the rotated refresh token is still good");
    let last = idp.stats();
    assert_eq!((last.refresh_grants, last.password_grants), (after.refresh_grants + 1, after.password_grants));
    assert_eq!(last.refresh_token_reuse_detected, 0);
}

/// A thread that keeps its own per-thread header copies alive between reads: `read()` asks it
/// for `session.cached_header()` and returns the access token it got.
struct Reader {
    ask: std::sync::mpsc::Sender<()>,
    answer: std::sync::mpsc::Receiver<Option<String>>,
}

impl Reader {
    fn start(session: Session) -> Reader {
        let (ask, asked) = std::sync::mpsc::channel::<()>();
        let (answered, answer) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for () in asked {
                let header = session.cached_header();
                // The borrowed form must agree with the owned one.
                let lent = session.with_cached_header(|h| h.access_token().expose_secret().to_owned());
                let token = header.map(|h| h.access_token().expose_secret().to_owned());
                assert_eq!(lent, token, "with_cached_header and cached_header disagree");
                if answered.send(token).is_err() {
                    return;
                }
            }
        });
        Reader { ask, answer }
    }

    fn read(&self) -> Option<String> {
        self.ask.send(()).unwrap();
        self.answer.recv_timeout(Duration::from_secs(10)).expect("the reader thread answers")
    }
}

#[tokio::test]
async fn every_thread_copy_sees_a_refresh_and_none_is_served_past_its_serve_until_instant() {
    let idp = idp(Duration::from_secs(60)).await;
    let clock = Arc::new(tessera::clock::ManualClock::new(tessera::clock::SystemClock.now()));
    // No jitter: a 60-s token is served until 30 s before expiry (the refresh window), exactly.
    let settings = SessionSettings { jitter: false, ..SessionSettings::default() };
    let session =
        Session::builder("per-thread", machine(&idp.issuer())).clock(clock.clone()).settings(settings).build();
    let token = |header: tessera::AuthorizationHeader| header.access_token().expose_secret().to_owned();
    let first = token(session.authorization_header().await.unwrap());
    let readers = [Reader::start(session.clone()), Reader::start(session.clone())];
    for reader in &readers {
        assert_eq!(reader.read().as_deref(), Some(first.as_str()), "each thread makes its copy");
        assert_eq!(reader.read().as_deref(), Some(first.as_str()), "and serves it again");
    }

    // A refresh made on another thread replaces every thread's copy.
    let second = token(session.force_refresh().await.unwrap());
    assert_ne!(second, first);
    for reader in &readers {
        assert_eq!(reader.read().as_deref(), Some(second.as_str()), "a thread that held the old header");
    }

    // Up to the serve-until instant the copies are served; at it, none is (nothing changed in
    // the session meanwhile: the copies are retired by their own instant).
    clock.advance(Duration::from_millis(29_990));
    for reader in &readers {
        assert_eq!(reader.read().as_deref(), Some(second.as_str()));
    }
    clock.advance(Duration::from_millis(10));
    for reader in &readers {
        assert_eq!(reader.read(), None, "never served at or past its serve-until instant");
    }
    assert!(session.cached_header().is_none());

    // The refresh that follows reaches every thread; a clear empties every copy.
    let third = token(session.authorization_header().await.unwrap());
    assert_ne!(third, second);
    for reader in &readers {
        assert_eq!(reader.read().as_deref(), Some(third.as_str()));
    }
    session.clear().await.unwrap();
    for reader in &readers {
        assert_eq!(reader.read(), None, "cleared: no thread serves its copy");
    }
    assert_eq!(idp.stats().client_credentials_grants, 3);
}

#[tokio::test]
async fn ten_thousand_sessions_round_robin_each_serve_their_own_token() {
    let expires_at = tessera::clock::SystemClock.now() + Duration::from_secs(3600);
    let token = |i: usize| format!("token-{i}");
    let sessions: Vec<Session> = (0..10_000)
        .map(|i| {
            let config = ProviderConfig {
                grant: Grant::Static { access_token: Secret::new(token(i)), expires_at: Some(expires_at) },
                ..machine("http://127.0.0.1:9")
            };
            Session::builder(format!("rr-{i}"), config).build()
        })
        .collect();
    for session in &sessions {
        session.authorization_header().await.unwrap();
    }
    let served = |session: &Session| session.cached_header().map(|h| h.access_token().expose_secret().to_owned());
    for _round in 0..3 {
        for (i, session) in sessions.iter().enumerate() {
            assert_eq!(served(session), Some(token(i)), "session {i}");
        }
    }
    // Every 7th session cleared: those serve nothing, the others their own token, on this
    // thread (which holds copies of all of them) and on a thread that never read them before.
    for session in sessions.iter().step_by(7) {
        session.clear().await.unwrap();
    }
    let expected = move |i: usize| (!i.is_multiple_of(7)).then(|| token(i));
    for (i, session) in sessions.iter().enumerate() {
        assert_eq!(served(session), expected(i), "session {i} after the clears");
    }
    let elsewhere = sessions.clone();
    std::thread::spawn(move || {
        for (i, session) in elsewhere.iter().enumerate() {
            assert_eq!(served(session), expected(i), "session {i} on another thread");
        }
    })
    .join()
    .unwrap();
}
