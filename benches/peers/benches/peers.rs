//! tessera's cached header next to yup-oauth2 12 and a plain `RwLock` cache, in one run, on a
//! token valid for an hour. Results and commands: benches/README.md ("Hot path round 2").
//!
//! Cases (each for every implementation):
//! - `one_caller`: one thread, one session;
//! - `two_threads`: 2 threads calling one session (one shared object) at once; the time is per
//!   call on a thread (the slower thread's time for its `iters` calls);
//! - `round_robin/N`: one thread cycling over N sessions (N = 1, 8, 64, 1,000, 10,000).
//!
//! Implementations:
//! - `tessera/cached_header`: `Session::cached_header()` (an owned `AuthorizationHeader`);
//! - `tessera/with_cached_header`: `Session::with_cached_header(|h| ...)`, the header lent to a
//!   closure that reads nothing of it, as `cached_header` returns one without reading it
//!   (feature `with_cached_header`, absent before that method existed);
//! - `yup/token`: `Authenticator::token(&[scope])` of an installed-flow authenticator with a
//!   custom `TokenStorage` holding the token (yup's is-expired check, then a clone of the token);
//!   polled once with `now_or_never` like tessera's async form, no runtime involved;
//! - `rwlock`: `RwLock<Option<(Arc<str>, SystemTime)>>` read lock, `SystemTime::now()`, `Arc` clone.
//!
//! No network: tessera's sessions hold a static token; yup-oauth2's client is plain HTTP to
//! 127.0.0.1:9 and is never used (each call asserts that a token came back at once).

use std::hint::black_box;
use std::sync::{Arc, Barrier, RwLock};
use std::time::{Duration, Instant, SystemTime};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use tessera::clock::{Clock, SystemClock};
use tessera::{ClientAuth, Endpoints, Grant, ProviderConfig, Secret, Session};
use yup_oauth2::authenticator::Authenticator;
use yup_oauth2::storage::{TokenInfo, TokenStorage, TokenStorageError};

const TOKEN_LEN: usize = 800;
const SCOPES: &[&str] = &["https://api.example/read"];
const SESSION_COUNTS: [usize; 5] = [1, 8, 64, 1_000, 10_000];

fn token(n: usize) -> String {
    let tag = n.to_string();
    format!("{tag}{}", "a".repeat(TOKEN_LEN - tag.len()))
}

fn tessera_session(n: usize) -> Session {
    let expires_at = SystemClock.now() + Duration::from_secs(3600);
    let session = Session::builder(
        format!("bench-{n}"),
        ProviderConfig {
            client: ClientAuth::public("bench"),
            endpoints: Endpoints::explicit("http://127.0.0.1:9/token"),
            scope: None,
            grant: Grant::Static { access_token: Secret::new(token(n)), expires_at: Some(expires_at) },
        },
    )
    .build();
    // The first call fills the session's cache (a static token: no request).
    let header = session.authorization_header().now_or_never().expect("a static token is ready").unwrap();
    assert_eq!(header.access_token().expose_secret(), token(n));
    assert!(session.cached_header().is_some());
    session
}

/// yup-oauth2 storage holding one token (the cheapest storage possible: no map, no lock).
struct OneToken(TokenInfo);

#[async_trait::async_trait]
impl TokenStorage for OneToken {
    async fn set(&self, _scopes: &[&str], _token: TokenInfo) -> Result<(), TokenStorageError> {
        Err(TokenStorageError::Other("the benchmark never refreshes".into()))
    }

    async fn get(&self, _scopes: &[&str]) -> Option<TokenInfo> {
        Some(self.0.clone())
    }
}

type YupClient = hyper_util::client::legacy::connect::HttpConnector;

fn yup_authenticator(runtime: &tokio::runtime::Runtime, n: usize) -> Authenticator<YupClient> {
    let secret = yup_oauth2::ApplicationSecret {
        client_id: "bench".into(),
        client_secret: "bench".into(),
        token_uri: "http://127.0.0.1:9/token".into(),
        auth_uri: "http://127.0.0.1:9/authorize".into(),
        redirect_uris: vec!["http://127.0.0.1:9/cb".into()],
        ..Default::default()
    };
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let storage = OneToken(TokenInfo {
        access_token: Some(token(n)),
        refresh_token: None,
        expires_at: Some(time::OffsetDateTime::now_utc() + time::Duration::hours(1)),
        id_token: None,
    });
    let authenticator = runtime
        .block_on(
            yup_oauth2::InstalledFlowAuthenticator::with_client(
                secret,
                yup_oauth2::InstalledFlowReturnMethod::HTTPRedirect,
                yup_oauth2::CustomHyperClientBuilder::from(client),
            )
            .with_storage(Box::new(storage))
            .build(),
        )
        .unwrap();
    let got = yup_token(&authenticator);
    assert_eq!(got.token(), Some(token(n).as_str()));
    authenticator
}

#[inline]
fn yup_token(authenticator: &Authenticator<YupClient>) -> yup_oauth2::AccessToken {
    authenticator.token(SCOPES).now_or_never().expect("the stored token is served at once").unwrap()
}

type Plain = RwLock<Option<(Arc<str>, SystemTime)>>;

fn plain(n: usize) -> Plain {
    RwLock::new(Some((Arc::from(token(n)), SystemTime::now() + Duration::from_secs(3600))))
}

#[inline]
fn plain_header(cache: &Plain) -> Option<Arc<str>> {
    let guard = cache.read().unwrap();
    let now = SystemTime::now();
    guard.as_ref().filter(|(_, expires)| now < *expires).map(|(header, _)| Arc::clone(header))
}

/// Runs `call` `iters` times on each of 2 threads at once; the slower thread's time.
fn two_threads<S: Sync>(shared: &S, iters: u64, call: impl Fn(&S) + Sync) -> Duration {
    let barrier = Barrier::new(2);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    call(shared); // this thread's first call (tessera: makes its copy)
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iters {
                        call(shared);
                    }
                    start.elapsed()
                })
            })
            .collect();
        workers.into_iter().map(|worker| worker.join().unwrap()).max().unwrap()
    })
}

fn peers(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();

    let mut group = c.benchmark_group("one_caller");
    let session = tessera_session(0);
    let authenticator = yup_authenticator(&runtime, 0);
    let cache = plain(0);
    group.bench_function("tessera/cached_header", |b| b.iter(|| black_box(session.cached_header())));
    #[cfg(feature = "with_cached_header")]
    group.bench_function("tessera/with_cached_header", |b| {
        b.iter(|| {
            black_box(session.with_cached_header(|h| {
                black_box(h);
            }))
        })
    });
    group.bench_function("tessera/authorization_header", |b| {
        b.iter(|| black_box(session.authorization_header().now_or_never()))
    });
    group.bench_function("yup/token", |b| b.iter(|| black_box(yup_token(&authenticator))));
    group.bench_function("rwlock", |b| b.iter(|| black_box(plain_header(&cache))));
    group.finish();

    let mut group = c.benchmark_group("two_threads");
    group.bench_function("tessera/cached_header", |b| {
        b.iter_custom(|iters| {
            two_threads(&session, iters, |session| {
                black_box(session.cached_header());
            })
        })
    });
    #[cfg(feature = "with_cached_header")]
    group.bench_function("tessera/with_cached_header", |b| {
        b.iter_custom(|iters| {
            two_threads(&session, iters, |session| {
                black_box(session.with_cached_header(|h| {
                    black_box(h);
                }));
            })
        })
    });
    group.bench_function("yup/token", |b| {
        b.iter_custom(|iters| {
            two_threads(&authenticator, iters, |authenticator| {
                black_box(yup_token(authenticator));
            })
        })
    });
    group.bench_function("rwlock", |b| {
        b.iter_custom(|iters| {
            two_threads(&cache, iters, |cache| {
                black_box(plain_header(cache));
            })
        })
    });
    group.finish();

    let mut group = c.benchmark_group("round_robin");
    for n in SESSION_COUNTS {
        let sessions: Vec<Session> = (0..n).map(tessera_session).collect();
        let authenticators: Vec<_> = (0..n).map(|i| yup_authenticator(&runtime, i)).collect();
        let caches: Vec<Plain> = (0..n).map(plain).collect();
        // Every session serves its own token.
        for (i, session) in sessions.iter().enumerate() {
            assert_eq!(session.cached_header().unwrap().access_token().expose_secret(), token(i));
        }
        round_robin(&mut group, "tessera/cached_header", &sessions, |s| {
            black_box(s.cached_header());
        });
        #[cfg(feature = "with_cached_header")]
        round_robin(&mut group, "tessera/with_cached_header", &sessions, |s| {
            black_box(s.with_cached_header(|h| {
                black_box(h);
            }));
        });
        round_robin(&mut group, "yup/token", &authenticators, |a| {
            black_box(yup_token(a));
        });
        round_robin(&mut group, "rwlock", &caches, |c| {
            black_box(plain_header(c));
        });
    }
    group.finish();
}

/// One call per iteration, on the next of `items` (wrapping without a division).
fn round_robin<T>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    items: &[T],
    call: impl Fn(&T),
) {
    group.bench_with_input(BenchmarkId::new(name, items.len()), &items, |b, items| {
        let mut i = 0;
        b.iter(|| {
            call(&items[i]);
            i += 1;
            if i == items.len() {
                i = 0;
            }
        })
    });
}

criterion_group!(benches, peers);
criterion_main!(benches);
