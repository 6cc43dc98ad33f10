//! DPoP (RFC 9449) for API requests: the per-request proof (`htm`, `htu`, `ath`, the resource
//! server's nonce) that goes beside `Authorization: DPoP <token>`. Token requests get their
//! proofs in the core (`tessera_core::dpop`); this module owns what only a runtime has: the clock
//! and fresh randomness for each proof, the parsed key kept between requests, and the nonces each
//! resource server gave.
//!
//! It never touches the bearer hot path ([`Session::cached_header`]): a DPoP request takes this
//! slower path and pays one signature. It never logs a proof or a key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tessera_core::dpop::{self, ProofInputs};
use tessera_core::{DpopProver, DpopSettings, Error, Secret, TokenSet};

use crate::{AuthorizationHeader, Session};

/// A session's DPoP state: which key, its parsed prover, and the nonces of resource servers.
pub(crate) struct DpopState {
    settings: DpopSettings,
    /// The prover of the key last used, with the fingerprint of that key's text (a token set from
    /// another process may bring another generated key).
    prover: Mutex<Option<(String, Arc<DpopProver>)>>,
    /// The last `DPoP-Nonce` of each origin (`scheme://host:port`).
    nonces: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for DpopState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopState").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl DpopState {
    pub(crate) fn new(settings: DpopSettings) -> Self {
        DpopState { settings, prover: Mutex::new(None), nonces: Mutex::new(HashMap::new()) }
    }

    /// The prover of the key `tokens` are bound to: the user's `dpop_key`, or the generated key
    /// kept with the tokens.
    fn prover_for(&self, tokens: &TokenSet) -> Result<Arc<DpopProver>, Error> {
        let (text, alg) = bound_key(&self.settings, tokens)?;
        let fingerprint = text.fingerprint();
        let mut slot = self.prover.lock().unwrap_or_else(|poison| poison.into_inner());
        if let Some((held, prover)) = slot.as_ref()
            && *held == fingerprint
        {
            return Ok(Arc::clone(prover));
        }
        let prover = Arc::new(DpopProver::from_key(text.expose_secret(), alg)?);
        *slot = Some((fingerprint, Arc::clone(&prover)));
        Ok(prover)
    }

    fn nonce(&self, url: &str) -> Option<String> {
        let origin = origin(url)?;
        self.nonces.lock().unwrap_or_else(|poison| poison.into_inner()).get(&origin).cloned()
    }

    fn remember_nonce(&self, url: &str, nonce: &str) {
        if !dpop::is_nonce(nonce) {
            return;
        }
        if let Some(origin) = origin(url) {
            self.nonces.lock().unwrap_or_else(|poison| poison.into_inner()).insert(origin, nonce.to_owned());
        }
    }
}

/// The key `tokens` are bound to, and its `dpop_alg`: the user's `dpop_key`, or the generated key
/// kept with the tokens (its algorithm is the key's own).
fn bound_key<'a>(settings: &'a DpopSettings, tokens: &'a TokenSet) -> Result<(&'a Secret, Option<&'a str>), Error> {
    match (&settings.key, &tokens.dpop_key) {
        (Some(user), _) => Ok((user, settings.alg.as_deref())),
        (None, Some(generated)) => Ok((generated, None)),
        (None, None) => Err(Error::configuration(
            "dpop: these tokens were not obtained with DPoP (no key is kept with them): log in again",
        )),
    }
}

/// A DPoP proof for one request carrying `tokens`' access token (`ath`), outside a [`Session`]:
/// what `tessera token --dpop-url` prints for curl. `settings` are the provider's; `nonce` is the
/// one the server gave last (a process that has none meets one `use_dpop_nonce` first).
pub fn dpop_proof_for(
    settings: &DpopSettings,
    tokens: &TokenSet,
    method: &str,
    url: &str,
    nonce: Option<&str>,
    now: tessera_core::Timestamp,
) -> Result<Secret, Error> {
    let (text, alg) = bound_key(settings, tokens)?;
    let prover = DpopProver::from_key(text.expose_secret(), alg)?;
    prover.proof(&ProofInputs {
        method,
        url,
        now,
        jti: fresh_jti()?,
        nonce,
        access_token: Some(tokens.access_token.expose_secret()),
    })
}

/// `scheme://host:port` of a URL (nonces are per server, RFC 9449 §9).
fn origin(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    Some(url.origin().ascii_serialization())
}

/// What one API request must carry: the `Authorization` header, and for a DPoP provider the
/// `DPoP` proof made for this request's method and URL. `Debug` shows neither.
#[derive(Clone)]
pub struct RequestAuth {
    /// `Authorization`: `Bearer <token>` or `DPoP <token>` (RFC 9449 §7.1).
    pub authorization: AuthorizationHeader,
    /// The `DPoP` header's value, for a DPoP provider: valid for this method and URL only, once.
    pub dpop: Option<Secret>,
}

impl std::fmt::Debug for RequestAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestAuth")
            .field("authorization", &self.authorization)
            .field("dpop", &self.dpop.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl RequestAuth {
    /// The `DPoP` header as an `http` value, marked sensitive.
    pub fn dpop_header_value(&self) -> Option<http::HeaderValue> {
        let proof = self.dpop.as_ref()?;
        let mut value = http::HeaderValue::from_str(proof.expose_secret()).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

/// 128 fresh random bits for a proof's `jti`.
fn fresh_jti() -> Result<[u8; 16], Error> {
    let mut jti = [0u8; 16];
    getrandom::fill(&mut jti)
        .map_err(|_| Error::configuration("dpop: no randomness from the operating system for a DPoP proof's jti"))?;
    Ok(jti)
}

impl Session {
    /// True when the provider uses DPoP (`dpop = true`): API requests then need
    /// [`Session::request_auth`] (a proof per request), not only the `Authorization` header.
    pub fn uses_dpop(&self) -> bool {
        self.dpop_state().is_some()
    }

    /// What an API request to `method` `url` must carry. For a bearer provider: the cached
    /// `Authorization` header and no proof (the hot path, nothing more). For a DPoP provider:
    /// `Authorization: DPoP <token>` and a fresh proof for this method and URL (`htm`, `htu`
    /// without query and fragment, `ath` of the token, and the nonce this server gave last):
    /// one signature per call.
    pub async fn request_auth(&self, method: &str, url: &str) -> Result<RequestAuth, Error> {
        let authorization = self.authorization_header().await?;
        let dpop = self.dpop_proof(&authorization, method, url)?;
        Ok(RequestAuth { authorization, dpop })
    }

    /// The DPoP proof for a request to `method` `url` carrying `header`'s token; `None` for a
    /// bearer provider or a bearer token (a server that answered `token_type` `Bearer`).
    pub fn dpop_proof(&self, header: &AuthorizationHeader, method: &str, url: &str) -> Result<Option<Secret>, Error> {
        let Some(state) = self.dpop_state() else { return Ok(None) };
        let tokens = header.tokens();
        if !tokens.token_type.eq_ignore_ascii_case("dpop") {
            // The server did not bind this token (RFC 9449 §5): it is sent as a bearer token.
            return Ok(None);
        }
        let prover = state.prover_for(tokens)?;
        let nonce = state.nonce(url);
        let inputs = ProofInputs {
            method,
            url,
            now: self.now(),
            jti: fresh_jti()?,
            nonce: nonce.as_deref(),
            access_token: Some(tokens.access_token.expose_secret()),
        };
        prover.proof(&inputs).map(Some)
    }

    /// Reads an API's answer for DPoP: remembers the server's `DPoP-Nonce` (sent with any answer,
    /// RFC 9449 §8.2), and says whether the answer is a `use_dpop_nonce` challenge (a 401 whose
    /// `WWW-Authenticate` asks for a nonce, with one given), which deserves one retry with a new
    /// proof. Always `false` for a bearer provider.
    pub fn observe_dpop_response(
        &self,
        url: &str,
        status: u16,
        www_authenticate: Option<&str>,
        dpop_nonce: Option<&str>,
    ) -> bool {
        let Some(state) = self.dpop_state() else { return false };
        let Some(nonce) = dpop_nonce.map(str::trim).filter(|nonce| dpop::is_nonce(nonce)) else { return false };
        state.remember_nonce(url, nonce);
        dpop::is_resource_nonce_challenge(status, www_authenticate)
    }

    /// The public key's RFC 7638 thumbprint (`cnf.jkt` of bound tokens) for the key `header`'s
    /// tokens are bound to; `None` without DPoP.
    pub fn dpop_jkt(&self, header: &AuthorizationHeader) -> Result<Option<String>, Error> {
        let Some(state) = self.dpop_state() else { return Ok(None) };
        Ok(Some(state.prover_for(header.tokens())?.jkt().to_owned()))
    }
}
