//! `faultline man`: the man page (roff, by clap_mangen) of `faultline`,
//! or with `--dir` one page per subcommand as well (`faultline-test.1`, ...),
//! from the same definition that parses the command line.
//!
//! ```text
//! faultline man | man -l -
//! faultline man --dir /usr/local/share/man/man1
//! ```

use crate::exit::Exit;
use anyhow::Context;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write faultline.1 and a page per subcommand into this folder instead
    /// of printing faultline.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn run(args: Args, command: clap::Command) -> anyhow::Result<Exit> {
    let command = command.version(env!("CARGO_PKG_VERSION"));
    match &args.dir {
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut out)
                .context("rendering the man page")?;
            // Through output.rs: `faultline man | head` must not fail.
            crate::out!("{}", String::from_utf8_lossy(&out));
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let written = write_pages(&command, dir)?;
            for path in written {
                crate::outln!("{}", path.display());
            }
        }
    }
    Ok(Exit::Valid)
}

/// Writes the page of `command` and of each subcommand (named
/// `parent-sub.1`), depth first; returns the paths.
fn write_pages(command: &clap::Command, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut command = command.clone();
    command.build();
    let mut written = Vec::new();
    write_tree(&command, command.get_name(), dir, &mut written)?;
    Ok(written)
}

fn write_tree(
    command: &clap::Command,
    name: &str,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    let page = command.clone().name(name.to_string());
    let path = dir.join(format!("{name}.1"));
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .with_context(|| format!("rendering {name}.1"))?;
    std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))?;
    written.push(path);
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        write_tree(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}
