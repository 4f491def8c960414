//! `trawl serve`: the Scraper API on a port, until SIGINT or SIGTERM; and
//! `trawl serve keys add|list|revoke`.

use anyhow::Context;
use trawl_api::keys::Keys;

use crate::args::{KeysAction, ServeArgs, ServeCommand};

pub async fn run(args: &ServeArgs) -> anyhow::Result<u8> {
    if let Some(ServeCommand::Keys { action, data }) = &args.command {
        return keys(action, data);
    }
    let keys = Keys::load(&args.data)?;
    let mut settings = Vec::new();
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--config: reading {}", path.display()))?;
        match trawl_settings::Layer::from_toml(&path.display().to_string(), &text, None) {
            Ok(layer) => settings.push(layer),
            Err(error) => {
                eprintln!("trawl: {error}");
                return Ok(super::EXIT_BAD_INPUT);
            }
        }
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    if keys.is_empty() {
        eprintln!(
            "trawl: no API keys in {} (`trawl serve keys add NAME`): the API is open to whoever reaches {addr}.",
            args.data.display()
        );
    }
    let cfg = trawl_api::ApiConfig {
        allow_private: args.allow_private,
        allow_addresses: args.allow_address.clone(),
        hosts: args
            .target_host
            .iter()
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
            .collect(),
        data: Some(args.data.clone()),
        settings,
        redis: args.redis.clone(),
        store: args.store.clone(),
        obey_robots: !args.ignore_robots,
        timeout: args.timeout,
        keys,
        limits: trawl_api::limits::Limits {
            rate: args.rate.filter(|r| *r > 0.0),
            max_jobs: args.max_jobs,
            max_scrapes: args.max_scrapes,
            quota: args.page_quota,
        },
        ..trawl_api::ApiConfig::default()
    };
    if args.allow_private {
        eprintln!(
            "trawl: the address guard is OFF (--allow-private): requests may reach this machine and its network."
        );
    }
    crate::logs::set_ids("serve", &cfg.worker_id);
    eprintln!("trawl: serving the Scraper API on http://{addr}");
    eprintln!(
        "trawl: dashboard on http://{addr}/dashboard, Prometheus metrics on http://{addr}/metrics{}",
        if cfg.keys.is_empty() {
            ""
        } else {
            " (admin keys only)"
        }
    );
    let stop = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
    };
    trawl_api::serve(listener, cfg, stop)
        .await
        .context("serving the API")?;
    Ok(0)
}

fn keys(action: &KeysAction, data: &std::path::Path) -> anyhow::Result<u8> {
    let mut keys = Keys::load(data)?;
    match action {
        KeysAction::Add { name, admin } => {
            let secret = if *admin {
                keys.add_admin(name)?
            } else {
                keys.add(name)?
            };
            eprintln!("trawl: key {name:?} added; it is shown once, keep it:");
            println!("{secret}");
        }
        KeysAction::List => {
            for k in keys.list() {
                let role = if k.admin { "\tadmin" } else { "" };
                println!("{}\t{}…\tcreated {}{role}", k.name, k.prefix, k.created);
            }
        }
        KeysAction::Revoke { name } => {
            keys.revoke(name)?;
            eprintln!("trawl: key {name:?} revoked");
        }
    }
    Ok(0)
}
