//! The `trawl` command: argument parsing, signals, progress and the summary.
//!
//! This is the only place that uses `anyhow`; everything it drives lives in
//! the library crates.

mod args;
mod distributed;
mod progress;
mod reload;
mod run;
mod scrape;
mod sinks;
mod spider;

use clap::{CommandFactory, FromArgMatches};

fn main() -> std::process::ExitCode {
    let matches = args::Cli::command().get_matches();
    let mut cli = match args::Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    // A spider file's settings fill in only what the command line left
    // alone: remember which options were given.
    if let (args::Command::Run(run), Some(("run", sub))) = (&mut cli.command, matches.subcommand())
    {
        run.opts.given = sub
            .ids()
            .filter(|id| {
                matches!(
                    sub.value_source(id.as_str()),
                    Some(clap::parser::ValueSource::CommandLine)
                        | Some(clap::parser::ValueSource::EnvVariable)
                )
            })
            .map(|id| id.to_string())
            .collect();
    }
    // `-q` means quiet: errors only (and no progress or summary).
    let quiet = match &cli.command {
        args::Command::Crawl(c) => c.opts.quiet,
        args::Command::Run(r) => r.opts.quiet,
        args::Command::Worker(w) => w.opts.quiet,
        _ => false,
    };
    let filter = match cli.verbose {
        0 if quiet => "error,rustls_platform_verifier=off",
        0 => "warn,rustls_platform_verifier=off",
        1 => "info,rustls_platform_verifier=off",
        _ => "debug,hyper=info,reqwest=info,h2=info,rustls=info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| filter.into()),
        )
        .with_writer(std::io::stderr)
        // Colour only for a terminal: logs sent to a file or a pipe stay
        // plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("trawl: cannot start the async runtime: {error}");
            return std::process::ExitCode::from(1);
        }
    };
    match runtime.block_on(run::main(cli)) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(error) => {
            eprintln!("trawl: error: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}
