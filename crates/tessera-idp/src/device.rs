//! The device authorization grant (RFC 8628): `POST /device_authorization` hands out a device
//! code and a user code, the verification page `GET/POST /device` lets a person approve or deny
//! it, and the token endpoint answers polls ([`device_grant`]) with `authorization_pending`,
//! `slow_down`, `expired_token`, `access_denied` or, once, the tokens.
//!
//! Polling speed is measured on the server clock in milliseconds (clock offset included, so a
//! test can move time forward instead of sleeping): a poll sooner than the current interval after
//! the previous poll of the same code is answered `slow_down` and adds 5 s to that code's
//! interval (RFC 8628 §3.5). The first poll is never too early.
//!
//! Device codes are stored by SHA-256 digest; user codes are 8 letters from a 20-consonant
//! alphabet (RFC 8628 §6.1), shown as `XXXX-XXXX` and matched ignoring case, dashes and spaces.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::authorize::check_login;
use crate::config::{Client, grant_types};
use crate::handlers::{self, LoginContext, TokenResponse};
use crate::html;
use crate::oauth::{self, Form, OAuthError};
use crate::server::Shared;

/// Letters of user codes: no vowels (no words), no look-alikes of digits.
const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Seconds added to a code's interval by each `slow_down` (RFC 8628 §3.5).
const SLOW_DOWN_STEP_MS: u64 = 5_000;

type AppState = State<Arc<Shared>>;

/// Why a device test hook ([`IdpServer::approve_device`](crate::IdpServer::approve_device),
/// [`IdpServer::deny_device`](crate::IdpServer::deny_device)) did nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceHookError {
    /// No device authorization has this user code.
    #[error("no device authorization has this user code")]
    UnknownUserCode,
    /// The username is not a configured user.
    #[error("unknown user `{0}`")]
    UnknownUser(String),
    /// The user code was already approved or denied, or has expired.
    #[error("the user code is no longer pending (already decided, or expired)")]
    NotPending,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    Pending,
    Approved {
        username: String,
        auth_time: u64,
    },
    Denied,
    /// Tokens were issued; the device code is spent.
    Redeemed,
}

#[derive(Debug)]
struct DeviceRecord {
    client_id: String,
    scope: String,
    expires_at: u64,
    interval_ms: u64,
    last_poll_ms: Option<u64>,
    status: Status,
}

#[derive(Debug, Default)]
struct Inner {
    devices: HashMap<[u8; 32], DeviceRecord>,
    /// Normalized user code → device code digest.
    user_codes: HashMap<String, [u8; 32]>,
    /// Polls still to be answered `slow_down` whatever their timing (test hook).
    forced_slow_downs: u32,
}

/// Device authorizations, keyed by device code digest and by user code.
#[derive(Debug)]
pub(crate) struct DeviceState {
    inner: Mutex<Inner>,
    ttl: u64,
    interval: u64,
}

/// What a poll may lead to once the lock is released.
enum Poll {
    Approved { username: String, scope: String, auth_time: u64 },
}

impl DeviceState {
    pub(crate) fn new(ttl: u64, interval: u64) -> Self {
        Self { inner: Mutex::default(), ttl, interval }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a device authorization; returns `(device_code, user_code)`.
    fn open(&self, client_id: &str, scope: &str, now: u64) -> (String, String) {
        let device_code = crate::store::random_token();
        let mut inner = self.lock();
        if inner.devices.len() > 1024 {
            inner.devices.retain(|_, d| d.expires_at > now && d.status != Status::Redeemed);
            let Inner { devices, user_codes, .. } = &mut *inner;
            user_codes.retain(|_, digest| devices.contains_key(digest));
        }
        let user_code = loop {
            let candidate = random_user_code();
            if !inner.user_codes.contains_key(&normalize(&candidate)) {
                break candidate;
            }
        };
        let key = digest(&device_code);
        inner.user_codes.insert(normalize(&user_code), key);
        inner.devices.insert(
            key,
            DeviceRecord {
                client_id: client_id.to_owned(),
                scope: scope.to_owned(),
                expires_at: now + self.ttl,
                interval_ms: self.interval * 1000,
                last_poll_ms: None,
                status: Status::Pending,
            },
        );
        (device_code, user_code)
    }

    /// Approves (`Some(username)`) or denies (`None`) the pending code `user_code`.
    fn decide(&self, user_code: &str, username: Option<&str>, now: u64) -> Result<(), DeviceHookError> {
        let mut inner = self.lock();
        let key = *inner.user_codes.get(&normalize(user_code)).ok_or(DeviceHookError::UnknownUserCode)?;
        let record = inner.devices.get_mut(&key).ok_or(DeviceHookError::UnknownUserCode)?;
        if record.status != Status::Pending || record.expires_at <= now {
            return Err(DeviceHookError::NotPending);
        }
        record.status = match username {
            Some(username) => Status::Approved { username: username.to_owned(), auth_time: now },
            None => Status::Denied,
        };
        Ok(())
    }

    /// Whether `user_code` is pending and unexpired.
    fn is_pending(&self, user_code: &str, now: u64) -> bool {
        let inner = self.lock();
        inner
            .user_codes
            .get(&normalize(user_code))
            .and_then(|key| inner.devices.get(key))
            .is_some_and(|d| d.status == Status::Pending && d.expires_at > now)
    }

    /// Answers the next `times` polls of any device code with `slow_down`.
    pub(crate) fn force_slow_down(&self, times: u32) {
        self.lock().forced_slow_downs = times;
    }

    /// Makes every pending device code expire now; returns how many.
    pub(crate) fn expire_pending(&self, now: u64) -> usize {
        let mut inner = self.lock();
        let mut count = 0;
        for record in inner.devices.values_mut().filter(|d| d.status == Status::Pending && d.expires_at > now) {
            record.expires_at = now;
            count += 1;
        }
        count
    }

    pub(crate) fn reset_hooks(&self) {
        self.lock().forced_slow_downs = 0;
    }

    fn poll(&self, device_code: &str, client_id: &str, now: u64, now_ms: u64) -> Result<Poll, OAuthError> {
        let mut inner = self.lock();
        let Inner { devices, forced_slow_downs, .. } = &mut *inner;
        let forced = *forced_slow_downs > 0;
        let record = devices
            .get_mut(&digest(device_code))
            .ok_or_else(|| OAuthError::invalid_grant("the device_code is unknown"))?;
        if record.client_id != client_id {
            return Err(OAuthError::invalid_grant("the device_code was issued to another client"));
        }
        if record.status == Status::Redeemed {
            return Err(OAuthError::invalid_grant("the device_code was already exchanged for tokens"));
        }
        if record.expires_at <= now {
            return Err(OAuthError::new(StatusCode::BAD_REQUEST, "expired_token", "the device_code has expired"));
        }
        if record.status == Status::Denied {
            return Err(OAuthError::new(StatusCode::BAD_REQUEST, "access_denied", "the user denied the request"));
        }
        let too_fast = record.last_poll_ms.is_some_and(|last| now_ms.saturating_sub(last) < record.interval_ms);
        record.last_poll_ms = Some(now_ms);
        if forced || (too_fast && record.status == Status::Pending) {
            record.interval_ms += SLOW_DOWN_STEP_MS;
            let interval = record.interval_ms / 1000;
            if forced {
                *forced_slow_downs -= 1;
            }
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "slow_down",
                format!("polling too fast: wait at least {interval} s between polls"),
            ));
        }
        match &record.status {
            Status::Approved { username, auth_time } => {
                let poll =
                    Poll::Approved { username: username.clone(), scope: record.scope.clone(), auth_time: *auth_time };
                record.status = Status::Redeemed;
                Ok(poll)
            }
            _ => Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "authorization_pending",
                "the user has not approved the request yet",
            )),
        }
    }
}

fn digest(code: &str) -> [u8; 32] {
    Sha256::digest(code.as_bytes()).into()
}

/// Upper case without dashes or whitespace: what the person meant to type.
fn normalize(user_code: &str) -> String {
    user_code.chars().filter(|c| *c != '-' && !c.is_whitespace()).map(|c| c.to_ascii_uppercase()).collect()
}

/// `XXXX-XXXX` from [`USER_CODE_ALPHABET`], uniformly (rejection sampling: 240 = 12 × 20).
fn random_user_code() -> String {
    let mut code = String::with_capacity(9);
    while code.len() < 9 {
        let mut byte = [0u8; 1];
        rand::fill(&mut byte);
        if byte[0] < 240 {
            if code.len() == 4 {
                code.push('-');
            }
            code.push(char::from(USER_CODE_ALPHABET[usize::from(byte[0] % 20)]));
        }
    }
    code
}

/// `POST /device_authorization` (RFC 8628 §3.1, §3.2).
pub(crate) async fn device_authorization(State(s): AppState, headers: HeaderMap, body: Bytes) -> Response {
    let result = (|| {
        let form = Form::parse(&headers, &body)?;
        let client = oauth::authenticate_client(&s, &headers, &form)?;
        if !client.allows(grant_types::DEVICE_CODE) {
            return Err(OAuthError::unauthorized_client(format!(
                "client `{}` may not use the device authorization grant",
                client.client_id
            )));
        }
        // RFC 8707 §2.1: checked here; this demo server lets the grant serve any resource later.
        handlers::requested_resources(&form)?;
        let scope = handlers::requested_scope(&form).unwrap_or_else(|| "openid".to_owned());
        let (device_code, user_code) = s.device.open(&client.client_id, &scope, s.now());
        tracing::debug!(client_id = %client.client_id, "device authorization opened");
        let verification_uri = s.url("/device");
        Ok(Json(json!({
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": verification_uri,
            "verification_uri_complete": format!("{verification_uri}?user_code={user_code}"),
            "expires_in": s.device.ttl,
            "interval": s.device.interval,
        })))
    })();
    match result {
        Ok(json) => (oauth::no_store(), json).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The device code grant at the token endpoint.
pub(crate) fn device_grant(s: &Shared, client: &Client, form: &Form) -> Result<TokenResponse, OAuthError> {
    let resource = handlers::requested_resource(form)?;
    let device_code = form.require("device_code")?;
    let Poll::Approved { username, scope, auth_time } =
        s.device.poll(device_code, &client.client_id, s.now(), s.now_millis())?;
    let login = LoginContext { nonce: None, auth_time: Some(auth_time), resource };
    handlers::new_login(s, client, &username, &scope, &login).map(|(response, _)| response)
}

/// `GET /device[?user_code=...]`: the verification page.
pub(crate) async fn device_page(RawQuery(query): RawQuery) -> Response {
    let user_code = url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "user_code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    html::device_page(StatusCode::OK, &user_code, "", None)
}

/// `POST /device`: approve (with the person's credentials) or deny a user code.
pub(crate) async fn device_submit(State(s): AppState, headers: HeaderMap, body: Bytes) -> Response {
    let form = match Form::parse(&headers, &body) {
        Ok(form) => form,
        Err(e) => return html::error_page(StatusCode::BAD_REQUEST, &e.description),
    };
    let user_code = form.get("user_code").unwrap_or("");
    let username = form.get("username").unwrap_or("");
    let now = s.now();
    if !s.device.is_pending(user_code, now) {
        let message = "That code is unknown, expired or already used. Check the code on your device.";
        return html::device_page(StatusCode::BAD_REQUEST, user_code, username, Some(message));
    }
    if form.get("action") == Some("deny") {
        return match s.device.decide(user_code, None, now) {
            Ok(()) => html::device_done(false),
            Err(e) => html::device_page(StatusCode::BAD_REQUEST, user_code, username, Some(&e.to_string())),
        };
    }
    let username = match check_login(&s, username, form.get("password"), form.get("totp")) {
        Ok(username) => username,
        Err(message) => return html::device_page(StatusCode::UNAUTHORIZED, user_code, username, Some(message)),
    };
    match s.device.decide(user_code, Some(username), now) {
        Ok(()) => {
            tracing::debug!(username, "device approved on the verification page");
            html::device_done(true)
        }
        Err(e) => html::device_page(StatusCode::BAD_REQUEST, user_code, username, Some(&e.to_string())),
    }
}

/// Test hook behind [`IdpServer::approve_device`](crate::IdpServer::approve_device).
pub(crate) fn approve(s: &Shared, user_code: &str, username: &str) -> Result<(), DeviceHookError> {
    if !s.users.contains_key(username) {
        return Err(DeviceHookError::UnknownUser(username.to_owned()));
    }
    s.device.decide(user_code, Some(username), s.now())
}

/// Test hook behind [`IdpServer::deny_device`](crate::IdpServer::deny_device).
pub(crate) fn deny(s: &Shared, user_code: &str) -> Result<(), DeviceHookError> {
    s.device.decide(user_code, None, s.now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_have_the_documented_shape() {
        for _ in 0..50 {
            let code = random_user_code();
            assert_eq!(code.len(), 9);
            assert_eq!(&code[4..5], "-");
            assert!(code.bytes().filter(|b| *b != b'-').all(|b| USER_CODE_ALPHABET.contains(&b)));
        }
        assert_eq!(normalize(" wdjb-mjht "), "WDJBMJHT");
    }

    #[test]
    fn poll_sequence() {
        let state = DeviceState::new(600, 1);
        let (device, user) = state.open("c", "openid", 100);
        let err = |r: Result<Poll, OAuthError>| r.err().map(|e| e.error);
        assert_eq!(err(state.poll(&device, "c", 100, 100_000)), Some("authorization_pending"));
        assert_eq!(err(state.poll(&device, "c", 100, 100_500)), Some("slow_down")); // interval now 6 s
        assert_eq!(err(state.poll(&device, "c", 105, 105_600)), Some("slow_down")); // 5.1 s < 6 s; now 11 s
        assert_eq!(err(state.poll(&device, "c", 117, 117_000)), Some("authorization_pending"));
        assert_eq!(err(state.poll(&device, "other", 130, 130_000)), Some("invalid_grant"));
        state.decide(&user, Some("alice"), 130).unwrap();
        assert_eq!(state.decide(&user, None, 130), Err(DeviceHookError::NotPending));
        assert!(state.poll(&device, "c", 140, 140_000).is_ok());
        assert_eq!(err(state.poll(&device, "c", 160, 160_000)), Some("invalid_grant"));
    }

    #[test]
    fn expiry_denial_and_forced_slow_down() {
        let state = DeviceState::new(600, 1);
        let (a, a_user) = state.open("c", "openid", 100);
        let (b, _) = state.open("c", "openid", 100);
        state.force_slow_down(1);
        assert_eq!(state.poll(&a, "c", 100, 100_000).err().unwrap().error, "slow_down");
        assert_eq!(state.poll(&b, "c", 100, 100_000).err().unwrap().error, "authorization_pending");
        state.decide(&a_user, None, 101).unwrap();
        assert_eq!(state.poll(&a, "c", 120, 120_000).err().unwrap().error, "access_denied");
        assert_eq!(state.expire_pending(130), 1);
        assert_eq!(state.poll(&b, "c", 130, 130_000).err().unwrap().error, "expired_token");
        assert_eq!(state.decide("XXXX-XXXX", None, 130), Err(DeviceHookError::UnknownUserCode));
    }
}
