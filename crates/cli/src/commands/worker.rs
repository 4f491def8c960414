//! `trawl worker --redis URL --crawl NAME`: join a distributed crawl.

use crate::args::WorkerArgs;
use crate::crawl::{Job, distributed};
use crate::flags::{Files, load};

pub async fn run(args: WorkerArgs) -> anyhow::Result<u8> {
    let settings = load(&args.settings, Files::default())?;
    if args.run.print_config {
        print!("{}", settings.to_annotated_toml()?);
        return Ok(0);
    }
    let job = Job {
        settings,
        spider: None,
        run: args.run,
    };
    distributed::join(job, args.wait_for_seed).await
}
