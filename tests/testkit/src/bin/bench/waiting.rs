//! The waiting benchmarks, on a cluster where an env was created and the Flux stand-ins were
//! then stopped (the bench writes the Flux objects' status itself): readiness detection
//! against the 2-s poller, API requests while a slow tree converges, and cost at scale.

use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use tokio::sync::oneshot;

use crate::poller;
use crate::process::{self, Running};
use crate::sandbox::{Bench, CONTROLLER_AGENT, Cluster, POLLER_AGENT};
use crate::synthetic::Synthetic;

/// The env the product waits on: its config and name.
pub struct Waiting<'a> {
    pub bench: &'a Bench,
    pub cluster: &'a Cluster,
    pub config: &'a Path,
    pub env: &'a str,
}

/// One detection: how long after the server stored the last Ready each waiter reported.
pub struct Detection {
    pub ours_ms: f64,
    pub poll_ms: Option<f64>,
}

pub struct Cost {
    pub objects: usize,
    pub rss_mb: f64,
    pub cpu_s: f64,
    pub wall_s: f64,
}

impl Waiting<'_> {
    /// `gitops-bootstrap status <env> --wait`, started and waiting (its first progress event).
    async fn start_product(&self) -> anyhow::Result<Running> {
        let args = [
            "--output",
            "json",
            "status",
            self.env,
            "--wait",
            "--timeout",
            "10m",
        ];
        let mut running = process::spawn(self.bench.product(self.config, &args))?;
        running
            .line_where(|l| l.contains(r#""event":"progress""#))
            .await
            .context("gitops-bootstrap status --wait never reported waiting")?;
        Ok(running)
    }

    /// `runs` times: all but the last object Ready, both waiters waiting, then after a random
    /// pause (up to `max_pause`, so the poller's phase varies and watch cuts fall anywhere) the
    /// last one turns Ready. With `poller` false only the product waits.
    pub async fn detections(
        &self,
        objects: usize,
        runs: usize,
        max_pause: Duration,
        poller: bool,
    ) -> anyhow::Result<Vec<Detection>> {
        let client = self.cluster.client(CONTROLLER_AGENT).await?;
        let poller_client = self.cluster.client(POLLER_AGENT).await?;
        let namespace = unique_namespace("detect");
        let tree = Synthetic::create(&client, &namespace, objects).await?;
        let last = tree.len() - 1;
        tree.all_ready_but_last().await?;
        let mut detections = Vec::new();
        for _ in 0..runs {
            tree.set_progressing(last).await?;
            let running = self.start_product().await?;
            let polled = poller.then(|| {
                let (waiting_tx, waiting) = oneshot::channel();
                let poll = tokio::spawn(poller::wait_all_ready(
                    poller_client.clone(),
                    namespace.clone(),
                    tree.len(),
                    waiting_tx,
                ));
                (poll, waiting)
            });
            let poll = match polled {
                Some((poll, waiting)) => {
                    waiting.await.context("the poller stopped")?;
                    Some(poll)
                }
                None => None,
            };
            tokio::time::sleep(random_pause(max_pause)).await;
            tree.set_ready(last).await?;
            let written = self.stored_at(&tree, last)?;
            let ours_ms = self.reported_after(running, written).await?;
            let poll_ms = match poll {
                Some(poll) => Some(process::millis_between(written, poll.await??.ready_at)),
                None => None,
            };
            detections.push(Detection { ours_ms, poll_ms });
        }
        tree.delete().await?;
        Ok(detections)
    }

    /// When the server stored the last status write of object `index`.
    fn stored_at(&self, tree: &Synthetic, index: usize) -> anyhow::Result<SystemTime> {
        let (resource, name) = tree.status_target(index);
        self.cluster
            .admin()
            .writes()
            .iter()
            .rev()
            .find(|w| w.resource == resource && w.name.as_deref() == Some(name))
            .map(|w| w.at)
            .context("the server logged no status write of the last object")
    }

    /// Milliseconds from `written` to the product's result line; checks it exited 0.
    async fn reported_after(&self, running: Running, written: SystemTime) -> anyhow::Result<f64> {
        let (lines, finished) = running.finish().await?;
        anyhow::ensure!(
            finished.code == 0,
            "status --wait exited {}: {}",
            finished.code,
            finished.stderr
        );
        let result = lines
            .iter()
            .find(|l| l.text.contains(r#""event":"result""#))
            .context("status --wait printed no result")?;
        Ok(process::millis_between(written, result.at))
    }

    /// Requests each waiter sent while `apps` objects turn Ready one by one over `converge`.
    pub async fn api_requests(
        &self,
        apps: usize,
        converge: Duration,
    ) -> anyhow::Result<(u64, u64)> {
        let client = self.cluster.client(CONTROLLER_AGENT).await?;
        let poller_client = self.cluster.client(POLLER_AGENT).await?;
        let namespace = unique_namespace("requests");
        let tree = Synthetic::create(&client, &namespace, apps).await?;
        let admin = self.cluster.admin();
        admin.reset_counters();
        let (waiting_tx, waiting) = oneshot::channel();
        let poll = tokio::spawn(poller::wait_all_ready(
            poller_client,
            namespace.clone(),
            apps,
            waiting_tx,
        ));
        let running = self.start_product().await?;
        waiting.await.context("the poller stopped")?;
        let step = converge / u32::try_from(apps)?;
        for index in 0..apps {
            tokio::time::sleep(step).await;
            tree.set_ready(index).await?;
        }
        let (_, finished) = running.finish().await?;
        anyhow::ensure!(finished.code == 0, "status --wait: {}", finished.stderr);
        poll.await??;
        eprintln!(
            "   requests by agent: {:?}",
            admin.request_counts_by_agent()
        );
        eprintln!("   requests by verb: {:?}", admin.request_counts());
        let counts = admin.request_counts_by_agent();
        let ours = counts
            .iter()
            .filter(|(agent, _)| !agent.starts_with("gitops-bootstrap-bench"))
            .map(|(_, n)| n)
            .sum();
        let polled = counts.get(POLLER_AGENT).copied().unwrap_or(0);
        tree.delete().await?;
        Ok((ours, polled))
    }

    /// The product's cost waiting on `objects` objects that turn Ready in dependency order,
    /// each through two status writes (progressing, then Ready) as a controller writes them.
    pub async fn cost(&self, objects: usize) -> anyhow::Result<Cost> {
        let client = self.cluster.client(CONTROLLER_AGENT).await?;
        let namespace = unique_namespace("scale");
        let tree = Synthetic::create(&client, &namespace, objects).await?;
        let running = self.start_product().await?;
        for index in 0..objects {
            tree.set_progressing(index).await?;
            tree.set_ready(index).await?;
        }
        let (_, finished) = running.finish().await?;
        anyhow::ensure!(finished.code == 0, "status --wait: {}", finished.stderr);
        tree.delete().await?;
        Ok(Cost {
            objects,
            rss_mb: finished.peak_rss_kb as f64 / 1024.0,
            cpu_s: finished.cpu.as_secs_f64(),
            wall_s: finished.wall.as_secs_f64(),
        })
    }
}

fn unique_namespace(purpose: &str) -> String {
    format!(
        "bench-{purpose}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

fn random_pause(max: Duration) -> Duration {
    let fraction = (uuid::Uuid::new_v4().as_u64_pair().0 >> 11) as f64 / (1u64 << 53) as f64;
    max.mul_f64(fraction)
}
