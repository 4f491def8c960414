//! One module per subcommand. Each parses what is its own, loads the
//! settings ([`crate::flags::load`]) and hands a crawl to
//! [`crate::crawl`]; no command calls another.

mod check;
mod config;
mod crawl;
mod demo;
mod run;
pub mod scrape;
mod serve;
mod status;
mod worker;

use crate::args::{Cli, Command};

/// Exit code for a spider file or settings that cannot be used.
pub const EXIT_BAD_INPUT: u8 = 2;

/// Read and parse a spider file, keeping its text for its `[settings]`;
/// a failure is said on stderr and becomes [`EXIT_BAD_INPUT`].
fn read_spider(path: &std::path::Path) -> Result<(String, trawl_spider::DeclarativeSpider), u8> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| {
        eprintln!("trawl: {shown}: {error}");
        EXIT_BAD_INPUT
    })?;
    let spider = trawl_spider::DeclarativeSpider::from_str(&shown, &text).map_err(|error| {
        eprintln!("trawl: {error}");
        EXIT_BAD_INPUT
    })?;
    Ok((text, spider))
}

pub async fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Crawl(args) => crawl::run(args).await,
        Command::Worker(args) => worker::run(args).await,
        Command::Status(args) => status::run(&args).await,
        Command::Run(args) => run::run(args).await,
        Command::Check(args) => Ok(check::run(&args)),
        Command::Scrape(args) => scrape::run(&args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Config(args) => config::run(&args),
        Command::Serve(args) => serve::run(&args).await,
    }
}
