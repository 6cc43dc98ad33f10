//! Workload identity federation: a platform token the workload already has (a Kubernetes
//! projected service-account token, GitHub Actions' OIDC token, a token a command prints) is the
//! *subject token*, exchanged for an access token (RFC 8693 token exchange: Google's
//! `external_account`, STS-style servers) or presented as a client assertion with the client
//! credentials grant (RFC 7523 §2.2: Azure workload identity).
//!
//! ```text
//! start ─► Prompt::SubjectToken(source) ──answer (the token)──► TokenRequest (exchange | assertion)
//!                                        └─prompt failed──► Failed
//! ```
//!
//! The core reads nothing: the login asks the runtime for the token ([`Prompt::SubjectToken`]),
//! and the runtime reads its [`TokenSource`] (a file, a variable, a URL, a command) afresh for
//! every login. There is no refresh token: when the access token expires, the engine logs in again
//! (the grant logs in unattended), so a platform token that was rotated meanwhile is read again.

use std::time::Duration;

use super::token_request::{TokenForm, TokenRequest};
use super::{Flow, FlowContext, FlowStep, Prompt};
use crate::protocol::TOKEN_EXCHANGE_GRANT_TYPE;
use crate::{Error, HttpResponse, RequestId, Secret, Timestamp};

/// How long an `exec:` source may run by default.
pub const DEFAULT_SOURCE_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a workload's subject token comes from; read by the runtime at every login.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenSource {
    /// `file:PATH`: the file's content, surrounding whitespace removed (Kubernetes projected
    /// service-account tokens, `AZURE_FEDERATED_TOKEN_FILE`).
    File(String),
    /// `env:NAME`: an environment variable.
    Env(String),
    /// `url:URL`: the body of a `GET` (or its JSON field `field`), sent with `headers` (a value
    /// `env:NAME` is read from the environment).
    Url {
        /// The URL (https, or http to loopback).
        url: String,
        /// Request headers: (name, value or `env:NAME`).
        headers: Vec<(String, String)>,
        /// The JSON field holding the token; `None`: the whole body is the token.
        field: Option<String>,
    },
    /// `exec:COMMAND`: what the command (run by `sh -c`) prints on stdout, within `timeout`.
    Exec {
        /// The command line.
        command: String,
        /// How long it may run.
        timeout: Duration,
    },
    /// `github-actions`: GitHub Actions' OIDC token (`GET $ACTIONS_ID_TOKEN_REQUEST_URL` with
    /// `Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN` and `audience=`; the JSON field
    /// `value`). The job needs `permissions: id-token: write`.
    GithubActions {
        /// The token's `aud`; `None`: GitHub's default (the repository owner's URL).
        audience: Option<String>,
    },
}

impl TokenSource {
    /// Reads `file:PATH`, `env:NAME`, `url:URL`, `exec:COMMAND` or `github-actions` (the value of
    /// `subject_token`); `Err` is the problem, without the value. `url:` and `exec:` take their
    /// settings from the caller (`headers`, `field`, `timeout`); `github-actions` its `audience`.
    pub fn parse(
        value: &str,
        headers: Vec<(String, String)>,
        field: Option<String>,
        timeout: Duration,
        audience: Option<String>,
    ) -> Result<TokenSource, String> {
        let non_empty = |rest: &str, what: &str| {
            let rest = rest.trim();
            if rest.is_empty() { Err(format!("names no {what}")) } else { Ok(rest.to_owned()) }
        };
        if value == "github-actions" {
            return Ok(TokenSource::GithubActions { audience });
        }
        let (scheme, rest) = value
            .split_once(':')
            .ok_or_else(|| "must be file:PATH, env:NAME, url:URL, exec:COMMAND or github-actions".to_owned())?;
        match scheme {
            "file" => Ok(TokenSource::File(non_empty(rest, "file")?)),
            "env" => Ok(TokenSource::Env(non_empty(rest, "variable")?)),
            "url" => {
                let url = non_empty(rest, "URL")?;
                match url::Url::parse(&url) {
                    Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() => {}
                    _ => return Err("url: is not an http(s) URL with a host".into()),
                }
                Ok(TokenSource::Url { url, headers, field })
            }
            "exec" => Ok(TokenSource::Exec { command: non_empty(rest, "command")?, timeout }),
            _ => Err("must be file:PATH, env:NAME, url:URL, exec:COMMAND or github-actions".into()),
        }
    }

    /// What to call the source in messages: its kind and where (a path, a variable name, a URL
    /// without its query, the command's first word); never a header value.
    pub fn describe(&self) -> String {
        match self {
            TokenSource::File(path) => format!("file:{path}"),
            TokenSource::Env(name) => format!("env:{name}"),
            TokenSource::Url { url, .. } => {
                // Neither the query nor a `user:password@` part: either may hold a credential.
                let mut shown = url::Url::parse(url).map_or_else(
                    |_| String::new(),
                    |mut parsed| {
                        let _ = parsed.set_username("");
                        let _ = parsed.set_password(None);
                        parsed.set_query(None);
                        parsed.set_fragment(None);
                        parsed.to_string()
                    },
                );
                if shown.is_empty() {
                    shown = "<not a URL>".into();
                }
                format!("url:{shown}")
            }
            TokenSource::Exec { command, .. } => {
                format!("exec:{}", command.split_whitespace().next().unwrap_or_default())
            }
            TokenSource::GithubActions { .. } => "github-actions".into(),
        }
    }
}

/// What the subject token is traded for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exchange {
    /// RFC 8693 token exchange: `subject_token` + `subject_token_type`, with the target.
    TokenExchange {
        /// `audience`.
        audience: Option<String>,
        /// `resource`.
        resource: Option<String>,
        /// `requested_token_type`; `None`: the server's choice.
        requested_token_type: Option<String>,
    },
    /// The client credentials grant with the subject token as the client assertion
    /// (`client_assertion_type` jwt-bearer; Azure workload identity).
    ClientAssertion,
}

impl Exchange {
    /// `token_exchange` or `client_assertion`: the value of `exchange`.
    pub fn name(&self) -> &'static str {
        match self {
            Exchange::TokenExchange { .. } => "token_exchange",
            Exchange::ClientAssertion => "client_assertion",
        }
    }
}

/// The login of [`crate::Grant::WorkloadIdentity`]: ask for the subject token, then one token request.
#[derive(Debug)]
pub(crate) struct WorkloadIdentityLogin {
    source: TokenSource,
    subject_token_type: String,
    exchange: Exchange,
    request: Option<TokenRequest<ExchangeForm>>,
    asked: bool,
}

impl WorkloadIdentityLogin {
    pub(crate) fn new(source: TokenSource, subject_token_type: String, exchange: Exchange) -> Self {
        WorkloadIdentityLogin { source, subject_token_type, exchange, request: None, asked: false }
    }
}

impl Flow for WorkloadIdentityLogin {
    fn start(&mut self, _context: &FlowContext<'_>, _request_id: RequestId, _now: Timestamp) -> Vec<FlowStep> {
        if self.asked {
            return vec![FlowStep::Failed(Error::internal("workload identity login started twice"))];
        }
        self.asked = true;
        vec![FlowStep::Prompt(Prompt::SubjectToken { source: self.source.clone() })]
    }

    fn on_answer(
        &mut self,
        context: &FlowContext<'_>,
        answer: Secret,
        request_id: RequestId,
        now: Timestamp,
    ) -> Vec<FlowStep> {
        if !self.asked || self.request.is_some() {
            return Vec::new();
        }
        if answer.expose_secret().trim().is_empty() {
            return vec![FlowStep::Failed(Error::configuration(format!(
                "subject_token: {} gave an empty token",
                self.source.describe()
            )))];
        }
        let form = ExchangeForm {
            token: Secret::new(answer.expose_secret().trim()),
            subject_token_type: self.subject_token_type.clone(),
            exchange: self.exchange.clone(),
        };
        self.request.insert(TokenRequest::new(form)).start(context, request_id, now)
    }

    fn on_response(
        &mut self,
        context: &FlowContext<'_>,
        response: &HttpResponse,
        request_id: RequestId,
        now: Timestamp,
    ) -> Vec<FlowStep> {
        self.request.as_mut().map_or_else(Vec::new, |request| request.on_response(context, response, request_id, now))
    }

    fn on_transport_error(
        &mut self,
        context: &FlowContext<'_>,
        error: Error,
        request_id: RequestId,
        now: Timestamp,
    ) -> Vec<FlowStep> {
        match self.request.as_mut() {
            Some(request) => request.on_transport_error(context, error, request_id, now),
            None => Vec::new(),
        }
    }

    fn on_timer(&mut self, context: &FlowContext<'_>, request_id: RequestId, now: Timestamp) -> Vec<FlowStep> {
        self.request.as_mut().map_or_else(Vec::new, |request| request.on_timer(context, request_id, now))
    }
}

/// The token request with the subject token: an RFC 8693 exchange, or client credentials with
/// the token as the client assertion.
#[derive(Debug)]
struct ExchangeForm {
    token: Secret,
    subject_token_type: String,
    exchange: Exchange,
}

impl TokenForm for ExchangeForm {
    fn params(&self, _context: &FlowContext<'_>, _now: Timestamp) -> Result<Vec<(&'static str, Secret)>, Error> {
        Ok(match &self.exchange {
            Exchange::TokenExchange { audience, resource, requested_token_type } => {
                let mut params = vec![
                    ("grant_type", Secret::new(TOKEN_EXCHANGE_GRANT_TYPE)),
                    ("subject_token", self.token.clone()),
                    ("subject_token_type", Secret::new(self.subject_token_type.as_str())),
                ];
                for (name, value) in
                    [("audience", audience), ("resource", resource), ("requested_token_type", requested_token_type)]
                {
                    if let Some(value) = value {
                        params.push((name, Secret::new(value.as_str())));
                    }
                }
                params
            }
            Exchange::ClientAssertion => vec![
                ("grant_type", Secret::new("client_credentials")),
                ("client_assertion_type", Secret::new(crate::JWT_BEARER_ASSERTION_TYPE)),
                ("client_assertion", self.token.clone()),
            ],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> Result<TokenSource, String> {
        TokenSource::parse(value, Vec::new(), None, DEFAULT_SOURCE_TIMEOUT, None)
    }

    #[test]
    fn sources_parse_and_describe_themselves_without_secrets() {
        assert_eq!(parse("file:/var/run/token").unwrap(), TokenSource::File("/var/run/token".into()));
        assert_eq!(parse("env:ID_TOKEN").unwrap(), TokenSource::Env("ID_TOKEN".into()));
        assert_eq!(parse("github-actions").unwrap(), TokenSource::GithubActions { audience: None });
        let url = parse("url:https://meta.example/token?secret=S3cr3t").unwrap();
        assert_eq!(url.describe(), "url:https://meta.example/token");
        let url = parse("url:https://me:S3cr3t@meta.example/token").unwrap();
        assert_eq!(url.describe(), "url:https://meta.example/token");
        let exec = parse("exec:get-token --password S3cr3t").unwrap();
        assert_eq!(exec.describe(), "exec:get-token");
        for bad in ["file:", "env: ", "url:ftp://x", "url:not a url", "exec:", "keyring:x", "S3cr3t"] {
            let error = parse(bad).unwrap_err();
            assert!(!error.contains("S3cr3t"), "{bad}: {error}");
        }
    }
}
