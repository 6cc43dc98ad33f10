//! Configuration files: any text gives a configuration or a typed error, and what parses can be
//! walked (contexts, providers, masked views) without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(config) = Config::from_toml_str(text, "fuzz.toml") else { return };
    let _ = config.masked();
    if let Ok(context) = config.context(None)
        && let Ok(provider) = context.provider(None)
    {
        // Not `build`: it resolves `file:` references, and the fuzzer would read /dev/stdin.
        let _ = provider.masked_settings();
    }
});
