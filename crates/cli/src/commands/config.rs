//! `trawl config [SPIDER] [flags]`: the effective settings as TOML, each
//! value with where it came from.

use super::EXIT_BAD_INPUT;
use crate::args::ConfigArgs;
use crate::flags::{Files, load};

pub fn run(args: &ConfigArgs) -> anyhow::Result<u8> {
    let text = match &args.spider {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(error) => {
                eprintln!("trawl: {}: {error}", path.display());
                return Ok(EXIT_BAD_INPUT);
            }
        },
        None => None,
    };
    let files = Files {
        spider: args.spider.as_deref().zip(text.as_deref()),
    };
    match load(&args.settings, files) {
        Ok(settings) => {
            print!("{}", settings.to_annotated_toml()?);
            Ok(0)
        }
        Err(error) => {
            eprintln!("trawl: {error:#}");
            Ok(EXIT_BAD_INPUT)
        }
    }
}
