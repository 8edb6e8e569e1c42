//! Man pages generated from a binary's clap definition (so they can never disagree with
//! `--help`), with a synopsis that shows every flag's value and the sections clap knows nothing
//! about (CONSOLE, SIGNALS, EXIT STATUS, ...). Behind the `manual` feature: only the binaries
//! that print a man page link clap here.

use std::io::{self, Write};

use clap_mangen::roff::{bold, italic, roman, Inline, Roff};

/// A section of the page beyond what clap describes.
#[derive(Debug, Clone)]
pub struct Section {
    /// Its title, upper case by convention (`EXIT STATUS`).
    pub title: &'static str,
    /// An opening paragraph, if any.
    pub intro: String,
    /// Tagged paragraphs: the tag (a status, a signal, a command) and what it means.
    pub items: Vec<(String, String)>,
}

impl Section {
    /// A section of tagged paragraphs.
    pub fn new(title: &'static str, intro: &str, items: &[(&str, &str)]) -> Section {
        Section {
            title,
            intro: intro.to_owned(),
            items: items
                .iter()
                .map(|(t, x)| ((*t).to_owned(), (*x).to_owned()))
                .collect(),
        }
    }
}

/// Renders `cmd`'s man page: title, name, a synopsis with values (the command's and each
/// subcommand's), description, options, subcommands, then `sections`, then the version.
pub fn render(cmd: clap::Command, sections: &[Section], w: &mut dyn Write) -> io::Result<()> {
    let mut cmd = cmd;
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(w)?;
    man.render_name_section(w)?;
    let mut roff = Roff::new();
    roff.control("SH", ["SYNOPSIS"]);
    let name = cmd.get_name().to_owned();
    roff.text(synopsis(&name, &cmd));
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        roff.control("br", [] as [&str; 0]);
        roff.text(synopsis(&format!("{name} {}", sub.get_name()), sub));
    }
    roff.to_writer(w)?;
    man.render_description_section(w)?;
    man.render_options_section(w)?;
    if cmd.get_subcommands().any(|s| s.get_name() != "help") {
        man.render_subcommands_section(w)?;
    }
    let mut roff = Roff::new();
    for section in sections {
        roff.control("SH", [section.title]);
        if !section.intro.is_empty() {
            roff.text([roman(section.intro.as_str())]);
        }
        for (tag, text) in &section.items {
            roff.control("TP", [] as [&str; 0]);
            roff.text([bold(tag.as_str())]);
            roff.text([roman(text.as_str())]);
        }
    }
    roff.to_writer(w)?;
    if cmd.get_version().is_some() || cmd.get_long_version().is_some() {
        man.render_version_section(w)?;
    }
    Ok(())
}

/// `name [--flag VALUE] [--switch] POSITIONAL...` with every value named.
fn synopsis(name: &str, cmd: &clap::Command) -> Vec<Inline> {
    let mut line = vec![bold(name)];
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        if arg.is_positional() {
            continue;
        }
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "help" | "version") {
            continue;
        }
        let (open, close) = if arg.is_required_set() {
            ("", "")
        } else {
            ("[", "]")
        };
        line.push(roman(format!(" {open}")));
        line.push(bold(format!("--{long}")));
        if arg.get_action().takes_values() {
            let value = arg
                .get_value_names()
                .map(|v| v.join(" "))
                .unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
            line.push(roman(" "));
            line.push(italic(value));
        }
        line.push(roman(close));
    }
    for arg in cmd.get_positionals().filter(|a| !a.is_hide_set()) {
        let value = arg
            .get_value_names()
            .map(|v| v.join(" "))
            .unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
        let many = matches!(arg.get_num_args(), Some(r) if r.max_values() > 1);
        let dots = if many { "..." } else { "" };
        let (open, close) = if arg.is_required_set() {
            ("", "")
        } else {
            ("[", "]")
        };
        line.push(roman(format!(" {open}")));
        line.push(italic(value));
        line.push(roman(format!("{dots}{close}")));
    }
    line
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_synopsis_shows_values_and_extra_sections_appear() {
        let cmd = clap::Command::new("demo")
            .arg(
                clap::Arg::new("listen")
                    .long("listen")
                    .value_name("ADDR")
                    .help("where"),
            )
            .arg(
                clap::Arg::new("quiet")
                    .long("quiet")
                    .action(clap::ArgAction::SetTrue),
            )
            .arg(clap::Arg::new("host").value_name("HOST"));
        let mut page = Vec::new();
        let sections = [Section::new("EXIT STATUS", "", &[("0", "fine")])];
        render(cmd, &sections, &mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(
            page.contains("[\\fB\\-\\-listen\\fR \\fIADDR\\fR]"),
            "{page}"
        );
        assert!(page.contains("[\\fB\\-\\-quiet\\fR]"), "{page}");
        assert!(page.contains(".SH \"EXIT STATUS\""), "{page}");
    }
}
