//! The `trawl` command: a thin binary over the library crates. It parses
//! the command line ([`args`]), turns flags into a settings layer
//! ([`flags`]), dispatches to one module per subcommand ([`commands`]) and
//! runs crawls under the terminal ([`crawl`]: signals, progress, summary).
//!
//! This is the only place that uses `anyhow`; everything it drives lives in
//! the library crates.

mod args;
mod commands;
mod crawl;
mod flags;
mod logs;
mod progress;
mod reload;

use clap::{CommandFactory, FromArgMatches};

fn main() -> std::process::ExitCode {
    let matches = flags::with_defaults(args::Cli::command()).get_matches();
    let cli = match args::Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    // `-q` means quiet: errors only (and no progress or summary).
    let quiet = match &cli.command {
        args::Command::Crawl(c) => c.run.quiet,
        args::Command::Run(r) => r.run.quiet,
        args::Command::Worker(w) => w.run.quiet,
        args::Command::Demo(d) => d.run.quiet,
        _ => false,
    };
    // lapin (the AMQP sink's client) logs every error it also returns, which
    // the sink reports with its name and address: once is enough.
    let filter = match cli.verbose {
        0 if quiet => "error,rustls_platform_verifier=off,lapin=off",
        0 => "warn,rustls_platform_verifier=off,lapin=off",
        1 => "info,rustls_platform_verifier=off,lapin=off",
        _ => "debug,hyper=info,reqwest=info,h2=info,rustls=info,lapin=info",
    };
    logs::init(filter, cli.log_format);
    // Every line names its crawl and worker; commands that know better
    // (a distributed crawl's name, a worker id) say so when they start.
    logs::set_ids(
        match &cli.command {
            args::Command::Serve(_) => "serve",
            _ => "local",
        },
        &logs::process_worker_id(),
    );
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
    match runtime.block_on(commands::dispatch(cli)) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(error) => {
            eprintln!("trawl: error: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}
