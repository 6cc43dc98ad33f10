//! The CLI on a Redis store through an outage, against oidc-provider (reuse detection revokes the
//! whole grant): looping `tessera token` processes fail no call while Redis is down and their
//! tokens are valid (the local copy of the shared store), and after Redis comes back empty no
//! provider type presents a spent refresh token (the spent-token ledger beside the copy).

#[path = "../../tessera/tests/support/redis_server.rs"]
mod redis_server;
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis_server::{RedisOptions, RedisServer};
use support::oidc_provider::{self, OidcProvider, OidcProviderOptions};
use support::{Home, block_on};

const PASSWORD_ENV: &str = "TESSERA_TEST_PASSWORD";
const CLIENT_SECRET_ENV: &str = "TESSERA_TEST_CLIENT_SECRET";
const SEED_ENV: &str = "TESSERA_TEST_SEED_REFRESH_TOKEN";
const PROVIDERS: [&str; 3] = ["pw", "rt", "cc"];

fn client(issuer: &str) -> String {
    format!(
        "issuer = \"{issuer}\"\nclient_id = \"{}\"\nclient_secret = \"env:{CLIENT_SECRET_ENV}\"\n",
        oidc_provider::CONFIDENTIAL_CLIENT_ID
    )
}

fn config(issuer: &str, redis_url: &str) -> String {
    let client = client(issuer);
    format!(
        "current_context = \"dev\"\n\n[[contexts]]\nname = \"dev\"\nstore = {{ kind = \"redis\", url = \"{redis_url}\" }}\n\n\
         [[contexts.auth_providers]]\nname = \"pw\"\ntype = \"password\"\n{client}username = \"alice\"\n\
         password = \"env:{PASSWORD_ENV}\"\nscope = \"openid api:read\"\n\n\
         [[contexts.auth_providers]]\nname = \"rt\"\ntype = \"refresh_token\"\n{client}refresh_token = \"env:{SEED_ENV}\"\n\n\
         [[contexts.auth_providers]]\nname = \"cc\"\ntype = \"client_credentials\"\n{client}scope = \"api:read\"\n"
    )
}

/// A refresh token of alice's, obtained by a CLI of its own (file store), for the `rt` provider.
fn seed_refresh_token(op: &OidcProvider) -> String {
    let section = format!(
        "current_context = \"dev\"\n\n[[contexts]]\nname = \"dev\"\n\n[[contexts.auth_providers]]\nname = \"seed\"\n\
         type = \"password\"\n{}username = \"alice\"\npassword = \"env:{PASSWORD_ENV}\"\nscope = \"openid api:read\"\n",
        client(op.issuer())
    );
    let home = Home::new(&section)
        .with_env(PASSWORD_ENV, oidc_provider::ALICE_PASSWORD)
        .with_env(CLIENT_SECRET_ENV, oidc_provider::CONFIDENTIAL_CLIENT_SECRET);
    home.run(&["token"]).success();
    home.stored_field("dev/seed", "refresh_token")
}

#[test]
fn a_redis_outage_costs_no_call_and_an_empty_restart_revokes_no_grant() {
    let op = OidcProvider::start(OidcProviderOptions { access_ttl_secs: 60, ..OidcProviderOptions::default() });
    let mut redis = RedisServer::start(RedisOptions::default());
    let seed = seed_refresh_token(&op);
    let home = Arc::new(
        Home::new(&config(op.issuer(), &redis.url()))
            .with_env(PASSWORD_ENV, oidc_provider::ALICE_PASSWORD)
            .with_env(CLIENT_SECRET_ENV, oidc_provider::CONFIDENTIAL_CLIENT_SECRET)
            .with_env(SEED_ENV, &seed),
    );
    let mut tokens = Vec::new();
    for provider in PROVIDERS {
        let run = home.run(&["token", "--provider", provider]);
        tokens.push(run.success().trim().to_owned());
    }
    block_on(op.reset_stats());

    // Redis goes away for 5 s; four looping `tessera token` processes keep asking meanwhile.
    redis.stop();
    let stop = Arc::new(AtomicBool::new(false));
    let (calls, failures) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let loops: Vec<_> = (0..4)
        .map(|n| {
            let (home, stop, calls, failures) = (home.clone(), stop.clone(), calls.clone(), failures.clone());
            let expected = tokens.clone();
            std::thread::spawn(move || {
                let mut turn = n;
                while !stop.load(Ordering::Relaxed) {
                    let provider = PROVIDERS[turn % PROVIDERS.len()];
                    let run = home.run(&["token", "--provider", provider]);
                    calls.fetch_add(1, Ordering::Relaxed);
                    if run.code != Some(0) || run.stdout.trim() != expected[turn % PROVIDERS.len()] {
                        failures.fetch_add(1, Ordering::Relaxed);
                        eprintln!("failed call during the outage: {run:#?}");
                    }
                    turn += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    for handle in loops {
        handle.join().unwrap();
    }
    let (calls, failures) = (calls.load(Ordering::Relaxed), failures.load(Ordering::Relaxed));
    eprintln!("during the 5 s outage: {calls} calls, {failures} failed");
    assert!(calls >= 8, "the loops ran: {calls} calls");
    assert_eq!(failures, 0, "a valid token is served through the outage ({calls} calls)");
    let stats = block_on(op.stats());
    assert_eq!(stats.token_requests, 0, "nothing was refreshed meanwhile: {stats:?}");

    // Redis comes back empty (no persistence): every provider type, and nothing presents a spent token.
    redis.restart();
    let started = Instant::now();
    for provider in ["pw", "cc"] {
        let run = home.run(&["token", "--provider", provider]);
        assert!(!run.success().trim().is_empty(), "{provider}: a new login");
    }
    // The configured refresh token was rotated at the first call: presenting it again would be
    // reuse, so the CLI says a new refresh token is needed (exit 1: a login cannot give one to a
    // refresh_token provider), and sends nothing.
    let run = home.run(&["token", "--provider", "rt"]);
    let stderr = run.failure(1);
    assert!(stderr.contains("spent"), "{stderr}");
    assert!(!stderr.contains(&seed), "{stderr}");
    let again = home.run(&["token", "--provider", "rt"]);
    again.failure(1);
    let stats = block_on(op.stats());
    eprintln!("after the empty restart ({:?}): {stats:?}", started.elapsed());
    assert_eq!(stats.grant_type("refresh_token"), 0, "no refresh token presented: {stats:?}");
    assert_eq!((stats.grant_type("password"), stats.grant_type("client_credentials")), (1, 1), "{stats:?}");
    assert_eq!((stats.refresh_token_reuses, stats.grants_revoked), (0, 0), "no grant revoked: {stats:?}");
    let copy = home.path().join("tokens/shared-copy");
    let ledger = std::fs::read_dir(&copy).unwrap().next().unwrap().unwrap().path().join("spent-refresh-tokens.json");
    let ledger = std::fs::read_to_string(&ledger).unwrap();
    assert!(!ledger.contains(&seed), "fingerprints only: {ledger}");
}
