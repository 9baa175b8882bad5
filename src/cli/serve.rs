//! `strata serve`: the database behind HTTP (see `strata::server` and
//! docs/SERVER.md). Opens the directory for writing with
//! `SyncMode::Always` by default (a 2xx means the samples are on disk),
//! serves until SIGINT or SIGTERM, then stops accepting, answers the
//! requests in flight and closes the database (a final flush).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use strata::server::forward::{ForwardConfig, ForwardPosition, Forwarder};
use strata::server::rules::{EngineConfig, RulesConfig, RulesService};
use strata::server::{Server, ServerConfig};
use strata::{Db, Error, Options, SyncMode};

const EXAMPLES: &str = "\
Examples:
  strata serve --db DIR                                 # 127.0.0.1:9201
  strata serve --db DIR --listen 0.0.0.0:9201 --bearer-token-file /etc/strata/token
  strata serve --db DIR --rules examples/rules/strata-demo.rules.yml \\
               --alertmanager http://localhost:9093

Prometheus: remote_write: [{url: http://HOST:9201/api/v1/write}]
            remote_read:  [{url: http://HOST:9201/api/v1/read}]
Grafana:    a Prometheus data source with URL http://HOST:9201
Telegraf:   [[outputs.influxdb]] urls = [\"http://HOST:9201\"]
See docs/SERVER.md for every endpoint and limit.";

#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct ServeArgs {
    /// Data directory; created if missing. No other writer may have it open.
    #[arg(long)]
    db: PathBuf,
    /// Address to listen on (TLS: put a reverse proxy in front, see
    /// docs/SERVER.md).
    #[arg(long, default_value = "127.0.0.1:9201")]
    listen: SocketAddr,
    /// A file holding a bearer token: every endpoint but /-/healthy and
    /// /-/ready then requires `Authorization: Bearer <token>`.
    #[arg(long)]
    bearer_token_file: Option<PathBuf>,
    /// Largest request body in bytes, as sent (413 beyond).
    #[arg(long, default_value_t = 32 << 20)]
    max_body_bytes: usize,
    /// Most samples one write request may carry (400 beyond, nothing written).
    #[arg(long, default_value_t = 1_000_000)]
    max_samples_per_request: usize,
    /// Requests handled at once (429 with Retry-After beyond).
    #[arg(long, default_value_t = 64)]
    max_concurrent_requests: usize,
    /// When a write is acknowledged: `always` after its WAL fsync (group
    /// commit), `interval` within 1 s, `never` (the OS decides).
    #[arg(long, value_enum, default_value = "always")]
    sync: SyncArg,
    /// Forward every sample written to this Prometheus remote-write URL
    /// (Mimir, Thanos, VictoriaMetrics, another strata), resuming after a
    /// restart from the position stored in DIR/FORWARD.
    #[arg(long)]
    forward: Option<String>,
    /// A Prometheus rule file of recording and alerting rules (repeatable);
    /// checked at start (exit 1 on any error, as `strata rules check`).
    #[arg(long = "rules", value_name = "FILE")]
    rules: Vec<PathBuf>,
    /// Evaluation interval of rule groups that set none.
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = parse_rules_interval)]
    rules_interval: i64,
    /// An Alertmanager to send alerts to, `http://HOST:9093` (repeatable).
    #[arg(long = "alertmanager", value_name = "URL")]
    alertmanagers: Vec<String>,
    /// This server's URL as users reach it, for alerts' generatorURL
    /// (default http://LISTEN).
    #[arg(long, value_name = "URL")]
    external_url: Option<String>,
}

fn parse_rules_interval(text: &str) -> Result<i64, String> {
    match strata::server::rules::parse_duration(text) {
        Some(ms) if ms > 0 => Ok(ms),
        _ => Err("expected a duration above zero, like 30s or 1m".to_owned()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SyncArg {
    Always,
    Interval,
    Never,
}

pub fn run(args: &ServeArgs) -> Result<ExitCode, Error> {
    let bearer_token = match &args.bearer_token_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
            let token = text.trim().to_owned();
            if token.is_empty() {
                errln!("strata serve: {} holds no token", path.display());
                return Ok(ExitCode::from(2));
            }
            Some(token)
        }
        None => None,
    };
    let rule_groups = match strata::server::rules::load_files(&args.rules, args.rules_interval) {
        Ok(groups) => groups,
        Err(errors) => {
            for error in errors {
                errln!("strata serve: {error}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let sync = match args.sync {
        SyncArg::Always => SyncMode::Always,
        SyncArg::Interval => SyncMode::Interval(1_000),
        SyncArg::Never => SyncMode::Never,
    };
    // The forwarder's WAL files must survive the open.
    let keep_wal_from = match &args.forward {
        Some(_) => Some(ForwardPosition::load(&args.db)?.file_id),
        None => None,
    };
    let options = super::writable_options(
        &args.db,
        Options {
            sync,
            keep_wal_from,
            ..Options::default()
        },
    )?;
    let db = Arc::new(Db::open(&args.db, options)?);
    for action in db.recovery_report().actions() {
        errln!("strata serve: on open, {action}");
    }
    let forwarder = match &args.forward {
        Some(url) => Some(Forwarder::start(
            Arc::clone(&db),
            ForwardConfig::new(url.clone()),
        )?),
        None => None,
    };
    let config = ServerConfig {
        listen: args.listen,
        max_body_bytes: args.max_body_bytes,
        max_samples_per_request: args.max_samples_per_request,
        max_concurrent_requests: args.max_concurrent_requests,
        bearer_token,
        ..ServerConfig::default()
    };
    let rules_config = RulesConfig {
        alertmanagers: args.alertmanagers.clone(),
        engine: EngineConfig {
            external_url: args
                .external_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", args.listen)),
            query_timeout: config.query_timeout,
            ..EngineConfig::default()
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("start", "the tokio runtime", e))?;
    let served = runtime.block_on(async {
        let server = Server::bind(Arc::clone(&db), config).await?;
        if let Some(forwarder) = &forwarder {
            let _ = server.state().forward.set(forwarder.stats_handle());
        }
        let addr = server.local_addr()?;
        outln!(
            "strata serve: listening on http://{addr} (data in {})",
            args.db.display()
        )
        .map_err(std::io::Error::other)?;
        let mut rules = None;
        if !args.rules.is_empty() {
            let groups = rule_groups;
            let count: usize = groups.iter().map(|g| g.rules.len()).sum();
            rules = Some(RulesService::start(server.state(), groups, rules_config)?);
            outln!(
                "strata serve: evaluating {count} rules, alerts to {} Alertmanager(s)",
                args.alertmanagers.len()
            )
            .map_err(std::io::Error::other)?;
        }
        let served = server.run(shutdown_signal()).await;
        // Stops evaluating and sends the queued notifications.
        drop(rules);
        served
    });
    drop(runtime);
    if let Some(forwarder) = forwarder {
        forwarder.stop();
    }
    served.map_err(|e| Error::io("serve on", args.listen.to_string(), e))?;
    outln!("strata serve: shutting down, closing the database")?;
    match Arc::try_unwrap(db) {
        Ok(db) => db.close()?,
        // Something still holds the database (cannot happen once the
        // runtime is gone); dropping it syncs the WAL, nothing is lost.
        Err(db) => db.sync_wal()?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = interrupt => {}
        () = terminate => {}
    }
}
