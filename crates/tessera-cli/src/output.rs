//! Formatting for people and scripts: durations, RFC 3339 instants, token output formats — pure
//! functions — and [`stdout`], the one way data reaches stdout.
//!
//! Every `--json` output follows one schema (docs/cli.md, "JSON output"): the provider type is
//! `type`, instants are RFC 3339 strings in UTC (`expires_at`, `created_at`, ...), with
//! `expires_in` (whole seconds from now, negative when past) beside an `expires_at` where a script
//! wants to compare.

use std::time::Duration;

use serde_json::json;
use tessera::{Timestamp, TokenSet};

use crate::Failure;

/// `eprintln!` for this crate (it shadows std's in every module declared after `output`): a message
/// that cannot be written because stderr is a closed pipe (`2>&1 | head -1`) is dropped, where
/// std's panics. The command goes on; its exit code tells what happened.
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `eprint!` likewise (a prompt without a newline).
macro_rules! eprint {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

/// The exit code when stdout was closed before everything was written (`| head -1`): 128 + SIGPIPE,
/// what a shell reports for a program that SIGPIPE killed, so `set -o pipefail` scripts see the same.
pub const CLOSED_STDOUT: u8 = 141;

/// Writes `text` to stdout and flushes it. A reader that went away (`| head -1`) is not an error
/// worth a message: the command stops quietly with [`CLOSED_STDOUT`] (Rust ignores SIGPIPE, so
/// without this the write would fail, and `print!` would panic).
pub fn stdout(text: &str) -> Result<(), Failure> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).map_err(|error| {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            Failure::quiet(CLOSED_STDOUT)
        } else {
            Failure::error(format!("cannot write to stdout: {error}"))
        }
    })
}

/// How `tessera token` prints the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TokenFormat {
    /// The access token alone.
    Raw,
    /// `{"context", "name", "type", "access_token", "token_type", "expires_at", "expires_in", "scope"}`.
    Json,
    /// `Authorization: Bearer ...` (for `curl -H`).
    Header,
    /// A `client.authentication.k8s.io/v1` ExecCredential (kubectl exec plugin).
    K8s,
}

/// Whose token `tessera token` prints, for its JSON output.
pub struct TokenOwner<'a> {
    /// The context.
    pub context: &'a str,
    /// The provider's name.
    pub name: &'a str,
    /// The provider's type.
    pub provider_type: &'a str,
}

/// The text `tessera token` prints (with a trailing newline).
pub fn format_token(tokens: &TokenSet, format: TokenFormat, now: Timestamp, owner: &TokenOwner<'_>) -> String {
    let token = tokens.access_token.expose_secret();
    match format {
        TokenFormat::Raw => format!("{token}\n"),
        TokenFormat::Header => format!("Authorization: {}\n", tokens.authorization_value().expose_secret()),
        TokenFormat::Json => {
            let value = json!({
                "context": owner.context,
                "name": owner.name,
                "type": owner.provider_type,
                "access_token": token,
                "token_type": tokens.token_type,
                "expires_at": tokens.expires_at.map(rfc3339),
                "expires_in": tokens.expires_at.map(|at| seconds_between(now, at)),
                "scope": tokens.scope,
            });
            format!("{value}\n")
        }
        TokenFormat::K8s => {
            let mut status = json!({ "token": token });
            if let Some(at) = tokens.expires_at {
                status["expirationTimestamp"] = json!(rfc3339(at));
            }
            let value = json!({
                "apiVersion": "client.authentication.k8s.io/v1",
                "kind": "ExecCredential",
                "status": status,
            });
            format!("{value}\n")
        }
    }
}

/// `tessera token --dpop-url`: the proof added to what `format_token` printed: a `DPoP:` header
/// line after the `Authorization:` one, or a `"dpop"` member in the JSON.
pub fn with_dpop_proof(text: String, format: TokenFormat, proof: &tessera::Secret) -> String {
    match format {
        TokenFormat::Json => match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(mut value) => {
                value["dpop"] = json!(proof.expose_secret());
                format!("{value}\n")
            }
            Err(_) => text,
        },
        _ => format!("{text}DPoP: {}\n", proof.expose_secret()),
    }
}

/// Whole seconds from `now` to `at` (negative when past), rounded down.
pub fn seconds_between(now: Timestamp, at: Timestamp) -> i64 {
    (at.as_unix_millis() - now.as_unix_millis()).div_euclid(1000)
}

/// `2026-11-23T12:34:56Z` (UTC, whole seconds), as Kubernetes expects.
pub fn rfc3339(at: Timestamp) -> String {
    let secs = at.as_unix_secs();
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, (rest % 3600) / 60, rest % 60)
}

/// Parses `90`, `90s`, `5m`, `1h30m`, `2d` (for `--min-valid`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(format!("{text:?}: unknown unit {c:?} (use s, m, h, d, e.g. 5m)")),
        };
        let value: u64 = number.parse().map_err(|_| format!("{text:?}: a number must come before {c:?}"))?;
        total = total.saturating_add(value.saturating_mul(unit));
        number.clear();
    }
    if !number.is_empty() {
        return Err(format!("{text:?}: the last number has no unit (use s, m, h, d)"));
    }
    Ok(Duration::from_secs(total))
}

/// `42s`, `5m00s`, `2h05m`, `3d04h`.
pub fn human_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60),
        _ => format!("{}d{:02}h", secs / 86400, (secs % 86400) / 3600),
    }
}

/// `in 5m00s` / `3s ago` / `-`.
pub fn relative(expires_in_secs: Option<i64>) -> String {
    match expires_in_secs {
        Some(secs) if secs >= 0 => format!("in {}", human_duration(Duration::from_secs(secs as u64))),
        Some(secs) => format!("{} ago", human_duration(Duration::from_secs(secs.unsigned_abs()))),
        None => "-".into(),
    }
}

/// `word` as one shell word: as it is when it needs no quoting, else in single quotes.
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c));
    if plain { word.to_owned() } else { format!("'{}'", word.replace('\'', r"'\''")) }
}

/// Left-aligned columns, two spaces apart; the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(Timestamp::from_unix_secs(0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(Timestamp::from_unix_secs(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(Timestamp::from_unix_secs(1_767_225_599)), "2025-12-31T23:59:59Z");
        assert_eq!(rfc3339(Timestamp::from_unix_secs(4_102_444_800)), "2100-01-01T00:00:00Z");
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("peer"), "peer");
        assert_eq!(shell_word("my ctx"), "'my ctx'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_duration("5x").is_err() && parse_duration("m").is_err() && parse_duration("1h3").is_err());
    }

    #[test]
    fn k8s_exec_credential_has_the_schema_fields() {
        let now = Timestamp::from_unix_secs(1_000);
        let tokens = TokenSet::bearer("tok", Some(Timestamp::from_unix_secs(1_300)), now);
        let owner = TokenOwner { context: "dev", name: "peer", provider_type: "password" };
        let value: serde_json::Value =
            serde_json::from_str(&format_token(&tokens, TokenFormat::K8s, now, &owner)).unwrap();
        assert_eq!(value["apiVersion"], "client.authentication.k8s.io/v1");
        assert_eq!(value["kind"], "ExecCredential");
        assert_eq!(value["status"]["token"], "tok");
        assert_eq!(value["status"]["expirationTimestamp"], "1970-01-01T00:21:40Z");
        assert_eq!(format_token(&tokens, TokenFormat::Header, now, &owner), "Authorization: Bearer tok\n");
        let value: serde_json::Value =
            serde_json::from_str(&format_token(&tokens, TokenFormat::Json, now, &owner)).unwrap();
        assert_eq!(
            value,
            json!({ "context": "dev", "name": "peer", "type": "password", "access_token": "tok", "token_type": "Bearer",
                    "expires_at": "1970-01-01T00:21:40Z", "expires_in": 300, "scope": null })
        );
    }
}
