//! Runs the testkit's API server (and optionally the Flux stand-ins) until SIGINT/SIGTERM,
//! for trying the product or kubectl by hand: `test-cluster --kubeconfig ./kc [--flux]`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use testkit::apiserver::{ApiServer, ServerOptions};
use testkit::flux::{Controllers, FluxOptions};

#[derive(Parser)]
#[command(about = "A Kubernetes API server for gitops-bootstrap's tests")]
struct Args {
    /// Where to write the kubeconfig (mode 0600) once the server is ready.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Also run the in-process Flux controllers, kubelet and load balancers.
    #[arg(long)]
    flux: bool,
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let server = ApiServer::start(ServerOptions {
        port: args.port,
        ..ServerOptions::default()
    })
    .await?;
    server.write_kubeconfig(&args.kubeconfig)?;
    let _controllers = if args.flux {
        Some(Controllers::start(
            server.client().await?,
            FluxOptions::default(),
        ))
    } else {
        None
    };
    println!("API server: {}", server.url());
    println!("kubeconfig: {}", args.kubeconfig.display());
    if args.flux {
        println!("Flux controllers: running");
    }
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for SIGINT")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
