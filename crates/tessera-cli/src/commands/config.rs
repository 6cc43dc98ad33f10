//! `tessera config get-contexts | use-context | view`: the configuration file's contexts.
//! `view` masks every literal secret; `use-context` edits one line of the file and nothing else.

use clap::Subcommand;
use serde_json::json;

use crate::{Failure, load_config, output, registry};

#[derive(Subcommand)]
pub enum ConfigCommand {
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
    /// Print the configuration with literal secrets masked (references such as env:NAME are shown).
    View {
        /// Print JSON instead of TOML.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: ConfigCommand, context_override: Option<&str>) -> Result<(), Failure> {
    let registry = registry();
    let (paths, config) = load_config(&registry)?;
    match command {
        ConfigCommand::GetContexts { json } => {
            // The context in effect: --context / TESSERA_CONTEXT, else current_context.
            let current = context_override.map(str::to_owned).or_else(|| config.current_context.clone());
            let rows: Vec<_> = config
                .contexts
                .iter()
                .map(|c| {
                    let providers: Vec<_> = c.providers.iter().map(|p| p.name.as_str()).collect();
                    (current.as_deref() == Some(c.name.as_str()), c.name.as_str(), providers)
                })
                .collect();
            let text = if json {
                let value: Vec<_> = rows
                    .iter()
                    .map(|(current, name, providers)| json!({ "name": name, "current": current, "providers": providers }))
                    .collect();
                serde_json::to_string_pretty(&value).map_err(|e| Failure::error(e.to_string()))? + "\n"
            } else {
                let cells: Vec<Vec<String>> = rows
                    .iter()
                    .map(|(current, name, providers)| {
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
