//! `WWW-Authenticate` challenges (RFC 9110 §11.6.1), and the parameters a resource server puts in
//! a `Bearer` (RFC 6750 §3) or `DPoP` (RFC 9449 §7.1) challenge, including RFC 9728 §5.1's
//! `resource_metadata`. The one parser of this header in tessera: the DPoP nonce check, the
//! middlewares' "token rejected" test and resource discovery all read challenges through it.
//!
//! Grammar (RFC 9110 §11.6.1, §5.6):
//!
//! ```text
//! WWW-Authenticate = #challenge
//! challenge        = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//! auth-param       = token BWS "=" BWS ( token / quoted-string )
//! ```
//!
//! Several challenges may share one header value, separated by commas like their parameters; a
//! response may also carry several header values. Parsing is lenient where servers differ
//! (scheme and parameter names in any case, empty list elements, spaces around `=`) and stops at
//! the first syntax error: the challenges complete before it are kept, the broken one is dropped.
//! Pure functions; no I/O.

use super::token::server_text;
use crate::OAuthErrorCode;

/// The longest header value parsed; anything past it is ignored (a challenge is a few hundred
/// bytes; this bounds the work a hostile server can cause).
pub const MAX_CHALLENGE_HEADER_LEN: usize = 16 * 1024;

/// One challenge: a scheme and either a `token68` or a list of parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Challenge {
    /// The auth scheme as sent (`Bearer`, `DPoP`, `Basic`, ...); compare it case-insensitively
    /// ([`Challenge::is`]).
    pub scheme: String,
    /// The `token68` form (`Negotiate abc==`), when used instead of parameters.
    pub token68: Option<String>,
    /// Parameters in order, names lowercased (they are case-insensitive), values unquoted and
    /// unescaped.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// True when the scheme is `scheme`, ignoring case.
    pub fn is(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// The first value of parameter `name` (give it lowercase).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Parses every challenge in one `WWW-Authenticate` header value (see the module documentation
/// for what is tolerated and what ends the parse).
pub fn parse_challenges(value: &str) -> Vec<Challenge> {
    // Bytes: a cut inside a character only spoils the last (lossily decoded) value.
    let cut = value.len().min(MAX_CHALLENGE_HEADER_LEN);
    let mut parser = Parser { s: &value.as_bytes()[..cut], i: 0 };
    let mut challenges = Vec::new();
    loop {
        parser.skip_list_separators();
        if parser.at_end() {
            return challenges;
        }
        let Some(scheme) = parser.token() else { return challenges };
        let mut challenge = Challenge { scheme, token68: None, params: Vec::new() };
        let spaced = parser.skip_spaces();
        // A token68 right after the scheme: a token-like run (plus / - . _ ~ + /) then '=' padding,
        // then the end or a comma.
        if spaced && let Some(token68) = parser.token68() {
            challenge.token68 = Some(token68);
            challenges.push(challenge);
            continue;
        }
        // Parameters until the next scheme (a token not followed by '='), the end, or an error.
        loop {
            parser.skip_list_separators();
            let start = parser.i;
            let Some(name) = parser.token() else {
                if !parser.at_end() {
                    // Not a token: a syntax error. Keep what was complete.
                    return challenges;
                }
                break;
            };
            parser.skip_spaces();
            if !parser.eat(b'=') {
                // The next challenge's scheme.
                parser.i = start;
                break;
            }
            parser.skip_spaces();
            let value = if parser.peek() == Some(b'"') { parser.quoted() } else { parser.token() };
            let Some(value) = value else { return challenges };
            challenge.params.push((name.to_ascii_lowercase(), value));
            parser.skip_spaces();
            if !parser.at_end() && parser.peek() != Some(b',') {
                return challenges;
            }
        }
        challenges.push(challenge);
    }
}

/// Every challenge of every value (a response may carry several `WWW-Authenticate` headers).
pub fn parse_challenge_headers<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Challenge> {
    values.into_iter().flat_map(parse_challenges).collect()
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl Parser<'_> {
    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Skips spaces and tabs; true when there were any.
    fn skip_spaces(&mut self) -> bool {
        let start = self.i;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
        self.i > start
    }

    /// Skips spaces and commas (empty list elements are allowed, RFC 9110 §5.6.1.2).
    fn skip_list_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }

    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    /// A token68 when one stands here (and is not the name of a parameter); else nothing is consumed.
    fn token68(&mut self) -> Option<String> {
        let start = self.i;
        while self.peek().is_some_and(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)) {
            self.i += 1;
        }
        if self.i == start {
            return None;
        }
        while self.eat(b'=') {}
        let end = self.i;
        self.skip_spaces();
        if self.at_end() || self.peek() == Some(b',') {
            // `name=value`: the '=' run is followed by a value, so it never gets here; `a=` alone
            // is ambiguous and read as token68, as RFC 9110 §11.2 prescribes.
            return Some(String::from_utf8_lossy(&self.s[start..end]).into_owned());
        }
        self.i = start;
        None
    }

    /// A quoted-string, unescaped (`\"` and `\\`); `None` when it is not closed.
    fn quoted(&mut self) -> Option<String> {
        let start = self.i;
        self.i += 1; // the opening quote
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => {
                    self.i = start;
                    return None;
                }
                Some(b'"') => {
                    self.i += 1;
                    return Some(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') => {
                    self.i += 1;
                    let escaped = self.peek()?;
                    out.push(escaped);
                    self.i += 1;
                }
                Some(b) => {
                    out.push(b);
                    self.i += 1;
                }
            }
        }
    }
}

/// The scheme of a token challenge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenScheme {
    /// `Bearer` (RFC 6750).
    Bearer,
    /// `DPoP` (RFC 9449).
    Dpop,
}

/// What a resource server says in a `Bearer` or `DPoP` challenge (RFC 6750 §3, RFC 9449 §7.1,
/// RFC 9728 §5.1).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenChallenge {
    /// `Bearer` or `DPoP`.
    pub scheme: TokenScheme,
    /// `realm`.
    pub realm: Option<String>,
    /// `error`: `invalid_request`, `invalid_token`, `insufficient_scope`, `use_dpop_nonce` (as
    /// [`OAuthErrorCode::Other`]), ...
    pub error: Option<OAuthErrorCode>,
    /// `error_description`, cut to [`MAX_DESCRIPTION_LEN`](super::MAX_DESCRIPTION_LEN) characters, control characters shown as `?`.
    pub error_description: Option<String>,
    /// `scope`: the scope the resource needs (space-separated), e.g. with `insufficient_scope`.
    pub scope: Option<String>,
    /// `resource_metadata` (RFC 9728 §5.1): the URL of the resource's metadata document.
    pub resource_metadata: Option<String>,
}

impl TokenChallenge {
    /// The `Bearer` or `DPoP` reading of `challenge`; `None` for other schemes.
    pub fn from_challenge(challenge: &Challenge) -> Option<Self> {
        let scheme = if challenge.is("Bearer") {
            TokenScheme::Bearer
        } else if challenge.is("DPoP") {
            TokenScheme::Dpop
        } else {
            return None;
        };
        let text = |name| challenge.param(name).map(str::to_owned);
        Some(TokenChallenge {
            scheme,
            realm: text("realm"),
            error: challenge.param("error").map(OAuthErrorCode::from_wire),
            error_description: challenge.param("error_description").map(server_text),
            // RFC 6749 §3.3 scope text (printable ASCII but `"` and `\`, space-separated) or none:
            // the scope is logged and asked for.
            scope: text("scope")
                .filter(|scope| scope.chars().all(|c| c == ' ' || (c.is_ascii_graphic() && c != '"' && c != '\\'))),
            resource_metadata: text("resource_metadata"),
        })
    }

    /// True when `error` is `code`.
    pub fn has_error(&self, code: &str) -> bool {
        self.error.as_ref().is_some_and(|error| error.as_str() == code)
    }
}

/// The scope an answer says its request needs (RFC 6750 §3.1): on a 403 (or 401), a `Bearer` or
/// `DPoP` challenge with `error="insufficient_scope"`, its `scope` (empty when it names none).
/// `None` for any other answer. `www_authenticate`: every field of the header, joined with `, `.
pub fn required_scope(status: u16, www_authenticate: Option<&str>) -> Option<String> {
    if status != 403 && status != 401 {
        return None;
    }
    token_challenges([www_authenticate?])
        .into_iter()
        .find(|challenge| challenge.error == Some(OAuthErrorCode::InsufficientScope))
        .map(|challenge| challenge.scope.unwrap_or_default())
}

/// Every `Bearer` and `DPoP` challenge in these header values, in order.
pub fn token_challenges<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<TokenChallenge> {
    parse_challenge_headers(values).iter().filter_map(TokenChallenge::from_challenge).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(c: &Challenge) -> Vec<(&str, &str)> {
        c.params.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect()
    }

    #[test]
    fn several_challenges_quoted_strings_and_escapes() {
        let header = r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple", Bearer resource_metadata="https://api.example/.well-known/oauth-protected-resource", error="insufficient_scope", scope="a b""#;
        let challenges = parse_challenges(header);
        assert_eq!(challenges.len(), 3, "{challenges:?}");
        assert!(challenges[0].is("newauth"));
        assert_eq!(params(&challenges[0]), [("realm", "apps"), ("type", "1"), ("title", "Login to \"apps\"")]);
        assert_eq!(params(&challenges[1]), [("realm", "simple")]);
        let bearer = TokenChallenge::from_challenge(&challenges[2]).unwrap();
        assert_eq!(bearer.scheme, TokenScheme::Bearer);
        assert_eq!(
            bearer.resource_metadata.as_deref(),
            Some("https://api.example/.well-known/oauth-protected-resource")
        );
        assert!(bearer.has_error("insufficient_scope"));
        assert_eq!(bearer.scope.as_deref(), Some("a b"));
    }

    /// A `scope` outside RFC 6749 §3.3's characters is no scope: it would be logged and asked for.
    #[test]
    fn a_scope_with_a_control_character_is_ignored() {
        let header = "Bearer error=\"insufficient_scope\", scope=\"read\nlevel=INFO msg=forged\"";
        let challenge = TokenChallenge::from_challenge(&parse_challenges(header)[0]).unwrap();
        assert!(challenge.has_error("insufficient_scope"));
        assert_eq!(challenge.scope, None);
        assert_eq!(required_scope(403, Some(header)).as_deref(), Some(""), "insufficient_scope, no usable scope");
    }

    #[test]
    fn tolerated_forms() {
        // Unquoted values, any case, spaces around '=', empty list elements, a comma inside quotes.
        let c = parse_challenges(r#"bearer  ERROR = invalid_token ,, error_description="a, b\\c""#);
        assert_eq!(params(&c[0]), [("error", "invalid_token"), ("error_description", "a, b\\c")]);
        assert_eq!(token_challenges([r#"BEARER error=invalid_token"#])[0].error, Some(OAuthErrorCode::InvalidToken));
        // A scheme alone, then token68, then a DPoP challenge.
        let c = parse_challenges("Bearer, Negotiate YII=, DPoP algs=\"ES256\", error=\"use_dpop_nonce\"");
        assert_eq!(c.len(), 3, "{c:?}");
        assert!(c[0].params.is_empty() && c[0].token68.is_none());
        assert_eq!(c[1].token68.as_deref(), Some("YII="));
        let dpop = TokenChallenge::from_challenge(&c[2]).unwrap();
        assert_eq!(dpop.scheme, TokenScheme::Dpop);
        assert!(dpop.has_error("use_dpop_nonce"));
        // Several header values.
        let all = token_challenges(["Basic realm=x", "Bearer error=\"invalid_token\""]);
        assert_eq!(all.len(), 1);
    }

    #[test]
    fn syntax_errors_keep_what_was_complete() {
        assert!(parse_challenges("").is_empty());
        assert!(parse_challenges("\"quoted\"").is_empty());
        let c = parse_challenges(r#"Basic realm="x", Bearer error="unclosed"#);
        assert_eq!(c.len(), 1, "{c:?}");
        assert!(c[0].is("basic"));
        let c = parse_challenges(r#"Bearer error="a" junk"#);
        assert!(c.is_empty(), "{c:?}");
        // Not UTF-8 safe boundaries past the cap are cut, never panic.
        let long = format!("Bearer realm=\"{}\"", "é".repeat(MAX_CHALLENGE_HEADER_LEN));
        assert!(parse_challenges(&long).is_empty());
        // Error descriptions are truncated.
        let long = format!("Bearer error_description=\"{}\"", "x".repeat(1000));
        assert_eq!(
            token_challenges([long.as_str()])[0].error_description.as_ref().unwrap().len(),
            super::super::MAX_DESCRIPTION_LEN
        );
    }
}
