//! Hot-path and herd benchmarks for `Session`. Results and how to reproduce them: benches/README.md.
//!
//! - `cached_header`: the whole hot path on a valid token (this thread's copy + coarse clock + clone
//!   of an `Arc` only this thread counts). Next to yup-oauth2, with threads and many sessions:
//!   benches/peers (its own crate, outside the workspace).
//! - `authorization_header_ready`: the async API on a valid token, polled once (no runtime involved).
//! - `baseline_rwlock_systemtime`: what a typical hand-written cache costs (RwLock + SystemTime::now()).
//! - `dpop/*`: what a DPoP request pays on top (RFC 9449): one proof (sign + encode) per request,
//!   with an ES256 or EdDSA key, and the whole `Session::request_auth` on a cached token.
//! - `herd/N`: N concurrent callers on an expired session against the in-process reference IdP;
//!   time until every caller holds the new token (exactly one token request each iteration).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use tessera::clock::{Clock, ManualClock, SystemClock};
use tessera::{ClientAuth, Endpoints, Grant, ProviderConfig, Secret, Session};
use tessera_idp::{IdpConfig, IdpServer, demo};

fn static_session() -> Session {
    let expires_at = SystemClock.now() + Duration::from_secs(3600);
    Session::builder(
        "bench",
        ProviderConfig {
            client: ClientAuth::public("bench"),
            endpoints: Endpoints::explicit("http://127.0.0.1:9/token"),
            scope: None,
            grant: Grant::Static { access_token: Secret::new("a".repeat(800)), expires_at: Some(expires_at) },
        },
    )
    .build()
}

fn hot_path(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let session = static_session();
    runtime.block_on(session.authorization_header()).unwrap();
    assert!(session.cached_header().is_some());

    c.bench_function("cached_header", |b| b.iter(|| std::hint::black_box(session.cached_header())));
    c.bench_function("authorization_header_ready", |b| {
        b.iter(|| std::hint::black_box(session.authorization_header().now_or_never()))
    });

    // Where the hot path's time goes.
    c.bench_function("parts/poll_ready_future", |b| {
        b.iter(|| std::hint::black_box(std::future::ready(std::hint::black_box(Some(1u64))).now_or_never()))
    });
    c.bench_function("parts/coarse_clock", |b| b.iter(|| std::hint::black_box(SystemClock.now_coarse())));
    c.bench_function("parts/precise_clock", |b| b.iter(|| std::hint::black_box(SystemClock.now())));
    let swap = arc_swap::ArcSwapOption::from_pointee(String::from("Bearer token"));
    c.bench_function("parts/arcswap_load_clone", |b| b.iter(|| std::hint::black_box(swap.load_full())));
    c.bench_function("parts/arcswap_load_guard", |b| b.iter(|| std::hint::black_box(swap.load().is_some())));
    let plain = Arc::new(String::from("Bearer token"));
    c.bench_function("parts/arc_clone_drop", |b| b.iter(|| std::hint::black_box(Arc::clone(&plain))));

    let baseline: RwLock<Option<(Arc<str>, u128)>> = RwLock::new(Some((
        Arc::from("Bearer token"),
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() + 3_600_000,
    )));
    c.bench_function("baseline_rwlock_systemtime", |b| {
        b.iter(|| {
            let guard = baseline.read().unwrap();
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis();
            std::hint::black_box(
                guard.as_ref().filter(|(_, expires)| now < *expires).map(|(header, _)| Arc::clone(header)),
            )
        })
    });
}

/// A DPoP session holding a valid DPoP-bound token (from its store: nothing is sent).
fn dpop_session(runtime: &tokio::runtime::Runtime) -> Session {
    let (key, _) = tessera::core::DpopProver::generate(None, &[7; 32]).unwrap().unwrap();
    let now = SystemClock.now();
    let mut tokens = tessera::TokenSet::bearer("a".repeat(800), Some(now + Duration::from_secs(3600)), now);
    tokens.token_type = "DPoP".into();
    tokens.dpop_key = Some(key);
    let store = Arc::new(tessera::store::MemoryStore::new());
    runtime.block_on(tessera::store::TokenStore::save(&*store, "bench", &tokens)).unwrap();
    let mut client = ClientAuth::public("bench");
    client.dpop = Some(tessera::DpopSettings::generated());
    let config = ProviderConfig {
        client,
        endpoints: Endpoints::explicit("http://127.0.0.1:9/token"),
        scope: None,
        grant: Grant::Password { username: "u".into(), password: Secret::new("p"), totp: None },
    };
    Session::builder("bench", config).store(store).build()
}

fn dpop(c: &mut Criterion) {
    use tessera::core::DpopProver;
    use tessera::core::dpop::ProofInputs;
    let token = "a".repeat(800);
    let inputs = ProofInputs {
        method: "GET",
        url: "https://api.example.com/v1/items?page=2",
        now: SystemClock.now(),
        jti: [3; 16],
        nonce: Some("eyJ7S_zG.eyJH0-Z.HX4w-7v"),
        access_token: Some(&token),
    };
    for (name, alg) in [("dpop/proof_es256", None), ("dpop/proof_eddsa", Some("EdDSA"))] {
        let (_, prover) = DpopProver::generate(alg, &[7; 32]).unwrap().unwrap();
        c.bench_function(name, |b| b.iter(|| std::hint::black_box(prover.proof(std::hint::black_box(&inputs)))));
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let session = dpop_session(&runtime);
    let url = "https://api.example.com/v1/items";
    let auth = runtime.block_on(session.request_auth("GET", url)).unwrap();
    assert!(auth.dpop.is_some() && auth.authorization.expose_secret().starts_with("DPoP "));
    c.bench_function("dpop/request_auth", |b| {
        b.iter(|| std::hint::black_box(session.request_auth("GET", url).now_or_never()))
    });
}

fn herd(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let idp = runtime.block_on(IdpServer::start(IdpConfig::demo())).unwrap();
    let config = ProviderConfig {
        client: ClientAuth::basic(demo::CONFIDENTIAL_CLIENT_ID, Secret::new(demo::CONFIDENTIAL_CLIENT_SECRET)),
        endpoints: Endpoints::explicit(idp.url("/token")),
        scope: None,
        grant: Grant::ClientCredentials,
    };
    let mut group = c.benchmark_group("herd");
    group.sample_size(20).measurement_time(Duration::from_secs(8));
    for callers in [1_000usize, 10_000] {
        group.bench_with_input(BenchmarkId::from_parameter(callers), &callers, |b, &callers| {
            b.iter_custom(|iterations| {
                runtime.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iterations {
                        // A session whose token is expired by its own clock: every caller takes the slow path.
                        let clock = Arc::new(ManualClock::new(SystemClock.now()));
                        let session = Session::builder("herd", config.clone()).clock(clock.clone()).build();
                        session.authorization_header().await.unwrap();
                        clock.advance(Duration::from_secs(600));
                        let before = idp.stats().token_requests;
                        let start = Instant::now();
                        let tasks: Vec<_> = (0..callers)
                            .map(|_| {
                                let session = session.clone();
                                tokio::spawn(async move { session.authorization_header().await.map(|_| ()) })
                            })
                            .collect();
                        for task in tasks {
                            task.await.unwrap().unwrap();
                        }
                        total += start.elapsed();
                        assert_eq!(idp.stats().token_requests - before, 1, "single flight");
                    }
                    total
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, hot_path, dpop, herd);
criterion_main!(benches);
