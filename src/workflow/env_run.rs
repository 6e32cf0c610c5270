//! How every env command (create-env, rebuild, teardown) starts and ends: the env's lock
//! first — a run that does not hold it writes nothing, not even its run record — then the run
//! record, saved as `running` before the first step, then the step runner; at the end the
//! record closed with the run's outcome.

use std::future::Future;

use tokio_util::sync::CancellationToken;

use super::phases::lock;
use super::phases::preflight::Prepared;
use super::{EnvPaths, Outcome, Steps};
use crate::config::{Config, EnvConfig};
use crate::error::Result;
use crate::lock::EnvLock;
use crate::record::RunRecord;
use crate::report::Reporter;

/// One run of an env command, holding the env's lock until it is finished.
pub struct EnvRun<'r> {
    steps: Steps<'r>,
    reporter: &'r dyn Reporter,
    cancel: CancellationToken,
    paths: EnvPaths,
    /// The record the env's previous run left, read under the lock.
    previous: Option<RunRecord>,
    _lock: EnvLock,
}

impl<'r> EnvRun<'r> {
    /// Takes the env's lock (saying so when it takes it over from a killed run), and opens
    /// and saves the run record of `command`.
    pub fn start(
        reporter: &'r dyn Reporter,
        cancel: CancellationToken,
        config: &Config,
        env: &EnvConfig,
        command: &str,
    ) -> Result<EnvRun<'r>> {
        let paths = EnvPaths::new(config, &env.name);
        let env_lock = lock::acquire(env, &paths)?;
        lock::announce_takeover(&env_lock, env, reporter);
        let previous = RunRecord::load(&paths.record());
        let steps = Steps::new(
            reporter,
            cancel.clone(),
            RunRecord::start(&env.name, command),
        );
        Ok(EnvRun {
            steps,
            reporter,
            cancel,
            paths,
            previous,
            _lock: env_lock,
        })
    }

    /// Writes the record as it stands (status `running`), so a run killed before it ends
    /// still leaves one behind. Called once the driver has put in what it keeps from the
    /// previous run.
    pub fn save_start(&self) {
        self.steps.save_start(&self.paths.record());
    }

    /// Runs one named step (see [`Steps::step`]).
    pub async fn step<T>(
        &mut self,
        name: &'static str,
        work: impl Future<Output = Result<(Outcome, T)>>,
    ) -> Result<T> {
        self.steps.step(name, work).await
    }

    /// The run record, for facts a driver learns along the way (the commit, the keys).
    pub fn record(&mut self) -> &mut RunRecord {
        self.steps.record()
    }

    /// Records the keys preflight settled: the age recipient and (ssh) Flux's deploy key.
    pub fn record_keys<F>(&mut self, prepared: &Prepared<F>) {
        let record = self.record();
        record.age_recipient = Some(prepared.age_key.recipient.clone());
        record.deploy_key = prepared
            .deploy_key
            .as_ref()
            .map(|key| key.public_openssh.clone());
    }

    /// The record the env's previous run left (what it learnt of the cluster, say).
    pub fn previous(&self) -> Option<&RunRecord> {
        self.previous.as_ref()
    }

    pub fn reporter(&self) -> &'r dyn Reporter {
        self.reporter
    }

    pub fn cancel(&self) -> &CancellationToken {
        &self.cancel
    }

    pub fn paths(&self) -> &EnvPaths {
        &self.paths
    }

    /// Closes the record with the run's outcome and writes it; the lock goes with the run.
    pub fn finish<T>(self, outcome: &Result<T>) -> RunRecord {
        self.steps.finish(outcome, &self.paths.record())
    }
}
