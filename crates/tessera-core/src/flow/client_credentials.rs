//! Client credentials grant (RFC 6749 §4.4). The response carries no refresh token: when the
//! access token expires, the engine simply asks again.

use super::FlowContext;
use super::token_request::TokenForm;
use crate::{Error, Secret, Timestamp};

/// The client credentials grant's form: the client authenticates, nothing else is sent.
#[derive(Debug)]
pub(crate) struct ClientCredentialsForm;

impl TokenForm for ClientCredentialsForm {
    fn params(&self, _context: &FlowContext<'_>, _now: Timestamp) -> Result<Vec<(&'static str, Secret)>, Error> {
        Ok(vec![("grant_type", Secret::new("client_credentials"))])
    }
}
