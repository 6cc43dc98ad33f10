//! Shell completion of provider and context names, driven through the real scripts: bash calls
//! the function the script registers with `complete -F`, fish runs `complete --do-complete`, and
//! zsh runs the registered completer with `_describe` standing in for the completion system's
//! output. Each TAB asks the binary (`COMPLETE=<shell> tessera -- <words>`), which reads the
//! configuration: the names are those of the file at that moment.

mod support;

use std::process::Command;

use support::*;

/// Two contexts; `dev` is current. No server is needed: completing reads the file only.
const CONFIG: &str = "current_context = \"dev\"\n\n\
    [[contexts]]\nname = \"dev\"\n\n\
    [[contexts.auth_providers]]\nname = \"peer\"\ntype = \"password\"\nissuer = \"https://idp.example\"\n\
    client_id = \"app\"\nusername = \"alice\"\npassword = \"env:UNSET_PASSWORD\"\n\n\
    [[contexts.auth_providers]]\nname = \"given\"\ntype = \"static\"\n\n\
    [[contexts.auth_providers]]\nname = \"robot\"\ntype = \"client_credentials\"\nissuer = \"https://idp.example\"\n\
    client_id = \"robot\"\nclient_secret = \"env:UNSET_SECRET\"\n\n\
    [[contexts]]\nname = \"prod\"\n\n\
    [[contexts.auth_providers]]\nname = \"prod-api\"\ntype = \"static\"\n\n\
    [[contexts.auth_providers]]\nname = \"prod-ops\"\ntype = \"static\"\n\n\
    [[contexts]]\nname = \"staging\"\n";

fn sorted(mut values: Vec<String>) -> Vec<String> {
    values.sort();
    values
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}

/// What bash offers after `tessera <words>` (the last word is the one being completed, maybe
/// empty): the script of `tessera completions bash` is sourced, and the function it registered
/// for `tessera` is called as bash calls it on TAB.
const BASH_DRIVER: &str = r#"
source <("$0" completions bash) || exit 3
spec=$(complete -p tessera) || exit 4
fn=${spec##*-F }; fn=${fn%% *}
COMP_WORDS=(tessera "$@"); COMP_CWORD=$#
COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}; COMP_TYPE=9
"$fn" tessera "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"#;

fn shell_candidates(home: &Home, wrapper: &[&str], words: &[&str]) -> Vec<String> {
    let run = home.run_wrapped(wrapper, words, None);
    let out = run.success();
    assert!(!run.stderr.contains("panicked"), "{run:#?}");
    sorted(out.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect())
}

/// The values offered, without the flags clap_complete offers next to a positional argument.
fn values(candidates: Vec<String>) -> Vec<String> {
    candidates.into_iter().filter(|c| !c.starts_with('-')).collect()
}

fn bash(home: &Home, words: &[&str]) -> Vec<String> {
    shell_candidates(home, &["bash", "--norc", "--noprofile", "-c", BASH_DRIVER], words)
}

#[test]
fn bash_completes_provider_names_of_the_context_in_use() {
    let home = Home::new(CONFIG);
    assert_eq!(bash(&home, &["token", "-p", ""]), ["given", "peer", "robot"]);
    assert_eq!(bash(&home, &["token", "--provider", "p"]), ["peer"]);
    assert_eq!(bash(&home, &["logout", "-p", ""]), ["given", "peer", "robot"]);
    assert_eq!(bash(&home, &["exec", "-p", "r"]), ["robot"]);
    assert_eq!(bash(&home, &["keys", "-p", "g"]), ["given"]);
    // `--context` earlier on the line chooses the context, in either spelling, before or after the command.
    assert_eq!(bash(&home, &["--context", "prod", "token", "-p", ""]), ["prod-api", "prod-ops"]);
    assert_eq!(bash(&home, &["token", "--context=prod", "-p", "prod-o"]), ["prod-ops"]);
    // TESSERA_CONTEXT as well, as when the command runs.
    let home = Home::new(CONFIG).with_env("TESSERA_CONTEXT", "prod");
    assert_eq!(bash(&home, &["login", "-p", ""]), ["prod-api", "prod-ops"]);
    // A context without providers, or an unknown one: nothing to offer.
    let home = Home::new(CONFIG);
    assert!(bash(&home, &["--context", "staging", "token", "-p", ""]).is_empty());
    assert!(bash(&home, &["--context", "nope", "token", "-p", ""]).is_empty());
}

#[test]
fn bash_completes_context_names_and_still_commands() {
    let home = Home::new(CONFIG);
    assert_eq!(bash(&home, &["--context", ""]), ["dev", "prod", "staging"]);
    assert_eq!(bash(&home, &["status", "--context", "p"]), ["prod"]);
    assert_eq!(values(bash(&home, &["config", "use-context", ""])), ["dev", "prod", "staging"]);
    assert_eq!(bash(&home, &["config", "use-context", "st"]), ["staging"]);
    // `config use-provider` takes a provider of the context in effect.
    assert_eq!(values(bash(&home, &["config", "use-provider", ""])), ["given", "peer", "robot"]);
    assert_eq!(bash(&home, &["--context", "prod", "config", "use-provider", "prod-a"]), ["prod-api"]);
    assert_eq!(bash(&home, &["lo"]), ["login", "logout"]);
    assert!(bash(&home, &["token", "--f"]).contains(&"--format".to_owned()));
}

#[test]
fn without_a_configuration_nothing_is_offered_and_nothing_is_said() {
    let home = Home::new(CONFIG);
    std::fs::remove_file(home.config_path()).unwrap();
    let run = home.run_wrapped(&["bash", "--norc", "--noprofile", "-c", BASH_DRIVER], &["token", "-p", ""], None);
    assert_eq!(run.success().trim(), "", "{run:#?}");
    assert_eq!(run.stderr, "", "{run:#?}");
}

#[test]
fn every_shell_gets_a_script_that_asks_the_binary() {
    let home = Home::new(CONFIG);
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = home.run(&["completions", shell]).success().to_owned();
        assert!(script.contains("COMPLETE") && script.contains(BIN), "{shell}: {script}");
    }
    // Started by name, the script finds `tessera` in PATH on each TAB.
    let dir = std::path::Path::new(BIN).parent().unwrap();
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
    let run = home.with_env("PATH", &path).run_wrapped(&["sh", "-c", "tessera completions bash"], &[], None);
    let script = run.success();
    assert!(
        script.contains("\"tessera\" -- \"${words[@]}\"") || script.contains("tessera -- \"${words[@]}\""),
        "{script}"
    );
    assert!(!script.contains(BIN), "{script}");
}

fn installed(shell: &str) -> bool {
    // scripts/test.sh installs zsh and fish (Debian packages); a bare machine may lack them.
    Command::new(shell).arg("--version").output().is_ok_and(|out| out.status.success())
}

/// What zsh offers: the completer registered by the script runs with `words` and `CURRENT` as
/// the completion system sets them; `_describe` prints the `value:description` entries it gets.
const ZSH_DRIVER: &str = r#"
autoload -U compinit && compinit -u -D || exit 3
eval "$("$0" completions zsh)" || exit 4
_describe() { local name=${@[-1]}; print -l -- ${(P)name} }
words=(tessera "$@"); CURRENT=${#words}
_clap_dynamic_completer_tessera
"#;

#[test]
fn zsh_completes_provider_and_context_names_with_descriptions() {
    assert!(installed("zsh"), "zsh is not installed (scripts/test.sh installs it: apt-get install zsh)");
    let home = Home::new(CONFIG);
    let zsh = |words: &[&str]| shell_candidates(&home, &["zsh", "-f", "-c", ZSH_DRIVER], words);
    assert_eq!(zsh(&["token", "-p", ""]), ["given:static", "peer:password", "robot:client_credentials"]);
    assert_eq!(zsh(&["--context", "prod", "token", "-p", "prod-a"]), ["prod-api:static"]);
    let contexts: Vec<String> =
        values(zsh(&["config", "use-context", ""])).iter().map(|c| c.split(':').next().unwrap().to_owned()).collect();
    assert_eq!(contexts, ["dev", "prod", "staging"]);
}

#[test]
fn fish_completes_provider_and_context_names() {
    assert!(installed("fish"), "fish is not installed (scripts/test.sh installs it: apt-get install fish)");
    let home = Home::new(CONFIG);
    let driver = r#"source ("$argv[1]" completions fish | psub); or exit 3; complete --do-complete "tessera $argv[2]""#;
    let fish = |line: &str| {
        let run = home.run_wrapped(&["fish", "--no-config", "-c", driver], &[line], None);
        let out = run.success().to_owned();
        let names: Vec<String> = out.lines().map(|l| l.split('\t').next().unwrap().to_owned()).collect();
        sorted(names)
    };
    // `fish -c SCRIPT BIN LINE`: argv is [BIN, LINE].
    assert_eq!(fish("token -p "), ["given", "peer", "robot"]);
    assert_eq!(fish("--context prod login -p "), ["prod-api", "prod-ops"]);
    assert_eq!(values(fish("config use-context ")), ["dev", "prod", "staging"]);
    assert_eq!(fish("--context d"), strings(&["dev"]));
}
