//! The objects gitops-bootstrap writes into `flux-system` before Flux syncs (docs/design.md):
//! the ConfigMap and Secret receiving the contract (`cluster-config` and `cluster-secrets`
//! unless the repository names them otherwise), the Git read credentials in
//! Flux's format (`flux-system`) and the SOPS age key (`sops-age`). Secret values stay in
//! `SecretString` until the Secret's `data` is built, right before it is sent.

use std::collections::BTreeMap;

use base64::Engine as _;
use kube::Client;
use kube::api::DynamicObject;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::json;

use super::apply::{ApplyError, ApplyOptions, ApplySummary, CONFIG_MANAGER, apply_objects};
use super::ownership::Owner;
use super::{FLUX_NAMESPACE, ObjectName};
use crate::config::{FluxInstall, SubstitutionConfig};
use crate::contract::Contract;

/// The Secret Flux's GitRepository `flux-system` reads its credentials from.
pub const GIT_CREDENTIALS: &str = "flux-system";
pub const SOPS_AGE: &str = "sops-age";
/// The ConfigMap of runtime values Flux Operator fleets substitute from.
pub const RUNTIME_INFO: &str = "flux-runtime-info";

/// The label with which kustomize-controller (from Flux 2.7 on) watches a ConfigMap or Secret
/// and reconciles at once the Kustomizations substituting from it when it changes.
pub const WATCH_LABEL: &str = "reconcile.fluxcd.io/watch";
const WATCH_ENABLED: &str = "Enabled";
/// The first Flux minor (v2.<minor>) whose controllers honour [`WATCH_LABEL`].
const WATCHED_SINCE_MINOR: u32 = 7;

/// The labels of an object Flux substitutes from (the contract's ConfigMap and Secret, the
/// operator's runtime info), for the env's Flux version: [`WATCH_LABEL`] where that version
/// honours it, so a change the tool writes — or anyone else does — reaches the apps at once
/// rather than at their next interval. On an older Flux nothing: a label it ignores would
/// only promise what does not happen.
pub fn substitution_labels(flux_version: &str) -> BTreeMap<String, String> {
    let watched =
        crate::config::flux_minor(flux_version).is_some_and(|minor| minor >= WATCHED_SINCE_MINOR);
    watched
        .then(|| (WATCH_LABEL.to_owned(), WATCH_ENABLED.to_owned()))
        .into_iter()
        .collect()
}

/// How Flux's source-controller reads the repository. Debug shows no secret value.
#[derive(Debug, Clone)]
pub enum GitReadCredentials {
    Https {
        username: String,
        password: SecretString,
        /// A CA for a Git server whose certificate the system roots do not cover.
        ca_pem: Option<String>,
    },
    Ssh {
        /// The private key (OpenSSH PEM).
        identity: SecretString,
        identity_pub: String,
        /// The server's host keys, `known_hosts` format.
        known_hosts: String,
    },
}

/// The env's age identity, which Flux uses to decrypt SOPS files.
#[derive(Debug, Clone)]
pub struct SopsAgeKey {
    pub env_name: String,
    /// `AGE-SECRET-KEY-1…`, as in an `.agekey` file.
    pub identity: SecretString,
}

/// Everything the config and secrets objects are made of.
#[derive(Debug, Clone, Copy)]
pub struct BootstrapInputs<'a> {
    pub contract: &'a Contract,
    /// The names of the ConfigMap and Secret receiving the contract.
    pub names: &'a SubstitutionConfig,
    pub git: &'a GitReadCredentials,
    pub age_key: &'a SopsAgeKey,
    /// Recorded on the Namespace: whose cluster this is.
    pub owner: &'a Owner,
    /// How Flux is installed: with the operator the contract also lands in `flux-runtime-info`.
    pub install: FluxInstall,
    /// The env's Flux version, which decides the labels of the contract's objects.
    pub flux_version: &'a str,
}

/// Applies the Namespace, ConfigMap and Secrets with field manager `gitops-bootstrap`. They are
/// the tool's (whoever wrote them before, on an adopted cluster): a field another manager set
/// (a hand edit, another tool) is taken back with force, and reported.
pub async fn apply_bootstrap_objects(
    client: &Client,
    inputs: BootstrapInputs<'_>,
) -> Result<ApplySummary, ApplyError> {
    let options = ApplyOptions::new(CONFIG_MANAGER).adopting();
    apply_objects(client, bootstrap_objects(inputs), &options).await
}

/// The objects the tool writes and owns, by name: `status --drift` reports edits of them.
pub fn own_objects(names: &SubstitutionConfig) -> Vec<ObjectName> {
    let secret = |name: &str| ObjectName::namespaced("Secret", FLUX_NAMESPACE, name);
    vec![
        ObjectName::new("Namespace", None, FLUX_NAMESPACE),
        ObjectName::namespaced("ConfigMap", FLUX_NAMESPACE, &names.config_map),
        secret(&names.secret),
        secret(GIT_CREDENTIALS),
        secret(SOPS_AGE),
    ]
}

/// The objects, built at the last moment: the Secrets' `data` holds the values.
fn bootstrap_objects(inputs: BootstrapInputs<'_>) -> Vec<DynamicObject> {
    // The Flux Operator labels the Namespace it installs into as its own: the record is then
    // the annotations alone, or each run would take the label back from it and back again.
    let labels = match inputs.install {
        FluxInstall::Components => Owner::labels(),
        FluxInstall::Operator => Default::default(),
    };
    let namespace = object(json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": FLUX_NAMESPACE,
            "labels": labels,
            "annotations": inputs.owner.annotations(),
        },
    }));
    let age_key_name = format!("{}.agekey", inputs.age_key.env_name);
    let age = [(
        age_key_name,
        inputs.age_key.identity.expose_secret().as_bytes().to_vec(),
    )];
    let mut objects = vec![namespace];
    objects.extend(substitution_objects(
        inputs.contract,
        inputs.names,
        inputs.install,
        inputs.flux_version,
    ));
    objects.extend([
        secret(GIT_CREDENTIALS, git_secret_data(inputs.git)),
        secret(SOPS_AGE, age.into_iter().collect()),
    ]);
    objects
}

/// The ConfigMap and Secret that receive the output contract (`plan` dry-runs these too),
/// labelled for `flux_version` ([`substitution_labels`]).
pub fn contract_objects(
    contract: &Contract,
    names: &SubstitutionConfig,
    flux_version: &str,
) -> Vec<DynamicObject> {
    let config = object(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": names.config_map, "namespace": FLUX_NAMESPACE},
        "data": contract.config_map_data(),
    }));
    let cluster_secrets = contract
        .secret_data()
        .iter()
        .map(|(key, value)| (key.clone(), value.expose_secret().as_bytes().to_vec()))
        .collect();
    let mut objects = vec![config, secret(&names.secret, cluster_secrets)];
    let labels = substitution_labels(flux_version);
    // No labels at all rather than an empty map, which would be a field of its own.
    if !labels.is_empty() {
        for object in &mut objects {
            object.metadata.labels = Some(labels.clone());
        }
    }
    objects
}

/// The contract's objects for the env's install method (`plan` dry-runs these too). With the
/// Flux Operator the contract's values also land in `flux-runtime-info`, beside the configured
/// ConfigMap (or as it, when the repository names it so), so fleets laid out for the operator
/// substitute from it. That ConfigMap is shared with Git: labelled as Flux's runtime info and
/// applied by Flux with `ssa: Merge`, so Flux adds the keys Git holds and leaves the tool's,
/// and the tool's apply (no force) leaves the keys Flux's manager owns.
pub fn substitution_objects(
    contract: &Contract,
    names: &SubstitutionConfig,
    install: FluxInstall,
    flux_version: &str,
) -> Vec<DynamicObject> {
    let mut objects = contract_objects(contract, names, flux_version);
    if install == FluxInstall::Operator && names.config_map != RUNTIME_INFO {
        let mut runtime_info = objects[0].clone();
        runtime_info.metadata.name = Some(RUNTIME_INFO.to_owned());
        objects.push(runtime_info);
    }
    for object in &mut objects {
        let is_config_map = object.types.as_ref().is_some_and(|t| t.kind == "ConfigMap");
        if is_config_map && object.metadata.name.as_deref() == Some(RUNTIME_INFO) {
            let (labels, annotations) = runtime_info_metadata(flux_version);
            object
                .metadata
                .labels
                .get_or_insert_default()
                .extend(labels);
            object
                .metadata
                .annotations
                .get_or_insert_default()
                .extend(annotations);
        }
    }
    objects
}

/// What marks `flux-runtime-info` as Flux's runtime info: label `toolkit.fluxcd.io/runtime`
/// and the labels of every object Flux substitutes from ([`substitution_labels`]: a change
/// reconciles its readers at once where the Flux version watches), annotation
/// `kustomize.toolkit.fluxcd.io/ssa: Merge` (Git and the tool share it).
fn runtime_info_metadata(
    flux_version: &str,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let pairs = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    };
    let mut labels = pairs(&[("toolkit.fluxcd.io/runtime", "true")]);
    labels.extend(substitution_labels(flux_version));
    (
        labels,
        pairs(&[("kustomize.toolkit.fluxcd.io/ssa", "Merge")]),
    )
}

/// The keys Flux's source-controller reads: `username`/`password` (+ `ca.crt`) for https,
/// `identity`/`identity.pub`/`known_hosts` for ssh.
fn git_secret_data(credentials: &GitReadCredentials) -> BTreeMap<String, Vec<u8>> {
    let entries: Vec<(&str, &str)> = match credentials {
        GitReadCredentials::Https {
            username,
            password,
            ca_pem,
        } => {
            let mut entries = vec![
                ("username", username.as_str()),
                ("password", password.expose_secret()),
            ];
            entries.extend(ca_pem.as_deref().map(|ca| ("ca.crt", ca)));
            entries
        }
        GitReadCredentials::Ssh {
            identity,
            identity_pub,
            known_hosts,
        } => vec![
            ("identity", identity.expose_secret()),
            ("identity.pub", identity_pub.as_str()),
            ("known_hosts", known_hosts.as_str()),
        ],
    };
    entries
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.as_bytes().to_vec()))
        .collect()
}

/// An Opaque Secret in `flux-system`. `data` rather than `stringData`, so a rerun with the
/// same values is a no-op the API server recognises (no resourceVersion bump).
fn secret(name: &str, data: BTreeMap<String, Vec<u8>>) -> DynamicObject {
    let encoded: BTreeMap<String, String> = data
        .into_iter()
        .map(|(key, value)| (key, base64::engine::general_purpose::STANDARD.encode(value)))
        .collect();
    object(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": FLUX_NAMESPACE},
        "type": "Opaque",
        "data": encoded,
    }))
}

fn object(value: serde_json::Value) -> DynamicObject {
    // The literals above are always valid objects.
    serde_json::from_value(value).expect("bootstrap object literal")
}

#[cfg(test)]
mod tests {
    use kube::ResourceExt as _;
    use secrecy::SecretString;

    use super::*;
    use crate::contract::ClusterAccess;

    const CANARY: &str = "canary-4b1d-secret";

    fn contract() -> Contract {
        Contract {
            contract_version: 1,
            cluster_name: "dev".to_owned(),
            access: ClusterAccess::Kubeconfig(SecretString::from(CANARY)),
            network: [("network_vpc_id".to_owned(), "vpc-1".to_owned())].into(),
            cluster_config: [("region".to_owned(), "eu-west-1".to_owned())].into(),
            cluster_secrets: [("db_password".to_owned(), SecretString::from(CANARY))].into(),
            ca_certificate_base64: false,
        }
    }

    fn decoded(object: &DynamicObject) -> BTreeMap<String, String> {
        object.data["data"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(key, value)| {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(value.as_str().unwrap())
                    .unwrap();
                (key.clone(), String::from_utf8(bytes).unwrap())
            })
            .collect()
    }

    fn owner() -> Owner {
        Owner {
            env: "dev".to_owned(),
            repository: "https://git.example/gitops.git".to_owned(),
            branch: "main".to_owned(),
            path: "clusters/dev".to_owned(),
        }
    }

    fn find<'a>(objects: &'a [DynamicObject], name: &str, kind: &str) -> &'a DynamicObject {
        objects
            .iter()
            .find(|o| {
                o.metadata.name.as_deref() == Some(name)
                    && o.types.as_ref().is_some_and(|t| t.kind == kind)
            })
            .unwrap()
    }

    #[test]
    fn https_credentials_use_flux_key_names() {
        let contract = contract();
        let git = GitReadCredentials::Https {
            username: "git".to_owned(),
            password: SecretString::from(CANARY),
            ca_pem: Some("-----BEGIN CERTIFICATE-----".to_owned()),
        };
        let age_key = SopsAgeKey {
            env_name: "dev".to_owned(),
            identity: SecretString::from("AGE-SECRET-KEY-1XYZ"),
        };
        let names = SubstitutionConfig {
            config_map: "platform-namespace-vars".into(),
            ..SubstitutionConfig::default()
        };
        let objects = bootstrap_objects(BootstrapInputs {
            contract: &contract,
            names: &names,
            git: &git,
            age_key: &age_key,
            owner: &owner(),
            install: FluxInstall::Components,
            flux_version: "v2.4.0",
        });
        let git_secret = decoded(find(&objects, GIT_CREDENTIALS, "Secret"));
        assert_eq!(
            git_secret.keys().collect::<Vec<_>>(),
            ["ca.crt", "password", "username"]
        );
        assert_eq!(git_secret["password"], CANARY);
        let age = decoded(find(&objects, SOPS_AGE, "Secret"));
        assert_eq!(age["dev.agekey"], "AGE-SECRET-KEY-1XYZ");
        let secrets = decoded(find(&objects, "cluster-secrets", "Secret"));
        assert_eq!(secrets["db_password"], CANARY);
        let config = &find(&objects, "platform-namespace-vars", "ConfigMap").data["data"];
        assert_eq!(config["cluster_name"], "dev");
        assert_eq!(config["network_vpc_id"], "vpc-1");
        assert_eq!(config["region"], "eu-west-1");
        assert_eq!(objects[0].types.as_ref().unwrap().kind, "Namespace");
    }

    #[test]
    fn the_operator_gets_the_contract_in_flux_runtime_info_too() {
        let contract = contract();
        let names = SubstitutionConfig::default();
        let config_maps = |install, names: &SubstitutionConfig| -> Vec<DynamicObject> {
            substitution_objects(&contract, names, install, "v2.10.0")
                .into_iter()
                .filter(|o| o.types.as_ref().is_some_and(|t| t.kind == "ConfigMap"))
                .collect()
        };
        assert_eq!(config_maps(FluxInstall::Components, &names).len(), 1);
        let both = config_maps(FluxInstall::Operator, &names);
        let runtime = find(&both, RUNTIME_INFO, "ConfigMap");
        let config = find(&both, "cluster-config", "ConfigMap");
        assert_eq!(runtime.data["data"], config.data["data"]);
        assert!(config.metadata.annotations.is_none());
        let labels = runtime.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["toolkit.fluxcd.io/runtime"], "true");
        assert_eq!(labels["reconcile.fluxcd.io/watch"], "Enabled");
        let annotations = runtime.metadata.annotations.as_ref().unwrap();
        assert_eq!(annotations["kustomize.toolkit.fluxcd.io/ssa"], "Merge");
        let instead = SubstitutionConfig {
            config_map: RUNTIME_INFO.to_owned(),
            ..SubstitutionConfig::default()
        };
        let only = config_maps(FluxInstall::Components, &instead);
        assert_eq!(only.len(), 1);
        assert!(only[0].metadata.annotations.is_some());
    }

    #[test]
    fn the_flux_system_namespace_is_labelled_only_where_no_operator_labels_it() {
        let contract = contract();
        let git = GitReadCredentials::Ssh {
            identity: SecretString::from(CANARY),
            identity_pub: "ssh-ed25519 AAAA".to_owned(),
            known_hosts: "example.test ssh-ed25519 AAAA".to_owned(),
        };
        let age_key = SopsAgeKey {
            env_name: "dev".to_owned(),
            identity: SecretString::from("AGE-SECRET-KEY-1XYZ"),
        };
        let labels = |install| {
            let objects = bootstrap_objects(BootstrapInputs {
                contract: &contract,
                names: &SubstitutionConfig::default(),
                git: &git,
                age_key: &age_key,
                owner: &owner(),
                install,
                flux_version: "v2.7.0",
            });
            let namespace = find(&objects, FLUX_NAMESPACE, "Namespace");
            assert_eq!(
                namespace.annotations(),
                &owner().annotations(),
                "the record"
            );
            namespace.labels().clone()
        };
        assert_eq!(labels(FluxInstall::Components), Owner::labels());
        assert_eq!(labels(FluxInstall::Operator), BTreeMap::new());
    }

    #[test]
    fn the_contract_objects_are_watched_from_flux_2_7_on() {
        let contract = contract();
        let names = SubstitutionConfig::default();
        for (version, watched) in [("v2.4.0", false), ("v2.6.5", false), ("v2.7.0", true)] {
            for object in contract_objects(&contract, &names, version) {
                let label = object.labels().get(WATCH_LABEL).cloned();
                assert_eq!(label.is_some(), watched, "{version}: {:?}", object.metadata);
                assert!(label.is_none_or(|value| value == "Enabled"));
            }
        }
        assert!(substitution_labels("v2.10.0").contains_key(WATCH_LABEL));
    }

    #[test]
    fn ssh_credentials_use_flux_key_names() {
        let git = GitReadCredentials::Ssh {
            identity: SecretString::from(CANARY),
            identity_pub: "ssh-ed25519 AAAA".to_owned(),
            known_hosts: "[127.0.0.1]:2222 ssh-ed25519 AAAA".to_owned(),
        };
        let data = git_secret_data(&git);
        assert_eq!(
            data.keys().collect::<Vec<_>>(),
            ["identity", "identity.pub", "known_hosts"]
        );
        assert_eq!(data["identity"], CANARY.as_bytes());
    }

    #[test]
    fn debug_output_never_shows_secret_values() {
        let https = GitReadCredentials::Https {
            username: "git".to_owned(),
            password: SecretString::from(CANARY),
            ca_pem: None,
        };
        let ssh = GitReadCredentials::Ssh {
            identity: SecretString::from(CANARY),
            identity_pub: String::new(),
            known_hosts: String::new(),
        };
        let age = SopsAgeKey {
            env_name: "dev".to_owned(),
            identity: SecretString::from(CANARY),
        };
        let contract = contract();
        let names = SubstitutionConfig::default();
        let inputs = BootstrapInputs {
            contract: &contract,
            names: &names,
            git: &https,
            age_key: &age,
            owner: &owner(),
            install: FluxInstall::Components,
            flux_version: "v2.4.0",
        };
        for text in [
            format!("{https:?}"),
            format!("{ssh:?}"),
            format!("{age:?}"),
            format!("{inputs:?}"),
        ] {
            assert!(!text.contains(CANARY), "{text}");
        }
    }
}
