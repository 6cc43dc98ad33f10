//! What an interactive login asks of a person, and how the answer comes back.

use zeroize::Zeroizing;

use crate::Timestamp;

/// Something an interactive login needs a person for. Some prompts are only shown
/// ([`Prompt::DeviceCode`]); others wait for an answer ([`Prompt::expects_answer`]), which the
/// runtime feeds back as [`crate::Event::Answer`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Prompt {
    /// RFC 8628: go to `verification_uri` and enter `user_code` (or open `verification_uri_complete`).
    /// Shown only: polling carries on meanwhile.
    DeviceCode {
        /// The code to enter.
        user_code: String,
        /// Where to enter it.
        verification_uri: String,
        /// A URL with the code filled in, for a QR code or a click.
        verification_uri_complete: Option<String>,
        /// When the code stops working.
        expires_at: Timestamp,
    },
    /// Open `authorization_url` in a browser; the answer is the full URL the browser was sent back
    /// to (`redirect_uri?code=...&state=...`), from a loopback listener or pasted by the user.
    Browser {
        /// The authorization request (RFC 6749 §4.1.1 with PKCE, state and nonce).
        authorization_url: String,
        /// Where the server will send the browser back.
        redirect_uri: String,
    },
    /// Type a one-time code (emailed, texted or from an authenticator app); the answer is the code.
    Code {
        /// How the code reached the person.
        channel: CodeChannel,
        /// Where it was sent, masked by the server (`a***@e***`), when known.
        destination: Option<String>,
        /// 1 for the first ask, 2 after one wrong code, ...
        attempt: u32,
        /// Why the previous code was refused, on attempts after the first.
        previous_error: Option<String>,
    },
    /// Not for a person: the runtime reads the workload's platform token from `source` (a file,
    /// a variable, a URL, a command) and answers with it ([`crate::Grant::WorkloadIdentity`]);
    /// `Event::PromptFailed` when it cannot (the error names the source, never the token).
    SubjectToken {
        /// Where to read it.
        source: super::TokenSource,
    },
}

impl Prompt {
    /// True when the runtime must answer with [`crate::Event::Answer`] before the login goes on.
    pub fn expects_answer(&self) -> bool {
        !matches!(self, Prompt::DeviceCode { .. })
    }
}

/// How a one-time code is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeChannel {
    /// Sent by email.
    Email,
    /// Sent by text message.
    Sms,
    /// From an authenticator app (TOTP).
    Authenticator,
    /// A custom challenge defined by the server.
    Custom,
}

impl CodeChannel {
    /// A lower-case name: `email`, `sms`, `authenticator`, `custom`.
    pub fn as_str(&self) -> &'static str {
        match self {
            CodeChannel::Email => "email",
            CodeChannel::Sms => "sms",
            CodeChannel::Authenticator => "authenticator",
            CodeChannel::Custom => "custom",
        }
    }
}

/// What the runtime brings to a login that the core cannot make itself: randomness (the core has
/// none) and the redirect URI of a browser login (known once a loopback listener is bound).
#[derive(Clone, Default)]
pub struct LoginInputs {
    /// 64 bytes from a cryptographically secure generator, for PKCE verifiers, `state` and `nonce`.
    /// Required by browser logins; other grants ignore it. Zeroed on drop.
    pub random: Option<Zeroizing<Vec<u8>>>,
    /// Where the authorization server sends the browser back (browser logins).
    pub redirect_uri: Option<String>,
}

impl std::fmt::Debug for LoginInputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginInputs")
            .field("random", &self.random.as_ref().map(|_| "[redacted]"))
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}
