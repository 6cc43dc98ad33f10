//! `tessera config init [--force] [--interactive]`: the first file a new user has. It writes a
//! commented starter where tessera will look (the path every other command names when there is
//! no file), checked by the same parser before it is written, mode 0600 in a directory created
//! 0700 (the file may come to hold secret references and client ids). It never replaces a file
//! without `--force`, and never asks anything when nobody can answer.

use std::io::{BufRead, Write};
use std::path::Path;

use tessera::config::Paths;

use crate::{Failure, config_origin, registry};

/// The starter file: one context, no active provider, an example of each common type to
/// uncomment. The first example works as written against `tessera idp serve --port 8400`
/// (tests/onboarding.rs uncomments every example and loads it, and logs in with the first).
pub const STARTER: &str = r#"# tessera configuration, written by `tessera config init`.
#
# A context is a set of providers (e.g. dev, prod); a provider says how to get a token.
# Field reference: docs/configuration.md in tessera's documentation; `tessera config --help`.
# Secrets do not belong in this file: write a reference instead,
#   env:NAME (an environment variable), file:PATH, or keyring:SERVICE/ACCOUNT (`tessera secret set`).
# Check the file with `tessera config view` and `tessera providers list`.

current_context = "default"

[[contexts]]
name = "default"
# current_provider = "demo"   # the provider commands use without -p when there are several

# Uncomment one of these (or add your own), then run `tessera login`.
#
# Try tessera against its reference identity server: in another terminal run
#   tessera idp serve --port 8400
# then `export TESSERA_DEMO_PASSWORD=alice-password` and uncomment:
#
# [[contexts.auth_providers]]
# name = "demo"
# type = "password"
# issuer = "http://127.0.0.1:8400"
# client_id = "public-client"
# username = "alice"
# password = "env:TESSERA_DEMO_PASSWORD"
# scope = "openid api:read"

# Sign in with a browser (authorization code + PKCE, redirect to a loopback listener):
#
# [[contexts.auth_providers]]
# name = "web"
# type = "browser"
# issuer = "https://idp.example.com"
# client_id = "my-cli-client"

# Enter a code on another device (RFC 8628): for SSH sessions and machines without a browser.
#
# [[contexts.auth_providers]]
# name = "laptop"
# type = "device_code"
# issuer = "https://idp.example.com"
# client_id = "my-cli-client"

# A service account (client credentials), e.g. for CI:
#
# [[contexts.auth_providers]]
# name = "robot"
# type = "client_credentials"
# issuer = "https://idp.example.com"
# client_id = "ci-robot"
# client_secret = "env:ROBOT_CLIENT_SECRET"
"#;

/// The types `--interactive` offers (the others have more to say than a few questions ask).
const INTERACTIVE_TYPES: [&str; 4] = ["browser", "device_code", "password", "client_credentials"];

/// How many times a question is asked before giving up.
const ATTEMPTS: usize = 3;

pub fn run(force: bool, interactive: bool, may_prompt: bool) -> Result<(), Failure> {
    let paths = Paths::from_env()?;
    let path = &paths.config_file;
    if path.exists() && !force {
        return Err(Failure::error(format!(
            "{} already exists ({}): not replaced\nhint: pass --force to replace it, or edit it",
            path.display(),
            config_origin()
        )));
    }
    let text = if interactive {
        if !may_prompt {
            return Err(Failure {
                code: 2,
                message: "--interactive needs a terminal (stdin and stderr), or --prompt always".into(),
            });
        }
        let stdin = std::io::stdin();
        with_provider(&ask_provider(&mut stdin.lock())?)
    } else {
        STARTER.to_owned()
    };
    // The same parser every command uses: a file init writes always loads.
    registry().parse_config(&text, &path.display().to_string())?;
    write_private(path, &text)?;
    let next = if interactive {
        "Run `tessera login` to log in."
    } else {
        "Uncomment a provider (or add yours), then run `tessera login`."
    };
    eprintln!("Wrote {} ({}). {next}", path.display(), config_origin());
    Ok(())
}

/// A provider described by `--interactive`'s answers, as TOML lines.
fn ask_provider(input: &mut impl BufRead) -> Result<String, Failure> {
    let kind = ask(input, &format!("Provider type ({})", INTERACTIVE_TYPES.join(", ")), Some("browser"), |answer| {
        if INTERACTIVE_TYPES.contains(&answer) {
            Ok(())
        } else {
            Err(format!("one of {} (others: edit the file)", INTERACTIVE_TYPES.join(", ")))
        }
    })?;
    let name = ask(input, "Name", Some(&kind.replace('_', "-")), |answer| {
        // A provider name goes into store keys and command lines: plain ASCII, as the message says.
        let plain = answer.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !answer.is_empty() && answer.len() <= 64 && plain {
            Ok(())
        } else {
            Err("letters, digits, '-' and '_'".into())
        }
    })?;
    let issuer = ask(input, "Issuer URL (OpenID Connect discovery)", None, |answer| {
        if answer.starts_with("https://") || answer.starts_with("http://") {
            Ok(())
        } else {
            Err("an http(s) URL".into())
        }
    })?;
    let client_id = ask(input, "Client id", None, |_| Ok(()))?;
    let quoted = |value: &str| toml::Value::String(value.to_owned()).to_string();
    let mut lines = vec![
        "[[contexts.auth_providers]]".to_owned(),
        format!("name = {}", quoted(&name)),
        format!("type = {}", quoted(&kind)),
        format!("issuer = {}", quoted(&issuer)),
        format!("client_id = {}", quoted(&client_id)),
    ];
    let env_name = |what: &str| format!("env:{}_{what}", name.to_uppercase().replace('-', "_"));
    let reference = |answer: &str| {
        if ["env:", "file:", "keyring:"].iter().any(|prefix| answer.starts_with(prefix)) {
            Ok(())
        } else {
            Err("a reference: env:NAME, file:PATH or keyring:SERVICE/ACCOUNT (never the secret itself)".into())
        }
    };
    match kind.as_str() {
        "password" => {
            let username = ask(input, "Username", None, |_| Ok(()))?;
            let password = ask(input, "Where the password is", Some(&env_name("PASSWORD")), reference)?;
            lines.push(format!("username = {}", quoted(&username)));
            lines.push(format!("password = {}", quoted(&password)));
        }
        "client_credentials" => {
            let secret = ask(input, "Where the client secret is", Some(&env_name("CLIENT_SECRET")), reference)?;
            lines.push(format!("client_secret = {}", quoted(&secret)));
        }
        _ => {}
    }
    Ok(lines.join("\n") + "\n")
}

/// Asks `question` on stderr and reads one line; an empty answer takes `default`. A refused
/// answer is asked again, at most [`ATTEMPTS`] times in all; the end of input is an error.
fn ask(
    input: &mut impl BufRead,
    question: &str,
    default: Option<&str>,
    check: impl Fn(&str) -> Result<(), String>,
) -> Result<String, Failure> {
    for _ in 0..ATTEMPTS {
        match default {
            Some(default) => eprint!("{question} [{default}]: "),
            None => eprint!("{question}: "),
        }
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        let read = input.read_line(&mut line).map_err(|e| Failure::error(format!("stdin: {e}")))?;
        if read == 0 {
            eprintln!();
            return Err(Failure::error("no answer (end of input): nothing written"));
        }
        let answer = match (line.trim(), default) {
            ("", Some(default)) => default.to_owned(),
            ("", None) => {
                eprintln!("An answer is needed.");
                continue;
            }
            (answer, _) => answer.to_owned(),
        };
        match check(&answer) {
            Ok(()) => return Ok(answer),
            // The rule, not the answer: it may be a secret typed in the wrong place.
            Err(rule) => eprintln!("That is not {rule}."),
        }
    }
    Err(Failure::error(format!("{question}: no acceptable answer: nothing written")))
}

/// The starter with `provider` as the context's one active provider, the examples kept below.
fn with_provider(provider: &str) -> String {
    const MARK: &str = "# Uncomment one of these";
    let at = STARTER.find(MARK).expect("the starter has its examples");
    format!("{}{provider}\n# More providers: uncomment one of these{}", &STARTER[..at], &STARTER[at + MARK.len()..])
}

/// Writes `text` to `path` as a 0600 file (replacing any file atomically), creating missing
/// parent directories 0700.
fn write_private(path: &Path, text: &str) -> Result<(), Failure> {
    let io = |e: std::io::Error| Failure::error(format!("cannot write {}: {e}", path.display()));
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io)?;
    // A new file beside the target, renamed over it: a reader never sees half a file.
    let temp = dir.join(format!(".config-init-{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&temp).and_then(|mut file| {
        file.write_all(text.as_bytes())?;
        file.sync_all()
    });
    let renamed = written.and_then(|()| std::fs::rename(&temp, path));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    renamed.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_and_an_interactive_answer_set_parse() {
        let config = registry().parse_config(STARTER, "starter").expect("the starter parses");
        assert_eq!(config.context(None).expect("one context").providers.len(), 0);
        let answers = "password\n\nhttp://127.0.0.1:8400\npublic-client\nalice\n\n";
        let provider = ask_provider(&mut answers.as_bytes()).unwrap_or_else(|f| panic!("{}", f.message));
        let config = registry().parse_config(&with_provider(&provider), "answers").expect("parses");
        let entry = config.context(None).unwrap().provider(None).unwrap();
        assert_eq!((entry.name.as_str(), entry.type_name.as_str()), ("password", "password"));
    }

    #[test]
    fn a_literal_secret_is_asked_again_and_never_echoed() {
        let answers = "client_credentials\nrobot\nhttps://idp.example.com\nci\nhunter2\nenv:ROBOT_SECRET\n";
        let provider = ask_provider(&mut answers.as_bytes()).unwrap_or_else(|f| panic!("{}", f.message));
        assert!(provider.contains("client_secret = \"env:ROBOT_SECRET\"") && !provider.contains("hunter2"));
        let Err(refused) = ask_provider(&mut "password\n\nnot-a-url\n".as_bytes()) else { panic!("end of input") };
        assert!(refused.message.contains("nothing written"), "{}", refused.message);
    }
}
