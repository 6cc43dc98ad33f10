//! `tessera config init | get-contexts | use-context | use-provider | view`: the configuration
//! file. `init` writes a commented starter (never over an existing file without `--force`), `view`
//! masks every literal secret; `use-context` and `use-provider` edit one line of the file and
//! nothing else.

use clap::Subcommand;
use serde_json::json;

use crate::{Failure, load_config, output, registry};

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Write a commented starter config.toml where tessera looks for it (TESSERA_CONFIG, else
    /// TESSERA_HOME, else the platform's config directory): a context and example providers to
    /// uncomment, or, with --interactive, one provider you describe.
    Init {
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
        /// Ask for one provider (type, name, issuer, client id, ...) on the terminal. Never asks
        /// without one (use --prompt always to answer through pipes).
        #[arg(long)]
        interactive: bool,
    },
    /// List the contexts (the current one is marked with `*`).
    GetContexts {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Make NAME the current context (edits `current_context` in the file).
    UseContext {
        /// The context.
        #[arg(add = crate::complete::context_names())]
        name: String,
    },
    /// Make NAME the default provider of the context in effect (edits its `current_provider`):
    /// commands without --provider then use it when the context has several.
    UseProvider {
        /// The provider.
        #[arg(add = crate::complete::provider_names())]
        name: String,
    },
    /// Print the configuration with literal secrets masked (references such as env:NAME are shown).
    View {
        /// Print JSON instead of TOML.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `config` command; `may_prompt`: whether a person may be asked (`--prompt`).
pub fn run(command: ConfigCommand, context_override: Option<&str>, may_prompt: bool) -> Result<(), Failure> {
    if let ConfigCommand::Init { force, interactive } = command {
        return super::config_init::run(force, interactive, may_prompt);
    }
    let registry = registry();
    let (paths, config) = load_config(&registry)?;
    match command {
        ConfigCommand::Init { .. } => unreachable!("handled above"),
        ConfigCommand::GetContexts { json } => {
            // The context in effect: --context / TESSERA_CONTEXT, else current_context.
            let current = context_override.map(str::to_owned).or_else(|| config.current_context.clone());
            let rows: Vec<_> = config
                .contexts
                .iter()
                .map(|c| {
                    let providers: Vec<_> = c.providers.iter().map(|p| p.name.as_str()).collect();
                    (
                        current.as_deref() == Some(c.name.as_str()),
                        c.name.as_str(),
                        providers,
                        c.current_provider.as_deref(),
                    )
                })
                .collect();
            let text = if json {
                let value: Vec<_> = rows
                    .iter()
                    .map(|(current, name, providers, current_provider)| {
                        json!({ "name": name, "current": current, "providers": providers, "current_provider": current_provider })
                    })
                    .collect();
                serde_json::to_string_pretty(&value).map_err(|e| Failure::error(e.to_string()))? + "\n"
            } else {
                let cells: Vec<Vec<String>> = rows
                    .iter()
                    .map(|(current, name, providers, current_provider)| {
                        // The default provider is marked with `*`, like the current context.
                        let providers: Vec<String> = providers
                            .iter()
                            .map(|p| if Some(*p) == *current_provider { format!("{p}*") } else { (*p).to_owned() })
                            .collect();
                        vec![if *current { "*".into() } else { String::new() }, name.to_string(), providers.join(",")]
                    })
                    .collect();
                output::table(&["CURRENT", "NAME", "PROVIDERS"], &cells)
            };
            output::stdout(&text)?;
        }
        ConfigCommand::UseContext { name } => {
            tessera::config::set_current_context(&paths.config_file, &name, &registry.type_names())?;
            eprintln!("Switched to context {name:?} ({})", paths.config_file.display());
        }
        ConfigCommand::UseProvider { name } => {
            // The context in effect: --context / TESSERA_CONTEXT, else current_context, else the only one.
            let context = config.context(context_override)?.name.clone();
            tessera::config::set_current_provider(&paths.config_file, &context, &name, &registry.type_names())?;
            eprintln!("Default provider of context {context:?} is now {name:?} ({})", paths.config_file.display());
        }
        ConfigCommand::View { json } => {
            let masked = config.masked();
            let text = if json {
                serde_json::to_string_pretty(&masked).map_err(|e| Failure::error(e.to_string()))? + "\n"
            } else {
                toml::to_string_pretty(&masked).map_err(|e| Failure::error(e.to_string()))?
            };
            output::stdout(&text)?;
        }
    }
    Ok(())
}
