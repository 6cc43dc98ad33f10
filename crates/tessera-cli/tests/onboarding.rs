//! A new user's first minutes (issue 16): `tessera` alone, the error without a configuration,
//! `tessera config init` (the starter file and the interactive walk-through), the examples in the
//! help pages, and the man pages.
//!
//! Every run has its own `TESSERA_HOME`; the reference IdP runs as `tessera idp serve`.

mod support;

#[cfg(unix)]
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

#[cfg(unix)]
use serde_json::Value;
use support::*;

/// A home without a configuration file.
fn empty_home() -> Home {
    let home = Home::new("");
    std::fs::remove_file(home.config_path()).expect("remove config.toml");
    home
}

#[track_caller]
fn run_command(mut command: Command) -> Run {
    let child = command.spawn().unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
    let output = child.wait_with_output().expect("wait");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[test]
fn tessera_alone_prints_the_help_on_stdout_and_exits_0() {
    let home = empty_home();
    let run = home.run(&[]);
    let help = run.success();
    assert!(help.contains("Usage: tessera"), "{run:#?}");
    assert!(help.contains("Examples:\n  tessera config init"), "{run:#?}");
    assert_eq!(run.stderr, "", "nothing on stderr");
    // An unknown command is still a usage error (exit 2), on stderr.
    let wrong = home.run(&["no-such-command"]);
    assert!(wrong.failure(2).contains("unrecognized subcommand"), "{wrong:#?}");
    assert_eq!(wrong.stdout, "");
}

#[cfg(unix)] // checks file modes
#[test]
fn without_a_configuration_the_error_names_the_path_looked_at_and_config_init() {
    let home = empty_home();
    let expected = home.config_path();
    let run = home.run(&["status"]);
    let message = run.failure(1);
    assert!(message.contains(&format!("no configuration file at {}", expected.display())), "{run:#?}");
    assert!(message.contains("(in TESSERA_HOME)") && message.contains("run `tessera config init`"), "{run:#?}");
    assert!(!message.contains("docs/"), "no path inside the source repository: {message}");

    // TESSERA_CONFIG names the file itself.
    let named = home.path().join("elsewhere.toml");
    let mut command = home.command(&["token"]);
    command.env("TESSERA_CONFIG", &named);
    let run = run_command(command);
    let message = run.failure(1);
    assert!(
        message.contains(&format!("no configuration file at {} (named by TESSERA_CONFIG)", named.display())),
        "{run:#?}"
    );

    // Neither: the platform's config directory, under HOME.
    let user = tempfile::tempdir().unwrap();
    let mut command = home.command(&["config", "view"]);
    command.env_remove("TESSERA_HOME").env_remove("XDG_CONFIG_HOME").env("HOME", user.path());
    let run = run_command(command);
    let message = run.failure(1);
    let default = user.path().join(".config/tessera/config.toml");
    assert!(
        message.contains(&format!("no configuration file at {} (the default location", default.display()))
            && message.contains("tessera config init"),
        "{run:#?}"
    );

    // `config init` there writes that very file, in directories it makes 0700.
    let mut command = home.command(&["config", "init"]);
    command.env_remove("TESSERA_HOME").env_remove("XDG_CONFIG_HOME").env("HOME", user.path());
    let run = run_command(command);
    assert_eq!(run.success(), "", "{run:#?}");
    assert_eq!(
        (mode(&default), mode(default.parent().unwrap()), mode(&user.path().join(".config"))),
        (0o600, 0o700, 0o700)
    );
}

/// `text` with every example provider of the starter file uncommented (the `# [[contexts...]]`
/// block and the `# key = value` lines under it).
#[cfg(unix)]
fn uncomment_examples(text: &str) -> (String, usize) {
    let mut blocks = 0;
    let mut inside = false;
    let mut out = String::new();
    for line in text.lines() {
        if line == "# [[contexts.auth_providers]]" {
            inside = true;
            blocks += 1;
        } else if inside && !(line.starts_with("# ") && line.contains(" = ")) {
            inside = false;
        }
        match line.strip_prefix("# ") {
            Some(uncommented) if inside => out.push_str(uncommented),
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    (out, blocks)
}

#[cfg(unix)] // checks file modes
#[test]
fn config_init_writes_a_private_commented_starter_that_loads_and_whose_examples_work() {
    let idp = ReferenceIdp::start(300);
    let base = empty_home().with_env("TESSERA_DEMO_PASSWORD", "alice-password");
    // TESSERA_HOME in directories that do not exist yet.
    let nested = base.path().join("a/b");
    let home = |args: &[&str]| {
        let mut command = base.command(args);
        command.env("TESSERA_HOME", &nested);
        run_command(command)
    };
    let file = nested.join("config.toml");

    let run = home(&["config", "init"]);
    assert_eq!(run.success(), "", "messages on stderr only");
    assert!(
        run.stderr.contains(&format!("Wrote {}", file.display())) && run.stderr.contains("tessera login"),
        "{run:#?}"
    );
    assert_eq!((mode(&file), mode(&nested), mode(&base.path().join("a"))), (0o600, 0o700, 0o700));
    let starter = std::fs::read_to_string(&file).unwrap();
    assert!(starter.starts_with("# tessera configuration"), "commented: {starter}");

    // It loads: every command that reads the configuration works on it.
    let view = home(&["config", "view"]);
    assert!(view.success().contains("name = \"default\""), "{view:#?}");
    assert_eq!(
        serde_json::from_str::<Value>(home(&["providers", "list", "--json"]).success()).unwrap(),
        Value::Array(vec![])
    );
    home(&["status"]).success();

    // Never over an existing file without --force.
    std::fs::write(&file, "# mine\n").unwrap();
    let refused = home(&["config", "init"]);
    let message = refused.failure(1);
    assert!(message.contains("already exists") && message.contains("--force"), "{refused:#?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "# mine\n", "unchanged");
    home(&["config", "init", "--force"]).success();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), starter);
    assert_eq!(mode(&file), 0o600);

    // Every commented example is a valid provider; the first one logs in to the reference IdP.
    let (uncommented, blocks) = uncomment_examples(&starter);
    assert_eq!(blocks, 4, "{uncommented}");
    let uncommented = uncommented.replace("http://127.0.0.1:8400", idp.issuer());
    std::fs::write(&file, &uncommented).unwrap();
    let rows: Value = serde_json::from_str(home(&["providers", "list", "--json"]).success()).unwrap();
    let names: Vec<(&str, &str)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|row| (row["name"].as_str().unwrap(), row["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [("demo", "password"), ("web", "browser"), ("laptop", "device_code"), ("robot", "client_credentials")]
    );
    home(&["login", "-p", "demo"]).success();
    let token = home(&["token", "-p", "demo"]);
    assert_eq!(idp.whoami(token.success().trim()).0, 200, "{token:#?}");
}

#[cfg(unix)] // checks file modes
#[test]
fn config_init_interactive_asks_for_one_provider_and_never_prompts_without_a_person() {
    let idp = ReferenceIdp::start(300);
    let home = empty_home().with_env("PEER_PASSWORD", "alice-password");

    // No terminal, no --prompt always: nothing asked, nothing written, a usage error.
    let run = home.run(&["config", "init", "--interactive"]);
    assert!(run.failure(2).contains("--interactive needs a terminal"), "{run:#?}");
    assert!(!run.stderr.contains("Provider type"), "{run:#?}");
    assert!(!home.config_path().exists());

    let mut session = Interactive::start(&home, &["--prompt", "always", "config", "init", "--interactive"]);
    session.wait_for("Provider type (browser, device_code, password, client_credentials) [browser]: ", 1);
    session.answer("password");
    session.wait_for("Name [password]: ", 1);
    session.answer("peer");
    session.wait_for("Issuer URL (OpenID Connect discovery): ", 1);
    session.answer("not a url");
    session.wait_for("That is not an http(s) URL.", 1);
    session.wait_for("Issuer URL (OpenID Connect discovery): ", 2);
    session.answer(idp.issuer());
    session.wait_for("Client id: ", 1);
    session.answer("public-client");
    session.wait_for("Username: ", 1);
    session.answer("alice");
    session.wait_for("Where the password is [env:PEER_PASSWORD]: ", 1);
    // A literal secret is refused, and not repeated.
    session.answer("alice-password");
    let stderr = session.wait_for("Where the password is [env:PEER_PASSWORD]: ", 2);
    assert!(stderr.contains("never the secret itself") && !stderr.contains("alice-password"), "{stderr}");
    session.answer("");
    let run = session.finish();
    assert_eq!(run.success(), "", "{run:#?}");
    assert_eq!(mode(&home.config_path()), 0o600);
    let text = std::fs::read_to_string(home.config_path()).unwrap();
    // (The starter's comment names the demo password; the typed one is nowhere as a value.)
    assert!(text.contains("password = \"env:PEER_PASSWORD\"") && !text.contains("\"alice-password\""), "{text}");

    // The file it wrote logs in.
    home.run(&["login"]).success();
    let token = home.run(&["token"]);
    assert_eq!(idp.whoami(token.success().trim()).0, 200, "{token:#?}");

    // The suggested name (Enter) is taken as it is, '-' included.
    let defaults = empty_home();
    let mut session = Interactive::start(&defaults, &["--prompt", "always", "config", "init", "--interactive"]);
    session.wait_for("Provider type", 1);
    session.answer("device_code");
    session.wait_for("Name [device-code]: ", 1);
    session.answer("");
    session.wait_for("Issuer URL (OpenID Connect discovery): ", 1);
    session.answer(idp.issuer());
    session.wait_for("Client id: ", 1);
    session.answer("tessera-cli");
    let run = session.finish();
    assert_eq!(run.success(), "", "{run:#?}");
    let text = std::fs::read_to_string(defaults.config_path()).unwrap();
    assert!(text.contains("name = \"device-code\""), "{text}");

    // End of input before the last answer: nothing written.
    let again = empty_home();
    let mut session = Interactive::start(&again, &["--prompt", "always", "config", "init", "--interactive"]);
    session.wait_for("Provider type", 1);
    session.answer("browser");
    let run = session.finish();
    assert!(run.failure(1).contains("nothing written"), "{run:#?}");
    assert!(!again.config_path().exists());
}

/// The `tessera ...` lines of the "Examples:" section of a help page, as argument lists.
fn examples(help: &str) -> Vec<Vec<String>> {
    let section = help.split("Examples:\n").nth(1).unwrap_or_else(|| panic!("no Examples section: {help}"));
    section
        .lines()
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.trim_start().strip_prefix("tessera "))
        .map(|command| command.split(" #").next().unwrap().split_whitespace().map(str::to_owned).collect())
        .collect()
}

#[test]
fn help_pages_have_examples_that_run() {
    let idp = ReferenceIdp::start(300);
    // peer: alice with the password grant (the default provider); ci: a static token; api: alice
    // with DPoP (the reference IdP ignores the proofs and answers Bearer tokens).
    let home = Home::new(&format!(
        "current_context = \"dev\"\n\n[[contexts]]\nname = \"dev\"\ncurrent_provider = \"peer\"\n\n\
         [[contexts.auth_providers]]\nname = \"peer\"\ntype = \"password\"\nissuer = \"{}\"\n\
         client_id = \"public-client\"\nusername = \"alice\"\npassword = \"env:PEER_PASSWORD\"\n\n\
         [[contexts.auth_providers]]\nname = \"ci\"\ntype = \"static\"\n\n\
         [[contexts.auth_providers]]\nname = \"api\"\ntype = \"password\"\nissuer = \"{}\"\n\
         client_id = \"public-client\"\nusername = \"alice\"\npassword = \"env:PEER_PASSWORD\"\ndpop = true\n",
        idp.issuer(),
        idp.issuer()
    ))
    .with_env("PEER_PASSWORD", "alice-password");
    let mut total = 0;
    for page in [&[][..], &["login"], &["token"], &["exec"], &["status"], &["keys"], &["logout"], &["config"]] {
        let help_args: Vec<&str> = page.iter().copied().chain(["--help"]).collect();
        let help = home.run(&help_args);
        let lines = examples(help.success());
        assert!(lines.len() >= 2, "tessera {page:?} --help: {lines:?}");
        for args in lines {
            assert_eq!(&args[..page.len()], page, "an example of {page:?} runs that command: {args:?}");
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut command = home.command(&args);
            // No ./deploy.sh here: exec's examples fail after parsing, never run anything.
            command.current_dir(home.path());
            let run = run_command(command);
            assert_ne!(run.code, Some(2), "usage error: tessera {}: {run:#?}", args.join(" "));
            for refused in ["unexpected argument", "unrecognized subcommand", "invalid value"] {
                assert!(!run.stderr.contains(refused), "tessera {}: {run:#?}", args.join(" "));
            }
            if page == ["token"] {
                assert!(run.success().len() > 20, "token examples print a token: {run:#?}");
            }
            total += 1;
        }
    }
    assert!(total >= 25, "{total}");
}

/// A man page rendered as text by man(1), when it is installed.
fn rendered(page: &Path) -> Option<String> {
    let output = Command::new("man").arg("-l").arg(page).env("MANWIDTH", "120").env("MANPAGER", "cat").output().ok()?;
    assert!(output.status.success(), "man -l {}: {}", page.display(), String::from_utf8_lossy(&output.stderr));
    // Overstrike bold (`X\bX`) when man formats for a terminal.
    let text = String::from_utf8_lossy(&output.stdout);
    let mut plain = String::new();
    for c in text.chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    Some(plain)
}

#[test]
fn man_pages_are_roff_and_list_every_command() {
    let home = empty_home();
    let run = home.run(&["man"]);
    let page = run.success();
    assert!(page.contains(".TH tessera 1") && page.contains(".SH NAME") && page.contains(".SH SUBCOMMANDS"), "{page}");
    for command in
        ["login", "token", "exec", "refresh", "status", "logout", "providers", "config", "keys", "completions"]
    {
        assert!(page.contains(&format!("tessera\\-{command}(1)")), "{command} in {page}");
    }
    assert!(!page.contains("tessera\\-man(1)"), "hidden");
    assert!(page.contains(".SH EXAMPLES") && page.contains(".SH FILES"), "{page}");

    let dir = home.path().join("man/man1");
    let run = home.run(&["man", "--dir", dir.to_str().unwrap()]);
    assert_eq!(run.success(), "");
    let mut files: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|entry| entry.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    for expected in
        ["tessera.1", "tessera-login.1", "tessera-token.1", "tessera-config-init.1", "tessera-keys-create.1"]
    {
        assert!(files.iter().any(|f| f == expected), "{expected} in {files:?}");
    }
    assert!(!files.iter().any(|f| f.starts_with("tessera-man")), "{files:?}");
    assert_eq!(std::fs::read_to_string(dir.join("tessera.1")).unwrap(), page, "the same page");
    let token = std::fs::read_to_string(dir.join("tessera-token.1")).unwrap();
    assert!(token.contains(".TH tessera-token 1") && token.contains("\\-\\-min\\-valid"), "{token}");

    if let Some(text) = rendered(&dir.join("tessera-token.1")) {
        assert!(text.contains("EXAMPLES") && text.contains("tessera token --format header"), "{text}");
        assert!(text.contains("--min-valid"), "{text}");
    }
}
