//! `faultline completions SHELL`: a completion script on stdout, made by
//! clap_complete from the same definition that parses the command line, so
//! it always knows every subcommand, flag and possible value.
//!
//! ```text
//! faultline completions bash > ~/.local/share/bash-completion/completions/faultline
//! faultline completions zsh > ~/.zfunc/_faultline
//! faultline completions fish > ~/.config/fish/completions/faultline.fish
//! ```

use crate::exit::Exit;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Writes the script for `command` (the whole `faultline` command line).
pub fn run(args: Args, mut command: clap::Command) -> anyhow::Result<Exit> {
    let name = command.get_name().to_string();
    // clap_complete panics on a failed write: render, then print through
    // output.rs, so `faultline completions bash | head` ends quietly.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, name, &mut script);
    crate::out!("{}", String::from_utf8_lossy(&script));
    Ok(Exit::Valid)
}
