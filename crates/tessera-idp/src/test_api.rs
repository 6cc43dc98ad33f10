//! The `/_test/*` control endpoints, served only when
//! [`IdpConfig::test_endpoints`](crate::IdpConfig::test_endpoints) is set. They expose over
//! HTTP the hooks Rust tests reach through [`IdpServer`](crate::IdpServer), for the CLI binary
//! and Python tests:
//!
//! | request | effect |
//! |---|---|
//! | `GET /_test/stats` | [`Stats`](crate::Stats) as JSON |
//! | `POST /_test/faults` + [`FaultSpec`](crate::FaultSpec) JSON | queue a fault; answers `{"pending": n}` |
//! | `DELETE /_test/faults` | clear queued faults |
//! | `POST /_test/reset` | clear faults and stats, restore the configured access token lifetime |
//! | `POST /_test/access_token_ttl` + `{"seconds": n}` | lifetime of access tokens issued from now on |
//! | `POST /_test/revoke_user` + `{"username": "..."}` | revoke every refresh token of that user |
//! | `POST /_test/clock_offset` + `{"seconds": n}` | move the server's clock by `n` seconds (may be negative) |
//! | `GET /_test/outbox[?to=<email>]` | the outbox (one-time-code emails) as a JSON list, newest last |
//! | `POST /_test/device/approve` + `{"user_code": "...", "username": "..."}` | approve a device code |
//! | `POST /_test/device/deny` + `{"user_code": "..."}` | deny a device code |
//! | `POST /_test/device/slow_down` + `{"times": n}` | answer the next `n` device polls `slow_down` |
//! | `POST /_test/forget_client` `{"client_id"}` | the server loses that client: `{"forgotten": bool}` |
//! | `POST /_test/device/expire` | expire every pending device code now; answers `{"expired": n}` |
//!
//! A device hook that finds nothing to act on answers 404 `{"error": "...", "message": "..."}`
//! (`unknown_user_code`, `unknown_user` or `not_pending`).
//!
//! They are neither counted nor subject to fault injection.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::device::{self, DeviceHookError};
use crate::faults::FaultSpec;
use crate::outbox::OutboxMessage;
use crate::server::Shared;
use crate::stats::Stats;

type AppState = State<Arc<Shared>>;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_test/stats", get(stats))
        .route("/_test/faults", post(push_fault).delete(clear_faults))
        .route("/_test/reset", post(reset))
        .route("/_test/access_token_ttl", post(access_token_ttl))
        .route("/_test/revoke_user", post(revoke_user))
        .route("/_test/clock_offset", post(clock_offset))
        .route("/_test/outbox", get(outbox))
        .route("/_test/forget_client", post(forget_client))
        .route("/_test/device/approve", post(approve_device))
        .route("/_test/device/deny", post(deny_device))
        .route("/_test/device/slow_down", post(slow_down))
        .route("/_test/device/expire", post(expire_devices))
}

#[derive(Deserialize)]
struct ForgetClient {
    client_id: String,
}

/// `POST /_test/forget_client {"client_id"}`: the server loses a client (a registration it
/// forgot); its tokens stop working with it.
async fn forget_client(State(s): AppState, Json(body): Json<ForgetClient>) -> Json<Value> {
    Json(json!({ "forgotten": s.clients.forget(&body.client_id) }))
}

#[derive(Deserialize)]
struct OutboxQuery {
    to: Option<String>,
}

async fn outbox(State(s): AppState, Query(query): Query<OutboxQuery>) -> Json<Vec<OutboxMessage>> {
    Json(s.outbox.messages(query.to.as_deref()))
}

#[derive(Deserialize)]
struct DeviceDecision {
    user_code: String,
    username: Option<String>,
}

fn hook_result(result: Result<(), DeviceHookError>) -> Response {
    match result {
        Ok(()) => Json(json!({ "ok": true })).into_response(),
        Err(e) => {
            let error = match e {
                DeviceHookError::UnknownUserCode => "unknown_user_code",
                DeviceHookError::UnknownUser(_) => "unknown_user",
                _ => "not_pending",
            };
            (http::StatusCode::NOT_FOUND, Json(json!({ "error": error, "message": e.to_string() }))).into_response()
        }
    }
}

async fn approve_device(State(s): AppState, Json(body): Json<DeviceDecision>) -> Response {
    let Some(username) = body.username.as_deref() else {
        return (http::StatusCode::BAD_REQUEST, Json(json!({ "error": "missing_username" }))).into_response();
    };
    hook_result(device::approve(&s, &body.user_code, username))
}

async fn deny_device(State(s): AppState, Json(body): Json<DeviceDecision>) -> Response {
    hook_result(device::deny(&s, &body.user_code))
}

#[derive(Deserialize)]
struct Times {
    times: u32,
}

async fn slow_down(State(s): AppState, Json(body): Json<Times>) -> Json<Value> {
    s.device.force_slow_down(body.times);
    Json(json!({ "times": body.times }))
}

async fn expire_devices(State(s): AppState) -> Json<Value> {
    Json(json!({ "expired": s.device.expire_pending(s.now()) }))
}

async fn stats(State(s): AppState) -> Json<Stats> {
    Json(s.stats.snapshot())
}

async fn push_fault(State(s): AppState, Json(spec): Json<FaultSpec>) -> Json<Value> {
    s.faults.push(spec.endpoint, spec.fault(), spec.times);
    Json(json!({ "pending": s.faults.pending() }))
}

async fn clear_faults(State(s): AppState) -> Json<Value> {
    s.faults.clear();
    Json(json!({ "pending": 0 }))
}

async fn reset(State(s): AppState) -> Json<Value> {
    s.reset();
    Json(json!({ "ok": true }))
}

#[derive(Deserialize)]
struct Ttl {
    seconds: u64,
}

async fn access_token_ttl(State(s): AppState, Json(ttl): Json<Ttl>) -> Json<Value> {
    s.set_access_token_ttl(ttl.seconds);
    Json(json!({ "seconds": ttl.seconds }))
}

#[derive(Deserialize)]
struct ClockOffset {
    seconds: i64,
}

async fn clock_offset(State(s): AppState, Json(offset): Json<ClockOffset>) -> Json<Value> {
    s.set_clock_offset(offset.seconds);
    Json(json!({ "seconds": offset.seconds }))
}

#[derive(Deserialize)]
struct RevokeUser {
    username: String,
}

async fn revoke_user(State(s): AppState, Json(body): Json<RevokeUser>) -> Json<Value> {
    let revoked = s.store.revoke_user_refresh_tokens(&body.username);
    Json(json!({ "revoked": revoked }))
}
