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

/// Username of the demo user with email one-time-code MFA (Cognito `USER_PASSWORD_AUTH`
/// answers with an `EMAIL_OTP` challenge).
pub const CAROL_USERNAME: &str = "carol";
/// Password of [`CAROL_USERNAME`].
pub const CAROL_PASSWORD: &str = "carol-password";
/// Email address of [`CAROL_USERNAME`]; one-time codes for her land in the outbox under it.
pub const CAROL_EMAIL: &str = "carol@example.com";

/// Client id of the demo public client for browser, device and email-code logins (grants:
/// authorization_code, device_code, email_otp, refresh_token).
pub const BROWSER_CLIENT_ID: &str = "tessera-cli";
/// Loopback redirect URI registered for [`BROWSER_CLIENT_ID`]; any port matches (RFC 8252 §7.3).
pub const BROWSER_REDIRECT_URI: &str = "http://127.0.0.1/callback";
/// IPv6 loopback redirect URI registered for [`BROWSER_CLIENT_ID`]; any port matches.
pub const BROWSER_REDIRECT_URI_V6: &str = "http://[::1]/callback";
/// Root-path loopback redirect URI registered for [`BROWSER_CLIENT_ID`] (`http://127.0.0.1:<port>`
/// or `http://127.0.0.1:<port>/`, as `gh` and kubelogin use); any port matches.
pub const BROWSER_REDIRECT_URI_ROOT: &str = "http://127.0.0.1/";

/// Client id of the demo confidential web client (grants: authorization_code, device_code,
/// email_otp, refresh_token).
pub const WEB_CLIENT_ID: &str = "web-app";
/// Client secret of [`WEB_CLIENT_ID`].
pub const WEB_CLIENT_SECRET: &str = "web-app-secret";
/// The redirect URI of [`WEB_CLIENT_ID`] (loopback, so any port matches).
pub const WEB_REDIRECT_URI: &str = "http://127.0.0.1/web-callback";

/// Cognito app client without a secret (grants: password, email_otp, refresh_token).
pub const COGNITO_CLIENT_ID: &str = "cognitopublicclient000001";
/// Cognito app client with a secret: every call needs a `SECRET_HASH`.
pub const COGNITO_SECRET_CLIENT_ID: &str = "cognitosecretclient000002";
/// Client secret of [`COGNITO_SECRET_CLIENT_ID`].
pub const COGNITO_CLIENT_SECRET: &str = "cognito-client-secret";
