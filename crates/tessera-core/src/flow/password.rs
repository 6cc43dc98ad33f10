//! Resource owner password credentials grant (RFC 6749 §4.3), with an optional second factor sent
//! as the `totp` form field: either a code the user typed or one generated from a base32 secret.

use totp_rs::{Builder, Secret as TotpSecret};

use super::token_request::TokenForm;
use super::{FlowContext, TotpSource};
use crate::{Error, Secret, Timestamp};

/// The password grant's form, sent by a [`super::token_request::TokenRequest`].
#[derive(Debug)]
pub(crate) struct PasswordForm {
    pub(crate) username: String,
    pub(crate) password: Secret,
    pub(crate) totp: Option<TotpSource>,
}

impl TokenForm for PasswordForm {
    fn params(&self, _context: &FlowContext<'_>, now: Timestamp) -> Result<Vec<(&'static str, Secret)>, Error> {
        let mut params = vec![
            ("grant_type", Secret::new("password")),
            ("username", Secret::new(self.username.as_str())),
            ("password", self.password.clone()),
        ];
        match &self.totp {
            Some(TotpSource::Code(code)) => params.push(("totp", code.clone())),
            // A fresh code per attempt: a retry after 30 s must not send an expired one.
            Some(TotpSource::Secret(secret)) => params.push(("totp", totp_code(secret, now)?)),
            None => {}
        }
        Ok(params)
    }
}

/// The RFC 6238 code (SHA-1, 6 digits, 30-second steps) for a base32 secret at `now`.
pub fn totp_code(base32_secret: &Secret, now: Timestamp) -> Result<Secret, Error> {
    let normalized: String = base32_secret
        .expose_secret()
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect::<String>()
        .to_ascii_uppercase();
    let secret = TotpSecret::try_from_base32(normalized.trim_end_matches('='))
        .map_err(|_| Error::configuration("totp_secret is not valid base32"))?;
    // build_noncompliant: many real secrets (e.g. 80-bit ones from authenticator apps) are shorter than RFC 4226's 128-bit advice.
    let totp = Builder::new().with_secret(secret).build_noncompliant();
    let secs = u64::try_from(now.as_unix_secs()).map_err(|_| Error::configuration("clock before 1970"))?;
    Ok(Secret::new(totp.generate(secs).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_vector() {
        // RFC 6238 Appendix B, SHA-1, T = 59 s: 94287082 (8 digits) -> 287082 with 6 digits.
        let secret = Secret::new("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"); // "12345678901234567890"
        assert_eq!(totp_code(&secret, Timestamp::from_unix_secs(59)).unwrap().expose_secret(), "287082");
        assert_eq!(
            totp_code(&Secret::new("gezd gnbv gy3t qojq gezd gnbv gy3t qojq"), Timestamp::from_unix_secs(1111111109))
                .unwrap()
                .expose_secret(),
            "081804"
        );
        assert!(totp_code(&Secret::new("not base32!"), Timestamp::EPOCH).is_err());
    }

    #[test]
    fn password_form_includes_totp() {
        let form = PasswordForm {
            username: "alice".into(),
            password: Secret::new("pw"),
            totp: Some(TotpSource::Code(Secret::new("123456"))),
        };
        let provider = super::super::token_request::tests::Provider::new(None);
        let params = form.params(&provider.context(), Timestamp::EPOCH).unwrap();
        let names: Vec<_> = params.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["grant_type", "username", "password", "totp"]);
    }
}
