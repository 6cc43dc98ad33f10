//! Drives tessera's JSON sans-I/O engine with a different HTTP client (ureq, blocking) to show the
//! seam any host language or HTTP stack can use: the engine decides, the host does the I/O.
//!
//! ```sh
//! tessera idp serve --access-ttl 5 &          # prints its issuer URL
//! cargo run -p tessera-core --example json_loop -- http://127.0.0.1:PORT
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tessera_core::json::JsonEngine;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Runs JSON actions until the engine reports `done`, `failed` or `logged_out`; returns that final action.
pub fn drive(engine: &mut JsonEngine, agent: &ureq::Agent, first_actions: String) -> Value {
    drive_answering(engine, agent, first_actions, &mut |_| None)
}

/// Like [`drive`], answering `prompt` actions that expect an answer with `answer` (the code the
/// person typed, or the URL the browser came back to); `None` returns the prompt to the caller.
pub fn drive_answering(
    engine: &mut JsonEngine,
    agent: &ureq::Agent,
    first_actions: String,
    answer: &mut dyn FnMut(&Value) -> Option<String>,
) -> Value {
    let mut actions: Value = serde_json::from_str(&first_actions).expect("actions are JSON");
    for _ in 0..32 {
        let Some(action) = actions.as_array().and_then(|a| a.first()).cloned() else {
            return json!({"type": "cached"});
        };
        // `refresh_token_dropped` on an action: the refresh token just presented must never be
        // presented again; a host that stores tokens deletes it there (this one keeps none).
        let event = match action["type"].as_str() {
            Some("http_request") => send(agent, &action),
            Some("wait") => {
                let until = action["until_ms"].as_i64().unwrap_or(0);
                std::thread::sleep(Duration::from_millis((until - now_ms()).max(0) as u64));
                json!({"type": "timer", "key": action["key"]})
            }
            Some("prompt") if action["expects_answer"] == true => match answer(&action) {
                Some(reply) => json!({"type": "prompt_answer", "key": action["key"], "answer": reply}),
                None => return action,
            },
            _ => return action,
        };
        actions = serde_json::from_str(&engine.handle(&event.to_string(), now_ms()).expect("valid event")).unwrap();
    }
    panic!("the engine did not finish in 32 steps")
}

/// Sends one `http_request` action with ureq; answers with an `http_response` or `transport_error` event.
fn send(agent: &ureq::Agent, action: &Value) -> Value {
    let id = &action["id"];
    let url = action["url"].as_str().unwrap_or_default();
    let headers = action["headers"].as_object().cloned().unwrap_or_default();
    let result = match action["method"].as_str() {
        Some("GET") => {
            headers.iter().fold(agent.get(url), |r, (k, v)| r.header(k, v.as_str().unwrap_or_default())).call()
        }
        _ => headers
            .iter()
            .fold(agent.post(url), |r, (k, v)| r.header(k, v.as_str().unwrap_or_default()))
            .send(action["body"].as_str().unwrap_or_default()),
    };
    match result {
        Ok(response) => {
            let status = response.status().as_u16();
            let content_type =
                response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            let body = response.into_body().read_to_vec().unwrap_or_default();
            json!({"type": "http_response", "request_id": id, "status": status,
                   "headers": {"content-type": content_type}, "body": String::from_utf8_lossy(&body)})
        }
        // `connect` only when nothing was sent: a refresh that failed after sending may have been
        // processed, and the engine must know (it then never presents that refresh token again).
        Err(
            ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
            | ureq::Error::Timeout(ureq::Timeout::Resolve | ureq::Timeout::Connect),
        ) => json!({"type": "transport_error", "request_id": id, "kind": "connect", "message": "connection failed"}),
        Err(ureq::Error::Timeout(_)) => {
            json!({"type": "transport_error", "request_id": id, "kind": "timeout", "message": "timed out"})
        }
        Err(error) => {
            json!({"type": "transport_error", "request_id": id, "kind": "other", "message": error.to_string()})
        }
    }
}

/// An agent that reports HTTP error statuses as responses (the engine parses OAuth errors itself).
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .max_redirects(0)
        .build()
        .into()
}

/// Logs in, refreshes and logs out with the demo user `alice` at `issuer`; returns the final actions.
pub fn demo(issuer: &str) -> Vec<Value> {
    let mut engine = JsonEngine::new();
    let provider = json!({
        "type": "password", "client_id": "confidential-client", "client_secret": "confidential-secret",
        "issuer": issuer, "scope": "openid api:read", "username": "alice", "password": "alice-password"
    });
    engine.register("alice", &provider.to_string()).expect("valid provider");
    let agent = agent();
    let actions = engine.ensure("alice", now_ms());
    let login = drive(&mut engine, &agent, actions);
    let actions = engine.refresh("alice", now_ms());
    let refresh = drive(&mut engine, &agent, actions);
    let actions = engine.logout("alice", now_ms());
    let logout = drive(&mut engine, &agent, actions);
    vec![login, refresh, logout]
}

/// Logs in with an emailed code as `alice` at `issuer` (the reference IdP's demo client `tessera-cli`);
/// `ask_code` gets each `prompt` action (`attempt`, `previous_error`, masked `destination`) and returns
/// the code. Returns the final action.
pub fn email_otp_login(issuer: &str, ask_code: &mut dyn FnMut(&Value) -> Option<String>) -> Value {
    let mut engine = JsonEngine::new();
    let provider = json!({
        "type": "email_otp", "client_id": "tessera-cli", "issuer": issuer, "scope": "openid",
        "email": "alice@example.com"
    });
    engine.register("otp", &provider.to_string()).expect("valid provider");
    let agent = agent();
    // `login`, not `ensure`: an interactive grant mails a code only when asked to log in.
    let actions = engine.login("otp", now_ms());
    drive_answering(&mut engine, &agent, actions, ask_code)
}

/// The whole token chain as `alice` at `issuer` (the reference IdP's `/chain/*` endpoints, or RFC
/// 8693 exchanges at its token endpoint when `exchange`): access to `alpha`, then `beta`, through
/// actions and events only; then what `cached_domain_access` serves. Returns the two `done`s and
/// the two cached accesses.
pub fn chain_demo(issuer: &str, exchange: bool) -> Vec<Value> {
    let mut engine = JsonEngine::new();
    let provider = json!({
        "type": "password", "client_id": "confidential-client", "client_secret": "confidential-secret",
        "issuer": issuer, "scope": "openid", "username": "alice", "password": "alice-password"
    });
    engine.register("network", &provider.to_string()).expect("valid provider");
    let token_endpoint = format!("{issuer}/token");
    let stage = |url: String, audience: &str| match exchange {
        true => json!({"type": "token_exchange", "token_endpoint": token_endpoint, "client_id": "confidential-client",
                       "client_secret": "confidential-secret", "audience": audience}),
        false => json!({"type": "http_call", "url": url}),
    };
    let chain = json!({
        "network": "network",
        "discovery": stage(format!("{issuer}/chain/discovery"), "discovery"),
        "domain": stage(format!("{issuer}/chain/domains/{{domain_id}}/access"), "https://domains.example/{domain_id}"),
    });
    engine.register_chain("domains", &chain.to_string()).expect("valid chain");
    let agent = agent();
    let mut outcomes = Vec::new();
    for domain_id in ["alpha", "beta"] {
        let actions = engine.domain_access("domains", domain_id, now_ms());
        outcomes.push(drive(&mut engine, &agent, actions));
    }
    for domain_id in ["alpha", "beta"] {
        let cached = engine.cached_domain_access("domains", domain_id, now_ms());
        outcomes.push(cached.map(|json| serde_json::from_str(&json).expect("JSON")).unwrap_or(Value::Null));
    }
    outcomes
}

/// GETs `url` with `authorization`; the status.
pub fn get_status(url: &str, authorization: &str) -> u16 {
    agent().get(url).header("authorization", authorization).call().map(|r| r.status().as_u16()).unwrap_or(0)
}

#[allow(dead_code, reason = "main is the example's entry point; tests include this file for `demo`")]
fn main() {
    let issuer = std::env::args().nth(1).expect("usage: json_loop ISSUER_URL");
    for outcome in demo(&issuer) {
        // Print only what is safe: the kind of outcome and the expiry, never the tokens.
        println!("{} expires_at_ms={}", outcome["type"], outcome["tokens"]["expires_at"]);
    }
}
