//! summary: the last step of create-env, rebuild and teardown — what the run made or removed,
//! and what the operator must do with it (back up the age key, register the deploy key, the
//! age key kept after a teardown), as notices and as one line.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cluster::Snapshot;
use crate::cluster::teardown::Leftover;
use crate::config::{ContractField, EnvConfig, OutputMapping};
use crate::contract::ClusterAccess;
use crate::error::Result;
use crate::keys::{KeyOwner, KeyStore};
use crate::report::{Reporter, short_sha};
use crate::terraform::{Flavor, command};
use crate::workflow::Outcome;
use crate::workflow::phases::detect::Situation;

/// The `result` of create-env.
#[derive(Debug, Clone, Serialize)]
pub struct CreateEnvResult {
    pub env: String,
    pub profile: String,
    pub cluster_name: String,
    pub repository: String,
    pub branch: String,
    pub commit: String,
    pub flux_version: String,
    pub age_recipient: String,
    pub age_key_file: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deploy_key: Option<String>,
    /// How kubectl reaches the cluster, in the access form the env's outputs give.
    pub kubectl_access: String,
    pub apps: Snapshot,
}

/// Tells the operator what to keep and what to register; the result itself is the command's.
pub async fn run(reporter: &dyn Reporter, result: &CreateEnvResult) -> Result<(Outcome, ())> {
    reporter.notice(format!(
        "the age key of env {} is {} — back it up: rebuilding the env needs it to decrypt its secrets",
        result.env,
        result.age_key_file.display()
    ));
    if let Some(key) = &result.deploy_key {
        reporter.notice(format!(
            "register this read-only deploy key for Flux on {}: {key}",
            result.repository
        ));
    }
    let summary = format!(
        "env {} runs profile {} ({}/{} Flux objects Ready)",
        result.env, result.profile, result.apps.ready, result.apps.total
    );
    Ok((Outcome::Done(summary), ()))
}

/// rebuild's: the situation it recovered from and the apps it brought back.
pub async fn rebuilt(env: &str, situation: Situation, apps: &Snapshot) -> Result<(Outcome, ())> {
    let text = format!(
        "env {env} recovered ({}): {}/{} Flux objects Ready",
        situation.describe(),
        apps.ready,
        apps.total
    );
    Ok((Outcome::Done(text), ()))
}

/// teardown's: what went and what stayed; the age key is kept (a rebuild would need it) and
/// named. Returns where it is, when there is one (a never-created env has no key to keep).
pub async fn torn_down(
    reporter: &dyn Reporter,
    env: &EnvConfig,
    removed: &[String],
    leftovers: &[Leftover],
) -> Result<(Outcome, Option<PathBuf>)> {
    let age_key_file = KeyStore::from_env().existing(&KeyOwner::of(env));
    if let Some(key) = &age_key_file {
        reporter.notice(format!(
            "the age key of env {} is kept at {}: a rebuild would need it; delete it yourself once nothing encrypted for it matters",
            env.name,
            key.display()
        ));
    }
    let text = format!("{} removed, {} left behind", removed.len(), leftovers.len());
    Ok((Outcome::Done(text), age_key_file))
}

/// The access hint matches the access the contract gave: a kubeconfig output, an endpoint with
/// a token output, or an endpoint with a credential plugin. `terraform_dir` is where Terraform
/// runs for the env (its generated root, or its own root in place), `flavor` which command the
/// user has. No secret is printed: the commands read it from Terraform when they run.
pub fn kubectl_access(
    env: &str,
    outputs: &OutputMapping,
    flavor: Flavor,
    terraform_dir: &Path,
    access: &ClusterAccess,
    ca_base64: bool,
) -> String {
    let read = |field| {
        let source = outputs.source(field);
        command::read_output_line(
            flavor.command(),
            terraform_dir,
            &source.output,
            &source.path,
        )
    };
    // kubectl takes the CA as a PEM file: an output of base64 is decoded on the way.
    let ca_file = format!(
        "{}{} > ca.pem",
        read(ContractField::ClusterCaCertificate),
        if ca_base64 { " | base64 -d" } else { "" }
    );
    match access {
        ClusterAccess::Kubeconfig(_) => format!(
            "`{} > kubeconfig` writes a kubeconfig (then `kubectl --kubeconfig kubeconfig …`)",
            read(ContractField::Kubeconfig)
        ),
        ClusterAccess::Endpoint { endpoint, .. } => format!(
            "server {endpoint} with the CA written by `{ca_file}` and the token from `{}` \
             (`kubectl --server {endpoint} --certificate-authority ca.pem --token \"$({})\" …`)",
            read(ContractField::ClusterToken),
            read(ContractField::ClusterToken)
        ),
        ClusterAccess::EndpointExec { endpoint, exec, .. } => format!(
            "server {endpoint} with the CA written by `{ca_file}` and credentials from the \
             plugin `{}` (`kubectl config set-credentials {} --exec-api-version \
             client.authentication.k8s.io/v1beta1 --exec-command {}{}`)",
            exec.command_line(),
            env,
            exec.command,
            exec.args
                .iter()
                .map(|arg| format!(" --exec-arg {arg}"))
                .collect::<String>()
        ),
    }
}

impl CreateEnvResult {
    /// The result for people: what runs where, and how to reach it.
    pub fn text(&self) -> String {
        let mut text = format!(
            "env {} is ready: cluster {}, profile {}, {}/{} Flux objects Ready\n",
            self.env, self.cluster_name, self.profile, self.apps.ready, self.apps.total
        );
        text.push_str(&format!(
            "  GitOps: {} ({} @ {})\n  Flux: {}\n  age recipient: {} (key: {})\n",
            self.repository,
            self.branch,
            short_sha(&self.commit),
            self.flux_version,
            self.age_recipient,
            self.age_key_file.display()
        ));
        text.push_str(&format!(
            "  next: `gitops-bootstrap status {}`; kubectl access: {}",
            self.env, self.kubectl_access
        ));
        text
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;
    use crate::contract::ExecCredential;

    const PEM: &str = "-----BEGIN CERTIFICATE-----";

    /// One hint per access form, none of them printing a secret.
    #[test]
    fn the_access_hint_follows_the_access_form() {
        let dir = Path::new("/state/dev/terraform");
        let defaults = OutputMapping::default();
        let kubeconfig = ClusterAccess::Kubeconfig(SecretString::from("secret-kubeconfig"));
        let token = ClusterAccess::Endpoint {
            endpoint: "https://api.dev.example:6443".to_owned(),
            ca_certificate_pem: PEM.to_owned(),
            token: SecretString::from("secret-token"),
        };
        let exec = ClusterAccess::EndpointExec {
            endpoint: "https://api.dev.example:6443".to_owned(),
            ca_certificate_pem: PEM.to_owned(),
            exec: ExecCredential {
                command: "aws".to_owned(),
                args: ["eks", "get-token", "--cluster-name", "dev"]
                    .map(str::to_owned)
                    .into(),
                env: [("AWS_PROFILE".to_owned(), "secret-profile".to_owned())].into(),
            },
        };
        let eks: OutputMapping = toml::from_str(
            "cluster_ca_certificate = \"cluster.certificate_authority.0.data\"\n\
             cluster_token = \"eks_token\"",
        )
        .unwrap();
        // EKS gives its CA as base64.
        let hints = [
            kubectl_access("dev", &defaults, Flavor::Terraform, dir, &kubeconfig, false),
            kubectl_access("dev", &defaults, Flavor::Terraform, dir, &token, false),
            kubectl_access("dev", &eks, Flavor::Terraform, dir, &token, true),
            kubectl_access("dev", &eks, Flavor::Terraform, dir, &exec, true),
        ]
        .join("\n");
        assert!(!hints.contains("secret-"), "{hints}");
        insta::assert_snapshot!(hints);
    }
}
