//! `tessera man [--dir DIR]` (hidden): the man pages, generated from the same clap definitions
//! as `--help` (clap_mangen), so that they cannot disagree with the binary. Packagers and users
//! run it at install time (docs/cli.md, "Man pages"); nothing here reads the configuration.

use std::path::{Path, PathBuf};

use crate::Failure;

/// Writes `tessera.1` to stdout, or every page (`tessera.1`, `tessera-login.1`,
/// `tessera-config-init.1`, ...; hidden commands have none) into `dir`, creating it.
pub fn run(command: clap::Command, dir: Option<PathBuf>) -> Result<(), Failure> {
    // As clap_mangen's generate_to: `build` names every subcommand (`tessera-login`) for its page.
    let mut command = command.disable_help_subcommand(true);
    command.build();
    let Some(dir) = dir else {
        let page = render(&command).map_err(|e| Failure::error(format!("cannot render the man page: {e}")))?;
        let page = String::from_utf8(page).map_err(|e| Failure::error(format!("the man page is not UTF-8: {e}")))?;
        return crate::output::stdout(&page);
    };
    let io = |e: std::io::Error| Failure::error(format!("cannot write the man pages to {}: {e}", dir.display()));
    std::fs::create_dir_all(&dir).map_err(io)?;
    let written = write_pages(&command, &dir).map_err(io)?;
    eprintln!("Wrote {written} man pages to {} (read them with: man tessera)", dir.display());
    Ok(())
}

/// Writes the page of `command` and of each visible subcommand, recursively; returns how many.
fn write_pages(command: &clap::Command, dir: &Path) -> std::io::Result<usize> {
    let mut written = 0;
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        written += write_pages(sub, dir)?;
    }
    let name = command.get_display_name().unwrap_or_else(|| command.get_name());
    std::fs::write(dir.join(format!("{name}.1")), render(command)?)?;
    Ok(written + 1)
}

/// One page: clap_mangen's sections, with the `after_help` text ("Examples:", "Files:") as
/// sections of their own (`EXAMPLES`, `FILES`) instead of clap_mangen's single `EXTRA`.
fn render(command: &clap::Command) -> std::io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(command.clone());
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    if command.get_arguments().any(|arg| !arg.is_hide_set()) {
        man.render_options_section(&mut page)?;
    }
    if command.get_subcommands().any(|sub| !sub.is_hide_set()) {
        man.render_subcommands_section(&mut page)?;
    }
    if let Some(after) = command.get_after_help() {
        page.extend_from_slice(sections(&after.to_string()).as_bytes());
    }
    if command.get_version().is_some() {
        man.render_version_section(&mut page)?;
    }
    Ok(page)
}

/// `Heading:` paragraphs as `.SH HEADING` sections, their lines kept as written (`.nf`).
fn sections(text: &str) -> String {
    let mut roff = String::new();
    for paragraph in text.split("\n\n") {
        let (first, rest) = paragraph.split_once('\n').unwrap_or((paragraph, ""));
        let (heading, body) = match first.strip_suffix(':') {
            Some(heading) if !heading.contains(' ') => (heading.to_uppercase(), rest),
            _ => ("NOTES".to_owned(), paragraph),
        };
        roff.push_str(&format!(".SH {heading}\n.nf\n"));
        for line in body.lines() {
            // roff: a backslash is an escape, a leading dot or quote a request.
            let line = line.replace('\\', "\\e").replace('-', "\\-");
            roff.push_str(&format!("\\&{line}\n"));
        }
        roff.push_str(".fi\n");
    }
    roff
}
