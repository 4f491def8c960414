//! `trawl-testsite`: serve the deterministic test site until Ctrl-C (the
//! first stdout line is the base URL), over HTTPS with `--tls`, defended by
//! rate limits and bans with `--defended N/WINDOW`, with crawler traps with
//! `--traps`, or print its ground truth.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use trawl_testsite::{
    BanAnswer, BanKey, Defense, Error, RobotsMode, Site, SiteConfig, TestSite, parse_duration,
};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Robots {
    /// The built-in robots.txt.
    Default,
    /// 404.
    None,
    /// 500.
    Error,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Answer {
    /// 429 Too Many Requests with Retry-After.
    #[value(name = "429", alias = "too-many-requests")]
    TooManyRequests,
    /// 200 with a CAPTCHA page.
    Captcha,
    /// 403 Forbidden.
    #[value(name = "403", alias = "forbidden")]
    Forbidden,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum By {
    /// Client IP (TCP peer address).
    Ip,
    /// `sid` session cookie.
    Cookie,
    /// Both, separately.
    Both,
}

/// Serve trawl's deterministic test web site.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (loopback; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Number of /p/ pages.
    #[arg(long, default_value_t = 200)]
    pages: usize,
    /// Links per page.
    #[arg(long, default_value_t = 8)]
    fanout: usize,
    /// Median page size in bytes.
    #[arg(long, default_value_t = 4000)]
    page_bytes: usize,
    /// Generator seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Link the fault and trap routes from /.
    #[arg(long)]
    nasty: bool,
    /// Do not keep a request log.
    #[arg(long)]
    no_log: bool,
    /// Also serve the product catalogue (`/shop/`) and blog (`/blog/`).
    #[arg(long)]
    shop: bool,
    /// Number of products with `--shop`.
    #[arg(long, default_value_t = 100)]
    shop_products: usize,
    /// Number of blog articles with `--shop`.
    #[arg(long, default_value_t = 20)]
    shop_articles: usize,
    /// Also serve the trap site: crawler traps (calendars, session ids in
    /// paths, endless pagination, facets, growing paths) next to large real
    /// sections (`/products?page=1`, `/news?page=1`, `/docs/intro`).
    #[arg(long)]
    traps: bool,
    /// Number of `/p?id=N` products with `--traps`.
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    trap_products: usize,
    /// Delay added to every /p/ page, in milliseconds.
    #[arg(long)]
    latency_ms: Option<u64>,
    /// What /robots.txt answers.
    #[arg(long, value_enum, default_value_t = Robots::Default)]
    robots: Robots,
    /// Serve HTTPS (HTTP/1.1 and h2) with a self-signed certificate made at
    /// start.
    #[arg(long)]
    tls: bool,
    /// With --tls: write the certificate (PEM, to trust as a CA) to this
    /// file before printing the base URL.
    #[arg(long, requires = "tls")]
    ca_out: Option<PathBuf>,
    /// Rate-limit clients: more than N requests within WINDOW (e.g. 30/10s,
    /// 5/500ms; units ms, s, m, h) gets a client banned. /robots.txt is
    /// never counted; every response to a client without a known session
    /// sets a `sid` cookie.
    #[arg(long, value_name = "N/WINDOW", value_parser = parse_defense)]
    defended: Option<Defense>,
    /// With --defended: what banned clients get.
    #[arg(long, value_enum, default_value_t = Answer::TooManyRequests, requires = "defended")]
    ban_answer: Answer,
    /// With --defended: count (and ban) clients by IP, session cookie or
    /// both.
    #[arg(long, value_enum, default_value_t = By::Ip, requires = "defended")]
    ban_by: By,
    /// With --defended: ban length (e.g. 30s; default: WINDOW).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "defended")]
    ban_for: Option<Duration>,
    /// Tokio worker threads (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Print the ground-truth paths, one per line, and exit (with
    /// `--traps`, the trap site's real pages too).
    #[arg(long)]
    print_ground_truth: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trawl-testsite: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_defense(s: &str) -> Result<Defense, String> {
    s.parse()
}

fn run(args: Args) -> Result<(), Error> {
    let cfg = SiteConfig {
        seed: args.seed,
        pages: args.pages,
        fanout: args.fanout,
        page_bytes: args.page_bytes,
        nasty: args.nasty,
        robots: match args.robots {
            Robots::Default => RobotsMode::Default,
            Robots::None => RobotsMode::None,
            Robots::Error => RobotsMode::ServerError,
        },
        latency: args.latency_ms.map(Duration::from_millis),
        log_requests: !args.no_log,
        shop: args.shop,
        shop_products: args.shop_products,
        shop_articles: args.shop_articles,
        defended: args.defended.map(|d| Defense {
            answer: match args.ban_answer {
                Answer::TooManyRequests => BanAnswer::TooManyRequests,
                Answer::Captcha => BanAnswer::Captcha,
                Answer::Forbidden => BanAnswer::Forbidden,
            },
            by: match args.ban_by {
                By::Ip => BanKey::ClientIp,
                By::Cookie => BanKey::SessionCookie,
                By::Both => BanKey::Both,
            },
            ban_for: args.ban_for.unwrap_or(d.window),
            ..d
        }),
        traps: args.traps,
        trap_products: args.trap_products,
    };
    if args.print_ground_truth {
        let site = Site::generate(&cfg);
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let mut truth = site.ground_truth();
        truth.extend(site.traps().real_paths());
        for path in truth {
            writeln!(out, "{path}")?;
        }
        out.flush()?;
        return Ok(());
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(n) = args.workers {
        rt.worker_threads(n.max(1));
    }
    let rt = rt.build()?;
    rt.block_on(async move {
        let addr = args.addr;
        let site = if args.tls {
            TestSite::start_tls_on(cfg, addr).await
        } else {
            TestSite::start_on(cfg, addr).await
        }
        .map_err(|source| Error::Serve { addr, source })?;
        if let (Some(path), Some(pem)) = (&args.ca_out, site.ca_pem()) {
            std::fs::write(path, pem).map_err(|source| Error::WriteCa {
                path: path.clone(),
                source,
            })?;
        }
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", site.base_url())?;
        stdout.flush()?;
        drop(stdout);
        if let Err(e) = tokio::signal::ctrl_c().await {
            eprintln!("trawl-testsite: cannot wait for Ctrl-C: {e}");
        }
        site.shutdown().await;
        Ok(())
    })
}
