//! Authorization code grant with PKCE (RFC 6749 §4.1, RFC 7636 S256, RFC 8252 for native apps),
//! and OpenID Connect ID token verification: the browser login.
//!
//! ```text
//! start ─► Prompt::Browser(authorization URL)                       [AwaitingRedirect]
//! answer (the URL the browser came back to)
//!   ─ not our redirect URI | state missing or wrong | iss ≠ issuer ─► Failed (no token request)
//!   ─ error=access_denied... ─► Failed(OAuth)
//!   ─ code ─► Send(token request: code, redirect_uri, code_verifier)  [Exchanging]
//! tokens ─ no openid, no id_token ─► Done
//!        ─ otherwise ─► Send(GET jwks_uri)                             [FetchingKeys]
//! keys ─ ID token verified (signature, iss, aud, exp/iat ± 60 s, nonce) ─► Done
//! ```
//! No randomness and no clock here: the verifier, `state` and `nonce` come from
//! [`LoginInputs::random`], time from the caller. Refresh and revocation are the standard ones.

use super::token_request::is_nonce_demand;
use super::{Flow, FlowContext, FlowStep, LoginInputs, Prompt};
use crate::protocol::{
    AuthorizationRequest, AuthorizationSecrets, ExpectedRedirect, ID_TOKEN_LEEWAY, IdTokenExpectations, JsonWebKeySet,
    jwks_request, parse_authorization_response, parse_jwks, parse_token_response, token_request, verify_id_token,
};
use crate::{Endpoints, Error, HttpResponse, RequestId, Secret, Timestamp, TokenSet};

/// The OAuth `grant_type` of the code exchange.
const GRANT_TYPE: &str = "authorization_code";

#[derive(Debug)]
enum State {
    Ready,
    AwaitingRedirect {
        authorization_endpoint: String,
    },
    /// `code` is kept for one resend when the server asks for a DPoP nonce (`nonce_retried`).
    Exchanging {
        request_id: RequestId,
        token_endpoint: String,
        code: Secret,
        nonce_retried: bool,
    },
    FetchingKeys {
        request_id: RequestId,
        jwks_uri: String,
        token_endpoint: String,
        tokens: Box<TokenSet>,
    },
    Finished,
}

/// One browser login.
#[derive(Debug)]
pub(crate) struct AuthorizationCodeFlow {
    secrets: AuthorizationSecrets,
    redirect_uri: String,
    authorization_endpoint: Option<String>,
    extra_params: Vec<(String, String)>,
    state: State,
}

impl AuthorizationCodeFlow {
    /// A login for [`super::Grant::Browser`]: the secrets from `inputs.random`, the redirect URI fixed
    /// by the grant or else brought by the runtime (a loopback listener).
    pub(crate) fn new(
        authorization_endpoint: Option<&str>,
        redirect_uri: Option<&str>,
        extra_params: &[(String, String)],
        inputs: &LoginInputs,
    ) -> Result<Self, Error> {
        let random = inputs.random.as_ref().ok_or_else(|| {
            Error::configuration("a browser login needs random bytes from the runtime (LoginInputs::random)")
        })?;
        let secrets = AuthorizationSecrets::from_random(random)?;
        let redirect_uri = redirect_uri.or(inputs.redirect_uri.as_deref()).ok_or_else(|| {
            Error::configuration(
                "a browser login needs a redirect URI: a loopback listener from the runtime, or a fixed redirect_uri",
            )
        })?;
        Ok(AuthorizationCodeFlow {
            secrets,
            redirect_uri: redirect_uri.to_owned(),
            authorization_endpoint: authorization_endpoint.map(str::to_owned),
            extra_params: extra_params.to_vec(),
            state: State::Ready,
        })
    }

    /// Sends the code exchange (PKCE `code_verifier`, the same `redirect_uri`).
    fn exchange(
        &mut self,
        context: &FlowContext<'_>,
        request_id: RequestId,
        now: Timestamp,
        token_endpoint: String,
        code: Secret,
        nonce_retried: bool,
    ) -> Vec<FlowStep> {
        let mut fields = vec![
            ("grant_type", GRANT_TYPE),
            ("code", code.expose_secret()),
            ("redirect_uri", &self.redirect_uri),
            ("code_verifier", self.secrets.code_verifier.expose_secret()),
        ];
        // RFC 8707 §2.2: the code was granted for every resource named at authorization; the
        // tokens are asked for the first (oidc-provider would otherwise mint a userinfo token).
        fields.extend(context.token_resource().map(|resource| ("resource", resource)));
        let request =
            token_request(request_id, &token_endpoint, &context.config.client, &context.assertion_inputs(now), &fields);
        let request = match request {
            Ok(request) => request,
            Err(error) => return self.fail(error),
        };
        self.state = State::Exchanging { request_id, token_endpoint, code, nonce_retried };
        vec![FlowStep::Send(request)]
    }

    fn fail(&mut self, error: Error) -> Vec<FlowStep> {
        self.state = State::Finished;
        vec![FlowStep::Failed(error)]
    }

    /// The issuer, known only from discovery (its document was checked against the configured issuer).
    fn issuer<'a>(context: &'a FlowContext<'_>) -> Option<&'a str> {
        match &context.config.endpoints {
            Endpoints::Discover { .. } => context.metadata.map(|m| m.issuer.as_str()),
            Endpoints::Explicit { .. } => None,
        }
    }

    fn verify(
        &mut self,
        context: &FlowContext<'_>,
        tokens: TokenSet,
        keys: &JsonWebKeySet,
        token_endpoint: &str,
        now: Timestamp,
    ) -> Vec<FlowStep> {
        let (Some(issuer), Some(id_token)) = (Self::issuer(context), tokens.id_token.as_ref()) else {
            return self.fail(Error::configuration("an ID token can only be verified against a discovered issuer"));
        };
        let expected = IdTokenExpectations {
            issuer,
            client_id: &context.config.client.client_id,
            nonce: Some(&self.secrets.nonce),
            now,
            leeway: ID_TOKEN_LEEWAY,
        };
        match verify_id_token(id_token.expose_secret(), keys, &expected, token_endpoint) {
            Ok(_) => {
                self.state = State::Finished;
                vec![FlowStep::Done(tokens)]
            }
            Err(error) => self.fail(error),
        }
    }
}

impl super::resend::Resendable for AuthorizationCodeFlow {
    fn resend_rule(&self) -> super::resend::ResendRule {
        use super::resend::ResendRule;
        match self.state {
            // The code is redeemed once: resent only when the server cannot have seen it.
            State::Exchanging { .. } => ResendRule::WhenNotProcessed,
            // A GET of public keys.
            State::FetchingKeys { .. } => ResendRule::WhenTransient,
            _ => ResendRule::Never,
        }
    }
}

fn wants_openid(scope: Option<&str>) -> bool {
    scope.is_some_and(|scope| scope.split_ascii_whitespace().any(|s| s == "openid"))
}

impl Flow for AuthorizationCodeFlow {
    fn start(&mut self, context: &FlowContext<'_>, _request_id: RequestId, _now: Timestamp) -> Vec<FlowStep> {
        if !matches!(self.state, State::Ready) {
            return self.fail(Error::internal("browser login started twice"));
        }
        let endpoint = self
            .authorization_endpoint
            .clone()
            .or_else(|| context.metadata.and_then(|m| m.authorization_endpoint.clone()));
        let Some(authorization_endpoint) = endpoint else {
            return self.fail(Error::configuration(
                "no authorization endpoint: the server publishes none in discovery; configure one",
            ));
        };
        if wants_openid(context.config.scope.as_deref()) && Self::issuer(context).is_none() {
            return self.fail(Error::configuration(
                "scope `openid` needs the issuer's discovery document to verify the ID token: \
                 configure the provider by issuer (Endpoints::Discover)",
            ));
        }
        let request = AuthorizationRequest {
            authorization_endpoint: &authorization_endpoint,
            client_id: &context.config.client.client_id,
            redirect_uri: &self.redirect_uri,
            scope: context.config.scope.as_deref(),
            resources: context.resources,
            secrets: &self.secrets,
            extra_params: &self.extra_params,
        };
        let authorization_url = match request.url() {
            Ok(url) => url,
            Err(error) => return self.fail(error),
        };
        self.state = State::AwaitingRedirect { authorization_endpoint };
        vec![FlowStep::Prompt(Prompt::Browser { authorization_url, redirect_uri: self.redirect_uri.clone() })]
    }

    fn on_answer(
        &mut self,
        context: &FlowContext<'_>,
        answer: Secret,
        request_id: RequestId,
        now: Timestamp,
    ) -> Vec<FlowStep> {
        let State::AwaitingRedirect { authorization_endpoint } = &self.state else {
            return self.fail(Error::internal("the browser login got an answer it did not ask for"));
        };
        let expected = ExpectedRedirect {
            redirect_uri: &self.redirect_uri,
            state: &self.secrets.state,
            issuer: Self::issuer(context),
            authorization_endpoint,
        };
        let code = match parse_authorization_response(answer.expose_secret(), &expected) {
            Ok(code) => code,
            Err(error) => return self.fail(error),
        };
        let token_endpoint = match context.require_token_endpoint() {
            Ok(endpoint) => endpoint.to_owned(),
            Err(error) => return self.fail(error),
        };
        self.exchange(context, request_id, now, token_endpoint, code, false)
    }

    fn on_response(
        &mut self,
        context: &FlowContext<'_>,
        response: &HttpResponse,
        request_id: RequestId,
        now: Timestamp,
    ) -> Vec<FlowStep> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Exchanging { request_id: sent, token_endpoint, code, nonce_retried }
                if sent == response.request_id =>
            {
                let tokens = match parse_token_response(response, &token_endpoint, now) {
                    Ok(tokens) => tokens,
                    // RFC 9449 §8: a nonce demand does not spend the code: once more with the nonce.
                    Err(error) if !nonce_retried && is_nonce_demand(&error, response, context) => {
                        return self.exchange(context, request_id, now, token_endpoint, code, true);
                    }
                    Err(error) => return self.fail(error),
                };
                let openid = wants_openid(context.config.scope.as_deref());
                if !openid {
                    // Not asked for (and no nonce was sent to bind it to this login): not kept.
                    let tokens = TokenSet { id_token: None, ..tokens };
                    return vec![FlowStep::Done(tokens)];
                }
                if tokens.id_token.is_none() {
                    return self.fail(Error::MalformedResponse {
                        endpoint: crate::http::endpoint_of(&token_endpoint),
                        reason: "scope `openid` was requested and no id_token came back".into(),
                    });
                }
                let Some(jwks_uri) = context.metadata.and_then(|m| m.jwks_uri.clone()) else {
                    return self.fail(Error::configuration(
                        "the server sent an ID token and publishes no jwks_uri to verify it with",
                    ));
                };
                self.state = State::FetchingKeys {
                    request_id,
                    jwks_uri: jwks_uri.clone(),
                    token_endpoint,
                    tokens: Box::new(tokens),
                };
                vec![FlowStep::Send(jwks_request(request_id, &jwks_uri))]
            }
            State::FetchingKeys { request_id: sent, jwks_uri, token_endpoint, tokens }
                if sent == response.request_id =>
            {
                match parse_jwks(response, &jwks_uri) {
                    Ok(keys) => self.verify(context, *tokens, &keys, &token_endpoint, now),
                    Err(error) => self.fail(error),
                }
            }
            other => {
                self.state = other; // not ours
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::id_token::tests::{ISSUER, NOW, ed25519, good_claims, sign};
    use crate::{ClientAuth, EngineSettings, Grant, HttpRequest, OAuthErrorCode, ProviderConfig, ProviderMetadata};
    use zeroize::Zeroizing;

    const REDIRECT: &str = "http://127.0.0.1:4711/callback";

    fn config(scope: &str) -> ProviderConfig {
        ProviderConfig {
            client: ClientAuth::public("cli"),
            endpoints: Endpoints::discover(ISSUER),
            scope: Some(scope.into()),
            grant: Grant::Browser {
                authorization_endpoint: None,
                redirect_uri: None,
                authorization_params: Vec::new(),
            },
        }
    }

    fn metadata() -> ProviderMetadata {
        serde_json::from_value(serde_json::json!({
            "issuer": ISSUER, "token_endpoint": "https://idp.example/token",
            "authorization_endpoint": "https://idp.example/authorize", "jwks_uri": "https://idp.example/jwks"
        }))
        .unwrap()
    }

    fn inputs() -> LoginInputs {
        LoginInputs { random: Some(Zeroizing::new((100u8..164).collect())), redirect_uri: Some(REDIRECT.into()) }
    }

    struct Harness {
        flow: super::super::resend::Resending<AuthorizationCodeFlow>,
        config: ProviderConfig,
        metadata: ProviderMetadata,
        settings: EngineSettings,
        /// A DPoP key: contexts then carry it with the nonce `n-1`.
        dpop: Option<crate::DpopProver>,
    }

    impl Harness {
        fn new(scope: &str) -> Self {
            Harness {
                flow: super::super::resend::Resending::new(
                    AuthorizationCodeFlow::new(None, None, &[], &inputs()).unwrap(),
                ),
                config: config(scope),
                metadata: metadata(),
                settings: EngineSettings::default(),
                dpop: None,
            }
        }

        /// Starts and returns (state, nonce) read from the authorization URL.
        fn start(&mut self) -> (String, String) {
            let context = FlowContext {
                config: &self.config,
                metadata: Some(&self.metadata),
                tokens: None,
                settings: &self.settings,
                jitter: 0.5,
                assertion_id: self.dpop.as_ref().map(|_| [1; 16]),
                dpop: self.dpop.as_ref().map(|prover| crate::DpopInputs { prover: Ok(prover), nonce: Some("n-1") }),
                resources: &[],
            };
            let steps = self.flow.start(&context, RequestId(1), NOW);
            let [FlowStep::Prompt(Prompt::Browser { authorization_url, redirect_uri })] = &steps[..] else {
                panic!("{steps:?}")
            };
            assert_eq!(redirect_uri, REDIRECT);
            let url = url::Url::parse(authorization_url).unwrap();
            let find = |name: &str| url.query_pairs().find(|(n, _)| n == name).map(|(_, v)| v.into_owned());
            assert!(authorization_url.starts_with("https://idp.example/authorize?"));
            assert_eq!(find("code_challenge_method").as_deref(), Some("S256"));
            // OpenID Connect's nonce goes with an OpenID request only.
            let openid = wants_openid(self.config.scope.as_deref());
            assert_eq!(find("nonce").is_some(), openid, "{authorization_url}");
            (find("state").unwrap(), find("nonce").unwrap_or_default())
        }

        fn answer(&mut self, url: &str) -> Vec<FlowStep> {
            let context = FlowContext {
                config: &self.config,
                metadata: Some(&self.metadata),
                tokens: None,
                settings: &self.settings,
                jitter: 0.5,
                assertion_id: self.dpop.as_ref().map(|_| [1; 16]),
                dpop: self.dpop.as_ref().map(|prover| crate::DpopInputs { prover: Ok(prover), nonce: Some("n-1") }),
                resources: &[],
            };
            self.flow.on_answer(&context, Secret::new(url), RequestId(2), NOW)
        }

        fn respond(&mut self, id: u64, response: HttpResponse, next_id: u64) -> Vec<FlowStep> {
            let context = FlowContext {
                config: &self.config,
                metadata: Some(&self.metadata),
                tokens: None,
                settings: &self.settings,
                jitter: 0.5,
                assertion_id: self.dpop.as_ref().map(|_| [1; 16]),
                dpop: self.dpop.as_ref().map(|prover| crate::DpopInputs { prover: Ok(prover), nonce: Some("n-1") }),
                resources: &[],
            };
            let mut response = response;
            response.request_id = RequestId(id);
            self.flow.on_response(&context, &response, RequestId(next_id), NOW)
        }

        fn transport_error(&mut self, kind: crate::TransportErrorKind, next_id: u64) -> Vec<FlowStep> {
            let context = FlowContext {
                config: &self.config,
                metadata: Some(&self.metadata),
                tokens: None,
                settings: &self.settings,
                jitter: 0.5,
                assertion_id: self.dpop.as_ref().map(|_| [1; 16]),
                dpop: self.dpop.as_ref().map(|prover| crate::DpopInputs { prover: Ok(prover), nonce: Some("n-1") }),
                resources: &[],
            };
            let error = Error::Transport { kind, endpoint: "e".into(), message: "injected".into() };
            self.flow.on_transport_error(&context, error, RequestId(next_id), NOW)
        }

        fn timer(&mut self, at: Timestamp, next_id: u64) -> Vec<FlowStep> {
            let context = FlowContext {
                config: &self.config,
                metadata: Some(&self.metadata),
                tokens: None,
                settings: &self.settings,
                jitter: 0.5,
                assertion_id: self.dpop.as_ref().map(|_| [1; 16]),
                dpop: self.dpop.as_ref().map(|prover| crate::DpopInputs { prover: Ok(prover), nonce: Some("n-1") }),
                resources: &[],
            };
            self.flow.on_timer(&context, RequestId(next_id), at)
        }
    }

    fn sent(steps: &[FlowStep]) -> &HttpRequest {
        match steps {
            [FlowStep::Send(request)] => request,
            other => panic!("expected one request, got {other:?}"),
        }
    }

    fn failed(steps: Vec<FlowStep>) -> Error {
        match <[FlowStep; 1]>::try_from(steps) {
            Ok([FlowStep::Failed(error)]) => error,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    fn token_body(id_token: Option<&str>) -> HttpResponse {
        let mut body =
            serde_json::json!({"access_token": "at", "refresh_token": "rt", "expires_in": 60, "token_type": "Bearer"});
        if let Some(id_token) = id_token {
            body["id_token"] = id_token.into();
        }
        HttpResponse::json(RequestId(0), 200, body.to_string())
    }

    /// Runs a login to the JWKS answer with an ID token built from `claims` (nonce filled in).
    fn login_with_claims(mut claims: serde_json::Value) -> Vec<FlowStep> {
        let mut harness = Harness::new("openid offline_access");
        let (state, nonce) = harness.start();
        if claims["nonce"] == "N" {
            claims["nonce"] = nonce.into();
        }
        let exchange = harness.answer(&format!("{REDIRECT}?code=the-code&state={state}&iss=https%3A%2F%2Fidp.example"));
        let request = sent(&exchange);
        let body = std::str::from_utf8(&request.body).unwrap();
        assert!(body.starts_with("grant_type=authorization_code&code=the-code&redirect_uri=http%3A%2F%2F127.0.0.1%3A4711%2Fcallback&code_verifier="), "{body}");
        assert!(body.ends_with("&client_id=cli"), "{body}");
        let (key, jwks, kid) = ed25519(3);
        let fetch = harness.respond(2, token_body(Some(&sign(&key, &kid, claims))), 3);
        assert_eq!(sent(&fetch).url, "https://idp.example/jwks");
        let jwks = serde_json::json!({"keys": [serde_json::to_value(jwks_of(&jwks)).unwrap()]});
        harness.respond(3, HttpResponse::json(RequestId(0), 200, jwks.to_string()), 4)
    }

    fn jwks_of(keys: &JsonWebKeySet) -> jsonwebtoken::jwk::Jwk {
        keys.0.keys[0].clone()
    }

    /// The code exchange is resent only when the server cannot have redeemed the code (503 / 429 /
    /// no connection); a 500, a proxy's 502, a timeout or a reset ends the login (a second try with
    /// a spent code is what RFC 6749 §4.1.2 tells servers to punish). The JWKS fetch is a GET: resent
    /// on any transient failure.
    #[test]
    fn resends_the_exchange_only_when_unprocessed_and_the_keys_fetch_when_transient() {
        let exchange = |harness: &mut Harness| {
            let (state, _) = harness.start();
            let steps =
                harness.answer(&format!("{REDIRECT}?code=the-code&state={state}&iss=https%3A%2F%2Fidp.example"));
            sent(&steps).body.clone()
        };
        let busy = |status: u16| HttpResponse::json(RequestId(0), status, r#"{"error":"busy"}"#);
        let mut harness = Harness::new("api");
        let first = exchange(&mut harness);
        let steps = harness.respond(2, busy(503), 3);
        let [FlowStep::Wait(until)] = steps[..] else { panic!("{steps:?}") };
        let again = harness.timer(until, 4);
        assert_eq!((sent(&again).id, &sent(&again).body), (RequestId(4), &first), "the same exchange, a new id");
        let steps = harness.transport_error(crate::TransportErrorKind::Connect, 5);
        let [FlowStep::Wait(until)] = steps[..] else { panic!("{steps:?}") };
        let last = harness.timer(until, 6);
        let done = harness.respond(sent(&last).id.0, token_body(None), 7);
        assert!(matches!(&done[..], [FlowStep::Done(_)]), "{done:?}");

        for status in [500, 502] {
            let mut harness = Harness::new("api");
            exchange(&mut harness);
            let error = failed(harness.respond(2, busy(status), 3));
            let answered = match &error {
                Error::OAuth { status, .. } | Error::UnexpectedStatus { status, .. } => *status,
                other => panic!("{other:?}"),
            };
            assert_eq!(answered, status, "not resent: the server's answer as it came");
        }
        for kind in [crate::TransportErrorKind::Timeout, crate::TransportErrorKind::ConnectionClosed] {
            let mut harness = Harness::new("api");
            exchange(&mut harness);
            let error = failed(harness.transport_error(kind, 3));
            assert!(matches!(error, Error::Transport { kind: k, .. } if k == kind), "{error}");
        }

        // The keys: a proxy's 502 and a timeout are resent, then the login finishes.
        let mut harness = Harness::new("openid");
        let (state, nonce) = harness.start();
        harness.answer(&format!("{REDIRECT}?code=the-code&state={state}&iss=https%3A%2F%2Fidp.example"));
        let (key, jwks, kid) = ed25519(3);
        let mut claims = good_claims();
        claims["nonce"] = nonce.into();
        let fetch = harness.respond(2, token_body(Some(&sign(&key, &kid, claims))), 3);
        assert_eq!(sent(&fetch).url, "https://idp.example/jwks");
        let steps = harness.respond(3, HttpResponse::json(RequestId(0), 502, "<html>"), 4);
        let [FlowStep::Wait(until)] = steps[..] else { panic!("{steps:?}") };
        let fetch = harness.timer(until, 5);
        assert_eq!(sent(&fetch).url, "https://idp.example/jwks");
        let steps = harness.transport_error(crate::TransportErrorKind::Timeout, 6);
        let [FlowStep::Wait(until)] = steps[..] else { panic!("{steps:?}") };
        let fetch = harness.timer(until, 7);
        let jwks = serde_json::json!({"keys": [serde_json::to_value(jwks_of(&jwks)).unwrap()]});
        let done = harness.respond(sent(&fetch).id.0, HttpResponse::json(RequestId(0), 200, jwks.to_string()), 8);
        assert!(matches!(&done[..], [FlowStep::Done(tokens)] if tokens.id_token.is_some()), "{done:?}");
    }

    #[test]
    fn a_dpop_nonce_demand_resends_the_code_exchange_once_with_the_nonce() {
        let mut harness = Harness::new("api");
        harness.dpop = Some(crate::DpopProver::generate(None, &[4; 32]).unwrap().unwrap().1);
        let (state, _) = harness.start();
        let steps = harness.answer(&format!("{REDIRECT}?code=c1&state={state}&iss=https%3A%2F%2Fidp.example"));
        assert!(sent(&steps).header("dpop").is_some(), "{steps:?}");
        let demand = || {
            let mut response = HttpResponse::json(RequestId(0), 400, r#"{"error":"use_dpop_nonce"}"#);
            response.headers.push(("DPoP-Nonce".into(), "n-1".into()));
            response
        };
        let steps = harness.respond(2, demand(), 3);
        let again = sent(&steps);
        assert_eq!(again.id, RequestId(3));
        assert!(std::str::from_utf8(&again.body).unwrap().contains("code=c1"), "the same code");
        let error = failed(harness.respond(3, demand(), 4));
        assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::Other("use_dpop_nonce".into())), "once only");
    }

    #[test]
    fn full_login_verifies_the_id_token() {
        let steps = login_with_claims(good_claims());
        let [FlowStep::Done(tokens)] = &steps[..] else { panic!("{steps:?}") };
        assert_eq!(tokens.access_token.expose_secret(), "at");
        assert!(tokens.id_token.is_some());
    }

    #[test]
    fn the_verifier_matches_the_challenge() {
        let mut harness = Harness::new("api");
        let steps = {
            let context = FlowContext {
                config: &harness.config,
                metadata: Some(&harness.metadata),
                tokens: None,
                settings: &harness.settings,
                jitter: 0.5,
                assertion_id: None,
                dpop: None,
                resources: &[],
            };
            harness.flow.start(&context, RequestId(1), NOW)
        };
        let [FlowStep::Prompt(Prompt::Browser { authorization_url, .. })] = &steps[..] else { panic!() };
        let url = url::Url::parse(authorization_url).unwrap();
        let get = |name: &str| url.query_pairs().find(|(n, _)| n == name).map(|(_, v)| v.into_owned()).unwrap();
        let (challenge, state) = (get("code_challenge"), get("state"));
        let exchange = harness.answer(&format!("{REDIRECT}?code=c&state={state}"));
        let body = String::from_utf8(sent(&exchange).body.clone()).unwrap();
        let verifier = url::form_urlencoded::parse(body.as_bytes()).find(|(n, _)| n == "code_verifier").unwrap().1;
        assert!((43..=128).contains(&verifier.len()));
        assert_eq!(crate::protocol::pkce_s256_challenge(&verifier), challenge);
        // No openid, no id_token: done without fetching keys.
        let steps = harness.respond(2, token_body(None), 3);
        assert!(matches!(&steps[..], [FlowStep::Done(_)]), "{steps:?}");
    }

    #[test]
    fn tampered_state_sends_no_token_request() {
        let mut harness = Harness::new("openid");
        let (state, _) = harness.start();
        let error = failed(harness.answer(&format!("{REDIRECT}?code=c&state={state}x")));
        assert!(matches!(error, Error::MalformedResponse { .. }), "{error}");
        assert!(error.to_string().contains("state"), "{error}");
    }

    #[test]
    fn denied_and_mixed_up_redirects_fail() {
        let mut harness = Harness::new("openid");
        let (state, _) = harness.start();
        let error = failed(harness.answer(&format!("{REDIRECT}?error=access_denied&state={state}")));
        assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::AccessDenied));

        let mut harness = Harness::new("openid");
        let (state, _) = harness.start();
        let error = failed(harness.answer(&format!("{REDIRECT}?code=c&state={state}&iss=https%3A%2F%2Fevil.example")));
        assert!(error.to_string().contains("RFC 9207"), "{error}");
    }

    #[test]
    fn each_id_token_rejection_fails_the_login() {
        let now = NOW.as_unix_secs();
        for (name, value, needle) in [
            ("nonce", serde_json::json!("wrong"), "nonce"),
            ("aud", serde_json::json!("another-client"), "aud"),
            ("iss", serde_json::json!("https://evil.example"), "iss"),
            ("exp", serde_json::json!(now - 3600), "expired"),
        ] {
            let mut claims = good_claims();
            claims[name] = value;
            let error = failed(login_with_claims(claims));
            assert!(
                matches!(error, Error::MalformedResponse { .. }) && error.to_string().contains(needle),
                "{name}: {error}"
            );
        }
    }

    #[test]
    fn openid_without_id_token_fails() {
        let mut harness = Harness::new("openid");
        let (state, _) = harness.start();
        sent(&harness.answer(&format!("{REDIRECT}?code=c&state={state}")));
        let error = failed(harness.respond(2, token_body(None), 3));
        assert!(error.to_string().contains("no id_token"), "{error}");
    }

    #[test]
    fn openid_needs_discovery_and_an_authorization_endpoint() {
        let settings = EngineSettings::default();
        let explicit =
            ProviderConfig { endpoints: Endpoints::explicit("https://idp.example/token"), ..config("openid") };
        let mut flow = AuthorizationCodeFlow::new(Some("https://idp.example/authorize"), None, &[], &inputs()).unwrap();
        let context = FlowContext {
            config: &explicit,
            metadata: None,
            tokens: None,
            settings: &settings,
            jitter: 0.5,
            assertion_id: None,
            dpop: None,
            resources: &[],
        };
        let error = failed(flow.start(&context, RequestId(1), NOW));
        assert!(error.to_string().contains("discovery"), "{error}");
        // No endpoint configured and none discovered.
        let mut flow = AuthorizationCodeFlow::new(None, None, &[], &inputs()).unwrap();
        let api = ProviderConfig { scope: Some("api".into()), ..explicit };
        let context = FlowContext {
            config: &api,
            metadata: None,
            tokens: None,
            settings: &settings,
            jitter: 0.5,
            assertion_id: None,
            dpop: None,
            resources: &[],
        };
        let error = failed(flow.start(&context, RequestId(1), NOW));
        assert!(matches!(error, Error::Configuration { .. }) && error.to_string().contains("authorization endpoint"));
    }

    #[test]
    fn the_engine_runs_it_for_explicit_logins_only() {
        use crate::{Action, Engine, Event};
        let mut engine = Engine::default();
        let config = ProviderConfig {
            endpoints: Endpoints::explicit("https://idp.example/token"),
            grant: Grant::Browser {
                authorization_endpoint: Some("https://idp.example/authorize".into()),
                redirect_uri: None,
                authorization_params: Vec::new(),
            },
            ..config("api")
        };
        engine.register("b", config);
        // A silent ensure never opens a browser; a login without the runtime's inputs cannot start.
        assert!(
            matches!(&engine.ensure("b", NOW)[..], [Action::Failed { error, .. }] if error.requires_reauthentication())
        );
        assert!(matches!(&engine.login("b", NOW)[..], [Action::Failed { error: Error::Configuration { .. }, .. }]));
        let actions = engine.login_with("b", inputs(), NOW);
        let [Action::Prompt { prompt: Prompt::Browser { authorization_url, .. }, .. }] = &actions[..] else {
            panic!("{actions:?}")
        };
        let state = url::Url::parse(authorization_url)
            .unwrap()
            .query_pairs()
            .find(|(n, _)| n == "state")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        let answer = Secret::new(format!("{REDIRECT}?code=c&state={state}"));
        let actions = engine.handle(Event::Answer { key: "b".into(), answer }, NOW);
        let [Action::Send(request)] = &actions[..] else { panic!("{actions:?}") };
        assert_eq!(request.url, "https://idp.example/token");
        let response =
            HttpResponse::json(request.id, 200, r#"{"access_token":"at","refresh_token":"rt","expires_in":60}"#);
        let actions = engine.handle(Event::Response(response), NOW);
        assert!(matches!(&actions[..], [Action::Done { tokens, .. }] if tokens.refresh_token.is_some()), "{actions:?}");
        // Refresh is the standard grant.
        let later = NOW + std::time::Duration::from_secs(59);
        let [Action::Send(refresh)] = &engine.ensure("b", later)[..] else { panic!() };
        assert!(std::str::from_utf8(&refresh.body).unwrap().starts_with("grant_type=refresh_token&refresh_token=rt"));
    }

    #[test]
    fn missing_inputs_are_configuration_errors() {
        let no_random = LoginInputs { random: None, redirect_uri: Some(REDIRECT.into()) };
        let error = AuthorizationCodeFlow::new(None, None, &[], &no_random).unwrap_err();
        assert!(matches!(error, Error::Configuration { .. }), "{error}");
        let short = LoginInputs { random: Some(Zeroizing::new(vec![1; 10])), redirect_uri: Some(REDIRECT.into()) };
        assert!(matches!(AuthorizationCodeFlow::new(None, None, &[], &short), Err(Error::Configuration { .. })));
        let no_redirect = LoginInputs { redirect_uri: None, ..inputs() };
        assert!(matches!(AuthorizationCodeFlow::new(None, None, &[], &no_redirect), Err(Error::Configuration { .. })));
        // A fixed redirect URI (paste mode) needs no listener.
        assert!(AuthorizationCodeFlow::new(None, Some("http://127.0.0.1/cb"), &[], &no_redirect).is_ok());
    }
}
