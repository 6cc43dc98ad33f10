//! `tessera idp ARGS...`: runs the reference identity server, the separate program `tessera-idp`,
//! with the same arguments (`tessera idp serve --port 8400` is `tessera-idp serve --port 8400`).
//!
//! The server is not part of this binary: the CLI users install stays small and carries no
//! server code (docs/DECISIONS.md, "The reference IdP is its own binary"). `tessera-idp` is
//! looked for next to this program first (a `cargo build` puts both in `target/debug`), then on
//! `PATH`. The process is replaced (exec), so signals and the exit status are the server's own.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::Failure;

/// The program's file name.
const PROGRAM: &str = "tessera-idp";

/// Replaces this process with `tessera-idp ARGS...`; returns only when that fails.
pub fn run(args: Vec<OsString>) -> Failure {
    let program = sibling().unwrap_or_else(|| PathBuf::from(PROGRAM));
    let mut command = std::process::Command::new(&program);
    command.args(args);
    #[cfg(unix)]
    let error = std::os::unix::process::CommandExt::exec(&mut command);
    // Windows has no exec: the server runs as a child, and this process exits with its code (a
    // code outside 0–255 as 1).
    #[cfg(not(unix))]
    let error = match command.status() {
        Ok(status) => {
            let code = status.code().and_then(|code| u8::try_from(code).ok()).unwrap_or(1);
            return Failure::quiet(code);
        }
        Err(error) => error,
    };
    if error.kind() == std::io::ErrorKind::NotFound {
        return Failure {
            code: 127,
            message: format!(
                "the reference IdP is a separate program, {PROGRAM}, found neither next to tessera nor on PATH\n\
                 hint: install it with `cargo install --path crates/tessera-idp` from a tessera checkout, \
                 or build it with `cargo build -p tessera-idp`"
            ),
        };
    }
    Failure { code: 126, message: format!("cannot run {}: {error}", program.display()) }
}

/// `tessera-idp` in the directory of the running `tessera`, when it is there.
fn sibling() -> Option<PathBuf> {
    let path = std::env::current_exe().ok()?.with_file_name(format!("{PROGRAM}{}", std::env::consts::EXE_SUFFIX));
    path.is_file().then_some(path)
}
