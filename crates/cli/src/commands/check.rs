//! `trawl check spider.toml`: everything `run` would refuse, without
//! crawling: the rules, and the settings (the file's, the environment's
//! and the flags') built exactly as `run` builds them.

use trawl_spider::Spider;

use super::EXIT_BAD_INPUT;
use crate::args::CheckArgs;
use crate::flags::{Files, load};

pub fn run(args: &CheckArgs) -> u8 {
    let path = args.spider.display().to_string();
    let (text, spider) = match super::read_spider(&args.spider) {
        Ok(read) => read,
        Err(code) => return code,
    };
    let files = Files {
        spider: Some((&args.spider, &text)),
    };
    let built = load(&args.settings, files)
        .and_then(|settings| Ok(settings.build(spider.start_urls(), &spider.parts())?));
    if let Err(error) = built {
        eprintln!("trawl: {error:#}");
        return EXIT_BAD_INPUT;
    }
    for warning in spider.warnings() {
        eprintln!("{path}: warning: {warning}");
    }
    println!(
        "{path}: ok: spider {:?}, {} start URL(s)",
        spider.name(),
        spider.start_urls().len()
    );
    0
}
