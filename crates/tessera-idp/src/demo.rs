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

/// Client id of the demo `private_key_jwt` client (RFC 7523 §2.2): no secret, it authenticates
/// with client assertions signed by [`ASSERTION_CLIENT_PRIVATE_KEY`] (grants: password,
/// refresh_token, client_credentials). Its key pair is its own, not the service account's, so a
/// service-account assertion can never pass as this client.
pub const ASSERTION_CLIENT_ID: &str = "assertion-client";
/// The `kid` registered for [`ASSERTION_CLIENT_PUBLIC_KEY`] (assertions without a `kid` are
/// accepted too).
pub const ASSERTION_CLIENT_KEY_ID: &str = "assertion-client-key-1";
/// The private key of [`ASSERTION_CLIENT_ID`]: Ed25519 (EdDSA), PKCS#8 PEM; also
/// `testdata/client-assertion/demo-assertion-client.pem`. A public test fixture: anyone can
/// sign as the demo assertion client with it.
pub const ASSERTION_CLIENT_PRIVATE_KEY: &str = "\
-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIAB6re/KGKTFrG82WX4QOE1GWZ0t5fLDzkWmfWkH0OjT
-----END PRIVATE KEY-----
";
/// The public half of [`ASSERTION_CLIENT_PRIVATE_KEY`] (SPKI PEM), registered with the server.
pub const ASSERTION_CLIENT_PUBLIC_KEY: &str = "\
-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAOuWXMxNmdbFn7z7SdMW5/ORgKvNYGW4VwFxEDq3jddw=
-----END PUBLIC KEY-----
";

/// The demo service account of the JWT bearer grant (`urn:ietf:params:oauth:grant-type:jwt-bearer`,
/// RFC 7523 §2.1): the `iss` of its assertions, and the `client_email` of a Google-style
/// service-account key file made from [`SERVICE_ACCOUNT_PRIVATE_KEY`].
pub const SERVICE_ACCOUNT_EMAIL: &str = "robot@tessera-demo.iam.example";
/// The `kid` registered for [`SERVICE_ACCOUNT_PUBLIC_KEY`] (a key file's `private_key_id`).
pub const SERVICE_ACCOUNT_KEY_ID: &str = "tessera-demo-key-1";
/// The demo service account's private key: RSA 2048, PKCS#8 PEM (as in a Google key file's
/// `private_key`). A public test fixture: anyone can sign as the demo service account with it.
pub const SERVICE_ACCOUNT_PRIVATE_KEY: &str = "\
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCtcvcP0jAH66ge
0s12cOAbjbUNo4toBjHtD+clps9Ge34FBc921/flrQ9M82JzaW0QGATg01wHz7IP
cCPEBgn1G106BNjOWYvFb1qLRg20S8e/0lKyoN0oJyiCc1ZHf2uBJdhYp4qvRs/E
56ZcW3AOutbHq3iaoYRn2Jz9loTs9Mv7JSgKByjRZZeMKSTO1hOb6tEKJfxG7l70
1RdIgje9pgwnjHi1qcNuXKPVM3AJAAqsntqoJzFF6W/3XaHuP7A8D8MmaxR244mB
HB8ohpqZJCWH6DrUAXAbJb3w60bR4GKg+sTuaAmhMf2iJJ3/xnaCAg+44Kv7xdqy
XR3BZSehAgMBAAECggEAAvA+U1XCeZ1gZ9yG1aKBGPVnOXzVd57If29uMUgSlZNR
s9OEx6reLr1mO525U5rH+cJ66W1KPzGBjvd1myhmKHlpHIKs0r7fjlnSABdY08bH
gqJlQ1SEZ6XlbsOWBPRBo7aStCKLP+e+bQvGwLR9vRmlKiz/eCjrqJvZ0cXgMNCY
GvYIWd3lZdeHGUCC0OKrycX0YcXIOHN5wiE3xDT+Bh7Bp61qR7Yl9ATW178YlpsN
MLe3Z4OjcJf+23blHKbGRZfhnNsj+od04E9dUtBBylZrEZdZ8io6d+GbgbQ+YzUr
jtDF0K9u3mriNHVqcAV7VP2VBeXH1DjvruDNZJILgQKBgQDcqKBNv2uBpYOTl6WH
RmuOQI156Dk1uDnMRHMDo1AeTl5uyUnLWL4MAmnzw/baoDtmXFXJo5V3P7cmqX88
wSH5HaxrBpvhH/E34GGJk+cu1emQZU+CZba9q5vLr6eX0ibd2L27WoGva20TXOdA
ifBb1FtG6E6Y4j9QBQAJY6ePgQKBgQDJOqqJdLIAMIEYXHK11OlTDfdP+cKj3+ab
/QvyKFiWc3HVHCCxJxHhpl+1UJB/5AUcubxuunHgA9zFDwIqr8h1EZIGDPlINeVg
0fchEIPfWA0WeDUtPZ9Z5G2/qLKTLP1wsmbmPOF9nZ6rZ2MSueU2MAnMMuAsA+YQ
SUFgkh+oIQKBgQChnN/MEecrjY5RC0CxU2JzTdRQ9UTxk3zBn2CdyX9kswF3IvZp
eRW4tgvj/iNO/QyEbBxpEubl8ES0jHAkj0/SpWki+jQxLrP9uNm3ahxosUPf/lO9
rcGqKYZyKLUW/VR6J8TO8/sIACZjiCfXnS/uEhrIVF08nHjCoubj+ZlAAQKBgFbB
i0rN2/xG7TFykiYg0CN1rv11AdyjKIpyE5dom6DpztcBVHrsDEKL91F1lYb96NJU
pY/bpELfh2wSJ2398V+/noQrTcI7MlSG0ZQYybIeBS59zvddTPl1iXeLJMpdKDtR
Pxnef50nuoPNhCJLsS2mkmLOQGXZnHPDEYOwHCPhAoGAdBB7RuUUAiipMwezraiV
bKggJ9DZ4HzOeTa5ebMZs1Ajj7//DnQY+I1Tq0/B8PK4DgcOu9sTcv2ymJ2VYUYI
W5afh2y/C05Rtx3ZLh5fzzUyNka5t2Ig9cAEJEbER80DfFB2YuB9LNKTxJe+BIjR
pxs983nhV0WAggeOOeAsZNM=
-----END PRIVATE KEY-----
";
/// The public half of [`SERVICE_ACCOUNT_PRIVATE_KEY`] (SPKI PEM), registered with the server.
pub const SERVICE_ACCOUNT_PUBLIC_KEY: &str = "\
-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEArXL3D9IwB+uoHtLNdnDg
G421DaOLaAYx7Q/nJabPRnt+BQXPdtf35a0PTPNic2ltEBgE4NNcB8+yD3AjxAYJ
9RtdOgTYzlmLxW9ai0YNtEvHv9JSsqDdKCcognNWR39rgSXYWKeKr0bPxOemXFtw
DrrWx6t4mqGEZ9ic/ZaE7PTL+yUoCgco0WWXjCkkztYTm+rRCiX8Ru5e9NUXSII3
vaYMJ4x4tanDblyj1TNwCQAKrJ7aqCcxRelv912h7j+wPA/DJmsUduOJgRwfKIaa
mSQlh+g61AFwGyW98OtG0eBioPrE7mgJoTH9oiSd/8Z2ggIPuOCr+8Xasl0dwWUn
oQIDAQAB
-----END PUBLIC KEY-----
";

/// A Google-style service-account JSON key file for the demo service account (the members
/// google-auth reads: `type`, `client_email`, `private_key`, `private_key_id`, `token_uri`, plus
/// `project_id` and `client_id` as Google writes them), whose `token_uri` is `token_uri` — point
/// it at a running reference IdP (`{issuer}/token`), never at Google.
pub fn service_account_key_file(token_uri: &str) -> String {
    serde_json::json!({
        "type": "service_account",
        "project_id": "tessera-demo",
        "private_key_id": SERVICE_ACCOUNT_KEY_ID,
        "private_key": SERVICE_ACCOUNT_PRIVATE_KEY,
        "client_email": SERVICE_ACCOUNT_EMAIL,
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.example/o/oauth2/auth",
        "token_uri": token_uri,
    })
    .to_string()
}

/// The request token of the GitHub-Actions-style endpoint (`ACTIONS_ID_TOKEN_REQUEST_TOKEN`):
/// `GET /ci/github-actions/token` answers only this bearer token.
pub const CI_REQUEST_TOKEN: &str = "tessera-demo-ci-request-token";
/// The `sub` of the CI tokens (GitHub's shape: repository and ref).
pub const CI_SUBJECT: &str = "repo:tessera-demo/app:ref:refs/heads/main";
/// The `repository` claim of the CI tokens.
pub const CI_REPOSITORY: &str = "tessera-demo/app";
/// The `aud` of a CI token asked without an audience (GitHub's default: the owner's URL).
pub const CI_DEFAULT_AUDIENCE: &str = "https://github.com/tessera-demo";

#[cfg(test)]
mod tests {
    /// Non-Rust tests read the key from testdata: the two copies must not drift.
    #[test]
    fn the_testdata_copy_of_the_service_account_key_is_the_same() {
        let file = include_str!("../../../testdata/service-account/demo-private-key.pem");
        assert_eq!(file.trim(), super::SERVICE_ACCOUNT_PRIVATE_KEY.trim());
    }

    #[test]
    fn the_testdata_copy_of_the_assertion_client_key_is_the_same() {
        let file = include_str!("../../../testdata/client-assertion/demo-assertion-client.pem");
        assert_eq!(file.trim(), super::ASSERTION_CLIENT_PRIVATE_KEY.trim());
    }
}
