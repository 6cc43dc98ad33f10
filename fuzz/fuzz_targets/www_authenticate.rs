//! `WWW-Authenticate` header values: every challenge, and the Bearer / DPoP reading of them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::protocol::MAX_DESCRIPTION_LEN;
use tessera_core::protocol::challenge::{
    Challenge, MAX_CHALLENGE_HEADER_LEN, TokenChallenge, parse_challenges, token_challenges,
};

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// The challenges written back in canonical form: every value quoted, `"` and `\` escaped.
fn serialize(challenges: &[Challenge]) -> String {
    let mut out = Vec::new();
    for challenge in challenges {
        let mut text = challenge.scheme.clone();
        if let Some(token68) = &challenge.token68 {
            text.push(' ');
            text.push_str(token68);
        }
        for (i, (name, value)) in challenge.params.iter().enumerate() {
            text.push_str(if i == 0 { " " } else { ", " });
            text.push_str(name);
            text.push_str("=\"");
            for c in value.chars() {
                if c == '"' || c == '\\' {
                    text.push('\\');
                }
                text.push(c);
            }
            text.push('"');
        }
        out.push(text);
    }
    out.join(", ")
}

fuzz_target!(|data: &[u8]| {
    let value = String::from_utf8_lossy(data);
    let challenges = parse_challenges(&value);
    for challenge in &challenges {
        assert!(!challenge.scheme.is_empty() && challenge.scheme.chars().all(is_tchar));
        assert!(challenge.token68.is_none() || challenge.params.is_empty());
        for (name, _) in &challenge.params {
            assert!(!name.is_empty() && name.chars().all(is_tchar));
            assert_eq!(name, &name.to_ascii_lowercase());
        }
        if let Some(token) = TokenChallenge::from_challenge(challenge) {
            assert!(token.error_description.is_none_or(|d| d.chars().count() <= MAX_DESCRIPTION_LEN));
        }
    }
    // Parsing is a function of the text: what was read, written back canonically, reads the same.
    let canonical = serialize(&challenges);
    if canonical.len() <= MAX_CHALLENGE_HEADER_LEN {
        assert_eq!(parse_challenges(&canonical), challenges, "{canonical:?}");
    }
    assert_eq!(token_challenges([value.as_ref()]).len(), challenges.iter().filter_map(TokenChallenge::from_challenge).count());
});
