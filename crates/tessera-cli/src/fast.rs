//! `tessera token` on a valid stored token, answered before anything else starts: no clap command
//! tree, no async runtime, no thread. Scripts and kubectl run `tessera token` for every request,
//! so its cost is the process start plus one small file read (benches/README.md).
//!
//! This module only *recognises* the plain forms of the command (`token` with `--provider`/`-p`, `--resource`,
//! `--context`, `--format`, `--json`, `--min-valid`, `--prompt`, `--no-browser`, `--no-qr`) and
//! serves a token the file store already holds and that is valid for the same window the full
//! path uses. Anything else — another command, an unusual spelling, a flag given twice, a Redis
//! store, a missing, expired or unreadable token, a bad environment variable — returns `None`, and
//! `main` runs the full path, which does the same checks again and reports errors as usual. So
//! this path can never answer differently from the full one; it can only answer sooner.

use std::ffi::OsString;
use std::time::Duration;

use clap::ValueEnum as _;
use tessera::clock::{Clock, SystemClock};
use tessera::store::{FileStore, StoreConfig};
use tessera::{SessionSettings, TokenSet};

use crate::output::{self, TokenFormat};

/// What the plain forms of `tessera token` ask for.
#[derive(Debug, Default, PartialEq)]
struct TokenArgs {
    context: Option<String>,
    provider: Option<String>,
    format: Option<TokenFormat>,
    json: bool,
    min_valid: Option<Duration>,
    resource: Option<String>,
}

/// Prints the stored token and returns the exit code when `args` (without the program name) is a
/// plain `tessera token` and the file store holds a token valid long enough; `None` otherwise.
pub fn token(args: impl Iterator<Item = OsString>) -> Option<u8> {
    let args = parse(args)?;
    if !environment_is_plain() {
        return None;
    }
    let context_name = args.context.or_else(|| non_empty_var("TESSERA_CONTEXT"));
    let provider_name = args.provider.or_else(|| non_empty_var("TESSERA_PROVIDER"));
    let format = if args.json { TokenFormat::Json } else { args.format.unwrap_or(TokenFormat::Raw) };
    // As `Workspace::open` and `auth::fresh_tokens` do, minus everything a stored token does not need.
    let registry = crate::registry();
    let (paths, config) = crate::load_config(&registry).ok()?;
    let context = config.context(context_name.as_deref()).ok()?;
    let dir = match &context.store {
        None | Some(StoreConfig::File { dir: None }) => paths.store_dir,
        Some(StoreConfig::File { dir: Some(dir) }) => tessera::config::expand_home(dir),
        // Redis (a local copy in front, a connection to make) and memory stores: the full path.
        Some(_) => return None,
    };
    let name = provider_name.as_deref().or_else(|| provider_naming(context, args.resource.as_deref()?));
    let entry = context.provider(name).ok()?;
    let tokens = FileStore::new(dir).load_now(&context.store_key(entry)).ok()??;
    let tokens = for_resource(tokens, args.resource.or_else(|| resource_of(entry)).as_deref());
    let now = SystemClock.now();
    if !valid(&tokens, now, args.min_valid.unwrap_or_default()) {
        return None;
    }
    let owner = output::TokenOwner { context: &context.name, name: &entry.name, provider_type: &entry.type_name };
    Some(match output::stdout(&output::format_token(&tokens, format, now, &owner)) {
        Ok(()) => 0,
        Err(failure) => crate::exit(failure),
    })
}

/// The resource a provider's tokens are for (its section's `resource`; a workload identity's is
/// its exchange's, not a key into the store).
pub(crate) fn resource_of(entry: &tessera::config::ProviderEntry) -> Option<String> {
    entry.spec()?.client.resource.clone()
}

/// `--resource` without `--provider`: the provider whose section names that resource, when one
/// does (the full path, `auth::token`, chooses the same way).
pub(crate) fn provider_naming<'a>(context: &'a tessera::config::Context, resource: &str) -> Option<&'a str> {
    context.providers.iter().find(|entry| resource_of(entry).as_deref() == Some(resource)).map(|e| e.name.as_str())
}

/// What a stored login holds for `resource` (RFC 8707: one login, an access token per resource).
pub(crate) fn for_resource(tokens: TokenSet, resource: Option<&str>) -> TokenSet {
    match resource {
        Some(resource) => tokens.for_resource(resource),
        None => tokens,
    }
}

/// The test of `auth::fresh_tokens`: valid for the refresh window, or `min_valid` if longer.
pub(crate) fn valid(tokens: &TokenSet, now: tessera::Timestamp, min_valid: Duration) -> bool {
    tokens.access_valid(now, tokens.refresh_window(SessionSettings::default().refresh_skew).max(min_valid))
}

/// The arguments, when they are a plain `token` command; `None` for anything else.
fn parse(args: impl Iterator<Item = OsString>) -> Option<TokenArgs> {
    let mut parsed = TokenArgs::default();
    let mut seen = std::collections::HashSet::new();
    let mut command = false;
    let mut args = args.map(|arg| arg.into_string().ok());
    while let Some(arg) = args.next() {
        let arg = arg?;
        if arg == "token" && !command {
            command = true;
            continue;
        }
        // `--name=value` or `--name value` (and `-p value`); a repeated option is clap's error to report.
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name.to_owned(), Some(value.to_owned())),
            _ => (arg, None),
        };
        let mut value = || -> Option<String> {
            match &inline {
                Some(value) => Some(value.clone()),
                None => args.next().flatten().filter(|value| !value.starts_with('-')),
            }
        };
        let once = |slot: &mut Option<String>, value: Option<String>| -> Option<()> {
            let value = value.filter(|value| !value.is_empty())?;
            slot.replace(value).is_none().then_some(())
        };
        match name.as_str() {
            "--context" => once(&mut parsed.context, value())?,
            "--resource" if command => once(&mut parsed.resource, value())?,
            "--provider" | "-p" if command => once(&mut parsed.provider, value())?,
            "--format" if command && parsed.format.is_none() => {
                parsed.format = Some(TokenFormat::from_str(&value()?, false).ok()?);
            }
            "--json" if command && inline.is_none() && !parsed.json => parsed.json = true,
            "--min-valid" if command && parsed.min_valid.is_none() => {
                parsed.min_valid = Some(output::parse_duration(&value()?).ok()?);
            }
            // Global flags that change only how a login is shown: none happens here. Given twice,
            // clap refuses them: the full path says so.
            "--prompt" if seen.insert("--prompt") => {
                crate::PromptMode::from_str(&value()?, false).ok()?;
            }
            "--no-browser" | "--no-qr"
                if inline.is_none() && seen.insert(if name == "--no-qr" { "--no-qr" } else { "--no-browser" }) => {}
            _ => return None,
        }
    }
    // `--json --format` conflict: clap says so.
    (command && !(parsed.json && parsed.format.is_some())).then_some(parsed)
}

/// False when a variable that clap checks holds a value it might refuse: the full path says so.
fn environment_is_plain() -> bool {
    let var = |name: &str| std::env::var_os(name).map(|value| value.into_string().ok());
    let prompt_ok = match var("TESSERA_PROMPT") {
        None => true,
        Some(value) => value.is_some_and(|value| crate::PromptMode::from_str(&value, false).is_ok()),
    };
    let boolish = |name: &str| match var(name) {
        None => true,
        Some(value) => value.is_some_and(|value| {
            ["y", "yes", "t", "true", "on", "1", "n", "no", "f", "false", "off", "0"]
                .contains(&value.to_ascii_lowercase().as_str())
        }),
    };
    // An empty TESSERA_CONTEXT is left to clap to interpret.
    let context_ok = var("TESSERA_CONTEXT").is_none_or(|value| value.is_some_and(|value| !value.is_empty()));
    prompt_ok && boolish("TESSERA_NO_BROWSER") && boolish("TESSERA_NO_QR") && context_ok
}

fn non_empty_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Option<TokenArgs> {
        parse(line.split_whitespace().map(OsString::from))
    }

    #[test]
    fn recognises_the_plain_forms() {
        assert_eq!(args("token"), Some(TokenArgs::default()));
        let full = args("--context prod token -p api --format k8s --min-valid 5m --prompt never --no-qr").unwrap();
        assert_eq!(full.context.as_deref(), Some("prod"));
        assert_eq!(full.provider.as_deref(), Some("api"));
        assert_eq!(full.format, Some(TokenFormat::K8s));
        assert_eq!(full.min_valid, Some(Duration::from_secs(300)));
        let inline = args("token --provider=api --context=dev --json").unwrap();
        assert_eq!(
            (inline.provider.as_deref(), inline.context.as_deref(), inline.json),
            (Some("api"), Some("dev"), true)
        );
    }

    #[test]
    fn leaves_everything_else_to_clap() {
        for line in [
            "",
            "status",
            "token extra",
            "token token",
            "login -p api",
            "-p api token",
            "token --help",
            "token -h",
            "token --version",
            "token --provider",
            "token --provider --json",
            "token --provider a --provider b",
            "token --format yaml",
            "token --format json --json",
            "token --json --json",
            "token --min-valid soon",
            "token --prompt sometimes",
            "token --no-browser=false",
            "token --no-qr --no-qr",
            "token --no-browser --no-browser",
            "token --prompt never --prompt auto",
            "token --unknown",
            "token --",
        ] {
            assert_eq!(args(line), None, "{line:?}");
        }
    }
}
