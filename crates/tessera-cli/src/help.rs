//! The "Examples:" sections of the help pages (`after_help`), kept apart from the command
//! definitions in `main.rs` so that they read as one page.
//!
//! Every line that starts with `  tessera ` is a command a test runs (tests/onboarding.rs): it must
//! parse, and `token`'s must print a token. Keep them plain (no pipes, no `$(...)`); say the rest
//! in the `#` comment.

/// `tessera --help`.
pub const TOP: &str = "\
Examples:
  tessera config init                    # write a commented starter config.toml
  tessera login                          # log in to the context's provider
  tessera token                          # print a valid access token (for $(tessera token))
  tessera status                         # every provider and its token state
  tessera token --help                   # each command's help has its own examples

Files:
  $TESSERA_HOME/config.toml, else the platform's config directory (~/.config/tessera/config.toml
  on Linux); TESSERA_CONFIG names the file itself. Tokens: $TESSERA_HOME/tokens, else the
  platform's data directory.";

/// `tessera login --help`.
pub const LOGIN: &str = "\
Examples:
  tessera login                          # the context's only (or current) provider
  tessera login -p peer                  # a provider by name
  tessera login --all                    # every provider of the context
  tessera login -p ci --with-token       # a static provider: the token is read from stdin";

/// `tessera token --help`.
pub const TOKEN: &str = "\
Examples:
  tessera token                          # the access token alone, e.g. curl -H \"Authorization: Bearer $(tessera token)\"
  tessera token --format header          # Authorization: Bearer ... (for curl -H)
  tessera token --json                   # JSON: type, expires_at (RFC 3339), expires_in, scope
  tessera token --min-valid 5m           # a new token if this one expires within 5 minutes
  tessera token -p peer --format k8s     # a kubectl ExecCredential
  tessera token -p api --format header --dpop-url https://api.example.com/v1/items
                                         # a DPoP provider: Authorization: DPoP ... and a DPoP: proof line
                                         # (curl -H @<(tessera token --format header --dpop-url \"$URL\") \"$URL\")";

/// `tessera exec --help`.
pub const EXEC: &str = "\
Examples:
  tessera exec -- ./deploy.sh                         # the token in $TESSERA_TOKEN
  tessera exec --env GITHUB_TOKEN -p peer -- gh api user";

/// `tessera status --help`.
pub const STATUS: &str = "\
Examples:
  tessera status                         # a table: name, type, status, account, expiry, scope
  tessera status --json                  # the same as JSON (schema: docs/cli.md, JSON output)";

/// `tessera logout --help`.
pub const LOGOUT: &str = "\
Examples:
  tessera logout                         # revoke at the server, then forget the tokens
  tessera logout -p peer
  tessera logout --all";

/// `tessera config --help`.
pub const CONFIG: &str = "\
Examples:
  tessera config init                    # a commented starter file (never overwrites without --force)
  tessera config view                    # the file, literal secrets masked
  tessera config get-contexts            # the contexts; * marks the current one
  tessera config use-context dev
  tessera config use-provider peer       # the default provider of the context";

/// `tessera keys --help`.
pub const KEYS: &str = "\
Examples:
  tessera keys create ci-deploy          # the secret is printed once, on stdout
  tessera keys create ci --expires-in-days 30 --json
  tessera keys list
  tessera keys revoke key_0123456789abcdef";
