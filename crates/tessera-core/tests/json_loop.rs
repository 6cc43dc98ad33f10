//! The JSON sans-I/O loop, driven by ureq (not reqwest), against the reference IdP.

#[path = "../examples/json_loop.rs"]
mod json_loop;

use std::time::Duration;

use tessera_idp::{IdpConfig, IdpServer};

#[test]
fn json_engine_logs_in_refreshes_and_logs_out_with_another_http_client() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let idp = runtime
        .block_on(IdpServer::start(IdpConfig { access_token_ttl: Duration::from_secs(60), ..IdpConfig::demo() }))
        .unwrap();
    let issuer = idp.issuer();

    let outcomes = std::thread::spawn(move || json_loop::demo(&issuer)).join().unwrap();
    let [login, refresh, logout] = &outcomes[..] else { panic!("{outcomes:?}") };
    assert_eq!(login["type"], "done", "{login}");
    assert_eq!(refresh["type"], "done", "{refresh}");
    assert_ne!(login["tokens"]["access_token"], refresh["tokens"]["access_token"]);
    assert_ne!(login["tokens"]["refresh_token"], refresh["tokens"]["refresh_token"], "rotated");
    assert_eq!(
        (&logout["type"], &logout["revoked"]),
        (&serde_json::json!("logged_out"), &serde_json::json!(true)),
        "{logout}"
    );

    let stats = idp.stats();
    assert_eq!((stats.password_grants, stats.refresh_grants, stats.revocations), (1, 1, 1));
    assert_eq!(stats.discovery_requests, 1, "discovery once, through the host's HTTP client");
    runtime.block_on(idp.shutdown());
}
