//! One module per command group: `auth` (login, token, refresh, status, logout, providers, exec),
//! `config` (and `config init`), `keys` (and `admin keys`), `secret`, `idp`, `man`. `main.rs` parses the command line and
//! dispatches here; shared output helpers are in `crate::output`.

pub(crate) mod auth;
pub(crate) mod config;
pub(crate) mod config_init;
pub(crate) mod idp;
pub(crate) mod keys;
pub(crate) mod man;
pub(crate) mod secret;
