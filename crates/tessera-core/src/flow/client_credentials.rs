//! Client credentials grant (RFC 6749 §4.4). The response carries no refresh token: when the
//! access token expires, the engine simply asks again.

use crate::Secret;

pub(crate) fn params() -> Vec<(&'static str, Secret)> {
    vec![("grant_type", Secret::new("client_credentials"))]
}
