//! `trawl crawl SEEDS…`: crawl from seed URLs, one JSON record per page.

use crate::args::CrawlArgs;
use crate::crawl::{Job, parse_seeds};
use crate::flags::{Files, load};

pub async fn run(args: CrawlArgs) -> anyhow::Result<u8> {
    let seeds = parse_seeds(&args.seeds)?;
    let settings = load(&args.settings, Files::default())?;
    if args.run.print_config {
        print!("{}", settings.to_annotated_toml()?);
        return Ok(0);
    }
    Job {
        settings,
        spider: None,
        run: args.run,
    }
    .run(seeds)
    .await
}
