//! `trawl run spider.toml`: crawl with a spider file; items to the
//! outputs, error records to the error output.

use trawl_spider::Spider;

use super::EXIT_BAD_INPUT;
use crate::args::RunArgs;
use crate::crawl::{Job, SpiderJob};
use crate::flags::{Files, load};

pub async fn run(args: RunArgs) -> anyhow::Result<u8> {
    let (text, spider) = match super::read_spider(&args.spider) {
        Ok(read) => read,
        Err(code) => return Ok(code),
    };
    let files = Files {
        spider: Some((&args.spider, &text)),
    };
    let settings = match load(&args.settings, files) {
        Ok(s) => s,
        Err(error) => {
            eprintln!("trawl: {error:#}");
            return Ok(EXIT_BAD_INPUT);
        }
    };
    if args.run.print_config {
        print!("{}", settings.to_annotated_toml()?);
        return Ok(0);
    }
    let seeds = spider.start_urls();
    let job = Job {
        spider: Some(SpiderJob::new(spider, &settings)),
        settings,
        run: args.run,
    };
    job.run(seeds).await
}
