//! Who the client is at the authorization server, and how it proves it (RFC 6749 §2.3.1).
//!
//! A leaf: the wire protocol ([`crate::protocol`]) builds requests with it, the provider
//! configuration ([`crate::ProviderConfig`]) holds it. Nothing here knows grants or flows.

use base64::Engine as _;
use url::form_urlencoded;

use crate::Secret;

/// How the client authenticates to the token endpoint (RFC 6749 §2.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ClientAuthMethod {
    /// HTTP Basic with the form-urlencoded id and secret (`client_secret_basic`, the default for confidential clients).
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    Post,
    /// Public client: only `client_id` in the body.
    None,
}

/// The client's identity at the authorization server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientAuth {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`, for confidential clients.
    pub client_secret: Option<Secret>,
    /// How to send them.
    pub method: ClientAuthMethod,
}

impl ClientAuth {
    /// A confidential client using `client_secret_basic`.
    pub fn basic(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> Self {
        ClientAuth {
            client_id: client_id.into(),
            client_secret: Some(client_secret.into()),
            method: ClientAuthMethod::Basic,
        }
    }

    /// A confidential client using `client_secret_post`.
    pub fn post(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> Self {
        ClientAuth {
            client_id: client_id.into(),
            client_secret: Some(client_secret.into()),
            method: ClientAuthMethod::Post,
        }
    }

    /// A public client.
    pub fn public(client_id: impl Into<String>) -> Self {
        ClientAuth { client_id: client_id.into(), client_secret: None, method: ClientAuthMethod::None }
    }

    /// Adds the client's credentials to a request being built.
    pub(crate) fn apply(
        &self,
        headers: &mut Vec<(String, String)>,
        form: &mut form_urlencoded::Serializer<'_, String>,
    ) {
        match (&self.method, &self.client_secret) {
            (ClientAuthMethod::Basic, Some(secret)) => {
                // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
                let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                // Held in a Secret so the clear pair is zeroed when it goes out of scope.
                let pair = Secret::new(format!("{}:{}", encode(&self.client_id), encode(secret.expose_secret())));
                let value = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair.expose_secret()));
                headers.push(("authorization".into(), value));
            }
            (ClientAuthMethod::Post, Some(secret)) => {
                form.append_pair("client_id", &self.client_id);
                form.append_pair("client_secret", secret.expose_secret());
            }
            _ => {
                form.append_pair("client_id", &self.client_id);
            }
        }
    }
}
