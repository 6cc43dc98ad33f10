//! One description of a provider, shared by every front end: the TOML configuration, the JSON
//! sans-I/O API ([`crate::json`]), the Python constructors and the registry all read a provider
//! through this module, so a field has one name and one rule everywhere.
//!
//! On the wire a provider is a flat object tagged by `type`:
//!
//! ```
//! use tessera_core::provider_spec::{ProviderKind, ProviderSpec};
//!
//! let value = serde_json::json!({
//!     "type": "password",
//!     "issuer": "https://idp.example",
//!     "client_id": "cli",
//!     "username": "alice",
//!     "password": "hunter2",
//! });
//! let parsed = ProviderSpec::from_value(value).unwrap();
//! assert_eq!(parsed.spec.kind(), ProviderKind::Password);
//! assert!(parsed.deprecations.is_empty());
//! // Secrets go through a resolver (the TOML front end reads `env:`/`file:`/`keyring:` here).
//! let config = parsed.spec.into_config(&mut |_field, value| Ok(value.clone())).unwrap();
//! assert_eq!(config.grant.name(), "password");
//! ```
//!
//! [`FIELDS`] lists every field: its type, the provider types it applies to, its default and its
//! old spellings. Parsing checks applicability and types against it (so the table and the code
//! cannot disagree), and the configuration reference in docs/configuration.md is generated from it
//! ([`fields_reference_markdown`]). Old spellings (`token_url`, `max_attempts`, ...) still load and
//! come back as [`Deprecation`]s for the front end to log.
//!
//! Validation lives here ([`ProviderSpec::validate`] for what needs the description,
//! [`validate_config`] for what holds for any [`ProviderConfig`], including ones the Python
//! constructors build) and reports a [`FieldError`]: the field, in the one vocabulary, and the
//! problem. Front ends add where the provider is (file, context, name). Nothing here does I/O, and
//! no message ever contains a value of a field (secrets included).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::flow::{CognitoAuthFlow, DEFAULT_MAX_CODE_ATTEMPTS};
use crate::{
    ASSERTION_ALGS, ClientAssertionKey, ClientAuth, ClientAuthMethod, DpopSettings, Endpoints, Error, Grant,
    ProviderConfig, Secret, Timestamp, TotpSource,
};

/// The built-in provider types. Custom types (from a registry) are not listed: their
/// description is theirs to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ProviderKind {
    /// Resource owner password credentials (RFC 6749 §4.3), optionally with a TOTP code.
    Password,
    /// Client credentials (RFC 6749 §4.4).
    ClientCredentials,
    /// Start from a refresh token obtained elsewhere (RFC 6749 §6).
    RefreshToken,
    /// A token given by the caller (or `tessera login --with-token`).
    Static,
    /// Device authorization (RFC 8628).
    DeviceCode,
    /// Email one-time codes (generic JSON flavour).
    EmailOtp,
    /// Amazon Cognito user pools.
    Cognito,
    /// Browser login: authorization code + PKCE.
    Browser,
    /// JWT bearer (RFC 7523 §2.1): a signed assertion is the grant (Google service accounts).
    JwtBearer,
    /// Workload identity federation: a platform token (a file, a variable, a URL, a command, GitHub
    /// Actions) exchanged (RFC 8693) or presented as the client assertion.
    WorkloadIdentity,
}

impl ProviderKind {
    /// Every built-in type, in documentation order.
    pub const ALL: [ProviderKind; 10] = [
        ProviderKind::Password,
        ProviderKind::ClientCredentials,
        ProviderKind::RefreshToken,
        ProviderKind::Static,
        ProviderKind::DeviceCode,
        ProviderKind::EmailOtp,
        ProviderKind::Cognito,
        ProviderKind::Browser,
        ProviderKind::JwtBearer,
        ProviderKind::WorkloadIdentity,
    ];

    /// The `type` values of [`ProviderKind::ALL`], in the same order.
    pub const NAMES: [&'static str; 10] = [
        ProviderKind::Password.as_str(),
        ProviderKind::ClientCredentials.as_str(),
        ProviderKind::RefreshToken.as_str(),
        ProviderKind::Static.as_str(),
        ProviderKind::DeviceCode.as_str(),
        ProviderKind::EmailOtp.as_str(),
        ProviderKind::Cognito.as_str(),
        ProviderKind::Browser.as_str(),
        ProviderKind::JwtBearer.as_str(),
        ProviderKind::WorkloadIdentity.as_str(),
    ];

    /// The `type` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Password => "password",
            ProviderKind::ClientCredentials => "client_credentials",
            ProviderKind::RefreshToken => "refresh_token",
            ProviderKind::Static => "static",
            ProviderKind::DeviceCode => "device_code",
            ProviderKind::EmailOtp => "email_otp",
            ProviderKind::Cognito => "cognito",
            ProviderKind::Browser => "browser",
            ProviderKind::JwtBearer => "jwt_bearer",
            ProviderKind::WorkloadIdentity => "workload_identity",
        }
    }

    /// The kind whose `type` value is `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// The kind of a core grant (`None` for custom grants).
    pub fn of(grant: &Grant) -> Option<Self> {
        Some(match grant {
            Grant::Password { .. } => ProviderKind::Password,
            Grant::ClientCredentials => ProviderKind::ClientCredentials,
            Grant::RefreshToken { .. } => ProviderKind::RefreshToken,
            Grant::Static { .. } => ProviderKind::Static,
            Grant::DeviceCode { .. } => ProviderKind::DeviceCode,
            Grant::EmailOtp { .. } => ProviderKind::EmailOtp,
            Grant::Cognito { .. } => ProviderKind::Cognito,
            Grant::Browser { .. } => ProviderKind::Browser,
            Grant::JwtBearer { .. } => ProviderKind::JwtBearer,
            Grant::WorkloadIdentity { .. } => ProviderKind::WorkloadIdentity,
            _ => return None,
        })
    }

    /// True when every login shows something to a person and waits (device code, email code,
    /// browser): such a login starts only when asked for, and needs a prompter. (A Cognito
    /// provider with `auth_flow = "custom"` is interactive too: see [`GrantSpec::is_interactive`].)
    pub fn is_interactive(self) -> bool {
        matches!(self, ProviderKind::DeviceCode | ProviderKind::EmailOtp | ProviderKind::Browser)
    }

    /// True when a login may ask a person something: the interactive kinds, and Cognito, whose
    /// user pool may answer a password with an SMS or email code challenge.
    pub fn may_prompt(self) -> bool {
        self.is_interactive() || self == ProviderKind::Cognito
    }

    /// True when the provider's token can be renewed at all (everything but static tokens).
    pub fn can_refresh(self) -> bool {
        self != ProviderKind::Static
    }

    /// A short description for people ("a browser sign-in", "an emailed code", ...).
    pub fn describe(self) -> &'static str {
        match self {
            ProviderKind::Password => "a password",
            ProviderKind::ClientCredentials => "client credentials",
            ProviderKind::RefreshToken => "a refresh token",
            ProviderKind::Static => "a given token",
            ProviderKind::DeviceCode => "a code entered on another device",
            ProviderKind::EmailOtp => "an emailed code",
            ProviderKind::Cognito => "a Cognito sign-in",
            ProviderKind::Browser => "a browser sign-in",
            ProviderKind::JwtBearer => "a signed assertion",
            ProviderKind::WorkloadIdentity => "a workload's platform token",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ProviderKind {
    type Err = FieldError;

    fn from_str(name: &str) -> Result<Self, FieldError> {
        Self::from_name(name).ok_or_else(|| FieldError::new("type", unknown_type(name)))
    }
}

fn unknown_type(name: &str) -> String {
    format!("unknown type{} (expected one of: {})", echo_identifier(name), ProviderKind::NAMES.join(", "))
}

/// `message` with every quoted part (`"…"`, `` `…` ``) replaced by `…`, except names in backticks
/// ([`is_identifier`]): a parser's message quotes the input it refused, which may be a secret,
/// while a misspelt name (`` `etcd` ``) and the names it expected are worth showing.
pub fn without_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted: Option<(char, String)> = None;
    for c in message.chars() {
        match &mut quoted {
            Some((quote, text)) if c == *quote => {
                if *quote == '`' && is_identifier(text) {
                    out.push_str(text);
                } else {
                    out.push('…');
                }
                out.push(c);
                quoted = None;
            }
            // Longer than any name: only its length matters from here on.
            Some((_, text)) if text.len() > 40 => {}
            Some((_, text)) => text.push(c),
            None if matches!(c, '"' | '`') => {
                out.push(c);
                quoted = Some((c, String::new()));
            }
            None => out.push(c),
        }
    }
    if quoted.is_some() {
        out.push('…');
    }
    out.trim_end().to_owned()
}

/// True when `name` looks like a name of this description — a type, a field, a parameter:
/// lowercase letters, digits and `_`, at most 40. A misspelt name is worth showing in an error;
/// anything else from the file is not repeated (it may be a pasted secret).
pub fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// ` "name"` when `name` looks like a name ([`is_identifier`]), else nothing.
pub fn echo_identifier(name: &str) -> String {
    if is_identifier(name) { format!(" \"{name}\"") } else { String::new() }
}

/// What an error says in place of a key that is not repeated (see [`is_identifier`]).
pub const UNNAMED_KEY: &str = "not named here: it does not look like a name, and may be a misplaced secret";

/// A problem with one field of a provider description. The message never contains the field's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field, in the current vocabulary (`token_endpoint`, `authorization_params.prompt`, ...);
    /// empty when the problem is the whole description.
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        FieldError { field: field.into(), problem: problem.into() }
    }

    /// `field "name": problem` (or the problem alone), to append to where the provider is.
    pub fn describe(&self) -> String {
        if self.field.is_empty() { self.problem.clone() } else { format!("field {:?}: {}", self.field, self.problem) }
    }

    /// As a configuration error: `{place}, field "name": problem`.
    pub fn at(&self, place: &str) -> crate::Error {
        crate::Error::configuration(format!("{place}, {}", self.describe()))
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// An old spelling that was accepted: the front end logs it (tracing `warn`), naming the place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deprecation {
    /// What the description said (a field, or `client_auth = "basic"`).
    pub old: &'static str,
    /// What to say instead.
    pub new: &'static str,
}

impl fmt::Display for Deprecation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is deprecated: use {}", self.old, self.new)
    }
}

/// What a field holds (checked before anything else reads it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// A string.
    Text,
    /// An http(s) URL.
    Url,
    /// A secret: a literal, or (in the TOML configuration) `env:NAME`, `file:PATH`, `keyring:…`.
    Secret,
    /// An integer from 1 to 2³²−1.
    Count,
    /// A TCP port (0 to 65535).
    Port,
    /// Whole seconds, at least 1.
    Seconds,
    /// Unix seconds.
    UnixSeconds,
    /// A table of string values.
    Params,
    /// `true` or `false`.
    Bool,
}

impl FieldType {
    fn describe(self) -> &'static str {
        match self {
            FieldType::Text => "string",
            FieldType::Url => "URL",
            FieldType::Secret => "secret",
            FieldType::Count => "integer ≥ 1",
            FieldType::Port => "port",
            FieldType::Seconds => "seconds",
            FieldType::UnixSeconds => "Unix seconds",
            FieldType::Params => "table of strings",
            FieldType::Bool => "boolean",
        }
    }
}

/// One field of the description: the source of the configuration reference and of the checks.
#[derive(Clone, Copy, Debug)]
pub struct FieldDoc {
    /// The name.
    pub name: &'static str,
    /// What it holds.
    pub ty: FieldType,
    /// The provider types it applies to (`&[]`: every type).
    pub kinds: &'static [ProviderKind],
    /// When it is required, for people ("yes", "with `token_endpoint`", "no").
    pub required: &'static str,
    /// Its default, for people.
    pub default: &'static str,
    /// What it means.
    pub doc: &'static str,
    /// Old spellings still accepted (with a deprecation warning).
    pub old_names: &'static [&'static str],
}

impl FieldDoc {
    /// True when the field applies to `kind`.
    pub fn applies_to(&self, kind: ProviderKind) -> bool {
        self.kinds.is_empty() || self.kinds.contains(&kind)
    }
}

use ProviderKind as K;

const OAUTH_KINDS: &[ProviderKind] = &[
    K::Password,
    K::ClientCredentials,
    K::RefreshToken,
    K::Static,
    K::DeviceCode,
    K::EmailOtp,
    K::Browser,
    K::JwtBearer,
    K::WorkloadIdentity,
];

/// The types whose requests go to an OAuth token endpoint: where DPoP applies.
const DPOP_KINDS: &[ProviderKind] =
    &[K::Password, K::ClientCredentials, K::RefreshToken, K::DeviceCode, K::Browser, K::JwtBearer];

/// Every field of a provider description, in reference order.
pub const FIELDS: &[FieldDoc] = &[
    FieldDoc {
        name: "type",
        ty: FieldType::Text,
        kinds: &[],
        required: "yes",
        default: "",
        doc: "`password`, `client_credentials`, `refresh_token`, `static`, `device_code`, `email_otp`, `cognito`, `browser`, `jwt_bearer`, `workload_identity` (or a registered type)",
        old_names: &["provider"],
    },
    FieldDoc {
        name: "client_id",
        ty: FieldType::Text,
        kinds: &[],
        required: "yes (not for `static`; `jwt_bearer`: not with `service_account_key`; `workload_identity`: not for a token exchange without client authentication)",
        default: "`jwt_bearer`: the `client_email` of `service_account_key`",
        doc: "the OAuth client (Cognito: the app client id; `jwt_bearer`: the assertion's `iss`)",
        old_names: &[],
    },
    FieldDoc {
        name: "client_secret",
        ty: FieldType::Secret,
        kinds: &[],
        required: "`client_credentials` (unless `private_key_jwt` or a TLS client certificate); with `client_auth` `client_secret_basic`/`client_secret_post`/`client_secret_jwt`",
        default: "",
        doc: "confidential clients (Cognito: every call then carries `SECRET_HASH`)",
        old_names: &[],
    },
    FieldDoc {
        name: "client_auth",
        ty: FieldType::Text,
        kinds: &[],
        required: "no",
        default: "`private_key_jwt` with `client_assertion_key`, `client_secret_basic` with a secret (when the discovered `token_endpoint_auth_methods_supported` leaves it out: `client_secret_post` if listed, else `client_secret_jwt` if listed), `tls_client_auth` with `tls_client_certificate` alone (`self_signed_tls_client_auth` when the server lists that and not `tls_client_auth`), else `none`",
        doc: "how the client authenticates (RFC 8414 names): `client_secret_basic`, `client_secret_post`, `client_secret_jwt` (an HS256 assertion signed with the secret), `private_key_jwt` (an assertion signed with `client_assertion_key`), `tls_client_auth` / `self_signed_tls_client_auth` (the TLS client certificate, RFC 8705; see [mtls.md](mtls.md)), `none`; see [client-assertions.md](client-assertions.md)",
        old_names: &[],
    },
    FieldDoc {
        name: "client_assertion_key",
        ty: FieldType::Secret,
        kinds: &[],
        required: "with `client_auth` `private_key_jwt`",
        default: "",
        doc: "the private key of `private_key_jwt`: a PKCS#8 PEM (RSA, EC P-256, Ed25519), an RSA PKCS#1 or EC P-256 SEC1 PEM, or a JWK with `d`; usually `file:` or `keyring:`",
        old_names: &[],
    },
    FieldDoc {
        name: "client_assertion_alg",
        ty: FieldType::Text,
        kinds: &[],
        required: "no",
        default: "from the key: RSA `RS256`, EC P-256 `ES256`, Ed25519 `EdDSA`",
        doc: "signing algorithm of `private_key_jwt` assertions: `RS256`, `RS384`, `RS512`, `PS256`, `PS384`, `PS512` (RSA), `ES256`, `EdDSA`",
        old_names: &[],
    },
    FieldDoc {
        name: "client_assertion_kid",
        ty: FieldType::Text,
        kinds: &[],
        required: "no",
        default: "the JWK's `kid`, else none",
        doc: "`kid` in the header of `private_key_jwt` assertions (the key's id at the server, e.g. a certificate thumbprint)",
        old_names: &[],
    },
    FieldDoc {
        name: "client_assertion_certificate",
        ty: FieldType::Secret,
        kinds: &[],
        required: "no (with `client_assertion_key`)",
        default: "",
        doc: "the PEM certificate of `client_assertion_key` (its chain may follow), usually `file:`: assertions then carry `x5t` (SHA-1 thumbprint), `x5t#S256` and `x5c`, as msal's certificate credentials do (Azure AD requires `x5t`)",
        old_names: &[],
    },
    FieldDoc {
        name: "dpop",
        ty: FieldType::Bool,
        kinds: DPOP_KINDS,
        required: "no",
        default: "`false` (bearer tokens)",
        doc: "DPoP (RFC 9449): every token request carries a proof of possession of a key, the tokens are bound to it (`token_type` `DPoP`), and each API request needs a fresh proof (the middlewares and adapters make them); see [dpop.md](dpop.md)",
        old_names: &[],
    },
    FieldDoc {
        name: "dpop_key",
        ty: FieldType::Secret,
        kinds: DPOP_KINDS,
        required: "no (with `dpop`)",
        default: "a key generated per provider and kept in the store with the tokens",
        doc: "the private key DPoP proofs are signed with: a PKCS#8 PEM (EC P-256, Ed25519, RSA), an RSA PKCS#1 or EC P-256 SEC1 PEM, or a JWK with `d`; usually `file:` or `keyring:`",
        old_names: &[],
    },
    FieldDoc {
        name: "dpop_alg",
        ty: FieldType::Text,
        kinds: DPOP_KINDS,
        required: "no (with `dpop`)",
        default: "`ES256`; with `dpop_key`, from the key (EC P-256 `ES256`, Ed25519 `EdDSA`, RSA `RS256`)",
        doc: "signing algorithm of DPoP proofs: `ES256`, `EdDSA` (both can be generated), `RS256`, `RS384`, `RS512`, `PS256`, `PS384`, `PS512` (with an RSA `dpop_key`)",
        old_names: &[],
    },
    FieldDoc {
        name: "issuer",
        ty: FieldType::Url,
        kinds: OAUTH_KINDS,
        required: "this or `token_endpoint`",
        default: "",
        doc: "OpenID Connect discovery: every endpoint comes from `{issuer}/.well-known/openid-configuration`",
        old_names: &[],
    },
    FieldDoc {
        name: "token_endpoint",
        ty: FieldType::Url,
        kinds: OAUTH_KINDS,
        required: "this or `issuer` (`jwt_bearer` with `service_account_key`: neither)",
        default: "`jwt_bearer`: the `token_uri` of `service_account_key`",
        doc: "the token endpoint, when not discovered",
        old_names: &["token_url"],
    },
    FieldDoc {
        name: "revocation_endpoint",
        ty: FieldType::Url,
        kinds: OAUTH_KINDS,
        required: "no (with `token_endpoint`)",
        default: "",
        doc: "RFC 7009 endpoint, when not discovered: `logout` revokes when there is one",
        old_names: &["revocation_url"],
    },
    FieldDoc {
        name: "scope",
        ty: FieldType::Text,
        kinds: &[],
        required: "no",
        default: "`browser` with `issuer`: `openid`",
        doc: "requested scope, space separated",
        old_names: &[],
    },
    FieldDoc {
        name: "username",
        ty: FieldType::Text,
        kinds: &[K::Password, K::Cognito],
        required: "yes",
        default: "",
        doc: "the user (Cognito: user name, or an email/phone alias)",
        old_names: &[],
    },
    FieldDoc {
        name: "password",
        ty: FieldType::Secret,
        kinds: &[K::Password, K::Cognito],
        required: "yes (`password`: or typed at `tessera login` on a terminal; `cognito`: with `auth_flow` `user_password`)",
        default: "",
        doc: "the user's password",
        old_names: &[],
    },
    FieldDoc {
        name: "totp",
        ty: FieldType::Secret,
        kinds: &[K::Password],
        required: "no",
        default: "",
        doc: "a TOTP code typed once (the login then needs a person)",
        old_names: &[],
    },
    FieldDoc {
        name: "totp_secret",
        ty: FieldType::Secret,
        kinds: &[K::Password, K::Cognito],
        required: "no",
        default: "",
        doc: "base32 TOTP secret: a fresh code per login, unattended (Cognito: answers `SOFTWARE_TOKEN_MFA`)",
        old_names: &[],
    },
    FieldDoc {
        name: "refresh_token",
        ty: FieldType::Secret,
        kinds: &[K::RefreshToken],
        required: "yes",
        default: "",
        doc: "a refresh token obtained elsewhere; rotated ones are kept in the store",
        old_names: &[],
    },
    FieldDoc {
        name: "access_token",
        ty: FieldType::Secret,
        kinds: &[K::Static],
        required: "no (else `tessera login --with-token`)",
        default: "",
        doc: "the token; nothing can renew it",
        old_names: &[],
    },
    FieldDoc {
        name: "expires_at",
        ty: FieldType::UnixSeconds,
        kinds: &[K::Static],
        required: "no",
        default: "never",
        doc: "when the static token expires (the JSON API's old `expires_at_ms` was in milliseconds)",
        old_names: &["expires_at_ms"],
    },
    FieldDoc {
        name: "device_authorization_endpoint",
        ty: FieldType::Url,
        kinds: &[K::DeviceCode],
        required: "with `token_endpoint`",
        default: "discovered",
        doc: "RFC 8628 device authorization endpoint",
        old_names: &["device_authorization_url"],
    },
    FieldDoc {
        name: "email",
        ty: FieldType::Text,
        kinds: &[K::EmailOtp],
        required: "yes",
        default: "",
        doc: "where the code is sent",
        old_names: &[],
    },
    FieldDoc {
        name: "otp_start_endpoint",
        ty: FieldType::Url,
        kinds: &[K::EmailOtp],
        required: "with `token_endpoint`",
        default: "discovered",
        doc: "`POST` here sends a code",
        old_names: &["otp_start_url", "start_endpoint", "start_url"],
    },
    FieldDoc {
        name: "otp_verify_endpoint",
        ty: FieldType::Url,
        kinds: &[K::EmailOtp],
        required: "with `token_endpoint`",
        default: "discovered",
        doc: "`POST` the code here",
        old_names: &["otp_verify_url", "verify_endpoint", "verify_url"],
    },
    FieldDoc {
        name: "max_code_attempts",
        ty: FieldType::Count,
        kinds: &[K::EmailOtp, K::Cognito],
        required: "no",
        default: "3",
        doc: "codes a person may try per login (Cognito: per challenge)",
        old_names: &["max_attempts"],
    },
    FieldDoc {
        name: "region",
        ty: FieldType::Text,
        kinds: &[K::Cognito],
        required: "this or `endpoint_url`",
        default: "",
        doc: "the AWS region of the user pool: `https://cognito-idp.<region>.amazonaws.com/`",
        old_names: &[],
    },
    FieldDoc {
        name: "endpoint_url",
        ty: FieldType::Url,
        kinds: &[K::Cognito],
        required: "this or `region`",
        default: "",
        doc: "the Cognito service URL (an emulator, a VPC endpoint)",
        old_names: &["endpoint"],
    },
    FieldDoc {
        name: "auth_flow",
        ty: FieldType::Text,
        kinds: &[K::Cognito],
        required: "no",
        default: "`user_password`",
        doc: "`user_password` (`USER_PASSWORD_AUTH`) or `custom` (`CUSTOM_AUTH`, interactive)",
        old_names: &[],
    },
    FieldDoc {
        name: "authorization_endpoint",
        ty: FieldType::Url,
        kinds: &[K::Browser],
        required: "with `token_endpoint`",
        default: "discovered",
        doc: "where the browser is sent",
        old_names: &["authorization_url"],
    },
    FieldDoc {
        name: "redirect_uri",
        ty: FieldType::Url,
        kinds: &[K::Browser],
        required: "no",
        default: "a loopback listener on 127.0.0.1",
        doc: "a fixed redirect URI registered with the server (paste mode: the person pastes the URL the browser ends on)",
        old_names: &[],
    },
    FieldDoc {
        name: "redirect_port",
        ty: FieldType::Port,
        kinds: &[K::Browser],
        required: "no",
        default: "0 (any free port)",
        doc: "the loopback listener's port",
        old_names: &["port"],
    },
    FieldDoc {
        name: "redirect_path",
        ty: FieldType::Text,
        kinds: &[K::Browser],
        required: "no",
        default: "`/callback`",
        doc: "the loopback redirect URI's path",
        old_names: &["callback_path"],
    },
    FieldDoc {
        name: "login_timeout",
        ty: FieldType::Seconds,
        kinds: &[K::Browser],
        required: "no",
        default: "300",
        doc: "how long to wait for the browser to come back (`timeout` is the HTTP time limit, not this)",
        old_names: &[],
    },
    FieldDoc {
        name: "authorization_params",
        ty: FieldType::Params,
        kinds: &[K::Browser],
        required: "no",
        default: "",
        doc: "more authorization request parameters (`prompt`, `login_hint`, `acr_values`, ...)",
        old_names: &["extra_params"],
    },
    FieldDoc {
        name: "assertion_key",
        ty: FieldType::Secret,
        kinds: &[K::JwtBearer],
        required: "yes, unless `service_account_key`",
        default: "",
        doc: "the private key that signs the grant's assertion (the same forms as `client_assertion_key`: PKCS#8, RSA PKCS#1 or EC P-256 SEC1 PEM, or a JWK with `d`); see [service-accounts.md](service-accounts.md)",
        old_names: &[],
    },
    FieldDoc {
        name: "assertion_alg",
        ty: FieldType::Text,
        kinds: &[K::JwtBearer],
        required: "no",
        default: "from the key: RSA `RS256`, EC P-256 `ES256`, Ed25519 `EdDSA`",
        doc: "signing algorithm of the grant's assertion (the values of `client_assertion_alg`)",
        old_names: &[],
    },
    FieldDoc {
        name: "assertion_kid",
        ty: FieldType::Text,
        kinds: &[K::JwtBearer],
        required: "no",
        default: "the JWK's `kid` (`service_account_key`: its `private_key_id`), else none",
        doc: "`kid` in the header of the grant's assertion",
        old_names: &[],
    },
    FieldDoc {
        name: "service_account_key",
        ty: FieldType::Secret,
        kinds: &[K::JwtBearer],
        required: "no (instead of `client_id` and `assertion_key`)",
        default: "",
        doc: "a Google service-account JSON key (`file:key.json`, or the JSON itself in `env:`/`keyring:`): `client_email` is `client_id`, `private_key` the `assertion_key`, `private_key_id` its `kid`, `token_uri` the token endpoint unless `token_endpoint` or `issuer` is given",
        old_names: &[],
    },
    FieldDoc {
        name: "subject",
        ty: FieldType::Text,
        kinds: &[K::JwtBearer],
        required: "no",
        default: "`client_id`",
        doc: "the assertion's `sub`: whom the token is for (a user, for Google domain-wide delegation)",
        old_names: &[],
    },
    FieldDoc {
        name: "audience",
        ty: FieldType::Text,
        kinds: &[K::JwtBearer, K::WorkloadIdentity],
        required: "no",
        default: "`jwt_bearer`: the token endpoint; `workload_identity`: none",
        doc: "`jwt_bearer`: the assertion's `aud` (some servers want their issuer URL); `workload_identity`: the token exchange's `audience` (RFC 8693), e.g. Google's workload identity provider name",
        old_names: &[],
    },
    FieldDoc {
        name: "assertion_lifetime",
        ty: FieldType::Seconds,
        kinds: &[K::JwtBearer],
        required: "no",
        default: "3600",
        doc: "seconds from the assertion's `iat` to its `exp` (Google allows at most 3600, Salesforce 180)",
        old_names: &[],
    },
    FieldDoc {
        name: "scope_in_assertion",
        ty: FieldType::Bool,
        kinds: &[K::JwtBearer],
        required: "no",
        default: "`true` with `service_account_key`, else `false`",
        doc: "send `scope` as a claim of the assertion (what Google reads) instead of a form field",
        old_names: &[],
    },
    FieldDoc {
        name: "external_account",
        ty: FieldType::Secret,
        kinds: &[K::WorkloadIdentity],
        required: "no (instead of `subject_token`)",
        default: "",
        doc: "a Google `external_account` credential file (`file:creds.json`, or the JSON in `env:`): its `credential_source` (`file`, or `url` with `headers` and `format`) is the `subject_token`, its `audience`, `subject_token_type` and `token_url` (the token endpoint) are used; no impersonation, AWS or executable sources",
        old_names: &[],
    },
    FieldDoc {
        name: "subject_token",
        ty: FieldType::Text,
        kinds: &[K::WorkloadIdentity],
        required: "yes, unless `external_account`",
        default: "",
        doc: "where the workload's platform token is read, at every login: `file:PATH` (a projected service-account token, `AZURE_FEDERATED_TOKEN_FILE`), `env:NAME`, `url:URL` (a `GET`), `exec:COMMAND` (run by `sh -c`, stdout) or `github-actions` (the job's OIDC token); see [workload-identity.md](workload-identity.md)",
        old_names: &[],
    },
    FieldDoc {
        name: "subject_token_type",
        ty: FieldType::Text,
        kinds: &[K::WorkloadIdentity],
        required: "no",
        default: "`urn:ietf:params:oauth:token-type:jwt`",
        doc: "the RFC 8693 `subject_token_type` (`...:id_token`, `...:access_token`, ...)",
        old_names: &[],
    },
    FieldDoc {
        name: "subject_token_headers",
        ty: FieldType::Params,
        kinds: &[K::WorkloadIdentity],
        required: "no (`url:` only)",
        default: "",
        doc: "request headers of a `url:` source; a value `env:NAME` is read from the environment (never shown)",
        old_names: &[],
    },
    FieldDoc {
        name: "subject_token_field",
        ty: FieldType::Text,
        kinds: &[K::WorkloadIdentity],
        required: "no (`url:` only)",
        default: "the whole body is the token",
        doc: "the JSON field of a `url:` answer that holds the token (`value` for GitHub Actions, `access_token` for metadata servers)",
        old_names: &[],
    },
    FieldDoc {
        name: "subject_token_timeout",
        ty: FieldType::Seconds,
        kinds: &[K::WorkloadIdentity],
        required: "no (`exec:` only)",
        default: "30",
        doc: "how long an `exec:` command may run before it is killed",
        old_names: &[],
    },
    FieldDoc {
        name: "subject_token_audience",
        ty: FieldType::Text,
        kinds: &[K::WorkloadIdentity],
        required: "no (`github-actions` only)",
        default: "`audience`, else GitHub's default",
        doc: "the `aud` asked of GitHub Actions for its token (Azure: `api://AzureADTokenExchange`)",
        old_names: &[],
    },
    FieldDoc {
        name: "exchange",
        ty: FieldType::Text,
        kinds: &[K::WorkloadIdentity],
        required: "no",
        default: "`token_exchange`",
        doc: "`token_exchange` (RFC 8693: Google, STS servers) or `client_assertion` (client credentials with the token as the client assertion: Azure workload identity)",
        old_names: &[],
    },
    FieldDoc {
        name: "resource",
        ty: FieldType::Url,
        kinds: &[
            K::Password,
            K::ClientCredentials,
            K::RefreshToken,
            K::DeviceCode,
            K::Browser,
            K::JwtBearer,
            K::WorkloadIdentity,
        ],
        required: "no",
        default: "",
        doc: "the protected resource the tokens are for (RFC 8707: its identifier, an absolute URI): every token request asks for it, and a login names it. With `browser` or `device_code`, it is enough on its own (`type` may then be left out: `browser`): the resource's authorization server is discovered from it (RFC 9728, RFC 8414) and, without `client_id`, a client is registered (RFC 7591) and kept with the tokens. See docs/resource-login.md. For `workload_identity`, the token exchange's `resource` (RFC 8693)",
        old_names: &[],
    },
    FieldDoc {
        name: "requested_token_type",
        ty: FieldType::Text,
        kinds: &[K::WorkloadIdentity],
        required: "no",
        default: "the server's choice",
        doc: "the token exchange's `requested_token_type` (Google: `urn:ietf:params:oauth:token-type:access_token`)",
        old_names: &[],
    },
    FieldDoc {
        name: "ca_file",
        ty: FieldType::Text,
        kinds: &[],
        required: "no",
        default: "the system's roots (`SSL_CERT_FILE` / `SSL_CERT_DIR` replace them)",
        doc: "a PEM file of CA certificates trusted **in addition to** the system's roots (a private CA); `~/` is the home directory",
        old_names: &[],
    },
    FieldDoc {
        name: "ca_file_only",
        ty: FieldType::Bool,
        kinds: &[],
        required: "no (needs `ca_file`)",
        default: "false",
        doc: "trust `ca_file` **only**, not the system's roots (pinning to a private CA)",
        old_names: &[],
    },
    FieldDoc {
        name: "tls_client_certificate",
        ty: FieldType::Text,
        kinds: &[],
        required: "with `client_auth` `tls_client_auth` / `self_signed_tls_client_auth` (and `tls_client_key`)",
        default: "",
        doc: "a PEM file with the TLS client certificate (and its chain) shown to the server on every request of this provider: mutual TLS client authentication and certificate-bound tokens (RFC 8705); `~/` is the home directory",
        old_names: &[],
    },
    FieldDoc {
        name: "tls_client_key",
        ty: FieldType::Text,
        kinds: &[],
        required: "with `tls_client_certificate`",
        default: "",
        doc: "a PEM file with the private key of `tls_client_certificate` (PKCS#8, PKCS#1 RSA or SEC1 EC); never shown",
        old_names: &[],
    },
    FieldDoc {
        name: "proxy",
        ty: FieldType::Url,
        kinds: &[],
        required: "no",
        default: "`HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY`",
        doc: "an HTTP(S) proxy for every request of this provider, `http://[user:password@]host:port` (the password is never shown)",
        old_names: &[],
    },
    FieldDoc {
        name: "no_proxy",
        ty: FieldType::Text,
        kinds: &[],
        required: "no",
        default: "`NO_PROXY`",
        doc: "hosts reached directly, comma separated (`NO_PROXY` syntax: `idp.internal,.corp.example,10.0.0.0/8`; `*`: never a proxy)",
        old_names: &[],
    },
    FieldDoc {
        name: "timeout",
        ty: FieldType::Seconds,
        kinds: &[],
        required: "no",
        default: "30",
        doc: "time limit of one HTTP request (connect, send, receive); connecting alone is limited to 10 s or this, if shorter",
        old_names: &[],
    },
    FieldDoc {
        name: "allow_insecure_http",
        ty: FieldType::Bool,
        kinds: &[],
        required: "no",
        default: "false",
        doc: "allow plain `http://` to hosts other than loopback (credentials then travel in clear)",
        old_names: &[],
    },
    FieldDoc {
        name: "user_agent",
        ty: FieldType::Text,
        kinds: &[],
        required: "no",
        default: "`tessera/<version>`",
        doc: "the `User-Agent` header of every request",
        old_names: &[],
    },
];

/// The field named `name` (current spelling).
pub fn field(name: &str) -> Option<&'static FieldDoc> {
    FIELDS.iter().find(|field| field.name == name)
}

/// Old spellings, with where they came from: (old, new).
const ALIASES: &[(&str, &str)] = &[
    ("provider", "type"),
    ("token_url", "token_endpoint"),
    ("revocation_url", "revocation_endpoint"),
    ("device_authorization_url", "device_authorization_endpoint"),
    ("otp_start_url", "otp_start_endpoint"),
    ("start_endpoint", "otp_start_endpoint"),
    ("start_url", "otp_start_endpoint"),
    ("otp_verify_url", "otp_verify_endpoint"),
    ("verify_endpoint", "otp_verify_endpoint"),
    ("verify_url", "otp_verify_endpoint"),
    ("max_attempts", "max_code_attempts"),
    ("endpoint", "endpoint_url"),
    ("authorization_url", "authorization_endpoint"),
    ("port", "redirect_port"),
    ("callback_path", "redirect_path"),
    ("extra_params", "authorization_params"),
];

/// The current name of a field given under an old one (`token_url` → `token_endpoint`).
pub fn current_name(name: &str) -> Option<&'static str> {
    ALIASES.iter().find(|(old, _)| *old == name).map(|(_, new)| *new)
}

/// Authorization request parameters that tessera sets itself for browser logins: they cannot be
/// given in `authorization_params`.
pub use crate::protocol::RESERVED_AUTHORIZATION_PARAMS;

/// The scope of `browser` providers that name none (with `issuer`; with `token_endpoint`, none).
pub const DEFAULT_BROWSER_SCOPE: &str = "openid";

/// What every provider has: who the client is and where the server is.
#[derive(Clone, Debug, Default)]
pub struct ClientSpec {
    /// `client_id`.
    pub client_id: Option<String>,
    /// `client_secret` (literal, or a reference for the resolver).
    pub client_secret: Option<Secret>,
    /// `client_auth`.
    pub client_auth: Option<ClientAuthMethod>,
    /// `client_assertion_key` (literal, or a reference for the resolver).
    pub client_assertion_key: Option<Secret>,
    /// `client_assertion_alg`.
    pub client_assertion_alg: Option<String>,
    /// `client_assertion_kid`.
    pub client_assertion_kid: Option<String>,
    /// `client_assertion_certificate` (literal PEM, or a reference for the resolver).
    pub client_assertion_certificate: Option<Secret>,
    /// `dpop`.
    pub dpop: bool,
    /// `dpop_key` (literal, or a reference for the resolver).
    pub dpop_key: Option<Secret>,
    /// `dpop_alg`.
    pub dpop_alg: Option<String>,
    /// `issuer`.
    pub issuer: Option<String>,
    /// `token_endpoint`.
    pub token_endpoint: Option<String>,
    /// `revocation_endpoint`.
    pub revocation_endpoint: Option<String>,
    /// `scope`.
    pub scope: Option<String>,
    /// `resource` (RFC 8707; for `workload_identity` it is the exchange's, in [`GrantSpec`]).
    pub resource: Option<String>,
}

/// The grant-specific part of a description, one variant per [`ProviderKind`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum GrantSpec {
    /// `password`.
    Password {
        /// `username`.
        username: String,
        /// `password`; `None`: not in the description, typed by a person at login (the CLI asks on
        /// a terminal). [`ProviderSpec::into_config`] without one fails as a missing field.
        password: Option<Secret>,
        /// `totp`.
        totp: Option<Secret>,
        /// `totp_secret`.
        totp_secret: Option<Secret>,
    },
    /// `client_credentials`.
    ClientCredentials,
    /// `refresh_token`.
    RefreshToken {
        /// `refresh_token`.
        refresh_token: Secret,
    },
    /// `static`.
    Static {
        /// `access_token`.
        access_token: Option<Secret>,
        /// `expires_at`.
        expires_at: Option<Timestamp>,
    },
    /// `device_code`.
    DeviceCode {
        /// `device_authorization_endpoint`.
        device_authorization_endpoint: Option<String>,
    },
    /// `email_otp`.
    EmailOtp {
        /// `email`.
        email: String,
        /// `otp_start_endpoint`.
        otp_start_endpoint: Option<String>,
        /// `otp_verify_endpoint`.
        otp_verify_endpoint: Option<String>,
        /// `max_code_attempts`.
        max_code_attempts: u32,
    },
    /// `cognito`.
    Cognito {
        /// The service URL, from `endpoint_url` or `region`.
        endpoint_url: String,
        /// `region`, when given.
        region: Option<String>,
        /// `username`.
        username: String,
        /// `password`.
        password: Option<Secret>,
        /// `auth_flow`.
        auth_flow: CognitoAuthFlow,
        /// `totp_secret`.
        totp_secret: Option<Secret>,
        /// `max_code_attempts`.
        max_code_attempts: u32,
    },
    /// `browser`.
    Browser {
        /// `authorization_endpoint`.
        authorization_endpoint: Option<String>,
        /// `redirect_uri`.
        redirect_uri: Option<String>,
        /// `redirect_port`.
        redirect_port: Option<u16>,
        /// `redirect_path`.
        redirect_path: Option<String>,
        /// `login_timeout`, seconds.
        login_timeout: Option<u64>,
        /// `authorization_params`.
        authorization_params: BTreeMap<String, String>,
    },
    /// `jwt_bearer`.
    JwtBearer {
        /// `assertion_key` (literal, or a reference for the resolver).
        assertion_key: Option<Secret>,
        /// `assertion_alg`.
        assertion_alg: Option<String>,
        /// `assertion_kid`.
        assertion_kid: Option<String>,
        /// `service_account_key` (literal JSON, or a reference for the resolver).
        service_account_key: Option<Secret>,
        /// `subject`.
        subject: Option<String>,
        /// `audience`.
        audience: Option<String>,
        /// `assertion_lifetime`, seconds.
        assertion_lifetime: Option<u64>,
        /// `scope_in_assertion`; `None`: `true` with `service_account_key`.
        scope_in_assertion: Option<bool>,
    },
    /// `workload_identity`.
    WorkloadIdentity {
        /// `subject_token` with its settings (`subject_token_headers`, `_field`, `_timeout`,
        /// `_audience`), read; `None` with `external_account`.
        source: Option<crate::flow::TokenSource>,
        /// `external_account` (a Google credential file's JSON, or a reference for the resolver):
        /// the source, the token type, the audience and the token endpoint come from it.
        external_account: Option<Secret>,
        /// `subject_token_type`.
        subject_token_type: Option<String>,
        /// `exchange`, with `audience`, `resource`, `requested_token_type`.
        exchange: crate::flow::Exchange,
    },
}

impl GrantSpec {
    /// The provider type.
    pub fn kind(&self) -> ProviderKind {
        match self {
            GrantSpec::Password { .. } => K::Password,
            GrantSpec::ClientCredentials => K::ClientCredentials,
            GrantSpec::RefreshToken { .. } => K::RefreshToken,
            GrantSpec::Static { .. } => K::Static,
            GrantSpec::DeviceCode { .. } => K::DeviceCode,
            GrantSpec::EmailOtp { .. } => K::EmailOtp,
            GrantSpec::Cognito { .. } => K::Cognito,
            GrantSpec::Browser { .. } => K::Browser,
            GrantSpec::JwtBearer { .. } => K::JwtBearer,
            GrantSpec::WorkloadIdentity { .. } => K::WorkloadIdentity,
        }
    }

    /// True when logging in needs a person: the interactive kinds, and Cognito's `custom` flow.
    pub fn is_interactive(&self) -> bool {
        self.kind().is_interactive() || matches!(self, GrantSpec::Cognito { auth_flow: CognitoAuthFlow::Custom, .. })
    }
}

/// A browser login's loopback listener, as described (`None` fields: the runtime's defaults).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoopbackSpec {
    /// `redirect_port`.
    pub port: Option<u16>,
    /// `redirect_path`.
    pub path: Option<String>,
    /// `login_timeout`, seconds.
    pub timeout_secs: Option<u64>,
}

/// How a provider's requests travel, as described (`None` / `false`: the runtime's default). The
/// core sends nothing: a runtime maps this onto its HTTP client (tessera:
/// `tessera::transport::TransportSettings`; a JSON host: its own client).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TransportSpec {
    /// `ca_file`: a PEM bundle trusted in addition to the system's roots (as written: `~/` is the
    /// runtime's to expand).
    pub ca_file: Option<String>,
    /// `ca_file_only`: trust `ca_file` alone.
    pub ca_file_only: bool,
    /// `tls_client_certificate`: a PEM file, the TLS client certificate (and chain).
    pub tls_client_certificate: Option<String>,
    /// `tls_client_key`: a PEM file, its private key (the path; the key is read by the runtime).
    pub tls_client_key: Option<String>,
    /// `proxy`: may hold a password; `Debug` shows it redacted ([`redact_url`]).
    pub proxy: Option<String>,
    /// `no_proxy`, `NO_PROXY` syntax.
    pub no_proxy: Option<String>,
    /// `timeout`, seconds.
    pub timeout_secs: Option<u64>,
    /// `allow_insecure_http`.
    pub allow_insecure_http: bool,
    /// `user_agent`.
    pub user_agent: Option<String>,
}

impl fmt::Debug for TransportSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportSpec")
            .field("ca_file", &self.ca_file)
            .field("ca_file_only", &self.ca_file_only)
            .field("tls_client_certificate", &self.tls_client_certificate)
            .field("tls_client_key", &self.tls_client_key)
            .field("proxy", &self.proxy.as_deref().map(redact_url))
            .field("no_proxy", &self.no_proxy)
            .field("timeout_secs", &self.timeout_secs)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

impl TransportSpec {
    /// The rules of the transport fields, shared by every front end (TOML, JSON, Python).
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.ca_file_only && self.ca_file.is_none() {
            return Err(FieldError::new("ca_file_only", "needs ca_file (the roots to trust instead of the system's)"));
        }
        for (field, path) in [
            ("ca_file", &self.ca_file),
            ("tls_client_certificate", &self.tls_client_certificate),
            ("tls_client_key", &self.tls_client_key),
        ] {
            if path.as_deref().is_some_and(|path| path.trim().is_empty()) {
                return Err(FieldError::new(field, "must not be empty"));
            }
        }
        match (&self.tls_client_certificate, &self.tls_client_key) {
            (Some(_), None) => {
                return Err(FieldError::new(
                    "tls_client_key",
                    "is required with tls_client_certificate (its private key)",
                ));
            }
            (None, Some(_)) => {
                return Err(FieldError::new("tls_client_key", "goes with tls_client_certificate"));
            }
            _ => {}
        }
        if let Some(proxy) = &self.proxy {
            match url::Url::parse(proxy) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
                _ => return Err(FieldError::new("proxy", "is not an http(s) URL with a host")),
            }
        }
        if self.no_proxy.as_deref().is_some_and(|hosts| hosts.chars().any(char::is_control)) {
            return Err(FieldError::new("no_proxy", "must not contain control characters"));
        }
        if self.timeout_secs == Some(0) {
            return Err(FieldError::new("timeout", "must be at least 1 (seconds)"));
        }
        if let Some(agent) = &self.user_agent
            && (agent.trim().is_empty() || agent.chars().any(|c| c.is_control() || !c.is_ascii()))
        {
            return Err(FieldError::new("user_agent", "must be non-empty printable ASCII"));
        }
        Ok(())
    }
}

/// `url` with its password (if any) replaced by `***`: what may be shown of a proxy URL. A value
/// that does not parse is not shown at all.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "<not a URL>".to_owned(),
    }
}

/// One provider, described: the client, the server, the grant and the transport. Secrets are held
/// as given (literals, or references that the front end's resolver reads in
/// [`ProviderSpec::into_config`]).
#[derive(Clone, Debug)]
pub struct ProviderSpec {
    /// Client and endpoints.
    pub client: ClientSpec,
    /// The grant.
    pub grant: GrantSpec,
    /// How its requests travel (proxy, roots, time limit).
    pub transport: TransportSpec,
}

/// A description read by [`ProviderSpec::from_value`], and the old spellings it used.
#[derive(Clone, Debug)]
pub struct ParsedSpec {
    /// The description (already [validated](ProviderSpec::validate)).
    pub spec: ProviderSpec,
    /// Old spellings that were accepted; log them.
    pub deprecations: Vec<Deprecation>,
}

/// Every field as one flat struct: only ever filled after [`check_fields`] accepted the object.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Flat {
    #[serde(rename = "type")]
    _type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<Secret>,
    client_auth: Option<String>,
    client_assertion_key: Option<Secret>,
    client_assertion_alg: Option<String>,
    client_assertion_kid: Option<String>,
    client_assertion_certificate: Option<Secret>,
    dpop: Option<bool>,
    dpop_key: Option<Secret>,
    dpop_alg: Option<String>,
    issuer: Option<String>,
    token_endpoint: Option<String>,
    revocation_endpoint: Option<String>,
    scope: Option<String>,
    username: Option<String>,
    password: Option<Secret>,
    totp: Option<Secret>,
    totp_secret: Option<Secret>,
    refresh_token: Option<Secret>,
    access_token: Option<Secret>,
    expires_at: Option<i64>,
    device_authorization_endpoint: Option<String>,
    email: Option<String>,
    otp_start_endpoint: Option<String>,
    otp_verify_endpoint: Option<String>,
    max_code_attempts: Option<u32>,
    region: Option<String>,
    endpoint_url: Option<String>,
    auth_flow: Option<String>,
    authorization_endpoint: Option<String>,
    redirect_uri: Option<String>,
    redirect_port: Option<u16>,
    redirect_path: Option<String>,
    login_timeout: Option<u64>,
    authorization_params: Option<BTreeMap<String, String>>,
    assertion_key: Option<Secret>,
    assertion_alg: Option<String>,
    assertion_kid: Option<String>,
    service_account_key: Option<Secret>,
    subject: Option<String>,
    audience: Option<String>,
    assertion_lifetime: Option<u64>,
    scope_in_assertion: Option<bool>,
    subject_token: Option<String>,
    subject_token_type: Option<String>,
    subject_token_headers: Option<BTreeMap<String, String>>,
    subject_token_field: Option<String>,
    subject_token_timeout: Option<u64>,
    subject_token_audience: Option<String>,
    exchange: Option<String>,
    resource: Option<String>,
    requested_token_type: Option<String>,
    external_account: Option<Secret>,
    ca_file: Option<String>,
    ca_file_only: Option<bool>,
    tls_client_certificate: Option<String>,
    tls_client_key: Option<String>,
    proxy: Option<String>,
    no_proxy: Option<String>,
    timeout: Option<u64>,
    allow_insecure_http: Option<bool>,
    user_agent: Option<String>,
}

impl ProviderSpec {
    /// Reads a description from a JSON-shaped value (TOML tables convert to it): renames old
    /// spellings (reported as deprecations), checks every field's applicability and type against
    /// [`FIELDS`], then [validates](ProviderSpec::validate). `name` and other keys the front end
    /// owns must be removed first.
    pub fn from_value(value: Value) -> Result<ParsedSpec, FieldError> {
        let Value::Object(mut object) = value else {
            return Err(FieldError::new("", "a provider must be a table (an object) of fields"));
        };
        let mut deprecations = Vec::new();
        lift_nested_grant(&mut object, &mut deprecations)?;
        rename_old_field(&mut object, &mut deprecations, "provider", "type")?;
        let kind = match object.get("type") {
            Some(Value::String(name)) => name.parse::<ProviderKind>()?,
            Some(other) => return Err(FieldError::new("type", format!("must be a string, not {}", json_type(other)))),
            // A resource alone is a resource-first browser login (docs/resource-login.md).
            None if object.contains_key("resource") => {
                object.insert("type".into(), Value::String(K::Browser.as_str().into()));
                K::Browser
            }
            None => {
                return Err(FieldError::new(
                    "type",
                    format!("is required (one of: {})", ProviderKind::NAMES.join(", ")),
                ));
            }
        };
        rename_old_fields(&mut object, &mut deprecations, kind)?;
        if let Some(Value::String(method)) = object.get("client_auth") {
            let renamed = match method.as_str() {
                "basic" => {
                    Some(("client_auth = \"basic\"", "client_auth = \"client_secret_basic\"", "client_secret_basic"))
                }
                "post" => {
                    Some(("client_auth = \"post\"", "client_auth = \"client_secret_post\"", "client_secret_post"))
                }
                _ => None,
            };
            if let Some((old, new, value)) = renamed {
                deprecations.push(Deprecation { old, new });
                object.insert("client_auth".into(), Value::String(value.into()));
            }
        }
        check_fields(&object, kind)?;
        let flat: Flat = serde_json::from_value(Value::Object(object))
            .map_err(|_| FieldError::new("", "a field has the wrong type"))?;
        let spec = ProviderSpec::from_flat(kind, flat)?;
        spec.validate()?;
        Ok(ParsedSpec { spec, deprecations })
    }

    fn from_flat(kind: ProviderKind, flat: Flat) -> Result<Self, FieldError> {
        let client_auth = match flat.client_auth.as_deref() {
            None => None,
            Some(name) => Some(ClientAuthMethod::from_name(name).ok_or_else(|| {
                FieldError::new("client_auth", format!("is not one of {}", ClientAuthMethod::NAMES.join(", ")))
            })?),
        };
        let client = ClientSpec {
            client_id: flat.client_id,
            client_secret: flat.client_secret,
            client_auth,
            client_assertion_key: flat.client_assertion_key,
            client_assertion_alg: flat.client_assertion_alg,
            client_assertion_kid: flat.client_assertion_kid,
            client_assertion_certificate: flat.client_assertion_certificate,
            dpop: flat.dpop.unwrap_or(false),
            dpop_key: flat.dpop_key,
            dpop_alg: flat.dpop_alg,
            issuer: flat.issuer,
            token_endpoint: flat.token_endpoint,
            revocation_endpoint: flat.revocation_endpoint,
            scope: flat.scope,
            resource: if kind == K::WorkloadIdentity { None } else { flat.resource.clone() },
        };
        let required_text = |field: &'static str, value: Option<String>| match value {
            Some(value) if !value.trim().is_empty() => Ok(value),
            _ => Err(required(field, kind)),
        };
        let required_secret = |field: &'static str, value: Option<Secret>| match value {
            Some(value) if !value.expose_secret().trim().is_empty() => Ok(value),
            _ => Err(required(field, kind)),
        };
        let attempts = flat.max_code_attempts.unwrap_or(DEFAULT_MAX_CODE_ATTEMPTS);
        let grant = match kind {
            K::Password => {
                if flat.totp.is_some() && flat.totp_secret.is_some() {
                    return Err(FieldError::new("totp", "give either totp (a code) or totp_secret, not both"));
                }
                GrantSpec::Password {
                    username: required_text("username", flat.username)?,
                    // Left out: typed at login. Given but blank: a mistake, said as before.
                    password: flat.password.map(|password| required_secret("password", Some(password))).transpose()?,
                    totp: flat.totp,
                    totp_secret: flat.totp_secret,
                }
            }
            K::ClientCredentials => GrantSpec::ClientCredentials,
            K::RefreshToken => {
                GrantSpec::RefreshToken { refresh_token: required_secret("refresh_token", flat.refresh_token)? }
            }
            K::Static => GrantSpec::Static {
                access_token: flat.access_token,
                expires_at: flat.expires_at.map(Timestamp::from_unix_secs),
            },
            K::DeviceCode => {
                GrantSpec::DeviceCode { device_authorization_endpoint: flat.device_authorization_endpoint }
            }
            K::EmailOtp => GrantSpec::EmailOtp {
                email: required_text("email", flat.email)?,
                otp_start_endpoint: flat.otp_start_endpoint,
                otp_verify_endpoint: flat.otp_verify_endpoint,
                max_code_attempts: attempts,
            },
            K::Cognito => {
                let endpoint_url = match (&flat.region, flat.endpoint_url) {
                    (Some(_), Some(_)) => {
                        return Err(FieldError::new("endpoint_url", "give either region or endpoint_url, not both"));
                    }
                    (None, None) => return Err(FieldError::new("region", "is required (or endpoint_url)")),
                    (Some(region), None) => {
                        if region.is_empty() || !region.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                            return Err(FieldError::new("region", "is not an AWS region name"));
                        }
                        format!("https://cognito-idp.{region}.amazonaws.com/")
                    }
                    (None, Some(url)) => url,
                };
                let auth_flow = match flat.auth_flow.as_deref() {
                    None | Some("user_password") => CognitoAuthFlow::UserPassword,
                    Some("custom") => CognitoAuthFlow::Custom,
                    Some(_) => {
                        return Err(FieldError::new("auth_flow", "is not one of user_password, custom"));
                    }
                };
                let password = match auth_flow {
                    CognitoAuthFlow::UserPassword => Some(required_secret("password", flat.password)?),
                    _ => flat.password,
                };
                GrantSpec::Cognito {
                    endpoint_url,
                    region: flat.region,
                    username: required_text("username", flat.username)?,
                    password,
                    auth_flow,
                    totp_secret: flat.totp_secret,
                    max_code_attempts: attempts,
                }
            }
            K::Browser => GrantSpec::Browser {
                authorization_endpoint: flat.authorization_endpoint,
                redirect_uri: flat.redirect_uri,
                redirect_port: flat.redirect_port,
                redirect_path: flat.redirect_path,
                login_timeout: flat.login_timeout,
                authorization_params: flat.authorization_params.unwrap_or_default(),
            },
            K::JwtBearer => GrantSpec::JwtBearer {
                assertion_key: flat.assertion_key,
                assertion_alg: flat.assertion_alg,
                assertion_kid: flat.assertion_kid,
                service_account_key: flat.service_account_key,
                subject: flat.subject,
                audience: flat.audience,
                assertion_lifetime: flat.assertion_lifetime,
                scope_in_assertion: flat.scope_in_assertion,
            },
            K::WorkloadIdentity => workload_identity_spec(&mut WorkloadFields {
                external_account: flat.external_account,
                subject_token: flat.subject_token,
                subject_token_type: flat.subject_token_type,
                subject_token_headers: flat.subject_token_headers,
                subject_token_field: flat.subject_token_field,
                subject_token_timeout: flat.subject_token_timeout,
                subject_token_audience: flat.subject_token_audience,
                exchange: flat.exchange,
                audience: flat.audience,
                resource: flat.resource,
                requested_token_type: flat.requested_token_type,
            })?,
        };
        let transport = TransportSpec {
            ca_file: flat.ca_file,
            ca_file_only: flat.ca_file_only.unwrap_or(false),
            tls_client_certificate: flat.tls_client_certificate,
            tls_client_key: flat.tls_client_key,
            proxy: flat.proxy,
            no_proxy: flat.no_proxy,
            timeout_secs: flat.timeout,
            allow_insecure_http: flat.allow_insecure_http.unwrap_or(false),
            user_agent: flat.user_agent,
        };
        Ok(ProviderSpec { client, grant, transport })
    }

    /// The provider type.
    pub fn kind(&self) -> ProviderKind {
        self.grant.kind()
    }

    /// The browser login's loopback listener settings (`None`: not a browser provider, or paste
    /// mode, where nothing listens).
    pub fn loopback(&self) -> Option<LoopbackSpec> {
        match &self.grant {
            GrantSpec::Browser { redirect_uri: None, redirect_port, redirect_path, login_timeout, .. } => {
                Some(LoopbackSpec { port: *redirect_port, path: redirect_path.clone(), timeout_secs: *login_timeout })
            }
            _ => None,
        }
    }

    /// True for a resource-first login (docs/resource-login.md): a `browser` or `device_code`
    /// provider with a `resource` and without what its authorization server would tell (an
    /// `issuer` or `token_endpoint`) or give (a `client_id`). Its configuration is built by
    /// discovery and registration at run time (`tessera::Session::for_resource`), not by
    /// [`ProviderSpec::into_config`], which refuses it.
    pub fn is_resource_first(&self) -> bool {
        let client = &self.client;
        matches!(self.kind(), K::Browser | K::DeviceCode)
            && client.resource.is_some()
            && (client.client_id.is_none() || (client.issuer.is_none() && client.token_endpoint.is_none()))
    }

    /// The rules that need the description itself (the rest, shared with every way of building a
    /// [`ProviderConfig`], is [`validate_config`], which [`ProviderSpec::into_config`] runs too).
    pub fn validate(&self) -> Result<(), FieldError> {
        self.transport.validate()?;
        let kind = self.kind();
        let client = &self.client;
        // A service-account key file names its token endpoint (`token_uri`).
        let endpoint_in_key = matches!(
            self.grant,
            GrantSpec::JwtBearer { service_account_key: Some(_), .. }
                | GrantSpec::WorkloadIdentity { external_account: Some(_), .. }
        );
        if let Some(resource) = &client.resource {
            crate::protocol::resource::check_resource_url(resource).map_err(|_| {
                FieldError::new("resource", "must be an https URL (or http on loopback) without a fragment")
            })?;
        }
        if self.is_resource_first() {
            // A registered client is public, and so is a `client_id` given without its server:
            // a credential here would be silently unused.
            for (field, present) in [
                ("client_secret", client.client_secret.is_some()),
                ("client_auth", client.client_auth.is_some()),
                ("client_assertion_key", client.client_assertion_key.is_some()),
                ("dpop", client.dpop),
            ] {
                if present {
                    return Err(FieldError::new(
                        field,
                        "goes with issuer (or token_endpoint) and client_id: a resource-first login uses a public client",
                    ));
                }
            }
            // The server and the client come from the resource (discovery, registration): the
            // rules on the built configuration apply once they are known.
            return Ok(());
        }
        if kind != K::Cognito && kind != K::Static {
            match (&client.issuer, &client.token_endpoint) {
                (Some(_), Some(_)) => {
                    return Err(FieldError::new("token_endpoint", "give either issuer or token_endpoint, not both"));
                }
                (None, None) if !endpoint_in_key => {
                    return Err(FieldError::new("issuer", "is required (or token_endpoint)"));
                }
                _ => {}
            }
        }
        if let GrantSpec::JwtBearer { assertion_key, assertion_alg, assertion_kid, service_account_key, .. } =
            &self.grant
        {
            validate_jwt_bearer_spec(client, assertion_key, assertion_alg, assertion_kid, service_account_key)?;
        }
        if client.client_assertion_key.is_none() {
            for (field, present) in [
                ("client_assertion_alg", client.client_assertion_alg.is_some()),
                ("client_assertion_kid", client.client_assertion_kid.is_some()),
                ("client_assertion_certificate", client.client_assertion_certificate.is_some()),
            ] {
                if present {
                    return Err(FieldError::new(field, "goes with client_assertion_key (private_key_jwt)"));
                }
            }
        }
        if !client.dpop {
            for (field, present) in [("dpop_key", client.dpop_key.is_some()), ("dpop_alg", client.dpop_alg.is_some())] {
                if present {
                    return Err(FieldError::new(field, "goes with dpop = true"));
                }
            }
        }
        if let Some(alg) = &client.dpop_alg
            && !crate::dpop::DPOP_ALGS.contains(&alg.as_str())
        {
            return Err(FieldError::new("dpop_alg", format!("is not one of {}", crate::dpop::DPOP_ALGS.join(", "))));
        }
        if let Some(alg) = &client.client_assertion_alg
            && !ASSERTION_ALGS.contains(&alg.as_str())
        {
            return Err(FieldError::new(
                "client_assertion_alg",
                format!("is not one of {}", ASSERTION_ALGS.join(", ")),
            ));
        }
        if client.client_auth.is_some_and(ClientAuthMethod::uses_certificate)
            && self.transport.tls_client_certificate.is_none()
        {
            return Err(FieldError::new(
                "tls_client_certificate",
                format!(
                    "is required with client_auth \"{}\" (the certificate is the credential)",
                    client.client_auth.map_or("", ClientAuthMethod::name)
                ),
            ));
        }
        if client.issuer.is_some() && client.revocation_endpoint.is_some() {
            return Err(FieldError::new(
                "revocation_endpoint",
                "goes with token_endpoint; with issuer it is discovered",
            ));
        }
        if let GrantSpec::Browser { redirect_uri, redirect_port, redirect_path, login_timeout, .. } = &self.grant {
            if redirect_uri.is_some() {
                let why = "redirect_uri is fixed: paste mode has no loopback listener";
                for (field, present) in [
                    ("redirect_port", redirect_port.is_some()),
                    ("redirect_path", redirect_path.is_some()),
                    ("login_timeout", login_timeout.is_some()),
                ] {
                    if present {
                        return Err(FieldError::new(field, format!("does not apply ({why})")));
                    }
                }
            }
            if let Some(path) = redirect_path
                && (!path.starts_with('/') || path.contains(['?', '#']) || path.chars().any(char::is_whitespace))
            {
                return Err(FieldError::new("redirect_path", "must start with '/' and hold no query or fragment"));
            }
            if *login_timeout == Some(0) {
                return Err(FieldError::new("login_timeout", "must be at least 1 (seconds)"));
            }
        }
        // Everything else is a rule on the built configuration, shared with every way of building a
        // ProviderConfig ([`validate_config`]), checked on the description as given (secrets are
        // not read: they only have to be there). A static provider may get its token later
        // (`tessera login --with-token`): its client rules are checked without a token.
        // A password provider without a password is checked the same way (the password is typed at
        // login).
        match &self.grant {
            GrantSpec::Static { access_token: None, .. } => {
                let mut probe = self.clone();
                probe.grant = GrantSpec::Static { access_token: Some(Secret::new("-")), expires_at: None };
                probe.build_config(&mut |_, value| Ok(value.clone()), KeyCheck::Skip)?;
            }
            GrantSpec::Password { password: None, username, totp, totp_secret } => {
                let mut probe = self.clone();
                probe.grant = GrantSpec::Password {
                    username: username.clone(),
                    password: Some(Secret::new("-")),
                    totp: totp.clone(),
                    totp_secret: totp_secret.clone(),
                };
                probe.into_config(&mut |_, value| Ok(value.clone()))?;
            }
            _ => {
                self.build_config(&mut |_, value| Ok(value.clone()), KeyCheck::Skip)?;
            }
        }
        Ok(())
    }

    /// The core configuration, with each secret passed through `resolve(field, value)` (the TOML
    /// front end reads `env:`/`file:`/`keyring:` references there; literal front ends return the
    /// value). Runs [`validate_config`] on the result.
    pub fn into_config(
        &self,
        resolve: &mut dyn FnMut(&'static str, &Secret) -> Result<Secret, String>,
    ) -> Result<ProviderConfig, FieldError> {
        if self.is_resource_first() {
            return Err(FieldError::new(
                "resource",
                "names a resource whose server and client are found at run time (resource-first login): build it with tessera::Session::for_resource",
            ));
        }
        self.build_config(resolve, KeyCheck::Read)
    }

    /// [`ProviderSpec::into_config`]; with [`KeyCheck::Skip`] (validating the description, whose
    /// `client_assertion_key` may still be a reference) the key is not read.
    fn build_config(
        &self,
        resolve: &mut dyn FnMut(&'static str, &Secret) -> Result<Secret, String>,
        key_check: KeyCheck,
    ) -> Result<ProviderConfig, FieldError> {
        type Resolve<'a> = dyn FnMut(&'static str, &Secret) -> Result<Secret, String> + 'a;
        fn one(resolve: &mut Resolve<'_>, field: &'static str, value: &Secret) -> Result<Secret, FieldError> {
            resolve(field, value).map_err(|problem| FieldError::new(field, problem))
        }
        let mut secret = |field: &'static str, value: &Option<Secret>| -> Result<Option<Secret>, FieldError> {
            value.as_ref().map(|value| one(resolve, field, value)).transpose()
        };
        let client = &self.client;
        let client_secret = secret("client_secret", &client.client_secret)?;
        let certificate = secret("client_assertion_certificate", &client.client_assertion_certificate)?;
        let assertion_key =
            secret("client_assertion_key", &client.client_assertion_key)?.map(|key| ClientAssertionKey {
                key,
                alg: client.client_assertion_alg.clone(),
                kid: client.client_assertion_kid.clone(),
                certificate,
            });
        // A key means private_key_jwt; a secret alone, client_secret_basic (RFC 6749's default
        // that every server supports); neither, a public client.
        // A certificate alone, tls_client_auth (on the wire the same as the self-signed method:
        // the client id in the body, the certificate in the handshake).
        let method = client.client_auth.unwrap_or(if assertion_key.is_some() {
            ClientAuthMethod::PrivateKeyJwt
        } else if client_secret.is_some() {
            ClientAuthMethod::Basic
        } else if self.transport.tls_client_certificate.is_some() {
            ClientAuthMethod::TlsClientAuth
        } else {
            ClientAuthMethod::None
        });
        // A service-account key's `token_uri`: the token endpoint unless one is configured.
        let mut service_account_token_uri: Option<Option<String>> = None;
        // An external_account file's `token_url`, likewise.
        let mut external_token_url: Option<String> = None;
        let mut client_auth = ClientAuth {
            client_id: client.client_id.clone().unwrap_or_default(),
            client_secret,
            method,
            method_from_metadata: client.client_auth.is_none(),
            assertion_key,
            dpop: match client.dpop {
                false => None,
                true => Some(DpopSettings { key: secret("dpop_key", &client.dpop_key)?, alg: client.dpop_alg.clone() }),
            },
        };
        let grant = match &self.grant {
            GrantSpec::Password { username, password, totp, totp_secret } => Grant::Password {
                username: username.clone(),
                password: secret("password", password)?.ok_or_else(|| required("password", K::Password))?,
                totp: match (secret("totp_secret", totp_secret)?, secret("totp", totp)?) {
                    (Some(shared), _) => Some(TotpSource::Secret(shared)),
                    (None, Some(code)) => Some(TotpSource::Code(code)),
                    (None, None) => None,
                },
            },
            GrantSpec::ClientCredentials => Grant::ClientCredentials,
            GrantSpec::RefreshToken { refresh_token } => Grant::RefreshToken {
                refresh_token: secret("refresh_token", &Some(refresh_token.clone()))?
                    .ok_or_else(|| required("refresh_token", K::RefreshToken))?,
            },
            GrantSpec::Static { access_token, expires_at } => Grant::Static {
                access_token: secret("access_token", access_token)?
                    .ok_or_else(|| required("access_token", K::Static))?,
                expires_at: *expires_at,
            },
            GrantSpec::DeviceCode { device_authorization_endpoint } => {
                Grant::DeviceCode { device_authorization_endpoint: device_authorization_endpoint.clone() }
            }
            GrantSpec::EmailOtp { email, otp_start_endpoint, otp_verify_endpoint, max_code_attempts } => {
                Grant::EmailOtp {
                    email: email.clone(),
                    otp_start_endpoint: otp_start_endpoint.clone(),
                    otp_verify_endpoint: otp_verify_endpoint.clone(),
                    max_code_attempts: *max_code_attempts,
                }
            }
            GrantSpec::Cognito {
                endpoint_url, username, password, auth_flow, totp_secret, max_code_attempts, ..
            } => Grant::Cognito {
                endpoint_url: endpoint_url.clone(),
                username: username.clone(),
                password: secret("password", password)?,
                auth_flow: *auth_flow,
                totp_secret: secret("totp_secret", totp_secret)?,
                max_code_attempts: *max_code_attempts,
            },
            GrantSpec::Browser { authorization_endpoint, redirect_uri, authorization_params, .. } => Grant::Browser {
                authorization_endpoint: authorization_endpoint.clone(),
                redirect_uri: redirect_uri.clone(),
                authorization_params: authorization_params.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            },
            GrantSpec::JwtBearer {
                assertion_key,
                assertion_alg,
                assertion_kid,
                service_account_key,
                subject,
                audience,
                assertion_lifetime,
                scope_in_assertion,
            } => {
                let mut key = ClientAssertionKey {
                    key: secret("assertion_key", assertion_key)?.unwrap_or_else(|| Secret::new("")),
                    alg: assertion_alg.clone(),
                    kid: assertion_kid.clone(),
                    certificate: None,
                };
                if let Some(reference) = service_account_key {
                    // Checking a description: the reference is not read (placeholders stand in).
                    let account = match key_check {
                        KeyCheck::Read => ServiceAccountKey::parse(&one(resolve, "service_account_key", reference)?)?,
                        KeyCheck::Skip => ServiceAccountKey::placeholder(),
                    };
                    key.key = account.private_key;
                    key.kid = account.private_key_id;
                    client_auth.client_id = account.client_email;
                    service_account_token_uri = Some(account.token_uri);
                    // A key from the file is the file's fault: its error names the file's field
                    // (and the front end adds the path), not an `assertion_key` nobody wrote.
                    if key_check == KeyCheck::Read {
                        crate::flow::checked_grant_signer(&key).map_err(|(_, problem)| {
                            FieldError::new("service_account_key", format!("its \"private_key\" {problem}"))
                        })?;
                    }
                }
                Grant::JwtBearer {
                    key,
                    subject: subject.clone(),
                    audience: audience.clone(),
                    scope_in_assertion: scope_in_assertion.unwrap_or(service_account_key.is_some()),
                    lifetime: assertion_lifetime
                        .map_or(crate::flow::DEFAULT_ASSERTION_LIFETIME, std::time::Duration::from_secs),
                }
            }
            GrantSpec::WorkloadIdentity { source, external_account, subject_token_type, exchange } => {
                match (source, external_account) {
                    (Some(source), _) => Grant::WorkloadIdentity {
                        source: source.clone(),
                        subject_token_type: subject_token_type
                            .clone()
                            .unwrap_or_else(|| crate::protocol::token_types::JWT.to_owned()),
                        exchange: exchange.clone(),
                    },
                    (None, Some(reference)) => {
                        // Checking a description: the reference is not read (a placeholder stands in).
                        let account = match key_check {
                            KeyCheck::Read => ExternalAccount::parse(&one(resolve, "external_account", reference)?)?,
                            KeyCheck::Skip => ExternalAccount::placeholder(),
                        };
                        if client.client_id.is_none()
                            && let Some(client_id) = &account.client_id
                        {
                            client_auth.client_id = client_id.clone();
                        }
                        if client_auth.client_secret.is_none() && account.client_secret.is_some() {
                            client_auth.client_secret = account.client_secret.clone();
                            if client.client_auth.is_none() {
                                client_auth.method = ClientAuthMethod::Basic;
                            }
                        }
                        external_token_url = Some(account.token_url.clone());
                        Grant::WorkloadIdentity {
                            source: account.source,
                            subject_token_type: account.subject_token_type,
                            exchange: crate::flow::Exchange::TokenExchange {
                                audience: Some(account.audience),
                                resource: None,
                                requested_token_type: Some(crate::protocol::token_types::ACCESS_TOKEN.to_owned()),
                            },
                        }
                    }
                    (None, None) => return Err(required("subject_token", K::WorkloadIdentity)),
                }
            }
        };
        let endpoints = match (&client.issuer, &client.token_endpoint, &self.grant) {
            (Some(issuer), _, _) => Endpoints::discover(issuer.clone()),
            (None, Some(token_endpoint), _) => Endpoints::Explicit {
                token_endpoint: token_endpoint.clone(),
                revocation_endpoint: client.revocation_endpoint.clone(),
            },
            // Cognito speaks its own protocol at its endpoint: the OAuth endpoints are not used.
            (None, None, GrantSpec::Cognito { endpoint_url, .. }) => Endpoints::explicit(endpoint_url.clone()),
            (None, None, GrantSpec::JwtBearer { .. }) => match service_account_token_uri {
                Some(Some(token_uri)) => Endpoints::explicit(token_uri),
                Some(None) => {
                    return Err(FieldError::new(
                        "service_account_key",
                        "has no \"token_uri\": give token_endpoint (or issuer)",
                    ));
                }
                None => Endpoints::explicit(""),
            },
            (None, None, GrantSpec::WorkloadIdentity { .. }) => {
                Endpoints::explicit(external_token_url.clone().unwrap_or_default())
            }
            (None, None, _) => Endpoints::explicit(""),
        };
        let scope = match (&self.grant, &client.scope, &client.issuer) {
            // A browser sign-in is an OpenID Connect login: ask for (and verify) an ID token.
            (GrantSpec::Browser { .. }, None, Some(_)) => Some(DEFAULT_BROWSER_SCOPE.to_owned()),
            _ => client.scope.clone(),
        };
        let config = ProviderConfig { client: client_auth, endpoints, scope, grant };
        validate_config_with(&config, key_check)?;
        Ok(config)
    }
}

/// The `workload_identity` fields as given.
struct WorkloadFields {
    external_account: Option<Secret>,
    subject_token: Option<String>,
    subject_token_type: Option<String>,
    subject_token_headers: Option<BTreeMap<String, String>>,
    subject_token_field: Option<String>,
    subject_token_timeout: Option<u64>,
    subject_token_audience: Option<String>,
    exchange: Option<String>,
    audience: Option<String>,
    resource: Option<String>,
    requested_token_type: Option<String>,
}

/// A `workload_identity` description's grant: the source read (its settings checked against its
/// kind), the exchange chosen. Errors name the field, never a header value.
fn workload_identity_spec(fields: &mut WorkloadFields) -> Result<GrantSpec, FieldError> {
    use crate::flow::{DEFAULT_SOURCE_TIMEOUT, Exchange, TokenSource};
    if let Some(account) = fields.external_account.take() {
        // The file says where the token comes from and what it is traded for.
        for (field, present) in [
            ("subject_token", fields.subject_token.is_some()),
            ("subject_token_type", fields.subject_token_type.is_some()),
            ("subject_token_headers", fields.subject_token_headers.is_some()),
            ("subject_token_field", fields.subject_token_field.is_some()),
            ("subject_token_timeout", fields.subject_token_timeout.is_some()),
            ("subject_token_audience", fields.subject_token_audience.is_some()),
            ("exchange", fields.exchange.is_some()),
            ("audience", fields.audience.is_some()),
            ("resource", fields.resource.is_some()),
            ("requested_token_type", fields.requested_token_type.is_some()),
        ] {
            if present {
                return Err(FieldError::new(field, "comes from external_account: give one or the other"));
            }
        }
        return Ok(GrantSpec::WorkloadIdentity {
            source: None,
            external_account: Some(account),
            subject_token_type: None,
            exchange: Exchange::TokenExchange { audience: None, resource: None, requested_token_type: None },
        });
    }
    let value = fields.subject_token.take().filter(|value| !value.trim().is_empty());
    let Some(value) = value else { return Err(required("subject_token", K::WorkloadIdentity)) };
    let kind = value.split_once(':').map_or(value.as_str(), |(scheme, _)| scheme).to_owned();
    let only = |field: &'static str, present: bool, with: &str| -> Result<(), FieldError> {
        if present && kind != with {
            Err(FieldError::new(
                field,
                format!("applies only to a {with}{} subject_token", if with == "github-actions" { "" } else { ":" }),
            ))
        } else {
            Ok(())
        }
    };
    only("subject_token_headers", fields.subject_token_headers.is_some(), "url")?;
    only("subject_token_field", fields.subject_token_field.is_some(), "url")?;
    only("subject_token_timeout", fields.subject_token_timeout.is_some(), "exec")?;
    only("subject_token_audience", fields.subject_token_audience.is_some(), "github-actions")?;
    if fields.subject_token_timeout == Some(0) {
        return Err(FieldError::new("subject_token_timeout", "must be at least 1 (seconds)"));
    }
    // The header's name is not repeated either: a misplaced value may be in it.
    if let Some(headers) = &fields.subject_token_headers
        && headers.iter().any(|(name, value)| {
            let bad = |text: &str| text.is_empty() || text.chars().any(|c| c.is_control());
            bad(name) || bad(value)
        })
    {
        return Err(FieldError::new(
            "subject_token_headers",
            "names and values must be non-empty, without control characters",
        ));
    }
    let headers = fields.subject_token_headers.take().unwrap_or_default().into_iter().collect();
    let timeout = fields.subject_token_timeout.map_or(DEFAULT_SOURCE_TIMEOUT, std::time::Duration::from_secs);
    let audience_of_token = fields.subject_token_audience.take().or_else(|| fields.audience.clone());
    let source = TokenSource::parse(&value, headers, fields.subject_token_field.take(), timeout, audience_of_token)
        .map_err(|problem| FieldError::new("subject_token", problem))?;
    let exchange = match fields.exchange.as_deref() {
        None | Some("token_exchange") => Exchange::TokenExchange {
            audience: fields.audience.take(),
            resource: fields.resource.take(),
            requested_token_type: fields.requested_token_type.take(),
        },
        Some("client_assertion") => {
            for (field, present) in [
                ("audience", fields.audience.is_some() && kind != "github-actions"),
                ("resource", fields.resource.is_some()),
                ("requested_token_type", fields.requested_token_type.is_some()),
            ] {
                if present {
                    return Err(FieldError::new(field, "applies to exchange \"token_exchange\" only"));
                }
            }
            Exchange::ClientAssertion
        }
        Some(_) => return Err(FieldError::new("exchange", "must be \"token_exchange\" or \"client_assertion\"")),
    };
    for (field, value) in [("subject_token_type", &fields.subject_token_type)] {
        if value.as_deref().is_some_and(|value| value.trim().is_empty()) {
            return Err(FieldError::new(field, "must not be empty"));
        }
    }
    Ok(GrantSpec::WorkloadIdentity {
        source: Some(source),
        external_account: None,
        subject_token_type: fields.subject_token_type.take(),
        exchange,
    })
}

/// The rules of a `jwt_bearer` description that need the description itself: a key, from
/// `assertion_key` or `service_account_key` (not both, and no `client_id`/`assertion_kid` beside a
/// key file, which holds them).
fn validate_jwt_bearer_spec(
    client: &ClientSpec,
    assertion_key: &Option<Secret>,
    assertion_alg: &Option<String>,
    assertion_kid: &Option<String>,
    service_account_key: &Option<Secret>,
) -> Result<(), FieldError> {
    if service_account_key.is_some() {
        let from_file = "comes from service_account_key: give one or the other";
        for (field, present) in [
            ("assertion_key", assertion_key.is_some()),
            ("assertion_kid", assertion_kid.is_some()),
            ("client_id", client.client_id.is_some()),
        ] {
            if present {
                return Err(FieldError::new(field, from_file));
            }
        }
    } else if assertion_key.is_none() {
        return Err(FieldError::new(
            "assertion_key",
            "is required for provider type \"jwt_bearer\" (or service_account_key)",
        ));
    }
    if let Some(alg) = assertion_alg
        && !ASSERTION_ALGS.contains(&alg.as_str())
    {
        return Err(FieldError::new("assertion_alg", format!("is not one of {}", ASSERTION_ALGS.join(", "))));
    }
    Ok(())
}

/// What tessera reads of a Google `external_account` credential file (workload identity
/// federation with an identity pool: google-auth's `identity_pool.Credentials`): the STS
/// `token_url`, the `audience` (the pool provider), the `subject_token_type`, and the
/// `credential_source` (a `file`, or a `url` with `headers` and a `format`). Impersonation, AWS and
/// executable sources are refused by name: tessera does not do them.
struct ExternalAccount {
    audience: String,
    subject_token_type: String,
    token_url: String,
    source: crate::flow::TokenSource,
    client_id: Option<String>,
    client_secret: Option<Secret>,
}

impl ExternalAccount {
    /// Google's security token service: where an `external_account` file without `token_url` goes.
    const GOOGLE_STS: &'static str = "https://sts.googleapis.com/v1/token";

    /// Reads the JSON. Errors name `external_account` and the member, never a value.
    fn parse(text: &Secret) -> Result<Self, FieldError> {
        use crate::flow::TokenSource;
        let field = "external_account";
        let json: Map<String, Value> = serde_json::from_str(text.expose_secret())
            .map_err(|_| FieldError::new(field, "is not a JSON object (an external_account credential file)"))?;
        let member = |object: &Map<String, Value>, name: &str| -> Result<Option<String>, FieldError> {
            match object.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(value)) if value.trim().is_empty() => Ok(None),
                Some(Value::String(value)) => Ok(Some(value.clone())),
                Some(other) => {
                    Err(FieldError::new(field, format!("\"{name}\" must be a string, not {}", json_type(other))))
                }
            }
        };
        match member(&json, "type")?.as_deref() {
            Some("external_account") => {}
            Some(other) => {
                return Err(FieldError::new(
                    field,
                    format!("\"type\" is{} where \"external_account\" was expected", echo_identifier(other)),
                ));
            }
            None => return Err(FieldError::new(field, "has no \"type\" (\"external_account\")")),
        }
        for unsupported in ["service_account_impersonation_url", "workforce_pool_user_project"] {
            if json.get(unsupported).is_some_and(|value| !value.is_null()) {
                return Err(FieldError::new(
                    field,
                    format!(
                        "has \"{unsupported}\": tessera does not do that step (grant the pool's principal access itself)"
                    ),
                ));
            }
        }
        let audience = member(&json, "audience")?.ok_or_else(|| FieldError::new(field, "has no \"audience\""))?;
        let subject_token_type = member(&json, "subject_token_type")?
            .ok_or_else(|| FieldError::new(field, "has no \"subject_token_type\""))?;
        let token_url = member(&json, "token_url")?.unwrap_or_else(|| Self::GOOGLE_STS.to_owned());
        check_url(field, Some(&token_url))
            .map_err(|_| FieldError::new(field, "\"token_url\" is not an http(s) URL"))?;
        let Some(Value::Object(credential_source)) = json.get("credential_source") else {
            return Err(FieldError::new(field, "has no \"credential_source\" object"));
        };
        let field_name = match credential_source.get("format") {
            None | Some(Value::Null) => None,
            Some(Value::Object(format)) => match member(format, "type")?.as_deref() {
                None | Some("text") => None,
                Some("json") => Some(member(format, "subject_token_field_name")?.ok_or_else(|| {
                    FieldError::new(field, "\"credential_source.format\" has no \"subject_token_field_name\"")
                })?),
                Some(_) => {
                    return Err(FieldError::new(
                        field,
                        "\"credential_source.format.type\" must be \"text\" or \"json\"",
                    ));
                }
            },
            Some(_) => return Err(FieldError::new(field, "\"credential_source.format\" must be an object")),
        };
        let source = if let Some(path) = member(credential_source, "file")? {
            if field_name.is_some() {
                return Err(FieldError::new(
                    field,
                    "a \"file\" source in JSON format is not read by tessera (text only)",
                ));
            }
            TokenSource::File(path)
        } else if let Some(url) = member(credential_source, "url")? {
            let headers = match credential_source.get("headers") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Object(headers)) => headers
                    .iter()
                    .map(|(name, value)| match value {
                        Value::String(value) => Ok((name.clone(), value.clone())),
                        _ => Err(FieldError::new(field, "\"credential_source.headers\" values must be strings")),
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(FieldError::new(field, "\"credential_source.headers\" must be an object")),
            };
            TokenSource::parse(&format!("url:{url}"), headers, field_name, crate::flow::DEFAULT_SOURCE_TIMEOUT, None)
                .map_err(|problem| FieldError::new(field, format!("\"credential_source.url\" {problem}")))?
        } else if credential_source.contains_key("environment_id") {
            return Err(FieldError::new(
                field,
                "has an AWS \"credential_source\": tessera reads file and url sources only",
            ));
        } else if credential_source.contains_key("executable") {
            return Err(FieldError::new(
                field,
                "has an \"executable\" credential_source: use subject_token = \"exec:COMMAND\" instead",
            ));
        } else {
            return Err(FieldError::new(field, "\"credential_source\" has neither \"file\" nor \"url\""));
        };
        Ok(ExternalAccount {
            audience,
            subject_token_type,
            token_url,
            source,
            client_id: member(&json, "client_id")?,
            client_secret: member(&json, "client_secret")?.map(Secret::new),
        })
    }

    /// What stands in for an unread file while a description is only checked.
    fn placeholder() -> Self {
        ExternalAccount {
            audience: "audience".into(),
            subject_token_type: crate::protocol::token_types::JWT.into(),
            token_url: "https://token-url.invalid/".into(),
            source: crate::flow::TokenSource::Env("TESSERA_PLACEHOLDER".into()),
            client_id: None,
            client_secret: None,
        }
    }
}

/// What tessera reads of a Google service-account JSON key (the file the Cloud console's "Create
/// key" downloads; google-auth's `from_service_account_file`). Other members (`project_id`,
/// `client_id`, `auth_uri`, ...) are not used.
struct ServiceAccountKey {
    client_email: String,
    private_key: Secret,
    private_key_id: Option<String>,
    token_uri: Option<String>,
}

impl ServiceAccountKey {
    /// Reads the JSON. Errors name `service_account_key` and the member, never a value (the
    /// parser's own messages quote the input, so they are not used).
    fn parse(text: &Secret) -> Result<Self, FieldError> {
        let field = "service_account_key";
        let json: Map<String, Value> = serde_json::from_str(text.expose_secret())
            .map_err(|_| FieldError::new(field, "is not a JSON object (a service-account key file)"))?;
        let text_member = |name: &str| -> Result<Option<&str>, FieldError> {
            match json.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(value)) if value.trim().is_empty() => Ok(None),
                Some(Value::String(value)) => Ok(Some(value.as_str())),
                Some(other) => {
                    Err(FieldError::new(field, format!("\"{name}\" must be a string, not {}", json_type(other))))
                }
            }
        };
        let required = |name: &str| -> Result<&str, FieldError> {
            text_member(name)?.ok_or_else(|| FieldError::new(field, format!("has no \"{name}\"")))
        };
        match text_member("type")? {
            Some("service_account") => {}
            Some(other) => {
                return Err(FieldError::new(
                    field,
                    format!(
                        "\"type\" is{} where \"service_account\" was expected (an authorized_user or external_account file is not a service-account key)",
                        echo_identifier(other)
                    ),
                ));
            }
            None => return Err(FieldError::new(field, "has no \"type\" (\"service_account\")")),
        }
        let client_email = required("client_email")?.to_owned();
        let private_key = Secret::new(required("private_key")?);
        let token_uri = text_member("token_uri")?.map(str::to_owned);
        if let Some(uri) = &token_uri {
            check_url(field, Some(uri)).map_err(|_| FieldError::new(field, "\"token_uri\" is not an http(s) URL"))?;
        }
        let private_key_id = text_member("private_key_id")?.map(str::to_owned);
        Ok(ServiceAccountKey { client_email, private_key, private_key_id, token_uri })
    }

    /// What stands in for an unread key file while a description is only checked.
    fn placeholder() -> Self {
        ServiceAccountKey {
            client_email: "service-account".into(),
            private_key: Secret::new("-"),
            private_key_id: None,
            token_uri: Some("https://token-uri.invalid/".into()),
        }
    }
}

/// The rules every [`ProviderConfig`] must follow, however it was built (TOML, JSON, Python, Rust):
/// client authentication, endpoint URLs, and the grant's own settings. Field names are those of
/// the description ([`FIELDS`]).
pub fn validate_config(config: &ProviderConfig) -> Result<(), FieldError> {
    validate_config_with(config, KeyCheck::Read)
}

/// A [`DpopSettings::check`] error as the field it names (its message is "field: problem").
fn dpop_field_error(error: &Error) -> FieldError {
    let message = match error {
        Error::Configuration { message } => message.as_str(),
        _ => "cannot be used",
    };
    match message.split_once(": ") {
        Some(("dpop_alg", problem)) => FieldError::new("dpop_alg", problem.to_owned()),
        Some((_, problem)) => FieldError::new("dpop_key", problem.to_owned()),
        None => FieldError::new("dpop_key", message.to_owned()),
    }
}

/// Whether validation reads `client_assertion_key` (it may still be an unresolved reference while
/// a description is checked).
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyCheck {
    Read,
    Skip,
}

fn validate_config_with(config: &ProviderConfig, key_check: KeyCheck) -> Result<(), FieldError> {
    let kind = ProviderKind::of(&config.grant);
    let ClientAuth { client_id, client_secret, method, assertion_key, dpop, .. } = &config.client;
    // RFC 8693 does not require client authentication: a token exchange may come from nobody.
    let anonymous_exchange =
        matches!(config.grant, Grant::WorkloadIdentity { exchange: crate::flow::Exchange::TokenExchange { .. }, .. })
            && *method == ClientAuthMethod::None;
    if let Some(kind) = kind.filter(|kind| *kind != K::Static && !anonymous_exchange)
        && client_id.trim().is_empty()
    {
        return Err(required("client_id", kind));
    }
    match method {
        ClientAuthMethod::PrivateKeyJwt => {
            if assertion_key.is_none() {
                return Err(FieldError::new(
                    "client_assertion_key",
                    "is required with client_auth \"private_key_jwt\"",
                ));
            }
            if client_secret.is_some() {
                return Err(FieldError::new("client_secret", "is not used with client_auth \"private_key_jwt\""));
            }
        }
        ClientAuthMethod::None => {}
        ClientAuthMethod::TlsClientAuth | ClientAuthMethod::SelfSignedTlsClientAuth if client_secret.is_some() => {
            return Err(FieldError::new(
                "client_secret",
                format!("is not used with client_auth \"{}\" (the certificate is the credential)", method.name()),
            ));
        }
        ClientAuthMethod::TlsClientAuth | ClientAuthMethod::SelfSignedTlsClientAuth => {}
        _ if client_secret.is_none() => return Err(client_secret_needed(*method)),
        _ => {}
    }
    if assertion_key.is_some() && *method != ClientAuthMethod::PrivateKeyJwt {
        return Err(FieldError::new(
            "client_assertion_key",
            format!("goes with client_auth \"private_key_jwt\", not \"{}\"", method.name()),
        ));
    }
    if kind == Some(K::ClientCredentials)
        && client_secret.is_none()
        && *method != ClientAuthMethod::PrivateKeyJwt
        && !method.uses_certificate()
    {
        return Err(required("client_secret", K::ClientCredentials));
    }
    if key_check == KeyCheck::Read {
        config.client.checked_assertion_signer().map_err(|(field, problem)| FieldError::new(field, problem))?;
    }
    if let Grant::WorkloadIdentity { exchange: crate::flow::Exchange::ClientAssertion, .. } = &config.grant
        && *method != ClientAuthMethod::None
    {
        let field = if client_secret.is_some() { "client_secret" } else { "client_auth" };
        return Err(FieldError::new(
            field,
            "does not apply with exchange \"client_assertion\": the subject token authenticates the client",
        ));
    }
    if let Some(dpop) = dpop {
        if kind.is_some_and(|kind| !DPOP_KINDS.contains(&kind)) {
            return Err(FieldError::new("dpop", "applies to OAuth token endpoints only"));
        }
        // A generated key's dpop_alg is checked now; a user's key once it can be read.
        if key_check == KeyCheck::Read || dpop.key.is_none() {
            dpop.check().map_err(|error| dpop_field_error(&error))?;
        }
    }
    if let Grant::JwtBearer { key, subject, audience, lifetime, .. } = &config.grant {
        if key_check == KeyCheck::Read {
            crate::flow::checked_grant_signer(key).map_err(|(field, problem)| FieldError::new(field, problem))?;
        }
        if key.alg.as_deref().is_some_and(|alg| !ASSERTION_ALGS.contains(&alg)) {
            return Err(FieldError::new("assertion_alg", format!("is not one of {}", ASSERTION_ALGS.join(", "))));
        }
        for (field, value) in [("subject", subject), ("audience", audience)] {
            if value.as_deref().is_some_and(|value| value.trim().is_empty()) {
                return Err(FieldError::new(field, "must not be empty"));
            }
        }
        if lifetime.as_secs() == 0 {
            return Err(FieldError::new("assertion_lifetime", "must be at least 1 (seconds)"));
        }
    }
    let discovered = matches!(config.endpoints, Endpoints::Discover { .. });
    match &config.endpoints {
        Endpoints::Discover { issuer } => check_url("issuer", Some(issuer))?,
        Endpoints::Explicit { token_endpoint, revocation_endpoint } => {
            if !matches!(config.grant, Grant::Cognito { .. } | Grant::Static { .. }) {
                check_url("token_endpoint", Some(token_endpoint))?;
            }
            check_url("revocation_endpoint", revocation_endpoint.as_deref())?;
        }
    }
    let empty = |value: &str| value.trim().is_empty();
    match &config.grant {
        Grant::Password { username, password, .. } => {
            if empty(username) {
                return Err(required("username", K::Password));
            }
            if empty(password.expose_secret()) {
                return Err(required("password", K::Password));
            }
        }
        Grant::RefreshToken { refresh_token } if empty(refresh_token.expose_secret()) => {
            return Err(required("refresh_token", K::RefreshToken));
        }
        Grant::EmailOtp { email, .. } if empty(email) => return Err(required("email", K::EmailOtp)),
        Grant::Cognito { username, password, auth_flow, .. } => {
            if empty(username) {
                return Err(required("username", K::Cognito));
            }
            if *auth_flow == CognitoAuthFlow::UserPassword && password.as_ref().is_none_or(|p| empty(p.expose_secret()))
            {
                return Err(required("password", K::Cognito));
            }
        }
        Grant::DeviceCode { device_authorization_endpoint: None } if !discovered => {
            return Err(FieldError::new(
                "device_authorization_endpoint",
                "is required with token_endpoint (or give issuer to discover it)",
            ));
        }
        Grant::EmailOtp { otp_start_endpoint, otp_verify_endpoint, .. } if !discovered => {
            if otp_start_endpoint.is_none() {
                return Err(FieldError::new("otp_start_endpoint", "is required with token_endpoint (or give issuer)"));
            }
            if otp_verify_endpoint.is_none() {
                return Err(FieldError::new("otp_verify_endpoint", "is required with token_endpoint (or give issuer)"));
            }
        }
        Grant::Browser { authorization_endpoint: None, .. } if !discovered => {
            return Err(FieldError::new(
                "authorization_endpoint",
                "is required with token_endpoint (or give issuer to discover it)",
            ));
        }
        _ => {}
    }
    match &config.grant {
        Grant::EmailOtp { otp_start_endpoint, otp_verify_endpoint, max_code_attempts, .. } => {
            check_url("otp_start_endpoint", otp_start_endpoint.as_deref())?;
            check_url("otp_verify_endpoint", otp_verify_endpoint.as_deref())?;
            check_attempts(*max_code_attempts)?;
        }
        Grant::Cognito { endpoint_url, max_code_attempts, .. } => {
            check_url("endpoint_url", Some(endpoint_url))?;
            check_attempts(*max_code_attempts)?;
        }
        Grant::DeviceCode { device_authorization_endpoint } => {
            check_url("device_authorization_endpoint", device_authorization_endpoint.as_deref())?;
        }
        Grant::Browser { authorization_endpoint, redirect_uri, authorization_params } => {
            check_url("authorization_endpoint", authorization_endpoint.as_deref())?;
            check_url("redirect_uri", redirect_uri.as_deref())?;
            if let Some(redirect_uri) = redirect_uri
                && let Ok(url) = url::Url::parse(redirect_uri)
                && (url.fragment().is_some() || url.query().is_some())
            {
                return Err(FieldError::new("redirect_uri", "must have neither a query nor a fragment"));
            }
            // ID tokens are verified against the discovered issuer and keys: without discovery, no `openid`.
            if !discovered && config.scope.as_deref().is_some_and(|s| s.split_whitespace().any(|w| w == "openid")) {
                return Err(FieldError::new(
                    "scope",
                    "\"openid\" needs issuer (the ID token is verified with the discovered keys); with token_endpoint, leave it out",
                ));
            }
            for (name, value) in authorization_params {
                if RESERVED_AUTHORIZATION_PARAMS.contains(&name.as_str()) {
                    return Err(param_error(
                        "authorization_params",
                        name,
                        "is set by tessera for every browser login and cannot be given",
                    ));
                }
                if name.is_empty() || value.is_empty() {
                    return Err(param_error("authorization_params", name, "names and values must not be empty"));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// A problem with the entry `key` of the table `field` (`authorization_params.prompt`), naming the
/// entry only when its name looks like one.
fn param_error(field: &str, key: &str, problem: &str) -> FieldError {
    if is_identifier(key) {
        FieldError::new(format!("{field}.{key}"), problem)
    } else {
        FieldError::new(field, format!("an entry ({UNNAMED_KEY}): {problem}"))
    }
}

fn client_secret_needed(method: ClientAuthMethod) -> FieldError {
    FieldError::new("client_secret", format!("is required with client_auth \"{}\"", method.name()))
}

fn check_attempts(attempts: u32) -> Result<(), FieldError> {
    if attempts == 0 { Err(FieldError::new("max_code_attempts", "must be at least 1")) } else { Ok(()) }
}

fn required(field: &str, kind: ProviderKind) -> FieldError {
    FieldError::new(field, format!("is required for provider type \"{kind}\""))
}

fn check_url(field: &str, url: Option<&str>) -> Result<(), FieldError> {
    match url {
        Some(url) if url::Url::parse(url).map(|u| !matches!(u.scheme(), "http" | "https")).unwrap_or(true) => {
            Err(FieldError::new(field, "is not an http(s) URL"))
        }
        _ => Ok(()),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a float",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    }
}

/// The JSON API's first shape, `{"client_id": …, "grant": {"type": …, …}}`: the grant's fields
/// move to the top level.
fn lift_nested_grant(object: &mut Map<String, Value>, deprecations: &mut Vec<Deprecation>) -> Result<(), FieldError> {
    let Some(grant) = object.remove("grant") else { return Ok(()) };
    let Value::Object(grant) = grant else {
        return Err(FieldError::new("grant", format!("must be a table, not {}", json_type(&grant))));
    };
    deprecations
        .push(Deprecation { old: "a nested \"grant\" object", new: "its fields (and \"type\") at the top level" });
    for (name, value) in grant {
        if object.contains_key(&name) {
            return Err(FieldError::new(name, "is given twice (at the top level and in \"grant\")"));
        }
        object.insert(name, value);
    }
    Ok(())
}

fn rename_old_field(
    object: &mut Map<String, Value>,
    deprecations: &mut Vec<Deprecation>,
    old: &'static str,
    new: &'static str,
) -> Result<(), FieldError> {
    let Some(value) = object.remove(old) else { return Ok(()) };
    if object.contains_key(new) {
        return Err(FieldError::new(old, format!("is the old name of {new}: give only {new}")));
    }
    deprecations.push(Deprecation { old, new });
    object.insert(new.to_owned(), value);
    Ok(())
}

/// Renames the old spellings of the fields that apply to `kind` (an old name that means nothing
/// for this kind stays as written, so the error names what the user wrote).
fn rename_old_fields(
    object: &mut Map<String, Value>,
    deprecations: &mut Vec<Deprecation>,
    kind: ProviderKind,
) -> Result<(), FieldError> {
    for (old, new) in ALIASES {
        if *old != "provider" && field(new).is_some_and(|field| field.applies_to(kind)) {
            rename_old_field(object, deprecations, old, new)?;
        }
    }
    // The JSON API's first shape accepted (and ignored) a token URL beside a Cognito grant.
    if kind == ProviderKind::Cognito && object.remove("token_url").is_some() {
        deprecations.push(Deprecation { old: "token_url on a cognito provider (ignored)", new: "endpoint_url alone" });
    }
    // Milliseconds in the JSON API's first shape; seconds everywhere now.
    if let Some(value) = object.remove("expires_at_ms").filter(|_| kind == ProviderKind::Static) {
        if object.contains_key("expires_at") {
            return Err(FieldError::new("expires_at_ms", "is the old name of expires_at: give only expires_at"));
        }
        let Some(millis) = value.as_i64() else {
            return Err(FieldError::new("expires_at_ms", format!("must be an integer, not {}", json_type(&value))));
        };
        deprecations.push(Deprecation { old: "expires_at_ms", new: "expires_at (Unix seconds)" });
        object.insert("expires_at".into(), Value::from(millis.div_euclid(1000)));
    }
    Ok(())
}

/// Every field known, applicable to `kind`, and of its type. Errors name the field, never its value.
fn check_fields(object: &Map<String, Value>, kind: ProviderKind) -> Result<(), FieldError> {
    for (name, value) in object {
        let Some(doc) = field(name) else {
            return Err(if is_identifier(name) {
                FieldError::new(name.as_str(), format!("unknown field for provider type \"{kind}\""))
            } else {
                FieldError::new("", format!("unknown field for provider type \"{kind}\" ({UNNAMED_KEY})"))
            });
        };
        if !doc.applies_to(kind) {
            return Err(FieldError::new(name.as_str(), format!("does not apply to provider type \"{kind}\"")));
        }
        let wrong =
            |expected: &str| FieldError::new(name.as_str(), format!("must be {expected}, not {}", json_type(value)));
        match doc.ty {
            FieldType::Text | FieldType::Url | FieldType::Secret => {
                if !value.is_string() {
                    return Err(wrong("a string"));
                }
            }
            FieldType::Count => match value.as_u64() {
                Some(n) if n >= 1 && n <= u64::from(u32::MAX) => {}
                Some(_) => return Err(FieldError::new(name.as_str(), "must be at least 1")),
                None if value.is_i64() => return Err(FieldError::new(name.as_str(), "must be at least 1")),
                None => return Err(wrong("an integer")),
            },
            FieldType::Port => match value.as_u64() {
                Some(n) if n <= u64::from(u16::MAX) => {}
                Some(_) => return Err(FieldError::new(name.as_str(), "must be a port number (0 to 65535)")),
                None if value.is_i64() => {
                    return Err(FieldError::new(name.as_str(), "must be a port number (0 to 65535)"));
                }
                None => return Err(wrong("an integer")),
            },
            FieldType::Seconds => match value.as_u64() {
                Some(n) if n >= 1 => {}
                Some(_) => return Err(FieldError::new(name.as_str(), "must be at least 1 (seconds)")),
                None if value.is_i64() => return Err(FieldError::new(name.as_str(), "must be at least 1 (seconds)")),
                None => return Err(wrong("an integer")),
            },
            FieldType::UnixSeconds => {
                if !value.is_i64() {
                    return Err(wrong("an integer (Unix seconds)"));
                }
            }
            FieldType::Bool => {
                if !value.is_boolean() {
                    return Err(wrong("a boolean"));
                }
            }
            FieldType::Params => {
                let Value::Object(params) = value else { return Err(wrong("a table")) };
                if let Some((key, _)) = params.iter().find(|(_, v)| !v.is_string()) {
                    return Err(param_error(name, key, "must be a string"));
                }
            }
        }
    }
    Ok(())
}

/// The provider fields as a Markdown table: the reference in docs/configuration.md is this text
/// (a test compares them).
pub fn fields_reference_markdown() -> String {
    let mut out = String::from("| field | applies to | value | required | default | meaning | old names |\n");
    out.push_str("| --- | --- | --- | --- | --- | --- | --- |\n");
    for field in FIELDS {
        let kinds = if field.kinds.is_empty() {
            "all".to_owned()
        } else if field.kinds == OAUTH_KINDS {
            "all but `cognito`".to_owned()
        } else {
            field.kinds.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
        };
        let old: Vec<String> = field.old_names.iter().map(|n| format!("`{n}`")).collect();
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} |\n",
            field.name,
            kinds,
            field.ty.describe(),
            field.required,
            field.default,
            field.doc,
            old.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<ParsedSpec, FieldError> {
        ProviderSpec::from_value(value)
    }

    fn literal(_: &'static str, value: &Secret) -> Result<Secret, String> {
        Ok(value.clone())
    }

    #[test]
    fn every_kind_round_trips_its_name() {
        for kind in ProviderKind::ALL {
            assert_eq!(ProviderKind::from_name(kind.as_str()), Some(kind));
        }
        assert!(ProviderKind::from_name("passwrd").is_none());
        assert_eq!(ProviderKind::of(&Grant::ClientCredentials), Some(ProviderKind::ClientCredentials));
    }

    #[test]
    fn a_resource_alone_is_a_resource_first_browser_login() {
        let spec = parse(json!({"resource": "https://api.example/mcp"})).unwrap().spec;
        assert_eq!(spec.kind(), ProviderKind::Browser);
        assert!(spec.is_resource_first());
        assert_eq!(spec.client.resource.as_deref(), Some("https://api.example/mcp"));
        assert_eq!(spec.into_config(&mut literal).unwrap_err().field, "resource", "built at run time");
        let device = parse(json!({"type": "device_code", "resource": "https://api.example/"})).unwrap().spec;
        assert!(device.is_resource_first());
        // With its server and client given, a resource is a parameter of an ordinary provider.
        let given = json!({"type": "browser", "issuer": "https://idp", "client_id": "c", "resource": "https://api/"});
        let given = parse(given).unwrap().spec;
        assert!(!given.is_resource_first());
        assert!(given.into_config(&mut literal).is_ok());
        for bad in ["http://api.example/", "not a url", "https://api.example/#x"] {
            assert_eq!(parse(json!({"resource": bad})).unwrap_err().field, "resource", "{bad}");
        }
        let secret = parse(json!({"resource": "https://api.example/", "client_id": "c", "client_secret": "s"}));
        assert_eq!(secret.unwrap_err().field, "client_secret", "a credential a resource-first login would not use");
        let cc = json!({"type": "client_credentials", "issuer": "https://i", "client_id": "c", "client_secret": "s", "resource": "https://api/"});
        assert!(!parse(cc).unwrap().spec.is_resource_first());
    }

    #[test]
    fn old_spellings_load_and_are_reported() {
        let parsed = parse(json!({
            "provider": "email_otp", "client_id": "c", "token_url": "https://idp/t",
            "otp_start_url": "https://idp/s", "verify_endpoint": "https://idp/v", "email": "a@b", "max_attempts": 5,
        }))
        .unwrap();
        let old: Vec<_> = parsed.deprecations.iter().map(|d| d.old).collect();
        assert_eq!(old, ["provider", "token_url", "otp_start_url", "verify_endpoint", "max_attempts"]);
        let config = parsed.spec.into_config(&mut literal).unwrap();
        assert!(matches!(config.grant, Grant::EmailOtp { max_code_attempts: 5, .. }));
        let both = parse(json!({"type": "client_credentials", "client_id": "c", "client_secret": "s",
            "token_url": "https://a", "token_endpoint": "https://b"}));
        assert_eq!(both.unwrap_err().field, "token_url");
    }

    #[test]
    fn the_nested_json_grant_and_millisecond_expiry_still_load() {
        let parsed = parse(json!({"client_id": "c", "token_url": "https://idp/t",
            "grant": {"type": "static", "access_token": "t", "expires_at_ms": 1_700_000_000_500_i64}}))
        .unwrap();
        assert_eq!(parsed.deprecations.len(), 3);
        let config = parsed.spec.into_config(&mut literal).unwrap();
        assert!(
            matches!(config.grant, Grant::Static { expires_at: Some(t), .. } if t == Timestamp::from_unix_secs(1_700_000_000))
        );
    }

    #[test]
    fn fields_are_checked_against_the_table_without_echoing_values() {
        let cases = [
            (
                json!({"type": "password", "client_id": "c", "issuer": "https://i", "username": "u", "password": "p", "email": "x"}),
                "email",
                "does not apply",
            ),
            (
                json!({"type": "password", "client_id": "c", "issuer": "https://i", "username": "u", "password": "p", "colour": "x"}),
                "colour",
                "unknown field",
            ),
            (
                json!({"type": "password", "client_id": "c", "issuer": "https://i", "username": "u", "password": 12345}),
                "password",
                "must be a string, not an integer",
            ),
            (
                json!({"type": "browser", "client_id": "c", "issuer": "https://i", "redirect_port": 70000}),
                "redirect_port",
                "port number",
            ),
            (
                json!({"type": "email_otp", "client_id": "c", "issuer": "https://i", "email": "e", "max_code_attempts": 0}),
                "max_code_attempts",
                "at least 1",
            ),
            (json!({"type": "passwort"}), "type", "unknown type \"passwort\""),
            (json!({"client_id": "c"}), "type", "is required"),
            (
                json!({"type": "client_credentials", "client_id": "c", "issuer": "https://i"}),
                "client_secret",
                "is required",
            ),
            (
                json!({"type": "client_credentials", "client_id": "c", "client_secret": "s"}),
                "issuer",
                "is required (or token_endpoint)",
            ),
            (
                json!({"type": "password", "client_id": "c", "issuer": "https://i", "revocation_endpoint": "https://r", "username": "u", "password": "p"}),
                "revocation_endpoint",
                "with issuer",
            ),
            (
                json!({"type": "password", "client_id": "c", "issuer": "https://i", "client_auth": "client_secret_post", "username": "u", "password": "p"}),
                "client_secret",
                "client_secret_post",
            ),
            (json!({"type": "cognito", "client_id": "c", "username": "u", "password": "p"}), "region", "is required"),
            (
                json!({"type": "browser", "client_id": "c", "token_endpoint": "https://t"}),
                "authorization_endpoint",
                "is required",
            ),
            (
                json!({"type": "browser", "client_id": "c", "issuer": "https://i", "authorization_params": {"state": "x"}}),
                "authorization_params.state",
                "set by tessera",
            ),
            (
                json!({"type": "device_code", "client_id": "c", "token_endpoint": "ftp://t"}),
                "token_endpoint",
                "http(s)",
            ),
        ];
        for (value, field, problem) in cases {
            let error = parse(value.clone()).and_then(|p| p.spec.into_config(&mut literal).map(|_| p)).unwrap_err();
            assert_eq!(error.field, field, "{value}: {error}");
            assert!(error.problem.contains(problem), "{value}: {error}");
            assert!(!error.to_string().contains("12345") && !error.to_string().contains("70000"), "{error}");
        }
    }

    #[test]
    fn parser_messages_keep_names_and_lose_input() {
        assert_eq!(
            without_quoted("unknown variant `etcd`, expected one of `memory`, `file`, `redis` at line 1"),
            "unknown variant `etcd`, expected one of `memory`, `file`, `redis` at line 1"
        );
        assert_eq!(
            without_quoted("unknown variant `hunter2/S3CR3T`, expected `memory`"),
            "unknown variant `…`, expected `memory`"
        );
        assert_eq!(
            without_quoted("invalid type: string \"hunter2\", expected u32"),
            "invalid type: string \"…\", expected u32"
        );
        assert_eq!(without_quoted("cut `short"), "cut `…");
        assert_eq!(without_quoted(&format!("`{}`", "a".repeat(100))), "`…`");
    }

    #[test]
    fn keys_that_do_not_look_like_names_are_not_repeated() {
        let browser = |params: Value| json!({"type": "browser", "client_id": "c", "issuer": "https://i", "authorization_params": params});
        let cases = [
            (
                json!({"type": "client_credentials", "client_id": "c", "issuer": "https://i", "client_secret": "s",
                "hunter2/S3CR3T+x": "v"}),
                "",
                "unknown field",
            ),
            (browser(json!({"hunter2/S3CR3T+x": 1})), "authorization_params", "must be a string"),
            (browser(json!({"hunter2/S3CR3T+x": ""})), "authorization_params", "must not be empty"),
            // Names are still shown: a misspelling is worth seeing.
            (
                json!({"type": "client_credentials", "client_id": "c", "issuer": "https://i", "client_secret": "s",
                "scopes": "x"}),
                "scopes",
                "unknown field",
            ),
            (browser(json!({"login_hint": 1})), "authorization_params.login_hint", "must be a string"),
        ];
        for (value, field, problem) in cases {
            let error = parse(value.clone()).and_then(|p| p.spec.into_config(&mut literal).map(|_| p)).unwrap_err();
            assert_eq!((error.field.as_str(), error.problem.contains(problem)), (field, true), "{value}: {error}");
            assert!(!error.to_string().contains("S3CR3T"), "{error}");
        }
    }

    #[test]
    fn client_assertion_fields_are_checked_without_quoting_the_key() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/client-assertion/");
        let key = |file: &str| std::fs::read_to_string(format!("{dir}{file}")).unwrap();
        let base = |extra: Value| {
            let mut value = json!({"type": "client_credentials", "client_id": "svc", "token_endpoint": "https://i/t"});
            value.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            value
        };
        let build = |value: Value| parse(value).and_then(|p| p.spec.into_config(&mut |_, v| Ok(v.clone())));
        // A key alone means private_key_jwt, and no client_secret is needed.
        for (file, kid) in
            [("rsa.pem", None), ("ec.pem", None), ("ed25519.pem", None), ("ec.jwk.json", Some("test-ec"))]
        {
            let config = build(base(json!({"client_assertion_key": key(file)}))).unwrap();
            assert_eq!(config.client.method, ClientAuthMethod::PrivateKeyJwt, "{file}");
            assert!(config.client.assertion_signer().unwrap().unwrap().kid == kid.map(str::to_owned), "{file}");
        }
        for file in ["rsa.jwk.json", "ed25519.jwk.json"] {
            build(base(json!({"client_assertion_key": key(file)}))).unwrap();
        }
        build(base(json!({"client_assertion_key": key("rsa.pem"), "client_assertion_alg": "PS256"}))).unwrap();
        // A reference is not read while the description is checked.
        parse(base(json!({"client_assertion_key": "file:/nowhere/key.pem"}))).unwrap();
        let secret_in_key = "-----BEGIN PRIVATE KEY-----\nU0VDUkVUS0VZ\n-----END PRIVATE KEY-----";
        for (extra, field, problem) in [
            (
                json!({"client_assertion_key": key("ec.pem"), "client_assertion_alg": "RS256"}),
                "client_assertion_alg",
                "does not match",
            ),
            (
                json!({"client_assertion_key": key("ec.pem"), "client_assertion_alg": "HS256"}),
                "client_assertion_alg",
                "is not one of",
            ),
            (json!({"client_assertion_key": key("p384.pem")}), "client_assertion_key", "cannot sign"),
            (json!({"client_assertion_key": key("rsa-1024.pem")}), "client_assertion_key", "at least 2048"),
            (json!({"client_assertion_key": secret_in_key}), "client_assertion_key", "not a private key"),
            (json!({"client_assertion_key": "SECRETKEY"}), "client_assertion_key", "not a private key"),
            (json!({"client_auth": "private_key_jwt", "client_secret": "s"}), "client_assertion_key", "is required"),
            (json!({"client_assertion_key": key("ec.pem"), "client_secret": "s"}), "client_secret", "is not used"),
            (
                json!({"client_assertion_key": key("ec.pem"), "client_auth": "client_secret_post", "client_secret": "s"}),
                "client_assertion_key",
                "goes with",
            ),
            (json!({"client_assertion_alg": "ES256", "client_secret": "s"}), "client_assertion_alg", "goes with"),
            (json!({"client_auth": "client_secret_jwt"}), "client_secret", "client_secret_jwt"),
        ] {
            let error = build(base(extra.clone())).unwrap_err();
            assert_eq!((error.field.as_str(), error.problem.contains(problem)), (field, true), "{extra}: {error}");
            assert!(!error.to_string().contains("U0VDUkVU") && !error.to_string().contains("SECRETKEY"), "{error}");
        }
        let config = build(base(json!({"client_auth": "client_secret_jwt", "client_secret": "s"}))).unwrap();
        assert_eq!(config.client.method, ClientAuthMethod::SecretJwt);
        assert!(!format!("{config:?}").contains(key("ec.pem").lines().nth(1).unwrap()));
    }

    #[test]
    fn python_style_configs_get_the_same_rules() {
        let config = ProviderConfig {
            client: ClientAuth {
                client_id: "c".into(),
                client_secret: None,
                method: ClientAuthMethod::Post,
                method_from_metadata: false,
                assertion_key: None,
                dpop: None,
            },
            endpoints: Endpoints::discover("https://i"),
            scope: None,
            grant: Grant::ClientCredentials,
        };
        let from_config = validate_config(&config).unwrap_err();
        let from_spec = parse(json!({"type": "password", "client_id": "c", "issuer": "https://i",
            "client_auth": "client_secret_post", "username": "u", "password": "p"}))
        .unwrap_err();
        assert_eq!(from_config, from_spec);
    }

    #[test]
    fn configs_built_in_code_get_every_rule_a_description_gets() {
        // What Python (or Rust) can build directly, next to the same provider as a description.
        let explicit = |grant: Grant, client: ClientAuth| ProviderConfig {
            client,
            endpoints: Endpoints::explicit("https://idp/token"),
            scope: None,
            grant,
        };
        let cases = [
            (
                explicit(Grant::DeviceCode { device_authorization_endpoint: None }, ClientAuth::public("c")),
                json!({"type": "device_code", "client_id": "c", "token_endpoint": "https://idp/token"}),
            ),
            (
                explicit(Grant::ClientCredentials, ClientAuth::public("c")),
                json!({"type": "client_credentials", "client_id": "c", "token_endpoint": "https://idp/token"}),
            ),
            (
                explicit(Grant::email_otp("a@b"), ClientAuth::public("c")),
                json!({"type": "email_otp", "client_id": "c", "token_endpoint": "https://idp/token", "email": "a@b"}),
            ),
            (
                explicit(
                    Grant::Password { username: " ".into(), password: Secret::new("p"), totp: None },
                    ClientAuth::public("c"),
                ),
                json!({"type": "password", "client_id": "c", "token_endpoint": "https://idp/token", "username": " ", "password": "p"}),
            ),
            (
                explicit(Grant::ClientCredentials, ClientAuth::basic("", "s")),
                json!({"type": "client_credentials", "client_id": "", "client_secret": "s", "token_endpoint": "https://idp/token"}),
            ),
        ];
        for (config, description) in cases {
            let from_config = validate_config(&config).unwrap_err();
            let from_description = parse(description.clone()).unwrap_err();
            assert_eq!(from_config, from_description, "{description}");
        }
    }

    #[test]
    fn old_names_are_renamed_only_where_they_mean_something_and_values_are_not_echoed() {
        // `redirect_port`'s old name `port` means nothing on a password provider: just unknown.
        let error = parse(json!({"type": "password", "client_id": "c", "issuer": "https://i",
            "username": "u", "password": "p", "port": 5}))
        .unwrap_err();
        assert_eq!(
            (error.field.as_str(), error.problem.as_str()),
            ("port", "unknown field for provider type \"password\"")
        );
        // The JSON API's first shape put a token URL beside a Cognito grant: still loads.
        let parsed = parse(json!({"client_id": "c", "token_url": "https://idp/token",
            "grant": {"type": "cognito", "endpoint": "https://cognito.example/", "username": "u", "password": "p"}}))
        .unwrap();
        assert!(parsed.deprecations.iter().any(|d| d.old.starts_with("token_url on a cognito")));
        // A value that is not a type name is not repeated; a misspelt type name is.
        for (value, echoed) in [("S3cr3t-value", false), ("passwrd", true)] {
            let error = parse(json!({"type": value})).unwrap_err();
            assert_eq!(error.to_string().contains(value), echoed, "{error}");
        }
        let error = parse(json!({"type": "password", "client_id": "c", "issuer": "https://i", "username": "u",
            "password": "p", "client_auth": "S3cr3t-value"}))
        .unwrap_err();
        assert!(error.field == "client_auth" && !error.to_string().contains("S3cr3t"), "{error}");
    }

    #[test]
    fn browser_defaults_to_openid_with_an_issuer() {
        let parsed = parse(json!({"type": "browser", "client_id": "c", "issuer": "https://i"})).unwrap();
        assert_eq!(parsed.spec.loopback(), Some(LoopbackSpec::default()));
        let config = parsed.spec.into_config(&mut literal).unwrap();
        assert_eq!(config.scope.as_deref(), Some(DEFAULT_BROWSER_SCOPE));
    }

    #[test]
    fn a_tls_client_certificate_is_a_credential_of_its_own() {
        let with = |extra: Value| {
            let mut object = json!({"type": "client_credentials", "client_id": "c", "issuer": "https://idp"});
            object.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            parse(object).and_then(|parsed| parsed.spec.into_config(&mut |_, value| Ok(value.clone())))
        };
        let certificate = json!({"tls_client_certificate": "/c.pem", "tls_client_key": "/k.pem"});
        // Alone, it is tls_client_auth (no secret needed, even for client credentials).
        let defaulted = with(certificate.clone()).unwrap().client;
        assert_eq!((defaulted.method, defaulted.method_from_metadata), (ClientAuthMethod::TlsClientAuth, true));
        let mut self_signed = certificate.clone();
        self_signed["client_auth"] = json!("self_signed_tls_client_auth");
        let named = with(self_signed).unwrap().client;
        assert_eq!((named.method, named.method_from_metadata), (ClientAuthMethod::SelfSignedTlsClientAuth, false));
        // With a secret, the secret authenticates; the certificate still travels (bound tokens).
        let mut basic = certificate.clone();
        basic["client_secret"] = json!("s");
        assert_eq!(with(basic).unwrap().client.method, ClientAuthMethod::Basic);
        for (extra, field) in [
            (json!({"client_auth": "tls_client_auth"}), "tls_client_certificate"),
            (json!({"client_auth": "self_signed_tls_client_auth", "client_secret": "s"}), "tls_client_certificate"),
            (
                json!({"client_auth": "tls_client_auth", "client_secret": "S3cr3t", "tls_client_certificate": "/c.pem",
                    "tls_client_key": "/k.pem"}),
                "client_secret",
            ),
        ] {
            let error = with(extra.clone()).unwrap_err();
            assert_eq!(error.field, field, "{extra}: {error}");
            assert!(!error.to_string().contains("S3cr3t"), "{error}");
        }
    }

    #[test]
    fn transport_fields_apply_to_every_type_and_are_checked_without_echoing_values() {
        let with = |extra: Value| {
            let mut object = json!({"type": "client_credentials", "client_id": "c", "client_secret": "s",
                "token_endpoint": "https://idp/token"});
            object.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            parse(object)
        };
        let parsed = with(json!({"ca_file": "~/ca.pem", "ca_file_only": true, "proxy": "http://me:S3cr3t@proxy:3128",
            "no_proxy": "localhost,.corp.example", "timeout": 5, "allow_insecure_http": true, "user_agent": "app/1",
            "tls_client_certificate": "~/me.pem", "tls_client_key": "~/me-key.pem"}))
        .unwrap();
        let expected = TransportSpec {
            ca_file: Some("~/ca.pem".into()),
            ca_file_only: true,
            tls_client_certificate: Some("~/me.pem".into()),
            tls_client_key: Some("~/me-key.pem".into()),
            proxy: Some("http://me:S3cr3t@proxy:3128".into()),
            no_proxy: Some("localhost,.corp.example".into()),
            timeout_secs: Some(5),
            allow_insecure_http: true,
            user_agent: Some("app/1".into()),
        };
        assert_eq!(parsed.spec.transport, expected);
        let shown = format!("{:?}", parsed.spec);
        assert!(!shown.contains("S3cr3t") && shown.contains("http://me:***@proxy:3128/"), "{shown}");
        assert_eq!(with(json!({})).unwrap().spec.transport, TransportSpec::default());

        for (extra, field) in [
            (json!({"ca_file_only": true}), "ca_file_only"),
            (json!({"ca_file": " "}), "ca_file"),
            (json!({"proxy": "socks5://me:S3cr3t@proxy:1080"}), "proxy"),
            (json!({"proxy": "S3cr3t"}), "proxy"),
            (json!({"timeout": 0}), "timeout"),
            (json!({"timeout": 1.5}), "timeout"),
            (json!({"allow_insecure_http": "S3cr3t"}), "allow_insecure_http"),
            (json!({"user_agent": "S3cr3t\r\nx-injected: 1"}), "user_agent"),
            (json!({"no_proxy": 3}), "no_proxy"),
            (json!({"tls_client_certificate": "/S3cr3t.pem"}), "tls_client_key"),
            (json!({"tls_client_key": "/S3cr3t.pem"}), "tls_client_key"),
            (json!({"tls_client_certificate": " ", "tls_client_key": "/k.pem"}), "tls_client_certificate"),
        ] {
            let error = with(extra.clone()).unwrap_err();
            assert_eq!(error.field, field, "{extra}: {error}");
            assert!(!error.to_string().contains("S3cr3t"), "{error}");
        }

        // `timeout` was once the old name of a browser's `login_timeout`: it is the HTTP limit now.
        let parsed = parse(json!({"type": "browser", "client_id": "c", "issuer": "https://i", "timeout": 7})).unwrap();
        assert_eq!(parsed.spec.transport.timeout_secs, Some(7));
        assert_eq!(parsed.spec.loopback(), Some(LoopbackSpec::default()));
        assert!(parsed.deprecations.is_empty());
    }

    const RSA_KEY: &str = include_str!("../../../testdata/client-assertion/rsa.pem");

    fn service_account(overrides: Value) -> String {
        let mut key = json!({
            "type": "service_account",
            "project_id": "demo",
            "private_key_id": "kid-1",
            "private_key": RSA_KEY,
            "client_email": "robot@demo.iam.example",
            "client_id": "1234",
            "token_uri": "https://oauth2.example/token",
        });
        for (name, value) in overrides.as_object().unwrap() {
            if value.is_null() {
                key.as_object_mut().unwrap().remove(name);
            } else {
                key[name] = value.clone();
            }
        }
        key.to_string()
    }

    #[test]
    fn jwt_bearer_with_a_key_defaults_sub_aud_and_scope_placement() {
        let parsed = parse(json!({
            "type": "jwt_bearer", "token_endpoint": "https://idp/token", "client_id": "svc",
            "assertion_key": RSA_KEY, "scope": "api",
        }))
        .unwrap();
        let config = parsed.spec.into_config(&mut literal).unwrap();
        assert_eq!(config.grant.name(), "jwt_bearer");
        let Grant::JwtBearer { key, subject, audience, scope_in_assertion, lifetime } = &config.grant else {
            panic!("{:?}", config.grant)
        };
        assert_eq!((subject, audience, *scope_in_assertion), (&None, &None, false));
        assert_eq!(lifetime.as_secs(), 3600);
        assert_eq!(key.kid, None);
        assert_eq!(config.client.method, ClientAuthMethod::None);
        assert_eq!(config.client.client_id, "svc");

        for (value, field) in [
            (json!({"type": "jwt_bearer", "token_endpoint": "https://idp/token", "client_id": "svc"}), "assertion_key"),
            (
                json!({"type": "jwt_bearer", "token_endpoint": "https://idp/token", "assertion_key": RSA_KEY}),
                "client_id",
            ),
            (
                json!({"type": "jwt_bearer", "token_endpoint": "https://idp/token", "client_id": "s",
                       "assertion_key": RSA_KEY, "assertion_alg": "ES256"}),
                "assertion_alg",
            ),
            (
                json!({"type": "jwt_bearer", "token_endpoint": "https://idp/token", "client_id": "s",
                       "assertion_key": RSA_KEY, "assertion_lifetime": 0}),
                "assertion_lifetime",
            ),
            (
                json!({"type": "client_credentials", "token_endpoint": "https://idp/token", "client_id": "s",
                       "client_secret": "x", "subject": "alice"}),
                "subject",
            ),
        ] {
            let error = parse(value.clone())
                .and_then(|parsed| parsed.spec.into_config(&mut literal).map(|_| parsed))
                .expect_err(&value.to_string());
            assert_eq!(error.field, field, "{error}");
            assert!(!error.to_string().contains("PRIVATE KEY"), "{error}");
        }
        let not_a_key = parse(json!({
            "type": "jwt_bearer", "token_endpoint": "https://idp/token", "client_id": "svc",
            "assertion_key": "-----BEGIN PRIVATE KEY-----\nMARKER\n-----END PRIVATE KEY-----",
        }))
        .expect("a reference is not read while a description is checked");
        let error = not_a_key.spec.into_config(&mut literal).unwrap_err();
        assert_eq!(error.field, "assertion_key");
        assert!(!error.to_string().contains("MARKER"), "{error}");
    }

    #[test]
    fn a_service_account_key_gives_issuer_key_kid_token_uri_and_scope_in_assertion() {
        let parsed = parse(json!({
            "type": "jwt_bearer", "service_account_key": "file:/keys/robot.json", "scope": "cloud",
        }))
        .expect("a reference is checked, not read, and holds the token endpoint");
        let resolve = &mut |field: &'static str, value: &Secret| -> Result<Secret, String> {
            assert_eq!((field, value.expose_secret()), ("service_account_key", "file:/keys/robot.json"));
            Ok(Secret::new(service_account(json!({}))))
        };
        let config = parsed.spec.into_config(resolve).unwrap();
        assert_eq!(config.client.client_id, "robot@demo.iam.example");
        assert_eq!(config.client.method, ClientAuthMethod::None);
        assert_eq!(config.endpoints, Endpoints::explicit("https://oauth2.example/token"));
        let Grant::JwtBearer { key, scope_in_assertion, .. } = &config.grant else { panic!() };
        assert!(*scope_in_assertion, "Google reads the scope in the assertion");
        assert_eq!(key.kid.as_deref(), Some("kid-1"));
        assert_eq!(key.key.expose_secret(), RSA_KEY);

        // token_endpoint replaces token_uri (tests point it at their own server); scope_in_assertion can be turned off.
        let parsed = parse(json!({
            "type": "jwt_bearer", "service_account_key": service_account(json!({})),
            "token_endpoint": "http://127.0.0.1:9/token", "scope_in_assertion": false,
        }))
        .unwrap();
        let config = parsed.spec.into_config(&mut literal).unwrap();
        assert_eq!(config.endpoints, Endpoints::explicit("http://127.0.0.1:9/token"));
        assert!(matches!(config.grant, Grant::JwtBearer { scope_in_assertion: false, .. }));
    }

    #[test]
    fn service_account_key_errors_name_the_member_never_a_value() {
        let base = |file: String| json!({"type": "jwt_bearer", "service_account_key": file});
        for (file, expected) in [
            ("not json MARKER".to_owned(), "is not a JSON object"),
            (service_account(json!({"type": "authorized_user"})), "\"type\" is \"authorized_user\""),
            (service_account(json!({"type": null})), "has no \"type\""),
            (service_account(json!({"client_email": null})), "has no \"client_email\""),
            (service_account(json!({"private_key": null})), "has no \"private_key\""),
            (service_account(json!({"private_key": 7})), "\"private_key\" must be a string"),
            (service_account(json!({"token_uri": null})), "has no \"token_uri\": give token_endpoint"),
            (service_account(json!({"token_uri": "MARKER"})), "\"token_uri\" is not an http(s) URL"),
            (
                service_account(
                    json!({"private_key": "-----BEGIN PRIVATE KEY-----\nMARKER\n-----END PRIVATE KEY-----"}),
                ),
                "is not a private key",
            ),
        ] {
            let parsed = parse(base(file)).unwrap();
            let error = parsed.spec.into_config(&mut literal).unwrap_err();
            let text = error.to_string();
            assert!(text.contains(expected), "{text} should say {expected}");
            assert!(!text.contains("MARKER") && !text.contains("BEGIN"), "{text}");
            assert_eq!(error.field, "service_account_key", "{text}");
        }
        for (field, value) in
            [("assertion_key", json!(RSA_KEY)), ("client_id", json!("x")), ("assertion_kid", json!("k"))]
        {
            let mut description = base(service_account(json!({})));
            description[field] = value;
            assert_eq!(parse(description).unwrap_err().field, field);
        }
    }

    /// Every field of the serde model is in [`FIELDS`], and every entry of [`FIELDS`] is read.
    #[test]
    fn the_table_and_the_model_name_the_same_fields() {
        for field in FIELDS {
            let kind = ProviderKind::ALL.into_iter().find(|k| field.applies_to(*k)).unwrap();
            let sample = match field.ty {
                FieldType::Count | FieldType::Seconds | FieldType::UnixSeconds => json!(1),
                FieldType::Port => json!(0),
                FieldType::Params => json!({}),
                FieldType::Bool => json!(false),
                _ => json!("x"),
            };
            let mut object = Map::new();
            object.insert("type".into(), json!(kind.as_str()));
            object.insert(field.name.into(), sample);
            // The field passes the table check and deserializes into the model (other rules may still fail).
            check_fields(&object, kind).unwrap();
            serde_json::from_value::<Flat>(Value::Object(object)).unwrap_or_else(|e| panic!("{}: {e}", field.name));
        }
        // serde lists the model's fields when it refuses an unknown one: each must be in the table.
        let mut object = Map::new();
        object.insert("not_in_the_table".into(), json!("x"));
        let refused = serde_json::from_value::<Flat>(Value::Object(object)).err().expect("unknown fields are refused");
        let listed = refused.to_string();
        let names: Vec<&str> = listed.split('`').skip(3).step_by(2).collect();
        assert_eq!(names.len(), FIELDS.len(), "{listed}");
        for name in names {
            assert!(field(name).is_some(), "{name} is in the model but not in FIELDS");
        }
    }

    #[test]
    fn workload_identity_reads_its_source_and_exchange_and_refuses_what_does_not_apply() {
        use crate::flow::{Exchange, TokenSource};
        let with = |extra: Value| {
            let mut object =
                json!({"type": "workload_identity", "client_id": "c", "token_endpoint": "https://sts/token"});
            object.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            parse(object).and_then(|parsed| parsed.spec.into_config(&mut |_, value| Ok(value.clone())))
        };
        let config = with(json!({"subject_token": "file:/var/run/token", "audience": "//iam/pool",
            "requested_token_type": "urn:ietf:params:oauth:token-type:access_token"}))
        .unwrap();
        let Grant::WorkloadIdentity { source, subject_token_type, exchange } = &config.grant else { panic!() };
        assert_eq!(source, &TokenSource::File("/var/run/token".into()));
        assert_eq!(subject_token_type, crate::protocol::token_types::JWT);
        assert!(
            matches!(exchange, Exchange::TokenExchange { audience: Some(a), resource: None, .. } if a == "//iam/pool")
        );
        let config =
            with(json!({"subject_token": "github-actions", "subject_token_audience": "api://AzureADTokenExchange",
            "exchange": "client_assertion"}))
            .unwrap();
        assert!(matches!(&config.grant, Grant::WorkloadIdentity { exchange: Exchange::ClientAssertion,
            source: TokenSource::GithubActions { audience: Some(a) }, .. } if a == "api://AzureADTokenExchange"));
        let config = with(json!({"subject_token": "url:http://127.0.0.1:9/t", "subject_token_field": "value",
            "subject_token_headers": {"Authorization": "env:TOKEN"}}))
        .unwrap();
        assert!(
            matches!(&config.grant, Grant::WorkloadIdentity { source: TokenSource::Url { headers, field: Some(f), .. }, .. }
            if f == "value" && headers == &[("Authorization".to_owned(), "env:TOKEN".to_owned())])
        );

        for (extra, field) in [
            (json!({}), "subject_token"),
            (json!({"subject_token": "keyring:S3cr3t"}), "subject_token"),
            (json!({"subject_token": "file:/t", "subject_token_field": "value"}), "subject_token_field"),
            (json!({"subject_token": "file:/t", "subject_token_timeout": 5}), "subject_token_timeout"),
            (json!({"subject_token": "exec:x", "subject_token_timeout": 0}), "subject_token_timeout"),
            (json!({"subject_token": "env:T", "subject_token_audience": "a"}), "subject_token_audience"),
            (
                json!({"subject_token": "url:https://x/t", "subject_token_headers": {"A": "S3cr3t\n"}}),
                "subject_token_headers",
            ),
            (json!({"subject_token": "file:/t", "exchange": "swap"}), "exchange"),
            (json!({"subject_token": "file:/t", "exchange": "client_assertion", "resource": "https://r"}), "resource"),
            (
                json!({"subject_token": "file:/t", "exchange": "client_assertion", "client_secret": "S3cr3t"}),
                "client_secret",
            ),
            (json!({"subject_token": "file:/t", "username": "u"}), "username"),
        ] {
            let error = with(extra.clone()).unwrap_err();
            assert_eq!(error.field, field, "{extra}: {error}");
            assert!(!error.to_string().contains("S3cr3t"), "{error}");
        }
    }

    #[test]
    fn an_external_account_file_describes_the_source_audience_and_endpoint() {
        use crate::flow::{Exchange, TokenSource};
        let account = |credential_source: Value, extra: Value| {
            let mut json = json!({"type": "external_account", "audience": "//iam/pools/p/providers/k8s",
                "subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "token_url": "https://sts.test/v1/token",
                "credential_source": credential_source});
            json.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            let object = json!({"type": "workload_identity", "external_account": json.to_string(), "scope": "s"});
            parse(object).and_then(|parsed| parsed.spec.into_config(&mut |_, value| Ok(value.clone())))
        };
        let config = account(json!({"file": "/var/run/token"}), json!({})).unwrap();
        assert!(
            matches!(&config.endpoints, Endpoints::Explicit { token_endpoint, .. } if token_endpoint == "https://sts.test/v1/token")
        );
        assert_eq!(config.client.client_id, "", "no client authentication");
        let Grant::WorkloadIdentity { source, subject_token_type, exchange } = &config.grant else { panic!() };
        assert_eq!(source, &TokenSource::File("/var/run/token".into()));
        assert_eq!(subject_token_type, crate::protocol::token_types::JWT);
        assert!(matches!(exchange, Exchange::TokenExchange { audience: Some(a), requested_token_type: Some(r), .. }
            if a == "//iam/pools/p/providers/k8s" && r == crate::protocol::token_types::ACCESS_TOKEN));
        let config = account(
            json!({"url": "http://169.254.169.254/token", "headers": {"Metadata": "True"},
                "format": {"type": "json", "subject_token_field_name": "access_token"}}),
            json!({"client_id": "sts-client", "client_secret": "S3cr3t"}),
        )
        .unwrap();
        assert!(
            matches!(&config.grant, Grant::WorkloadIdentity { source: TokenSource::Url { field: Some(f), headers, .. }, .. }
            if f == "access_token" && headers.len() == 1)
        );
        assert_eq!((config.client.client_id.as_str(), config.client.method), ("sts-client", ClientAuthMethod::Basic));

        for (source, extra, problem) in [
            (json!({"environment_id": "aws1"}), json!({}), "AWS"),
            (json!({"executable": {"command": "x"}}), json!({}), "exec:COMMAND"),
            (
                json!({"file": "/t"}),
                json!({"service_account_impersonation_url": "https://S3cr3t"}),
                "service_account_impersonation_url",
            ),
            (
                json!({"file": "/t", "format": {"type": "json", "subject_token_field_name": "v"}}),
                json!({}),
                "text only",
            ),
            (json!({}), json!({}), "neither"),
            (json!({"file": "/t"}), json!({"type": "service_account"}), "\"external_account\" was expected"),
            (json!({"file": "/t"}), json!({"token_url": "S3cr3t"}), "token_url"),
        ] {
            let error = account(source.clone(), extra.clone()).unwrap_err();
            assert_eq!(error.field, "external_account", "{source} {extra}: {error}");
            assert!(error.problem.contains(problem) && !error.to_string().contains("S3cr3t"), "{error}");
        }
        let error = parse(json!({"type": "workload_identity", "external_account": "{}", "subject_token": "file:/t"}))
            .unwrap_err();
        assert_eq!(error.field, "subject_token");
    }
}
