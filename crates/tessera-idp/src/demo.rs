//! Credentials of the demo users and clients that [`IdpConfig::demo`](crate::IdpConfig::demo)
//! installs. Tests, docs and the quickstart read them from here so there is one source.
//!
//! These are public test fixtures, not secrets: never reuse them outside a test or a demo.

/// Username of the demo user without a second factor.
pub const ALICE_USERNAME: &str = "alice";
/// Password of [`ALICE_USERNAME`].
pub const ALICE_PASSWORD: &str = "alice-password";
/// Email address of [`ALICE_USERNAME`].
pub const ALICE_EMAIL: &str = "alice@example.com";

/// Username of the demo user who must send a TOTP code with the password grant.
pub const BOB_USERNAME: &str = "bob";
/// Password of [`BOB_USERNAME`].
pub const BOB_PASSWORD: &str = "bob-password";
/// Email address of [`BOB_USERNAME`].
pub const BOB_EMAIL: &str = "bob@example.com";
/// TOTP secret of [`BOB_USERNAME`], base32 (RFC 6238 defaults: SHA-1, 6 digits, 30 s steps).
pub const BOB_TOTP_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// Client id of the demo confidential client (grants: password, refresh_token,
/// client_credentials).
pub const CONFIDENTIAL_CLIENT_ID: &str = "confidential-client";
/// Client secret of [`CONFIDENTIAL_CLIENT_ID`].
pub const CONFIDENTIAL_CLIENT_SECRET: &str = "confidential-secret";

/// Client id of the demo public client: no secret (grants: password, refresh_token).
pub const PUBLIC_CLIENT_ID: &str = "public-client";
