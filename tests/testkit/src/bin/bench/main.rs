//! The benchmarks of gitops-bootstrap against what its users would otherwise run, side by side
//! in one run on the test cluster: readiness detection (vs a 2-s poller), API requests while
//! waiting, cost at scale, applying the Flux components (vs `kubectl apply --server-side`) and
//! create-env's own overhead; create-env's overhead and readiness detection also with Flux
//! installed by the Flux Operator (`flux.install = "operator"`). Prints a table and writes `<target>/bench/results.json`.
//!
//! `cargo build --release --workspace --bins && cargo run --release -p testkit --bin bench`
//! (`--smoke`: a quick run with few runs and small trees, to check the bench still works).

mod components;
mod install;
mod poller;
mod process;
mod report;
mod sandbox;
mod synthetic;
mod waiting;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;

use report::{ApiRequests, ComponentsApply, OperatorMode, ReadinessDetection, Results, Scale};
use sandbox::{Bench, Method};
use waiting::Waiting;

#[derive(Parser)]
#[command(about = "Benchmarks gitops-bootstrap against the waiters and appliers it replaces")]
struct Args {
    /// A quick run (few runs, small trees) that checks the bench works; its figures mean little.
    #[arg(long)]
    smoke: bool,
    /// The gitops-bootstrap binary (default: the one beside this binary).
    #[arg(long)]
    product: Option<PathBuf>,
    /// Where results.json goes (default: <target dir>/bench).
    #[arg(long)]
    out: Option<PathBuf>,
    /// How many create-envs of each install method (default: 5, 1 with --smoke); the
    /// overheads are their medians.
    #[arg(long)]
    samples: Option<usize>,
}

/// How much of everything: the figures, or a smoke run's.
struct Plan {
    detection_runs: usize,
    detection_objects: usize,
    request_apps: usize,
    converge: Duration,
    scale: Vec<usize>,
    cut_objects: usize,
    samples: usize,
}

impl Plan {
    fn new(smoke: bool) -> Plan {
        if smoke {
            Plan {
                detection_runs: 2,
                detection_objects: 6,
                request_apps: 4,
                converge: Duration::from_secs(4),
                scale: vec![10, 20, 40],
                cut_objects: 40,
                samples: 1,
            }
        } else {
            Plan {
                detection_runs: 20,
                detection_objects: 20,
                request_apps: 20,
                converge: Duration::from_secs(60),
                scale: vec![100, 300, 1000],
                cut_objects: 1000,
                samples: 5,
            }
        }
    }
}

/// Every watch is cut after this long in the run at scale.
const WATCH_CUT: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut plan = Plan::new(args.smoke);
    plan.samples = args.samples.unwrap_or(plan.samples).max(1);
    let here = std::env::current_exe()?;
    let bin_dir = here.parent().context("the bench binary has a directory")?;
    let product = args
        .product
        .unwrap_or_else(|| bin_dir.join("gitops-bootstrap"));
    let out = args.out.unwrap_or_else(|| bin_dir.join("../bench"));
    let components = components::realistic(sandbox::FLUX_VERSION)?;
    let bench = Bench::start(product, &components).await?;
    let load_before = report::load_average();

    eprintln!(
        "== create-env ×{} and kubectl apply --server-side ×{}",
        plan.samples, plan.samples
    );
    let (mut overhead, mut operator_overhead) = (Vec::new(), Vec::new());
    let (mut ours_apply, mut kubectl_apply) = (Vec::new(), Vec::new());
    let (mut last, mut last_operator) = (None, None);
    for sample in 0..plan.samples {
        let kubectl = install::kubectl_apply(&bench, &format!("kubectl-{sample}")).await?;
        kubectl_apply.push(kubectl.as_secs_f64() * 1000.0);
        let env = format!("bench{sample}");
        let created = install::create_env(&bench, &env, Method::Components).await?;
        overhead.push(created.overhead_ms);
        ours_apply.push(created.apply_ms);
        last = Some(created);
        let env = format!("op{sample}");
        let operator = install::create_env(&bench, &env, Method::Operator).await?;
        operator_overhead.push(operator.overhead_ms);
        last_operator = Some(operator);
    }
    let mut created = last.context("at least one sample")?;
    created.cluster.stop_flux().await;
    let mut operator = last_operator.context("at least one operator sample")?;
    operator.cluster.stop_flux().await;
    eprintln!(
        "== readiness detection ×{} (operator mode)",
        plan.detection_runs
    );
    let operator_waiting = Waiting {
        bench: &bench,
        cluster: &operator.cluster,
        config: &operator.config,
        env: &operator.env,
    };
    let operator_detections: Vec<f64> = operator_waiting
        .detections(
            plan.detection_objects,
            plan.detection_runs,
            poller::INTERVAL,
            false,
        )
        .await?
        .iter()
        .map(|d| d.ours_ms)
        .collect();
    let waiting = Waiting {
        bench: &bench,
        cluster: &created.cluster,
        config: &created.config,
        env: &created.env,
    };

    eprintln!("== readiness detection ×{}", plan.detection_runs);
    let detections = waiting
        .detections(
            plan.detection_objects,
            plan.detection_runs,
            poller::INTERVAL,
            true,
        )
        .await?;
    eprintln!("== API requests while {} apps converge", plan.request_apps);
    let (ours_requests, poll_requests) = waiting
        .api_requests(plan.request_apps, plan.converge)
        .await?;
    let mut scale = Vec::new();
    for objects in &plan.scale {
        eprintln!("== waiting on {objects} objects");
        let cost = waiting.cost(*objects).await?;
        scale.push(Scale {
            objects: cost.objects,
            rss_mb: cost.rss_mb,
            cpu_s: cost.cpu_s,
            wall_s: cost.wall_s,
        });
    }
    eprintln!(
        "== readiness detection at {} objects, watches cut every {WATCH_CUT:?}",
        plan.cut_objects
    );
    let admin = created.cluster.admin();
    admin.set_faults(testkit::apiserver::FaultOptions {
        watch_cut_after_ms: Some(u64::try_from(WATCH_CUT.as_millis())?),
        ..Default::default()
    });
    let cut = waiting
        .detections(
            plan.cut_objects,
            plan.detection_runs,
            WATCH_CUT + Duration::from_secs(1),
            false,
        )
        .await?;
    admin.set_faults(Default::default());

    let ours: Vec<f64> = detections.iter().map(|d| d.ours_ms).collect();
    let polled: Vec<f64> = detections.iter().filter_map(|d| d.poll_ms).collect();
    let cut: Vec<f64> = cut.iter().map(|d| d.ours_ms).collect();
    let results = Results {
        readiness_detection_ms: ReadinessDetection {
            ours: report::median(&ours),
            ours_p99: report::p99(&ours),
            poll_2s: report::median(&polled),
            runs: ours.len(),
            ours_p99_at_1000_with_watch_cuts: report::p99(&cut),
        },
        api_requests: ApiRequests {
            ours: ours_requests,
            poll_2s: poll_requests,
        },
        scale,
        components_apply_ms: ComponentsApply {
            ours: report::median(&ours_apply),
            kubectl_ssa: report::median(&kubectl_apply),
        },
        overhead_ms: report::median(&overhead),
        operator: OperatorMode {
            overhead_ms: report::median(&operator_overhead),
            readiness_detection_ms: report::median(&operator_detections),
            readiness_detection_p99_ms: report::p99(&operator_detections),
        },
    };
    let path = report::write(&results, &out)?;
    let context = report::Context {
        smoke: args.smoke,
        components_bytes: components.len(),
        cut_objects: plan.cut_objects,
        load_before,
        load_after: report::load_average(),
    };
    println!("{}", report::table(&results, &context));
    eprintln!("wrote {}", path.display());
    Ok(())
}
