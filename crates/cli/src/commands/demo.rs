//! `trawl demo`: serve the built-in generated site on loopback and crawl
//! it (works offline). Built only with the `demo` feature (on by default).

use crate::args::DemoArgs;

#[cfg(feature = "demo")]
pub async fn run(args: DemoArgs) -> anyhow::Result<u8> {
    use anyhow::Context;

    use crate::crawl::{Job, parse_seeds};
    use crate::flags::{Files, load};

    let settings = load(&args.settings, Files::default())?;
    if args.run.print_config {
        print!("{}", settings.to_annotated_toml()?);
        return Ok(0);
    }
    let cfg = trawl_testsite::SiteConfig {
        pages: args.pages,
        fanout: args.fanout,
        nasty: args.nasty,
        ..Default::default()
    };
    let site = trawl_testsite::TestSite::start(cfg)
        .await
        .context("starting the demo site")?;
    let seed = format!("{}/", site.base_url());
    if !args.run.quiet {
        eprintln!(
            "Serving a generated {}-page test site at {seed} ({} pages reachable); crawling it.",
            args.pages,
            site.site().ground_truth().len()
        );
    }
    let job = Job {
        settings,
        spider: None,
        run: args.run,
    };
    let code = job.run(parse_seeds(&[seed])?).await;
    site.shutdown().await;
    code
}

#[cfg(not(feature = "demo"))]
pub async fn run(_args: DemoArgs) -> anyhow::Result<u8> {
    anyhow::bail!("this trawl was built without the demo site (cargo feature `demo`)")
}
