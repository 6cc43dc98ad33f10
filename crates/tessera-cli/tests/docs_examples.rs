//! Every CLI example of docs/cli.md and docs/getting-started.md, run against the reference IdP.
//!
//! A page's first ```toml block is the configuration its examples use (with the reference IdP's
//! address put in for `http://127.0.0.1:8400`, the address `tessera idp serve --port 8400` gives a
//! reader, and the test's `HOME` for `/home/me`). Then, in page order, every fenced block that holds a `tessera` command runs as one bash
//! script in one `HOME`:
//! - a *transcript* (lines starting with `$ `): each command runs and its output lines (until the
//!   next `$ `) must each match a line it printed, where `...` or `…` stands for anything and
//!   numbers may differ; it must exit 0, or the code named by an `(exit N)` line;
//! - a `sh` block: every line runs (a trailing `# comment` is the reader's, not the shell's) and
//!   must exit 0.
//!
//! The test plays the person where a login asks for one (`TESSERA_PROMPT=always`: prompts go to
//! a pipe): it approves a device code at the IdP, signs in on the browser login page over HTTP, reads
//! an emailed code from the IdP's outbox. `curl`, `gh` and `vault` are stand-ins on `PATH` that
//! record the token they were handed (which must then be live at the IdP) instead of calling
//! anything; nothing leaves loopback. Any block this test cannot classify fails it, so a new example
//! cannot go unchecked.

// The examples run as bash scripts with Unix stand-ins on PATH.
#![cfg(unix)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;
use tessera_idp::demo;

/// The address the pages' configurations use for the reference IdP.
const DOCS_ISSUER: &str = "http://127.0.0.1:8400";
/// The longest one block may run (a device-code login polls every 5 s).
const BLOCK_TIMEOUT: Duration = Duration::from_secs(90);
/// What the `vault` stand-in prints: the static token of the `--with-token` example.
const VAULT_TOKEN: &str = "static-token-from-vault";

/// One command of a block, with the output the page shows for it.
#[derive(Debug)]
struct Example {
    /// `docs/cli.md:123`.
    at: String,
    command: String,
    expected: Vec<String>,
    expected_code: i32,
}

/// A fenced block of a page that runs.
#[derive(Debug)]
struct Block {
    at: String,
    /// The shell it runs in: `bash` (for ```sh, ```bash and transcripts), `zsh` or `fish`.
    shell: &'static str,
    examples: Vec<Example>,
}

/// What a page holds: its configuration and its runnable blocks.
struct Page {
    config: String,
    blocks: Vec<Block>,
}

fn read_page(name: &str) -> Page {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut config = None;
    let mut blocks = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let Some(lang) = line.trim_start().strip_prefix("```") else { continue };
        let lang = lang.trim().to_owned();
        let start = index + 1;
        let body: Vec<(usize, &str)> = lines.by_ref().take_while(|(_, l)| !l.trim_start().starts_with("```")).collect();
        let at = format!("docs/{name}:{start}");
        match lang.as_str() {
            "toml" if config.is_none() => config = Some(body.iter().map(|(_, l)| *l).collect::<Vec<_>>().join("\n")),
            // Not shell: configuration, code, diagrams, messages shown as text.
            "toml" | "rust" | "python" | "json" | "yaml" | "mermaid" | "text" => {}
            "sh" | "bash" | "zsh" | "fish" | "" => {
                if let Some(block) = parse_block(name, &lang, &at, &body) {
                    blocks.push(block);
                }
            }
            other => panic!("{at}: a ```{other} block: mark it as one this test knows (sh, text, ...)"),
        }
    }
    Page { config: config.unwrap_or_else(|| panic!("docs/{name} has no ```toml configuration")), blocks }
}

/// A command without the reader's `# comment` at its end (a ` #` outside quotes).
fn command_text(line: &str) -> String {
    let mut quote = None;
    let mut previous = ' ';
    for (at, c) in line.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(open), _) if c == open => quote = None,
            (None, '#') if previous == ' ' => return line[..at].trim().to_owned(),
            _ => {}
        }
        previous = c;
    }
    line.trim().to_owned()
}

/// A block's examples, or `None` for a block that runs nothing of tessera's.
fn parse_block(page: &str, lang: &str, at: &str, body: &[(usize, &str)]) -> Option<Block> {
    // Continuation lines joined, each with the line number it starts on.
    let mut lines: Vec<(usize, String)> = Vec::new();
    let mut continued = false;
    for (index, line) in body {
        if continued {
            let last = lines.last_mut().expect("a line to continue");
            last.1 = format!("{} {}", last.1.trim_end_matches('\\').trim_end(), line.trim());
        } else {
            lines.push((index + 1, (*line).to_owned()));
        }
        continued = line.trim_end().ends_with('\\');
    }
    let transcript = lines.iter().any(|(_, l)| l.starts_with("$ "));
    if !lines.iter().any(|(_, l)| l.contains("tessera ")) {
        return None;
    }
    let mut examples: Vec<Example> = Vec::new();
    for (number, line) in &lines {
        if transcript {
            if let Some(command) = line.strip_prefix("$ ") {
                examples.push(Example {
                    at: format!("docs/{page}:{number}"),
                    command: command_text(command),
                    expected: Vec::new(),
                    expected_code: 0,
                });
            } else {
                let example =
                    examples.last_mut().unwrap_or_else(|| panic!("{at}: output before the first `$ ` command"));
                if let Some(code) = line.trim().strip_prefix("(exit ").and_then(|rest| rest.strip_suffix(')')) {
                    example.expected_code = code.parse().unwrap_or_else(|_| panic!("docs/{page}:{number}: {line}"));
                } else if !line.trim().is_empty() {
                    example.expected.push(line.clone());
                }
            }
        } else {
            assert!(
                !lang.is_empty(),
                "{at}: a block with `tessera` commands but no `$ ` lines must be ```sh (or ```text if it is output)"
            );
            let command = command_text(line);
            if !command.is_empty() {
                examples.push(Example {
                    at: format!("docs/{page}:{number}"),
                    command,
                    expected: Vec::new(),
                    expected_code: 0,
                });
            }
        }
    }
    let shell = match lang {
        "zsh" => "zsh",
        "fish" => "fish",
        _ => "bash",
    };
    Some(Block { at: at.to_owned(), shell, examples })
}

/// The page's text for the test's reference IdP and `HOME`.
fn localize(text: &str, issuer: &str, home: &Path) -> String {
    text.replace(DOCS_ISSUER, issuer).replace("/home/me", &home.display().to_string())
}

/// An output line as the page shows it, without the page's notes (`(stderr)`, `(QR code)`),
/// whitespace collapsed and numbers made alike.
fn normalize(line: &str) -> String {
    let mut line = line.trim_end();
    if let Some(at) = line.rfind("  (")
        && line.ends_with(')')
    {
        line = &line[..at];
    }
    let mut out = String::new();
    let mut in_digits = false;
    for c in line.split_whitespace().collect::<Vec<_>>().join(" ").chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('0');
            }
            in_digits = true;
        } else {
            out.push(c);
            in_digits = false;
        }
    }
    user_codes_alike(&out.replace('…', "..."))
}

/// A device login's user code (`WDJB-MJHT`: four capitals, a dash, four capitals) is new each run:
/// any one stands for any other.
fn user_codes_alike(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::new();
    let mut at = 0;
    while at < chars.len() {
        let code = chars.len() - at >= 9
            && chars[at..at + 4].iter().all(char::is_ascii_uppercase)
            && chars[at + 4] == '-'
            && chars[at + 5..at + 9].iter().all(char::is_ascii_uppercase)
            && (at == 0 || !chars[at - 1].is_ascii_alphanumeric())
            && chars.get(at + 9).is_none_or(|c| !c.is_ascii_alphanumeric());
        if code {
            out.push_str("XXXX-XXXX");
            at += 9;
        } else {
            out.push(chars[at]);
            at += 1;
        }
    }
    out
}

/// Glob match where `...` in `pattern` stands for anything.
fn matches(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split("...").collect();
    let (first, rest) = parts.split_first().expect("split gives one part");
    let Some(mut text) = text.strip_prefix(first) else { return false };
    for (index, part) in rest.iter().enumerate() {
        let last = index == rest.len() - 1;
        if last {
            return part.is_empty() || text.ends_with(part);
        }
        match text.find(part) {
            Some(at) => text = &text[at + part.len()..],
            None => return false,
        }
    }
    text.is_empty()
}

/// Lines only a terminal shows (spinner frames, QR blocks): pipes get the plain lines.
fn terminal_only(line: &str) -> bool {
    line.chars().any(|c| ('\u{2800}'..='\u{28FF}').contains(&c) || ('\u{2580}'..='\u{259F}').contains(&c))
}

/// A `bin/` of stand-ins and a `tessera` that is the binary under test.
fn stand_ins(dir: &Path, log: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(BIN, bin.join("tessera")).unwrap();
    let log = log.display();
    let root = dir.join("root");
    let root = root.display();
    let scripts = [
        // Records the bearer token of `-H "Authorization: Bearer T"` (also what
        // `-H "$(tessera token --format header)"` becomes) and calls nothing.
        (
            "curl",
            format!(
                "#!/bin/sh\nwhile [ $# -gt 0 ]; do\n  if [ \"$1\" = -H ]; then\n    case \"$2\" in\n      \
                 Authorization:\\ Bearer\\ *) printf 'curl %s\\n' \"${{2#Authorization: Bearer }}\" >>'{log}';;\n    \
                 esac\n    shift\n  fi\n  shift\ndone\necho '{{}}'\n"
            ),
        ),
        ("gh", format!("#!/bin/sh\nprintf 'gh %s\\n' \"$GITHUB_TOKEN\" >>'{log}'\necho '{{\"login\":\"alice\"}}'\n")),
        ("vault", format!("#!/bin/sh\necho {VAULT_TOKEN}\n")),
        // Runs the command, with system paths moved under the test's own directory.
        (
            "sudo",
            format!(
                "#!/bin/bash\nargs=()\nfor a in \"$@\"; do case \"$a\" in /usr/*) args+=(\"{root}$a\");; *) args+=(\"$a\");; esac; \
                 done\nexec \"${{args[@]}}\"\n"
            ),
        ),
    ];
    for (name, script) in scripts {
        let path = bin.join(name);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    bin
}

fn marker(index: usize) -> String {
    format!("@@@docs-example {index}@@@")
}

/// What command `index` of a block printed on one stream (the script brackets each with markers).
fn section(text: &str, index: usize) -> String {
    let start = text.find(&marker(index)).map_or(text.len(), |at| at + marker(index).len());
    let end = text[start..].find(&marker(index + 1)).map_or(text.len(), |at| start + at);
    let section = &text[start..end];
    section.split("@@@docs-exit").next().unwrap_or_default().trim_matches('\n').to_owned()
}

fn exit_code(stdout: &str, index: usize) -> Option<i32> {
    let tag = format!("@@@docs-exit {index} ");
    let rest = &stdout[stdout.find(&tag)? + tag.len()..];
    rest.split("@@@").next()?.trim().parse().ok()
}

/// The bash script of a block: each command between markers, its exit code recorded, never
/// stopping at a failure (the test reports it against the page's line).
fn script(block: &Block, issuer: &str, home: &Path) -> String {
    let mut script = String::from(if block.shell == "bash" { "set -uo pipefail\n" } else { "" });
    let status = if block.shell == "fish" { "$status" } else { "\"$?\"" };
    for (index, example) in block.examples.iter().enumerate() {
        let m = marker(index);
        script.push_str(&format!("printf '\\n{m}\\n'; printf '\\n{m}\\n' >&2\n"));
        script.push_str(&localize(&example.command, issuer, home));
        script.push_str(&format!("\nprintf '\\n@@@docs-exit {index} %s@@@\\n' {status}\n"));
    }
    let last = marker(block.examples.len());
    script.push_str(&format!("printf '\\n{last}\\n'; printf '\\n{last}\\n' >&2\n"));
    script
}

/// The person at the keyboard: answers what a login or `config init` asks on stderr.
struct Person<'a> {
    idp: &'a ReferenceIdp,
    /// How much of stderr has been acted on.
    seen: usize,
    /// Email codes answered so far in this block (the page shows a wrong one first).
    email_answers: usize,
    /// What the page shows typed at prompts: (the prompt, the answer), in page order.
    typed: std::collections::VecDeque<(String, String)>,
}

impl Person<'_> {
    /// Acts on the new part of `stderr`; may write to the script's stdin.
    fn act(&mut self, stderr: &str, stdin: &mut impl std::io::Write) {
        let new = &stderr[self.seen..];
        // A prompt waiting for an answer ends stderr without a newline.
        let waiting = new.rsplit('\n').next().unwrap_or_default();
        if let Some(at) = new.find("and enter the code:") {
            let Some(code) = new[at..].split_whitespace().nth(4) else { return };
            let body = serde_json::json!({ "user_code": code, "username": demo::ALICE_USERNAME });
            let answer = self.idp.control("/_test/device/approve", body);
            assert!(answer.get("error").is_none(), "approving {code}: {answer}");
            self.seen += at + 1;
        } else if let Some(at) = new.find("open this URL in a browser:") {
            let Some(url) = new[at..].split_whitespace().find(|w| w.starts_with("http")) else { return };
            if !new[at..].contains("Waiting for the browser") {
                return;
            }
            self.sign_in(url);
            self.seen += at + 1;
        } else if waiting.starts_with("Enter the email code sent to") {
            let codes = self.idp.outbox_codes(demo::CAROL_EMAIL);
            let Some(code) = codes.last() else { return };
            // First a wrong code, as the page shows, then the real one.
            let answer = if self.email_answers == 0 {
                let last = code.chars().last().and_then(|c| c.to_digit(10)).expect("a numeric code");
                format!("{}{}", &code[..code.len() - 1], (last + 1) % 10)
            } else {
                code.clone()
            };
            self.email_answers += 1;
            self.type_line(stdin, &answer, stderr.len());
        } else if let Some((prompt, answer)) = self.typed.front().cloned()
            && !waiting.is_empty()
            && normalize(waiting).trim_end() == normalize(&prompt).trim_end()
        {
            self.typed.pop_front();
            self.type_line(stdin, &answer, stderr.len());
        }
    }

    fn type_line(&mut self, stdin: &mut impl std::io::Write, line: &str, seen: usize) {
        writeln!(stdin, "{line}").and_then(|()| stdin.flush()).expect("an answer on stdin");
        self.seen = seen;
    }

    /// The browser: signs in as alice and follows the redirect to the loopback listener.
    fn sign_in(&self, url: &str) {
        let callback = sign_in_as_alice(self.idp, url);
        block_on(async { http_client().get(&callback).send().await }).unwrap().error_for_status().unwrap();
    }
}

/// What the page shows typed at a prompt: the part of an output line after a `?: ` or `]: `
/// prompt ending, for the prompts of `config init --interactive`.
fn typed_answers(block: &Block) -> std::collections::VecDeque<(String, String)> {
    let mut typed = std::collections::VecDeque::new();
    for line in block.examples.iter().flat_map(|e| &e.expected) {
        if line.starts_with("Enter the email code") {
            continue; // the person reads the real code from the outbox
        }
        for ending in ["]: ", "): ", "Name: ", "id: "] {
            if let Some(at) = line.find(ending) {
                let split = at + ending.len();
                typed.push_back((line[..split].to_owned(), line[split..].to_owned()));
                break;
            }
        }
    }
    typed
}

/// Where a block runs: its environment, and whether it needs a session keyring.
struct Runner<'a> {
    idp: &'a ReferenceIdp,
    env: Vec<(String, String)>,
    home: PathBuf,
}

impl Runner<'_> {
    /// Runs one block's script with a person answering; returns (stdout, stderr).
    fn run(&self, block: &Block, home: &Path) -> (String, String) {
        let script = script(block, self.idp.issuer(), home);
        // `tessera secret` needs a session keyring (Debian's keyutils).
        let mut command = if block.examples.iter().any(|e| e.command.contains("tessera secret")) {
            let mut command = Command::new("keyctl");
            command.args(["session", &format!("tessera-docs-{}", std::process::id()), block.shell]);
            command
        } else {
            Command::new(block.shell)
        };
        let options: &[&str] = match block.shell {
            "zsh" => &["-f"],
            "fish" => &["--no-config"],
            _ => &["--norc", "--noprofile"],
        };
        command.args(options).args(["-c", &script]).env_clear();
        // In HOME, as a reader would be: files the examples write (`tessera man > tessera.1`) land there.
        command.envs(self.env.iter().map(|(k, v)| (k, v))).env("HOME", home).current_dir(home);
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("bash runs");
        let mut stdin = child.stdin.take().expect("piped stdin");
        let stdout = pump(child.stdout.take().expect("piped stdout"));
        let stderr = pump(child.stderr.take().expect("piped stderr"));
        let mut person = Person { idp: self.idp, seen: 0, email_answers: 0, typed: typed_answers(block) };
        let deadline = Instant::now() + BLOCK_TIMEOUT;
        loop {
            let text = stderr.so_far();
            person.act(&text, &mut stdin);
            if child.try_wait().expect("try_wait").is_some() {
                break;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{}: the block did not finish in {BLOCK_TIMEOUT:?}: {}", block.at, stderr.so_far());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(stdin);
        (stdout.all(), stderr.all())
    }
}

/// Checks each command of `block` against what it printed; returns the failures.
fn check_block(block: &Block, stdout: &str, stderr: &str, issuer: &str, home: &Path) -> Vec<String> {
    let mut failures = Vec::new();
    for (index, example) in block.examples.iter().enumerate() {
        let out = section(stdout, index);
        let err = section(stderr, index);
        let code = exit_code(stdout, index);
        let shown = format!("stdout:\n{out}\nstderr:\n{err}");
        if code != Some(example.expected_code) {
            failures.push(format!(
                "{}: `{}` exited {code:?}, the page says {}\n{shown}",
                example.at, example.command, example.expected_code
            ));
            continue;
        }
        // On a terminal a prompt's line ends with the typed answer; through a pipe, stderr goes on
        // after the prompt with what came next: each part after a `: ` is a line of its own too.
        let printed: Vec<String> = out
            .lines()
            .chain(err.lines())
            .flat_map(|line| {
                let parts = line.match_indices(": ").map(|(at, _)| &line[at + 2..]);
                std::iter::once(line).chain(parts).map(normalize).collect::<Vec<_>>()
            })
            .collect();
        for line in example.expected.iter().filter(|line| !terminal_only(line)) {
            let pattern = normalize(&localize(line, issuer, home));
            let found = printed.iter().any(|actual| matches(&pattern, actual) || is_prompt_of(actual, &pattern));
            if !found {
                failures.push(format!("{}: `{}` did not print {line:?}\n{shown}", example.at, example.command));
            }
        }
    }
    failures
}

/// True when `actual` holds the prompt part of `pattern` (a prompt, then what the page shows typed),
/// possibly followed by what came next on the same stderr line.
fn is_prompt_of(actual: &str, pattern: &str) -> bool {
    ["]: ", "): ", "Name: ", "id: ", "dev/mail: ", "(attempt 0): "].iter().any(|ending| {
        pattern.find(ending).is_some_and(|at| {
            let prompt = &pattern[..at + ending.len()];
            actual.starts_with(prompt.trim_end()) || actual.contains(prompt)
        })
    })
}

/// Every token the stand-ins were handed is live at the IdP (or is the static one); returns how many.
fn check_handed_tokens(log: &Path, idp: &ReferenceIdp) -> usize {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    for line in text.lines() {
        let (who, token) = line.split_once(' ').unwrap_or_else(|| panic!("stand-in log: {line}"));
        assert!(!token.is_empty(), "{who} was handed no token");
        assert!(token == VAULT_TOKEN || idp.active(token), "{who} was handed a token the IdP does not accept");
    }
    text.lines().count()
}

/// Runs every example of `page_name` with its configuration at `config_at` (relative to `HOME`);
/// returns (commands run, tokens handed to stand-ins).
fn run_page(page_name: &str, config_at: &str, extra_env: &[(&str, &str)]) -> (usize, usize) {
    let idp = ReferenceIdp::start(300);
    let page = read_page(page_name);
    let dir = tempfile::Builder::new().prefix("tessera-docs-").tempdir().unwrap();
    let home = dir.path().join("home");
    let config_path = home.join(config_at);
    std::fs::create_dir_all(config_path.parent().unwrap()).unwrap();
    std::fs::write(&config_path, localize(&page.config, idp.issuer(), &home)).unwrap();
    let log = dir.path().join("handed-tokens.log");
    let bin = stand_ins(dir.path(), &log);

    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), format!("{}:/usr/bin:/bin", bin.display())),
        // The test is the person, answering through pipes.
        ("TESSERA_PROMPT".into(), "always".into()),
        ("TESSERA_NO_BROWSER".into(), "1".into()),
        ("NO_PROXY".into(), "127.0.0.1,localhost".into()),
        ("LANG".into(), "C.UTF-8".into()),
    ];
    env.extend(extra_env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let runner = Runner { idp: &idp, env, home: home.clone() };
    let mut failures = Vec::new();
    let mut commands = 0;
    for (index, block) in page.blocks.iter().enumerate() {
        // `config init` is what a new user runs: in a HOME with no configuration yet.
        let fresh = block.examples.iter().any(|e| e.command.contains("config init"));
        let block_home = if fresh { dir.path().join(format!("new-user-{index}")) } else { runner.home.clone() };
        std::fs::create_dir_all(&block_home).unwrap();
        let (stdout, stderr) = runner.run(block, &block_home);
        failures.extend(check_block(block, &stdout, &stderr, idp.issuer(), &block_home));
        commands += block.examples.len();
    }
    assert!(
        failures.is_empty(),
        "{} example(s) of docs/{page_name} fail:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    (commands, check_handed_tokens(&log, &idp))
}

#[test]
fn every_example_of_the_cli_reference_runs() {
    let (commands, handed) = run_page(
        "cli.md",
        ".config/tessera/config.toml",
        &[
            ("CLIENT_SECRET", demo::CONFIDENTIAL_CLIENT_SECRET),
            ("ALICE_PASSWORD", demo::ALICE_PASSWORD),
            ("DEPLOY_SECRET", "deploy-bot-secret"),
        ],
    );
    assert!(commands >= 30, "only {commands} commands found in docs/cli.md: is the parser still right?");
    assert!(handed >= 3, "the curl and exec examples hand a token on ({handed})");
}

#[test]
fn every_example_of_getting_started_runs() {
    let (commands, handed) = run_page("getting-started.md", ".tessera/config.toml", &[]);
    assert!(commands >= 3, "only {commands} commands found in docs/getting-started.md");
    assert!(handed >= 1, "the curl example hands a token on ({handed})");
}

#[test]
fn the_output_matcher_takes_wildcards_and_numbers_but_not_other_text() {
    let pattern = normalize("Logged in to peer (dev); expires in 5m00s");
    assert!(matches(&pattern, &normalize("Logged in to peer (dev); expires in 4m59s")));
    assert!(!matches(&pattern, &normalize("Logged in to robot (dev); expires in 4m59s")));
    let pattern = normalize("key_01H...  ci    qk_3f9…a1    active  in 29d23h   -          alice@example.com");
    assert!(matches(&pattern, &normalize("key_01HZX ci qk_3f9abc…a1 active in 29d23h - alice@example.com")));
    assert!(!matches(&pattern, &normalize("key_01HZX ci qk_3f9abc…a1 revoked in 29d23h - alice@example.com")));
    assert_eq!(normalize("qk_3f9...      (stdout: the secret, shown once)"), "qk_0f0...");
    assert!(matches("...", "anything at all"));
    assert_eq!(normalize("enter WDJB-MJHT at x"), normalize("enter PCFZ-ZCFC at x"));
    assert_ne!(normalize("enter WDJB-MJHT at x"), normalize("enter WDJB-MJH at x"));
    assert!(terminal_only("⠹ Waiting for approval") && !terminal_only("Waiting for approval"));
    assert_eq!(
        command_text("tessera config use-context prod   # rewrites the line"),
        "tessera config use-context prod"
    );
    assert_eq!(command_text("echo 'a # b'"), "echo 'a # b'");
}
