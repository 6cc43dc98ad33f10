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

#[test]
fn json_engine_logs_in_with_an_emailed_code_answered_through_prompts() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let idp = runtime.block_on(IdpServer::start(IdpConfig::demo())).unwrap();
    let issuer = idp.issuer();

    let mut prompts = Vec::new();
    let done = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                json_loop::email_otp_login(&issuer, &mut |prompt| {
                    prompts.push(prompt["prompt"].clone());
                    let code = idp.outbox().last().map(|message| message.code.clone())?;
                    // First a wrong code (the real one with its first digit changed), then the real one.
                    if prompts.len() == 1 {
                        let first = if code.starts_with('1') { '2' } else { '1' };
                        return Some(std::iter::once(first).chain(code.chars().skip(1)).collect());
                    }
                    Some(code)
                })
            })
            .join()
            .unwrap()
    });
    assert_eq!(done["type"], "done", "{done}");
    assert!(done["tokens"]["access_token"].is_string() && done["tokens"]["refresh_token"].is_string(), "{done}");
    let [first, second] = &prompts[..] else { panic!("{prompts:?}") };
    assert_eq!(
        (&first["kind"], &first["attempt"], &first["destination"]),
        (&"code".into(), &1.into(), &"a***@example.com".into())
    );
    assert_eq!(second["attempt"], 2);
    assert!(second["previous_error"].is_string(), "{second}");
    assert_eq!(idp.outbox().len(), 1, "one mail: the wrong code was retried on the same challenge");
    runtime.block_on(idp.shutdown());
}

#[test]
fn json_engine_plans_the_whole_chain_two_domains_from_one_login() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let idp = runtime.block_on(IdpServer::start(IdpConfig::demo())).unwrap();
    for exchange in [false, true] {
        idp.reset();
        let issuer = idp.issuer();
        let outcomes = std::thread::spawn(move || json_loop::chain_demo(&issuer, exchange)).join().unwrap();
        let [alpha, beta, cached_alpha, cached_beta] = &outcomes[..] else { panic!("{outcomes:?}") };
        for (done, cached, id) in [(alpha, cached_alpha, "alpha"), (beta, cached_beta, "beta")] {
            assert_eq!(
                (&done["type"], &done["key"], &done["domain_id"]),
                (&"done".into(), &"domains".into(), &id.into()),
                "{done}"
            );
            assert_eq!(cached, &done["domain_access"], "the cache serves what the chain obtained");
            assert_eq!(done["tokens"]["access_token"], done["domain_access"]["access_token"]);
        }
        let stats = idp.stats();
        assert_eq!(stats.password_grants, 1, "one network login for both domains (exchange: {exchange})");
        if exchange {
            assert_eq!(stats.token_exchange_grants, 3, "one discovery and two domain exchanges");
            assert_eq!(alpha["domain_access"]["domain_server"]["url"], "https://domains.example/alpha");
        } else {
            assert_eq!((stats.chain_discovery_requests, stats.chain_domain_access_requests), (1, 2));
            // Each domain's server accepts its own token and refuses the other domain's.
            let alpha_url = format!("{}/resource", alpha["domain_access"]["domain_server"]["url"].as_str().unwrap());
            let bearer =
                |done: &serde_json::Value| format!("Bearer {}", done["tokens"]["access_token"].as_str().unwrap());
            assert_eq!(json_loop::get_status(&alpha_url, &bearer(alpha)), 200);
            assert_eq!(json_loop::get_status(&alpha_url, &bearer(beta)), 401);
        }
    }
    runtime.block_on(idp.shutdown());
}
