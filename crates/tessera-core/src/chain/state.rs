//! The exported state of a `tessera::chain::DomainClient` (or [`super::ChainMachine`]): a versioned JSON document with
//! the tokens of every stage and the cached domain accesses, and never a credential (no password,
//! client secret or TOTP secret: those are configuration, given again after import).

use std::collections::BTreeMap;

use crate::{Error, TokenSet};
use serde::{Deserialize, Serialize};

use super::DomainAccess;

/// The state format version written by this tessera, and the only one it reads.
pub const CHAIN_STATE_VERSION: u32 = 1;

/// Tokens of a chain, as exported by `DomainClient::save_state` (or the JSON engine's `chain_state`).
///
/// JSON: `{"version": 1, "network": TokenSet | null, "discovery": TokenSet | null,
/// "domains": {"<id>": DomainAccess, ...}}`. `Debug` shows no token.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainState {
    /// The network login's tokens (access and refresh token), when there are any.
    pub network: Option<TokenSet>,
    /// The discovery stage's token.
    pub discovery: Option<TokenSet>,
    /// Cached domain accesses by domain id.
    pub domains: BTreeMap<String, DomainAccess>,
}

#[derive(Serialize)]
struct Versioned<'a> {
    version: u32,
    #[serde(flatten)]
    state: &'a ChainState,
}

#[derive(Deserialize)]
struct VersionOnly {
    version: Option<serde_json::Value>,
}

impl ChainState {
    /// The JSON document (holds tokens in clear: store it like a token file).
    pub fn to_json(&self) -> Result<String, Error> {
        serde_json::to_string(&Versioned { version: CHAIN_STATE_VERSION, state: self })
            .map_err(|error| Error::configuration(format!("cannot serialise the chain state: {error}")))
    }

    /// Reads a document written by [`ChainState::to_json`]. Another `version`, or none, is refused
    /// with [`Error::Configuration`] naming it; so is JSON that does not parse (the message gives
    /// a position, never the content).
    pub fn from_json(json: &str) -> Result<ChainState, Error> {
        let invalid = |error: serde_json::Error| {
            let kind = match error.classify() {
                serde_json::error::Category::Syntax => "syntax error",
                serde_json::error::Category::Eof => "truncated",
                serde_json::error::Category::Data => "unexpected shape",
                serde_json::error::Category::Io => "I/O error",
            };
            Error::configuration(format!(
                "the chain state is not a valid tessera chain state document ({kind} at line {} column {})",
                error.line(),
                error.column()
            ))
        };
        let version = serde_json::from_str::<VersionOnly>(json).map_err(invalid)?.version;
        match version {
            Some(serde_json::Value::Number(n)) if n.as_u64() == Some(u64::from(CHAIN_STATE_VERSION)) => {}
            Some(other) => {
                // Named only when it is a number: the document is not ours to echo at any length.
                let shown = match &other {
                    serde_json::Value::Number(number) => number.to_string(),
                    _ => "that is not a number".to_owned(),
                };
                return Err(Error::configuration(format!(
                    "chain state version {shown} is not supported: this tessera reads version {CHAIN_STATE_VERSION}"
                )));
            }
            None => {
                return Err(Error::configuration(format!(
                    "the chain state has no `version`: this tessera reads version {CHAIN_STATE_VERSION}"
                )));
            }
        }
        serde_json::from_str(json).map_err(invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_checked() {
        let json = ChainState::default().to_json().unwrap();
        assert_eq!(json, r#"{"version":1,"network":null,"discovery":null,"domains":{}}"#);
        assert_eq!(ChainState::from_json(&json).unwrap(), ChainState::default());
        let future = ChainState::from_json(r#"{"version":7,"domains":{}}"#).unwrap_err();
        assert!(matches!(&future, Error::Configuration { message } if message.contains("version 7")), "{future}");
        let wordy = ChainState::from_json(r#"{"version":"zz-secret-zz","domains":{}}"#).unwrap_err();
        assert!(wordy.to_string().contains("not a number") && !wordy.to_string().contains("zz-secret"), "{wordy}");
        let missing = ChainState::from_json(r#"{"domains":{}}"#).unwrap_err();
        assert!(missing.to_string().contains("no `version`"));
        let broken = ChainState::from_json(r#"{"version":1,"network":{"access_token":"zz-secret-zz"#).unwrap_err();
        assert!(matches!(&broken, Error::Configuration { .. }));
        assert!(!broken.to_string().contains("zz-secret"));
    }
}
