//! `faultline serve`: the web UI on localhost: the stored runs with filter
//! and sort, each run's report, its files to download. Binds 127.0.0.1 by
//! default; prints the URL on stdout once listening.

use crate::exit::{bad_input, Exit};
use anyhow::Context;
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where runs are stored.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Port (0: any free port; the URL printed says which).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on. Anything but loopback exposes every run's files.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    if !args.store.exists() {
        // Served all the same: the list fills as runs are stored.
        crate::errln!(
            "faultline: no runs: {} does not exist yet (`faultline test --store {}` makes it)",
            args.store.display(),
            args.store.display()
        );
    } else if !args.store.is_dir() {
        return Err(bad_input(format!(
            "--store {}: not a directory",
            args.store.display()
        )));
    }
    if !args.bind.is_loopback() {
        tracing::warn!(
            "serving on {}: not loopback, anyone who reaches it can read every run",
            args.bind
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind((args.bind, args.port))
            .await
            .with_context(|| format!("listening on {}:{}", args.bind, args.port))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        crate::outln!("http://{addr}/");
        crate::errln!("faultline: serving {} on http://{addr}/ (Ctrl-C stops)", args.store.display());
        tokio::select! {
            r = faultline_results::serve::serve(listener, args.store.clone()) => r.context("serving"),
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })?;
    Ok(Exit::Valid)
}
