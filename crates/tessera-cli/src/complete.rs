//! Shell completion: the script `tessera completions <shell>` prints, and the candidates that script
//! asks this binary for on each TAB — commands and flags, and the names in the configuration file:
//! provider names (of the context named earlier on the line by `--context`, else `TESSERA_CONTEXT`,
//! else the current context) and context names.
//!
//! The scripts are clap_complete's dynamic ones (`CompleteEnv`): on TAB the shell runs
//! `COMPLETE=<shell> tessera -- <words on the line>`, so the candidates are those of the
//! configuration at that moment, never a list frozen when the script was written. Nothing here
//! prints anything but candidates: a missing or broken configuration gives no candidates.
//!
//! To complete another argument with provider or context names (e.g. `config use-provider NAME`):
//! `#[arg(add = crate::complete::provider_names())]` or `#[arg(add = crate::complete::context_names())]`.

use std::ffi::OsString;

use clap::CommandFactory;
use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};
use clap_complete::env::{CompleteEnv, Shells};
use tessera::config::Config;

use crate::Failure;

/// The variable that turns a run into a completion request (clap_complete's default name).
const VAR: &str = "COMPLETE";

/// Answers a completion request and exits, when `COMPLETE` is set; returns otherwise.
pub fn complete_env() -> CompleteEnv<'static, fn() -> clap::Command> {
    CompleteEnv::with_factory(crate::Cli::command as fn() -> clap::Command).var(VAR)
}

/// The script that registers completion for `tessera` in `shell` (what `COMPLETE=<shell> tessera`
/// prints). The script runs this program as it was started: by name (`tessera`, looked up in
/// `PATH` on each TAB) or by its path made absolute.
pub fn registration(shell: clap_complete::Shell) -> Result<String, Failure> {
    let name = shell.to_string();
    let shells = Shells::builtins();
    let completer =
        shells.completer(&name).ok_or_else(|| Failure::error(format!("no completion script for {name}")))?;
    let mut program = std::path::PathBuf::from(std::env::args_os().next().unwrap_or_else(|| "tessera".into()));
    if program.components().count() > 1
        && let Ok(dir) = std::env::current_dir()
    {
        program = dir.join(program);
    }
    let mut script = Vec::new();
    completer
        .write_registration(VAR, "tessera", "tessera", &program.to_string_lossy(), &mut script)
        .map_err(|e| Failure::error(format!("cannot write the completion script: {e}")))?;
    String::from_utf8(script).map_err(|_| Failure::error("the program's path is not UTF-8"))
}

/// Candidates for a context name: those of the configuration file.
pub fn context_names() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        let Some(config) = config() else { return Vec::new() };
        config
            .contexts
            .iter()
            .map(|context| {
                let providers: Vec<&str> = context.providers.iter().map(|p| p.name.as_str()).collect();
                CompletionCandidate::new(&context.name).help(Some(providers.join(", ").into()))
            })
            .collect()
    })
}

/// Candidates for a provider name: those of the context the command line will use.
pub fn provider_names() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        let Some(config) = config() else { return Vec::new() };
        let context = context_on_line(std::env::args_os())
            .or_else(|| std::env::var("TESSERA_CONTEXT").ok().filter(|name| !name.is_empty()));
        let Ok(context) = config.context(context.as_deref()) else { return Vec::new() };
        context
            .providers
            .iter()
            .map(|entry| CompletionCandidate::new(&entry.name).help(Some(entry.type_name.clone().into())))
            .collect()
    })
}

/// The configuration, or `None` when there is none that loads (nothing to offer, nothing to say).
fn config() -> Option<Config> {
    crate::load_config(&crate::registry()).ok().map(|(_, config)| config)
}

/// The context named by `--context NAME` or `--context=NAME` among the words being completed
/// (those after the first `--` of `tessera -- <words>`); the last one wins, as when parsing.
fn context_on_line(args: impl IntoIterator<Item = OsString>) -> Option<String> {
    let words: Vec<String> =
        args.into_iter().skip_while(|arg| arg != "--").skip(1).map(|arg| arg.to_string_lossy().into_owned()).collect();
    let mut found = None;
    for (i, word) in words.iter().enumerate() {
        if word == "--" {
            break; // the command's own arguments (`exec -- CMD`) follow
        }
        let value = match word.strip_prefix("--context") {
            Some("") => words.get(i + 1).cloned(),
            Some(rest) => rest.strip_prefix('=').map(str::to_owned),
            None => None,
        };
        if let Some(value) = value.filter(|value| !value.is_empty() && !value.starts_with('-')) {
            found = Some(value);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(words: &[&str]) -> Option<String> {
        context_on_line(["tessera", "--"].iter().chain(words).map(OsString::from))
    }

    #[test]
    fn the_context_comes_from_the_line_being_completed() {
        assert_eq!(line(&["tessera", "--context", "prod", "token", "-p", ""]), Some("prod".into()));
        assert_eq!(line(&["tessera", "token", "--context=prod", "-p", "a"]), Some("prod".into()));
        assert_eq!(line(&["tessera", "--context", "a", "--context", "b", "-p", ""]), Some("b".into()));
        assert_eq!(line(&["tessera", "token", "-p", ""]), None);
        // Being completed itself, or a flag: not a context.
        assert_eq!(line(&["tessera", "--context", ""]), None);
        assert_eq!(line(&["tessera", "--context", "--provider", ""]), None);
        assert_eq!(line(&["tessera", "exec", "-p", "", "--", "cmd", "--context", "x"]), None);
    }
}
