//! Runs the testkit's API server (and optionally the Flux stand-ins and a Git server) until
//! SIGINT/SIGTERM, for trying the product or kubectl by hand:
//! `test-cluster --kubeconfig ./kc [--flux [--charts any] [--operator]] [--git-dir ./git --seed-repo ./profiles]`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Parser;
use testkit::apiserver::{ApiServer, ServerOptions, write_private};
use testkit::charts::Charts;
use testkit::flux::{Controllers, FluxOptions, components_manifest, operator_manifest};
use testkit::git::GitServer;

/// The repository the sandbox's Git server holds.
const REPO: &str = "gitops";

#[derive(Parser)]
#[command(about = "A Kubernetes API server (and Git server) for gitops-bootstrap's tests")]
struct Args {
    /// Where to write the kubeconfig (mode 0600) once the server is ready.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Also run the in-process Flux controllers, kubelet and load balancers.
    #[arg(long)]
    flux: bool,
    /// Which charts the helm stand-in finds: `catalogue` (the testkit's few) or `any` (every
    /// repository, chart and version; unknown charts install a stand-in Deployment).
    #[arg(long, default_value = "catalogue", requires = "flux")]
    charts: Charts,
    /// Also run the stand-in Flux Operator: it installs the controllers when a FluxInstance
    /// asks, and `--flux-manifests-out` writes its install manifest instead of the
    /// components.
    #[arg(long, requires = "flux")]
    operator: bool,
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Also serve a Git repository `gitops` over HTTPS, writing its URL, CA and token files
    /// (0600) into this directory; `connection.env` there is written last.
    #[arg(long)]
    git_dir: Option<PathBuf>,
    /// A directory committed into the repository under its own name (e.g. `profiles/`).
    #[arg(long, requires = "git_dir")]
    seed_repo: Option<PathBuf>,
    /// Write the install manifest the stand-ins answer to here: the Flux components, or
    /// with `--operator` the Flux Operator's.
    #[arg(long)]
    flux_manifests_out: Option<PathBuf>,
    /// The Flux version the components manifest declares (and the API versions it serves).
    #[arg(long, default_value = "v2.4.0")]
    flux_version: String,
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
            FluxOptions {
                charts: args.charts,
                operator: args.operator,
                ..FluxOptions::default()
            },
        ))
    } else {
        None
    };
    if let Some(path) = &args.flux_manifests_out {
        let manifest = if args.operator {
            operator_manifest()
        } else {
            components_manifest(&args.flux_version)
        };
        std::fs::write(path, manifest).with_context(|| format!("writing {}", path.display()))?;
    }
    let _git = match &args.git_dir {
        Some(dir) => Some(serve_git(dir, args.seed_repo.as_deref()).await?),
        None => None,
    };
    println!("API server: {}", server.url());
    println!("kubeconfig: {}", args.kubeconfig.display());
    if args.flux {
        println!("Flux controllers: running");
    }
    if args.operator {
        println!("Flux Operator: running");
    }
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for SIGINT")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}

/// Starts the Git server with repository `gitops`, seeded from `seed`, and writes how to reach
/// it into `dir`. Tokens go to 0600 files, never to stdout.
async fn serve_git(dir: &Path, seed: Option<&Path>) -> anyhow::Result<GitServer> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let git = GitServer::start().await?;
    let repo = git.create_repo(REPO)?;
    if let Some(seed) = seed {
        git.commit_dir(REPO, "main", seed, "Seed the GitOps repository")?;
    }
    let ca = dir.join("ca.pem");
    git.write_ca_file(&ca)?;
    let push = dir.join("push-token");
    let read = dir.join("read-token");
    write_private(&push, git.push_token())?;
    write_private(&read, git.read_token())?;
    let env = format!(
        "GIT_URL={}\nGIT_CA_FILE={}\nGIT_PUSH_TOKEN_FILE={}\nGIT_READ_TOKEN_FILE={}\n",
        repo.url,
        ca.display(),
        push.display(),
        read.display()
    );
    std::fs::write(dir.join("connection.env"), env).context("writing connection.env")?;
    println!("Git repository: {}", repo.url);
    Ok(git)
}
