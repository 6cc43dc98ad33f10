//! Amazon Cognito user-pool logins over Cognito's own JSON protocol (not OAuth): `InitiateAuth`
//! (`USER_PASSWORD_AUTH`, `CUSTOM_AUTH`), challenges answered with `RespondToAuthChallenge`
//! (`SMS_MFA`, `SOFTWARE_TOKEN_MFA`, `EMAIL_OTP`, `CUSTOM_CHALLENGE`, `SELECT_MFA_TYPE`), refresh with
//! `REFRESH_TOKEN_AUTH` (Cognito does not rotate refresh tokens: the old one is kept) and logout with
//! `RevokeToken`. Codes come from a person through [`Prompt::Code`]; a wrong code
//! (`CodeMismatchException`) is asked again within the same Session, up to `max_attempts`.
//! `SOFTWARE_TOKEN_MFA` is answered without a person when a TOTP secret is configured.
//!
//! No I/O here: requests out, responses in. Wire details live in [`crate::protocol::cognito`].

use super::{CodeChannel, Flow, FlowContext, FlowStep, Prompt};
use crate::protocol::cognito::{
    CognitoAuthResponse, CognitoCall, CognitoChallenge, initiate_auth_request, parse_auth_response, parse_exception,
    parse_revoke_response, respond_to_auth_challenge_request, revoke_token_request, secret_hash, unverified_jwt_claim,
};
use crate::{Error, HttpResponse, OAuthErrorCode, RequestId, Secret, Timestamp, TokenSet};

/// Which `InitiateAuth` flow a Cognito login uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CognitoAuthFlow {
    /// `USER_PASSWORD_AUTH`: username and password (the app client must allow
    /// `ALLOW_USER_PASSWORD_AUTH`), then any MFA challenge.
    #[default]
    UserPassword,
    /// `CUSTOM_AUTH`: username only; the pool's Lambda triggers define the challenges (usually a
    /// code sent by email, answered as `ANSWER`).
    Custom,
}

impl CognitoAuthFlow {
    /// The wire name: `USER_PASSWORD_AUTH` or `CUSTOM_AUTH`.
    pub fn as_str(self) -> &'static str {
        match self {
            CognitoAuthFlow::UserPassword => "USER_PASSWORD_AUTH",
            CognitoAuthFlow::Custom => "CUSTOM_AUTH",
        }
    }
}

/// What the login flow needs from the grant.
#[derive(Clone, Debug)]
pub(crate) struct CognitoSettings {
    pub(crate) endpoint: String,
    pub(crate) username: String,
    pub(crate) password: Option<Secret>,
    pub(crate) auth_flow: CognitoAuthFlow,
    pub(crate) totp_secret: Option<Secret>,
    pub(crate) max_attempts: u32,
}

#[derive(Debug)]
pub(crate) struct CognitoLogin {
    settings: CognitoSettings,
    state: State,
    /// Challenges received so far: a server that never stops asking must not keep an unattended login busy.
    rounds: u32,
}

#[derive(Debug)]
enum State {
    /// `InitiateAuth` sent.
    Initiating,
    /// A prompt is out; the answer goes to this challenge.
    Asking(Pending),
    /// `RespondToAuthChallenge` sent for this challenge.
    Responding(Pending),
    Finished,
}

#[derive(Debug)]
struct Pending {
    challenge: CognitoChallenge,
    /// The username Cognito knows the user by (`USER_ID_FOR_SRP`), for answers and `SECRET_HASH`.
    username: String,
    /// 1 for the first answer to this challenge.
    attempt: u32,
    /// True when tessera answered by itself (TOTP from the configured secret).
    automatic: bool,
}

/// The challenge-response key, the channel and (masked) destination shown to the person.
fn describe(challenge: &CognitoChallenge) -> Option<(&'static str, CodeChannel, Option<String>)> {
    // The destination is the server's text, shown to the person.
    let parameter = |names: &[&str]| {
        names.iter().find_map(|name| challenge.parameters.get(*name)).map(|text| crate::protocol::server_text(text))
    };
    Some(match challenge.name.as_str() {
        "SMS_MFA" | "SMS_OTP" => ("SMS_MFA_CODE", CodeChannel::Sms, parameter(&["CODE_DELIVERY_DESTINATION"])),
        "EMAIL_OTP" => ("EMAIL_OTP_CODE", CodeChannel::Email, parameter(&["CODE_DELIVERY_DESTINATION"])),
        "SOFTWARE_TOKEN_MFA" => {
            ("SOFTWARE_TOKEN_MFA_CODE", CodeChannel::Authenticator, parameter(&["FRIENDLY_DEVICE_NAME"]))
        }
        "CUSTOM_CHALLENGE" => {
            let channel = match challenge.parameters.get("CODE_DELIVERY_DELIVERY_MEDIUM").map(String::as_str) {
                Some("EMAIL") => CodeChannel::Email,
                Some("SMS") => CodeChannel::Sms,
                _ if challenge.parameters.contains_key("email") => CodeChannel::Email,
                _ => CodeChannel::Custom,
            };
            ("ANSWER", channel, parameter(&["CODE_DELIVERY_DESTINATION", "email", "destination", "phone_number"]))
        }
        _ => return None,
    })
}

/// The factor to answer `SELECT_MFA_TYPE` with: `SOFTWARE_TOKEN_MFA` when tessera can generate
/// the code itself, else the first factor Cognito offers (`MFAS_CAN_CHOOSE`, a JSON list, in its
/// order) that a person can answer with a code. Without the list (older pools, emulators): the
/// generated TOTP or SMS, as before. `None`: nothing offered can be answered.
fn choose_mfa_type(challenge: &CognitoChallenge, has_totp_secret: bool) -> Option<&'static str> {
    const ANSWERABLE: [&str; 3] = ["SOFTWARE_TOKEN_MFA", "SMS_MFA", "EMAIL_OTP"];
    let offered: Option<Vec<String>> =
        challenge.parameters.get("MFAS_CAN_CHOOSE").and_then(|list| serde_json::from_str(list).ok());
    let Some(offered) = offered else {
        return Some(if has_totp_secret { "SOFTWARE_TOKEN_MFA" } else { "SMS_MFA" });
    };
    if has_totp_secret && offered.iter().any(|factor| factor == "SOFTWARE_TOKEN_MFA") {
        return Some("SOFTWARE_TOKEN_MFA");
    }
    offered.iter().find_map(|factor| ANSWERABLE.into_iter().find(|known| known == factor))
}

/// The most challenges one login answers (MFA choice, codes, custom steps; wrong codes included).
const MAX_CHALLENGE_ROUNDS: u32 = 10;

impl CognitoLogin {
    pub(crate) fn new(settings: CognitoSettings) -> Self {
        let max_attempts = settings.max_attempts.max(1);
        CognitoLogin { settings: CognitoSettings { max_attempts, ..settings }, state: State::Initiating, rounds: 0 }
    }

    fn fail(&mut self, error: Error) -> Vec<FlowStep> {
        self.state = State::Finished;
        vec![FlowStep::Failed(error)]
    }

    /// A challenge arrived (first, or again after an answer): ask, or answer it ourselves.
    fn on_challenge(
        &mut self,
        context: &FlowContext<'_>,
        challenge: CognitoChallenge,
        previous: Option<&Pending>,
        request_id: RequestId,
        now: Timestamp,
    ) -> Vec<FlowStep> {
        let endpoint = &self.settings.endpoint;
        self.rounds += 1;
        if self.rounds > MAX_CHALLENGE_ROUNDS {
            return self.fail(Error::OAuth {
                code: OAuthErrorCode::InvalidGrant,
                description: Some(format!(
                    "Cognito kept asking challenges ({MAX_CHALLENGE_ROUNDS} answered); the login was abandoned"
                )),
                status: 200,
                endpoint: crate::http::endpoint_of(endpoint),
            });
        }
        if challenge.session.is_none() {
            return self.fail(Error::MalformedResponse {
                endpoint: crate::http::endpoint_of(endpoint),
                reason: format!("the {} challenge came without a Session", challenge.name),
            });
        }
        let username = challenge
            .parameters
            .get("USER_ID_FOR_SRP")
            .or_else(|| challenge.parameters.get("USERNAME"))
            .cloned()
            .unwrap_or_else(|| self.settings.username.clone());
        // The same challenge again right after answering it: the answer was wrong (CUSTOM_AUTH
        // triggers ask again this way instead of raising CodeMismatchException).
        let retry_of = previous.filter(|p| p.challenge.name == challenge.name && !p.automatic);
        if previous.is_some_and(|p| p.challenge.name == challenge.name && p.automatic) {
            // Our own answer (a generated TOTP code, an MFA choice) was refused: it would be the same again.
            return self.fail(Error::OAuth {
                code: OAuthErrorCode::InvalidGrant,
                description: Some(format!(
                    "Cognito asked the {} challenge again after tessera answered it (check totp_secret and the clock)",
                    challenge.name
                )),
                status: 200,
                endpoint: crate::http::endpoint_of(endpoint),
            });
        }
        let attempt = retry_of.map_or(1, |p| p.attempt + 1);
        if challenge.name == "SELECT_MFA_TYPE" {
            let Some(choice) = choose_mfa_type(&challenge, self.settings.totp_secret.is_some()) else {
                let offered = challenge.parameters.get("MFAS_CAN_CHOOSE").map(String::as_str).unwrap_or_default();
                return self.fail(Error::OAuth {
                    code: OAuthErrorCode::InvalidGrant,
                    description: Some(format!(
                        "SELECT_MFA_TYPE offers {}, none of which tessera answers (SMS_MFA, EMAIL_OTP, \
                         SOFTWARE_TOKEN_MFA)",
                        crate::protocol::printable(offered)
                    )),
                    status: 200,
                    endpoint: crate::http::endpoint_of(endpoint),
                });
            };
            let pending = Pending { challenge, username, attempt: 1, automatic: true };
            return self.respond(context, pending, &Secret::new(choice), request_id);
        }
        if challenge.name == "NEW_PASSWORD_REQUIRED" {
            return self.fail(Error::OAuth {
                code: OAuthErrorCode::InvalidGrant,
                description: Some(
                    "NEW_PASSWORD_REQUIRED: the user must set a permanent password first (e.g. AdminSetUserPassword \
                     with Permanent=true, or a first sign-in elsewhere)"
                        .into(),
                ),
                status: 200,
                endpoint: crate::http::endpoint_of(endpoint),
            });
        }
        let Some((_, channel, destination)) = describe(&challenge) else {
            return self.fail(Error::configuration(format!(
                "Cognito asked for the {} challenge, which tessera does not answer (supported: SMS_MFA, \
                 SOFTWARE_TOKEN_MFA, EMAIL_OTP, CUSTOM_CHALLENGE, SELECT_MFA_TYPE)",
                challenge.name
            )));
        };
        if attempt > self.settings.max_attempts {
            return self.fail(exhausted(endpoint, &challenge.name, attempt - 1, 400));
        }
        if challenge.name == "SOFTWARE_TOKEN_MFA"
            && let Some(secret) = &self.settings.totp_secret
        {
            let code = match super::totp_code(secret, now) {
                Ok(code) => code,
                Err(error) => return self.fail(error),
            };
            let pending = Pending { challenge, username, attempt, automatic: true };
            return self.respond(context, pending, &code, request_id);
        }
        let previous_error = retry_of.map(|_| "the code was not accepted".to_owned());
        let prompt = Prompt::Code { channel, destination, attempt, previous_error };
        self.state = State::Asking(Pending { challenge, username, attempt, automatic: false });
        vec![FlowStep::Prompt(prompt)]
    }

    fn respond(
        &mut self,
        context: &FlowContext<'_>,
        pending: Pending,
        answer: &Secret,
        request_id: RequestId,
    ) -> Vec<FlowStep> {
        let key = match pending.challenge.name.as_str() {
            "SELECT_MFA_TYPE" => "ANSWER",
            _ => describe(&pending.challenge).map_or("ANSWER", |(key, _, _)| key),
        };
        let client = &context.config.client;
        let hash = client.client_secret.as_ref().map(|s| secret_hash(s, &pending.username, &client.client_id));
        let mut responses = vec![("USERNAME", pending.username.as_str()), (key, answer.expose_secret())];
        if let Some(hash) = &hash {
            responses.push(("SECRET_HASH", hash.expose_secret()));
        }
        let Some(session) = pending.challenge.session.as_ref() else {
            return self.fail(Error::internal(
                "a Cognito challenge without a Session got this far (it is refused on arrival)",
            ));
        };
        let request = respond_to_auth_challenge_request(
            request_id,
            &self.settings.endpoint,
            &client.client_id,
            &pending.challenge.name,
            session,
            &responses,
        );
        self.state = State::Responding(pending);
        vec![FlowStep::Send(request)]
    }
}

fn exhausted(endpoint: &str, challenge: &str, attempts: u32, status: u16) -> Error {
    Error::OAuth {
        code: OAuthErrorCode::InvalidGrant,
        description: Some(format!(
            "CodeMismatchException: {attempts} wrong code{} for the {challenge} challenge, no attempts left; log in \
             again",
            if attempts == 1 { "" } else { "s" }
        )),
        status,
        endpoint: crate::http::endpoint_of(endpoint),
    }
}

impl super::resend::Resendable for CognitoLogin {
    fn resend_rule(&self) -> super::resend::ResendRule {
        use super::resend::ResendRule;
        match self.state {
            // InitiateAuth starts over (a new Session); repeating it is like repeating a password login.
            State::Initiating => ResendRule::WhenTransient,
            // A Session answers one challenge, and wrong codes count against the attempts.
            State::Responding(_) => ResendRule::WhenNotProcessed,
            State::Asking(_) | State::Finished => ResendRule::Never,
        }
    }
}

impl Flow for CognitoLogin {
    fn start(&mut self, context: &FlowContext<'_>, request_id: RequestId, _now: Timestamp) -> Vec<FlowStep> {
        let settings = &self.settings;
        if settings.username.is_empty() {
            return self.fail(Error::configuration("the cognito grant needs a username"));
        }
        let client = &context.config.client;
        let hash = client.client_secret.as_ref().map(|s| secret_hash(s, &settings.username, &client.client_id));
        let mut parameters = vec![("USERNAME", settings.username.as_str())];
        match (settings.auth_flow, &settings.password) {
            (CognitoAuthFlow::UserPassword, Some(password)) => parameters.push(("PASSWORD", password.expose_secret())),
            (CognitoAuthFlow::UserPassword, None) => {
                return self.fail(Error::configuration(
                    "the cognito grant with USER_PASSWORD_AUTH needs a password (or use auth_flow CUSTOM_AUTH)",
                ));
            }
            (CognitoAuthFlow::Custom, _) => {}
        }
        if let Some(hash) = &hash {
            parameters.push(("SECRET_HASH", hash.expose_secret()));
        }
        let request = initiate_auth_request(
            request_id,
            &settings.endpoint,
            &client.client_id,
            settings.auth_flow.as_str(),
            &parameters,
        );
        self.state = State::Initiating;
        vec![FlowStep::Send(request)]
    }

    fn on_response(
        &mut self,
        context: &FlowContext<'_>,
        response: &HttpResponse,
        request_id: RequestId,
        now: Timestamp,
    ) -> Vec<FlowStep> {
        let endpoint = self.settings.endpoint.clone();
        let previous = match std::mem::replace(&mut self.state, State::Finished) {
            State::Initiating => None,
            State::Responding(pending) => Some(pending),
            State::Asking(_) | State::Finished => {
                return self.fail(Error::internal("the cognito login got a response it did not ask for"));
            }
        };
        let code_mismatch = !(200..300).contains(&response.status)
            && parse_exception(response).is_some_and(|e| e.name == "CodeMismatchException");
        let previous = match previous {
            Some(mut pending) if code_mismatch => {
                // A wrong code: the same Session stays usable, so ask again (a generated TOTP code
                // being refused means a wrong secret or clock: asking again would not help).
                if pending.automatic || pending.attempt >= self.settings.max_attempts {
                    let error = if pending.automatic {
                        Error::OAuth {
                        code: OAuthErrorCode::InvalidGrant,
                        description: Some(
                            "CodeMismatchException: the TOTP code generated from totp_secret was refused (check the \
                             secret and the clock)"
                                .into(),
                        ),
                        status: response.status,
                        endpoint: crate::http::endpoint_of(&endpoint),
                    }
                    } else {
                        exhausted(&endpoint, &pending.challenge.name, pending.attempt, response.status)
                    };
                    return self.fail(error);
                }
                pending.attempt += 1;
                let (_, channel, destination) =
                    describe(&pending.challenge).unwrap_or(("ANSWER", CodeChannel::Custom, None));
                let prompt = Prompt::Code {
                    channel,
                    destination,
                    attempt: pending.attempt,
                    previous_error: Some("CodeMismatchException: the code was not accepted".into()),
                };
                self.state = State::Asking(pending);
                return vec![FlowStep::Prompt(prompt)];
            }
            other => other,
        };
        match parse_auth_response(response, &endpoint, CognitoCall::Login, now) {
            Ok(CognitoAuthResponse::Tokens(tokens)) => {
                self.state = State::Finished;
                vec![FlowStep::Done(tokens)]
            }
            Ok(CognitoAuthResponse::Challenge(challenge)) => {
                self.on_challenge(context, challenge, previous.as_ref(), request_id, now)
            }
            Err(error) => self.fail(error),
        }
    }

    fn on_answer(
        &mut self,
        context: &FlowContext<'_>,
        answer: Secret,
        request_id: RequestId,
        _now: Timestamp,
    ) -> Vec<FlowStep> {
        let State::Asking(pending) = std::mem::replace(&mut self.state, State::Finished) else {
            return self.fail(Error::internal("the cognito login got an answer it did not ask for"));
        };
        // People paste codes with spaces ("123 456") or a trailing newline; custom answers are sent as typed, trimmed.
        let code = if pending.challenge.name == "CUSTOM_CHALLENGE" {
            Secret::new(answer.expose_secret().trim())
        } else {
            Secret::new(answer.expose_secret().chars().filter(|c| !c.is_whitespace()).collect::<String>())
        };
        if code.is_empty() {
            return self.fail(Error::configuration("no code was entered"));
        }
        self.respond(context, pending, &code, request_id)
    }
}

/// `REFRESH_TOKEN_AUTH`: new access and ID tokens; the refresh token is kept (Cognito does not rotate it).
#[derive(Debug)]
pub(crate) struct CognitoRefresh {
    pub(crate) endpoint: String,
    /// The username given in the grant: the `SECRET_HASH` fallback when the tokens do not name one.
    pub(crate) username: String,
}

/// The username for a refresh's `SECRET_HASH`: Cognito's own name for the user (the access token's
/// `username` claim, or the ID token's `cognito:username`), which differs from the name used to log
/// in when that was an email or phone alias; else the configured username.
fn refresh_username(tokens: &TokenSet, configured: &str) -> String {
    unverified_jwt_claim(&tokens.access_token, "username")
        .or_else(|| tokens.id_token.as_ref().and_then(|id| unverified_jwt_claim(id, "cognito:username")))
        .unwrap_or_else(|| configured.to_owned())
}

impl super::resend::Resendable for CognitoRefresh {
    /// `REFRESH_TOKEN_AUTH` spends nothing: Cognito refuses it on app clients with refresh-token
    /// rotation (those need `GetTokensFromRefreshToken`), so the same token works again.
    fn resend_rule(&self) -> super::resend::ResendRule {
        super::resend::ResendRule::WhenTransient
    }
}

impl Flow for CognitoRefresh {
    fn start(&mut self, context: &FlowContext<'_>, request_id: RequestId, _now: Timestamp) -> Vec<FlowStep> {
        let Some(tokens) = context.tokens else {
            return vec![FlowStep::Failed(Error::ReauthenticationRequired { reason: "no tokens to refresh".into() })];
        };
        let Some(refresh_token) = &tokens.refresh_token else {
            return vec![FlowStep::Failed(Error::ReauthenticationRequired { reason: "no refresh token".into() })];
        };
        let client = &context.config.client;
        let username = refresh_username(tokens, &self.username);
        let hash = client.client_secret.as_ref().map(|s| secret_hash(s, &username, &client.client_id));
        let mut parameters = vec![("REFRESH_TOKEN", refresh_token.expose_secret())];
        if let Some(hash) = &hash {
            // No USERNAME parameter: REFRESH_TOKEN_AUTH takes only REFRESH_TOKEN and SECRET_HASH.
            parameters.push(("SECRET_HASH", hash.expose_secret()));
        }
        let request =
            initiate_auth_request(request_id, &self.endpoint, &client.client_id, "REFRESH_TOKEN_AUTH", &parameters);
        vec![FlowStep::Send(request)]
    }

    fn on_response(
        &mut self,
        context: &FlowContext<'_>,
        response: &HttpResponse,
        _request_id: RequestId,
        now: Timestamp,
    ) -> Vec<FlowStep> {
        match parse_auth_response(response, &self.endpoint, CognitoCall::Refresh, now) {
            Ok(CognitoAuthResponse::Tokens(mut tokens)) => {
                let old = context.tokens;
                if tokens.refresh_token.is_none() {
                    tokens.refresh_token = old.and_then(|t| t.refresh_token.clone());
                    tokens.refresh_expires_at = old.and_then(|t| t.refresh_expires_at);
                }
                if tokens.id_token.is_none() {
                    tokens.id_token = old.and_then(|t| t.id_token.clone());
                }
                vec![FlowStep::Done(tokens)]
            }
            Ok(CognitoAuthResponse::Challenge(challenge)) => vec![FlowStep::Failed(Error::ReauthenticationRequired {
                reason: format!("Cognito asked for the {} challenge during a refresh; log in again", challenge.name),
            })],
            Err(error) => vec![FlowStep::Failed(error)],
        }
    }
}

/// `RevokeToken` with the refresh token (Cognito revokes refresh tokens only; with one, the access
/// tokens issued from it).
#[derive(Debug)]
pub(crate) struct CognitoRevoke {
    pub(crate) endpoint: String,
}

impl super::resend::Resendable for CognitoRevoke {
    /// Revoking twice revokes once.
    fn resend_rule(&self) -> super::resend::ResendRule {
        super::resend::ResendRule::WhenTransient
    }
}

impl Flow for CognitoRevoke {
    fn start(&mut self, context: &FlowContext<'_>, request_id: RequestId, _now: Timestamp) -> Vec<FlowStep> {
        let Some(refresh_token) = context.tokens.and_then(|t| t.refresh_token.as_ref()) else {
            return vec![FlowStep::Failed(Error::configuration(
                "nothing to revoke at Cognito: RevokeToken takes a refresh token, and none is held",
            ))];
        };
        let client = &context.config.client;
        let request = revoke_token_request(
            request_id,
            &self.endpoint,
            &client.client_id,
            client.client_secret.as_ref(),
            refresh_token,
        );
        vec![FlowStep::Send(request)]
    }

    fn on_response(
        &mut self,
        _context: &FlowContext<'_>,
        response: &HttpResponse,
        _request_id: RequestId,
        _now: Timestamp,
    ) -> Vec<FlowStep> {
        match parse_revoke_response(response, &self.endpoint) {
            Ok(()) => vec![FlowStep::Revoked],
            Err(error) => vec![FlowStep::Failed(error)],
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::protocol::cognito::COGNITO_CONTENT_TYPE;
    use crate::{Action, ClientAuth, Endpoints, Engine, Event, Grant, HttpRequest, ProviderConfig};

    const T0: Timestamp = Timestamp::from_unix_secs(1_700_000_000);
    const ENDPOINT: &str = "https://cognito-idp.eu-west-1.amazonaws.com/";

    fn grant(password: Option<&str>, auth_flow: CognitoAuthFlow, totp_secret: Option<&str>) -> Grant {
        Grant::Cognito {
            endpoint_url: ENDPOINT.into(),
            username: "alice".into(),
            password: password.map(Secret::new),
            auth_flow,
            totp_secret: totp_secret.map(Secret::new),
            max_code_attempts: 3,
        }
    }

    fn new_engine_with(grant: Grant, client: ClientAuth) -> Engine {
        let mut engine = Engine::default();
        engine.register("c", ProviderConfig { client, endpoints: Endpoints::explicit(ENDPOINT), scope: None, grant });
        engine
    }

    fn new_engine(grant: Grant) -> Engine {
        new_engine_with(grant, ClientAuth::public("client123"))
    }

    fn sent(actions: &[Action]) -> &HttpRequest {
        match actions {
            [Action::Send(request)] => request,
            other => panic!("expected one request, got {other:?}"),
        }
    }

    fn body(request: &HttpRequest) -> serde_json::Value {
        serde_json::from_slice(&request.body).unwrap()
    }

    fn reply(engine: &mut Engine, request: &HttpRequest, status: u16, body: &str) -> Vec<Action> {
        let response = HttpResponse {
            request_id: request.id,
            status,
            headers: vec![("content-type".into(), COGNITO_CONTENT_TYPE.into())],
            body: body.as_bytes().to_vec(),
        };
        engine.handle(Event::Response(response), T0)
    }

    fn answer(engine: &mut Engine, code: &str) -> Vec<Action> {
        engine.handle(Event::Answer { key: "c".into(), answer: Secret::new(code) }, T0)
    }

    const TOKENS: &str = r#"{"AuthenticationResult":{"AccessToken":"at","ExpiresIn":3600,"IdToken":"it","RefreshToken":"rt","TokenType":"Bearer"},"ChallengeParameters":{}}"#;

    fn challenge(name: &str, session: &str, parameters: &str) -> String {
        format!(r#"{{"ChallengeName":"{name}","Session":"{session}","ChallengeParameters":{parameters}}}"#)
    }

    #[test]
    fn user_password_login_bytes_then_tokens() {
        let mut engine = new_engine(grant(Some("hunter2"), CognitoAuthFlow::UserPassword, None));
        let actions = engine.ensure("c", T0);
        let request = sent(&actions);
        assert_eq!(request.url, ENDPOINT);
        assert_eq!(request.header("x-amz-target"), Some("AWSCognitoIdentityProviderService.InitiateAuth"));
        assert_eq!(
            std::str::from_utf8(&request.body).unwrap(),
            r#"{"AuthFlow":"USER_PASSWORD_AUTH","ClientId":"client123","AuthParameters":{"PASSWORD":"hunter2","USERNAME":"alice"}}"#
        );
        let done = reply(&mut engine, request, 200, TOKENS);
        let [Action::Done { tokens, .. }] = &done[..] else { panic!("{done:?}") };
        assert_eq!(tokens.expires_at, Some(T0 + Duration::from_secs(3600)));
    }

    #[test]
    fn secret_hash_is_sent_by_confidential_clients() {
        let client = ClientAuth::post("client123", Secret::new("s3cret"));
        let mut engine = new_engine_with(grant(Some("pw"), CognitoAuthFlow::UserPassword, None), client);
        let actions = engine.login("c", T0);
        let sent_body = body(sent(&actions));
        assert_eq!(sent_body["AuthParameters"]["SECRET_HASH"], "niZNW/ZQghRxFdJYi0VOaDK45OiGfd7izxt7n+eqSJM=");
        assert!(sent_body.get("ClientSecret").is_none(), "the secret itself is never sent to InitiateAuth");
        // The challenge answer hashes the username Cognito returned (USER_ID_FOR_SRP).
        let asked = reply(
            &mut engine,
            sent(&actions),
            200,
            &challenge("SMS_MFA", "s1", r#"{"USER_ID_FOR_SRP":"uuid-1","CODE_DELIVERY_DESTINATION":"+***12"}"#),
        );
        assert!(matches!(&asked[..], [Action::Prompt { .. }]));
        let respond = answer(&mut engine, "123456");
        let responses = &body(sent(&respond))["ChallengeResponses"];
        assert_eq!(responses["USERNAME"], "uuid-1");
        assert_eq!(
            responses["SECRET_HASH"].as_str().unwrap(),
            secret_hash(&Secret::new("s3cret"), "uuid-1", "client123").expose_secret()
        );
    }

    #[test]
    fn each_challenge_prompts_with_its_channel_and_answers_with_its_key() {
        for (name, parameters, channel, destination, key) in [
            (
                "SMS_MFA",
                r#"{"CODE_DELIVERY_DESTINATION":"+*******1234"}"#,
                CodeChannel::Sms,
                Some("+*******1234"),
                "SMS_MFA_CODE",
            ),
            (
                "EMAIL_OTP",
                r#"{"CODE_DELIVERY_DESTINATION":"a***@e***"}"#,
                CodeChannel::Email,
                Some("a***@e***"),
                "EMAIL_OTP_CODE",
            ),
            ("SOFTWARE_TOKEN_MFA", r#"{}"#, CodeChannel::Authenticator, None, "SOFTWARE_TOKEN_MFA_CODE"),
            ("CUSTOM_CHALLENGE", r#"{"email":"a***@e***"}"#, CodeChannel::Email, Some("a***@e***"), "ANSWER"),
            ("CUSTOM_CHALLENGE", r#"{"question":"colour?"}"#, CodeChannel::Custom, None, "ANSWER"),
        ] {
            let mut engine = new_engine(grant(Some("pw"), CognitoAuthFlow::UserPassword, None));
            let actions = engine.login("c", T0);
            let asked = reply(&mut engine, sent(&actions), 200, &challenge(name, "sess-1", parameters));
            let [Action::Prompt { prompt, .. }] = &asked[..] else { panic!("{name}: {asked:?}") };
            assert_eq!(
                prompt,
                &Prompt::Code {
                    channel,
                    destination: destination.map(str::to_owned),
                    attempt: 1,
                    previous_error: None
                },
                "{name}"
            );
            let respond = answer(&mut engine, "123 456");
            let request = sent(&respond);
            assert_eq!(
                request.header("x-amz-target"),
                Some("AWSCognitoIdentityProviderService.RespondToAuthChallenge")
            );
            let expected_code = if name == "CUSTOM_CHALLENGE" { "123 456" } else { "123456" };
            assert_eq!(
                body(request),
                serde_json::json!({
                    "ChallengeName": name,
                    "ClientId": "client123",
                    "Session": "sess-1",
                    "ChallengeResponses": { "USERNAME": "alice", key: expected_code },
                }),
                "{name}"
            );
            let done = reply(&mut engine, request, 200, TOKENS);
            assert!(matches!(&done[..], [Action::Done { .. }]), "{name}: {done:?}");
        }
    }

    #[test]
    fn code_mismatch_asks_again_with_the_same_session_then_gives_up() {
        let mut engine = new_engine(grant(Some("pw"), CognitoAuthFlow::UserPassword, None));
        let actions = engine.login("c", T0);
        reply(&mut engine, sent(&actions), 200, &challenge("SMS_MFA", "sess-1", "{}"));
        let mismatch = r#"{"__type":"CodeMismatchException","message":"Invalid code or auth state for the user."}"#;
        for attempt in 2..=3 {
            let respond = answer(&mut engine, "000000");
            assert_eq!(body(sent(&respond))["Session"], "sess-1");
            let again = reply(&mut engine, sent(&respond), 400, mismatch);
            let [Action::Prompt { prompt: Prompt::Code { attempt: got, previous_error: Some(reason), .. }, .. }] =
                &again[..]
            else {
                panic!("{again:?}")
            };
            assert_eq!(*got, attempt);
            assert!(reason.contains("CodeMismatchException"));
        }
        let respond = answer(&mut engine, "999999");
        let failed = reply(&mut engine, sent(&respond), 400, mismatch);
        let [Action::Failed { error, .. }] = &failed[..] else { panic!("{failed:?}") };
        assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidGrant));
        assert!(error.to_string().contains("3 wrong codes"), "{error}");
        assert!(!error.to_string().contains("999999"));
    }

    #[test]
    fn a_repeated_custom_challenge_counts_as_a_wrong_answer() {
        let mut engine = new_engine(grant(None, CognitoAuthFlow::Custom, None));
        assert!(
            matches!(&engine.ensure("c", T0)[..], [Action::Failed { error, .. }] if error.requires_reauthentication())
        );
        let actions = engine.login("c", T0);
        assert_eq!(
            std::str::from_utf8(&sent(&actions).body).unwrap(),
            r#"{"AuthFlow":"CUSTOM_AUTH","ClientId":"client123","AuthParameters":{"USERNAME":"alice"}}"#
        );
        reply(&mut engine, sent(&actions), 200, &challenge("CUSTOM_CHALLENGE", "s1", "{}"));
        let respond = answer(&mut engine, "wrong");
        let again = reply(&mut engine, sent(&respond), 200, &challenge("CUSTOM_CHALLENGE", "s2", "{}"));
        assert!(matches!(
            &again[..],
            [Action::Prompt { prompt: Prompt::Code { attempt: 2, previous_error: Some(_), .. }, .. }]
        ));
        let respond = answer(&mut engine, "right");
        assert_eq!(body(sent(&respond))["Session"], "s2", "the new Session is used");
    }

    #[test]
    fn totp_secret_answers_software_token_mfa_without_a_prompt() {
        // RFC 6238 secret "12345678901234567890".
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        let mut engine = new_engine(grant(Some("pw"), CognitoAuthFlow::UserPassword, Some(secret)));
        let actions = engine.ensure("c", T0);
        let respond = reply(&mut engine, sent(&actions), 200, &challenge("SOFTWARE_TOKEN_MFA", "s1", "{}"));
        let expected = super::super::totp_code(&Secret::new(secret), T0).unwrap();
        assert_eq!(body(sent(&respond))["ChallengeResponses"]["SOFTWARE_TOKEN_MFA_CODE"], expected.expose_secret());
        let failed = reply(&mut engine, sent(&respond), 400, r#"{"__type":"CodeMismatchException"}"#);
        let [Action::Failed { error, .. }] = &failed[..] else { panic!("{failed:?}") };
        assert!(error.to_string().contains("check the secret and the clock"), "{error}");

        // SELECT_MFA_TYPE is answered with the factor we can produce.
        let mut engine = new_engine(grant(Some("pw"), CognitoAuthFlow::UserPassword, Some(secret)));
        let actions = engine.ensure("c", T0);
        let select = reply(&mut engine, sent(&actions), 200, &challenge("SELECT_MFA_TYPE", "s1", "{}"));
        assert_eq!(body(sent(&select))["ChallengeResponses"]["ANSWER"], "SOFTWARE_TOKEN_MFA");
        let respond = reply(&mut engine, sent(&select), 200, &challenge("SOFTWARE_TOKEN_MFA", "s2", "{}"));
        assert_eq!(body(sent(&respond))["Session"], "s2");
        // The same challenge again after our generated answer: no loop, a typed error.
        let again = reply(&mut engine, sent(&respond), 200, &challenge("SOFTWARE_TOKEN_MFA", "s3", "{}"));
        let [Action::Failed { error, .. }] = &again[..] else { panic!("{again:?}") };
        assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidGrant));
    }

    /// `MFAS_CAN_CHOOSE` decides: the generated TOTP when offered, else the first offered factor a
    /// person can answer; nothing answerable is a typed error naming what was offered.
    #[test]
    fn select_mfa_type_follows_what_cognito_offers() {
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        let offer = |list: &str| format!(r#"{{"MFAS_CAN_CHOOSE":{}}}"#, serde_json::to_string(list).unwrap());
        for (totp_secret, offered, expected) in [
            (Some(secret), r#"["SMS_MFA","SOFTWARE_TOKEN_MFA"]"#, Some("SOFTWARE_TOKEN_MFA")),
            (None, r#"["SOFTWARE_TOKEN_MFA","SMS_MFA"]"#, Some("SOFTWARE_TOKEN_MFA")),
            (None, r#"["EMAIL_OTP","SMS_MFA"]"#, Some("EMAIL_OTP")),
            (Some(secret), r#"["EMAIL_OTP"]"#, Some("EMAIL_OTP")),
            (None, r#"["WEB_AUTHN"]"#, None),
        ] {
            let mut engine = new_engine(grant(Some("pw"), CognitoAuthFlow::UserPassword, totp_secret));
            let actions = engine.ensure("c", T0);
            let select = reply(&mut engine, sent(&actions), 200, &challenge("SELECT_MFA_TYPE", "s1", &offer(offered)));
            match expected {
                Some(choice) => {
                    assert_eq!(body(sent(&select))["ChallengeResponses"]["ANSWER"], choice, "{offered}");
                }
                None => {
                    let [Action::Failed { error, .. }] = &select[..] else { panic!("{offered}: {select:?}") };
                    assert!(error.to_string().contains("WEB_AUTHN"), "{error}");
                }
            }
        }
    }

    #[test]
    fn a_server_that_never_stops_asking_ends_the_login_after_ten_challenges() {
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        let mut engine = new_engine(grant(Some("pw"), CognitoAuthFlow::UserPassword, Some(secret)));
        let mut actions = engine.ensure("c", T0);
        for round in 0..20 {
            let name = if round % 2 == 0 { "SELECT_MFA_TYPE" } else { "SOFTWARE_TOKEN_MFA" };
            let next = reply(&mut engine, sent(&actions), 200, &challenge(name, &format!("s{round}"), "{}"));
            if let [Action::Failed { error, .. }] = &next[..] {
                assert_eq!(round, 10, "the eleventh challenge is refused");
                assert!(error.to_string().contains("kept asking"), "{error}");
                return;
            }
            actions = next;
        }
        panic!("the login answered 20 challenges without giving up");
    }

    #[test]
    fn login_errors_are_typed() {
        for (status, body, check) in [
            (
                400,
                r#"{"__type":"NotAuthorizedException","message":"Incorrect username or password."}"#,
                "invalid_grant",
            ),
            (400, r#"{"__type":"UserNotFoundException","message":"User does not exist."}"#, "invalid_grant"),
            (400, r#"{"__type":"TooManyRequestsException"}"#, "temporarily_unavailable"),
            (500, r#"{"__type":"InternalErrorException"}"#, "server_error"),
            (200, &challenge("NEW_PASSWORD_REQUIRED", "s", "{}"), "permanent password"),
            (200, &challenge("DEVICE_SRP_AUTH", "s", "{}"), "does not answer"),
            (200, r#"{"ChallengeName":"SMS_MFA","ChallengeParameters":{}}"#, "without a Session"),
        ] {
            let mut engine = new_engine(grant(Some("hunter2"), CognitoAuthFlow::UserPassword, None));
            let mut actions = engine.login("c", T0);
            let mut failed = reply(&mut engine, sent(&actions), status, body);
            if status == 500 {
                // InitiateAuth starts over: resent after the backoff, three attempts in all.
                for _ in 0..2 {
                    let [Action::Wait { until, .. }] = &failed[..] else { panic!("{body}: {failed:?}") };
                    actions = engine.handle(Event::Timer { key: "c".into() }, *until);
                    failed = reply(&mut engine, sent(&actions), status, body);
                }
            }
            let [Action::Failed { error, .. }] = &failed[..] else { panic!("{body}: {failed:?}") };
            assert!(error.to_string().contains(check), "{body}: {error}");
            assert!(!error.to_string().contains("hunter2"));
        }
        let mut engine = new_engine(grant(None, CognitoAuthFlow::UserPassword, None));
        let failed = engine.login("c", T0);
        assert!(matches!(&failed[..], [Action::Failed { error: Error::Configuration { .. }, .. }]));
    }

    fn logged_in(engine: &mut Engine) {
        let actions = engine.login("c", T0);
        let done = reply(engine, sent(&actions), 200, TOKENS);
        assert!(matches!(&done[..], [Action::Done { .. }]));
    }

    #[test]
    fn refresh_keeps_the_refresh_token_and_a_rejected_one_needs_a_login() {
        let client = ClientAuth::post("client123", Secret::new("s3cret"));
        let mut engine = new_engine_with(grant(Some("pw"), CognitoAuthFlow::UserPassword, None), client);
        logged_in(&mut engine);
        let later = T0 + Duration::from_secs(3590);
        let actions = engine.ensure("c", later);
        let request = sent(&actions);
        assert_eq!(
            std::str::from_utf8(&request.body).unwrap(),
            format!(
                r#"{{"AuthFlow":"REFRESH_TOKEN_AUTH","ClientId":"client123","AuthParameters":{{"REFRESH_TOKEN":"rt","SECRET_HASH":"{}"}}}}"#,
                secret_hash(&Secret::new("s3cret"), "alice", "client123").expose_secret()
            )
        );
        let done = reply(&mut engine, request, 200, r#"{"AuthenticationResult":{"AccessToken":"at2","ExpiresIn":60}}"#);
        let [Action::Done { tokens, .. }] = &done[..] else { panic!("{done:?}") };
        assert_eq!(tokens.access_token.expose_secret(), "at2");
        assert_eq!(
            tokens.refresh_token.as_ref().map(Secret::expose_secret),
            Some("rt"),
            "kept: Cognito does not rotate"
        );
        assert_eq!(tokens.id_token.as_ref().map(Secret::expose_secret), Some("it"));

        // A revoked refresh token: invalid_grant, so the engine drops it and (password grant) logs in again.
        let actions = engine.refresh("c", later);
        let relogin = reply(
            &mut engine,
            sent(&actions),
            400,
            r#"{"__type":"NotAuthorizedException","message":"Refresh Token has been revoked"}"#,
        );
        let relogin = crate::engine::after_drop(&relogin, crate::DropReason::Rejected);
        assert!(body(sent(relogin))["AuthFlow"] == "USER_PASSWORD_AUTH", "{relogin:?}");

        // Without a password (CUSTOM_AUTH): reauthentication required.
        let mut engine = new_engine(grant(None, CognitoAuthFlow::Custom, None));
        let actions = engine.login("c", T0);
        reply(&mut engine, sent(&actions), 200, &challenge("CUSTOM_CHALLENGE", "s", "{}"));
        let respond = answer(&mut engine, "x");
        reply(&mut engine, sent(&respond), 200, TOKENS);
        let actions = engine.refresh("c", later);
        let failed = reply(&mut engine, sent(&actions), 400, r#"{"__type":"NotAuthorizedException"}"#);
        let failed = crate::engine::after_drop(&failed, crate::DropReason::Rejected);
        assert!(matches!(failed, [Action::Failed { error, .. }] if error.requires_reauthentication()));
        assert!(engine.tokens("c").unwrap().refresh_token.is_none());
    }

    #[test]
    fn refresh_hashes_cognitos_own_username_from_the_token() {
        use base64::Engine as _;
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"username":"uuid-7","exp":1}"#);
        let mut tokens = TokenSet::bearer(format!("h.{claims}.s"), Some(T0), T0);
        tokens.refresh_token = Some(Secret::new("rt"));
        assert_eq!(refresh_username(&tokens, "alice@example.com"), "uuid-7");
        tokens.access_token = Secret::new("opaque");
        assert_eq!(refresh_username(&tokens, "alice@example.com"), "alice@example.com");
    }

    #[test]
    fn logout_revokes_the_refresh_token() {
        let client = ClientAuth::post("client123", Secret::new("s3cret"));
        let mut engine = new_engine_with(grant(Some("pw"), CognitoAuthFlow::UserPassword, None), client);
        logged_in(&mut engine);
        let actions = engine.logout("c", T0);
        let request = sent(&actions);
        assert_eq!(request.header("x-amz-target"), Some("AWSCognitoIdentityProviderService.RevokeToken"));
        assert_eq!(
            std::str::from_utf8(&request.body).unwrap(),
            r#"{"Token":"rt","ClientId":"client123","ClientSecret":"s3cret"}"#
        );
        let out = reply(&mut engine, request, 200, "{}");
        assert!(matches!(&out[..], [Action::LoggedOut { revoked: true, error: None, .. }]));

        logged_in(&mut engine);
        let actions = engine.logout("c", T0);
        let out = reply(&mut engine, sent(&actions), 400, r#"{"__type":"UnsupportedTokenTypeException"}"#);
        assert!(matches!(&out[..], [Action::LoggedOut { revoked: false, error: Some(_), .. }]));
        assert!(engine.tokens("c").is_none());
    }
}
