//! `tessera secret set | delete <service>/<account>`: puts a secret into the OS keyring (or removes
//! it) so that the configuration can say `client_secret = "keyring:<service>/<account>"` instead of
//! holding the secret. The secret is read from stdin (one line; not echoed on a terminal) or from an
//! environment variable, never from the command line (it would land in shell history and `ps`).
//!
//! stdout gets the reference to put in the configuration (data); messages go to stderr. Nothing
//! here ever prints the secret.

use std::io::IsTerminal;

use clap::Subcommand;
use tessera::Secret;
use tessera::keyring::KeyringEntry;

use crate::Failure;

#[derive(Subcommand)]
pub enum SecretCommand {
    /// Store a secret in the OS keyring; prints the `keyring:` reference to use in the configuration.
    ///
    /// Reads one line from stdin (`echo "$SECRET" | tessera secret set tessera/ci`), or the value of
    /// an environment variable with --from-env.
    Set {
        /// `<service>/<account>`, e.g. `tessera/ci-client` (the `keyring:` prefix is optional).
        reference: String,
        /// Read the secret from this environment variable instead of stdin.
        #[arg(long, value_name = "NAME")]
        from_env: Option<String>,
    },
    /// Remove a secret from the OS keyring.
    Delete {
        /// `<service>/<account>` (the `keyring:` prefix is optional).
        reference: String,
    },
}

/// A bad argument: exit code 2, like clap's own usage errors.
fn usage(message: impl Into<String>) -> Failure {
    Failure { code: 2, message: message.into() }
}

pub fn run(command: SecretCommand) -> Result<(), Failure> {
    match command {
        SecretCommand::Set { reference, from_env } => {
            let entry = KeyringEntry::parse(&reference).map_err(|e| usage(e.to_string()))?;
            let secret = match from_env {
                Some(name) => match std::env::var(&name) {
                    Ok(value) if !value.is_empty() => Secret::new(value),
                    Ok(_) => return Err(usage(format!("--from-env: environment variable {name} is empty"))),
                    Err(_) => return Err(usage(format!("--from-env: environment variable {name} is not set"))),
                },
                None => read_secret_line(&entry)?,
            };
            entry.set(&secret)?;
            let reference = entry.reference();
            eprintln!("Stored {reference} in the OS keyring. Use it in the configuration, e.g.:");
            eprintln!("  client_secret = \"{reference}\"");
            crate::output::stdout(&format!("{reference}\n"))
        }
        SecretCommand::Delete { reference } => {
            let entry = KeyringEntry::parse(&reference).map_err(|e| usage(e.to_string()))?;
            if entry.delete()? {
                eprintln!("Deleted {entry} from the OS keyring");
                Ok(())
            } else {
                Err(Failure::error(format!("no secret stored at {entry}: nothing deleted")))
            }
        }
    }
}

/// One line from stdin, without its line ending. On a terminal: a prompt on stderr and no echo
/// (the library's hidden-input reader: Ctrl-C leaves the terminal echoing again).
fn read_secret_line(entry: &KeyringEntry) -> Result<Secret, Failure> {
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    if terminal {
        eprint!("Secret for {entry} (input is hidden): ");
    }
    let line =
        tessera::prompt::read_hidden_line(&stdin).map_err(|e| Failure::error(format!("cannot read stdin: {e}")))?;
    if terminal {
        eprintln!();
    }
    // Moved, not copied, into the Secret (which zeroes it on drop).
    let secret = Secret::new(line.map(|mut line| std::mem::take(&mut *line)).unwrap_or_default());
    if secret.is_empty() {
        return Err(Failure::error(
            "no secret on stdin (pipe one line, e.g. `printf '%s\\n' \"$SECRET\" | tessera secret set ...`)",
        ));
    }
    Ok(secret)
}
