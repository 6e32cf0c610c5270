//! The Flux objects the product writes (the `flux-system` sync and the env's profile
//! Kustomization) and the shipped profiles' apps pass the Flux CRDs' schemas under
//! `fieldValidation=Strict`, as on a cluster with Flux installed; a typo, a wrong enum or a
//! malformed duration in them is refused with the field named, and the CRDs' defaults appear.
//! Works against the test cluster's Flux CRDs (installed for the test when absent, removed
//! after) or a real cluster's, in a namespace of its own, with dry-run writes only.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
    ValidationDirective,
};
use serde_json::{Value, json};
use testkit::cluster::TestCluster;

use gitops_bootstrap::config::{FluxInstall, SubstitutionConfig};
use gitops_bootstrap::render::{KeptContent, RenderInput, render_cluster_dir};

/// The Flux CRDs of the testkit's components manifest.
fn flux_crds() -> Vec<CustomResourceDefinition> {
    crate::profiles::documents(&testkit::flux::components_manifest("v2.4.0"))
        .into_iter()
        .filter(|doc| crate::profiles::kind_and_name(doc).0 == "CustomResourceDefinition")
        .map(|doc| serde_yaml_ng::from_value(doc).expect("a CRD"))
        .collect()
}

/// Installs the Flux CRDs a cluster lacks; returns the names of those it installed.
pub(crate) async fn install_missing_crds(client: &kube::Client) -> Vec<String> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut installed = Vec::new();
    for crd in flux_crds() {
        let name = crd.metadata.name.clone().expect("a named CRD");
        if api.get_opt(&name).await.expect("reading CRDs").is_none() {
            api.create(&PostParams::default(), &crd)
                .await
                .expect("creating a Flux CRD");
            let established = kube::runtime::wait::conditions::is_crd_established();
            let wait = kube::runtime::wait::await_condition(api.clone(), &name, established);
            tokio::time::timeout(std::time::Duration::from_secs(30), wait)
                .await
                .expect("the CRD is established in time")
                .expect("watching the CRD");
            installed.push(name);
        }
    }
    installed
}

/// Where one Flux kind is served, from its object's apiVersion and kind.
fn resource_of(object: &Value) -> ApiResource {
    let (group, version) = object["apiVersion"]
        .as_str()
        .and_then(|v| v.split_once('/'))
        .expect("a grouped apiVersion");
    let kind = object["kind"].as_str().expect("a kind");
    let plural = flux_crds()
        .into_iter()
        .find(|crd| crd.spec.names.kind == kind)
        .map(|crd| crd.spec.names.plural)
        .unwrap_or_else(|| panic!("no Flux CRD defines {kind}"));
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), &plural)
}

/// A dry-run server-side apply of `object` into `namespace` under Strict field validation.
pub(crate) async fn dry_run_apply(
    client: &kube::Client,
    namespace: &str,
    mut object: Value,
) -> Result<Value, kube::core::Status> {
    object["metadata"]["namespace"] = json!(namespace);
    let name = object["metadata"]["name"]
        .as_str()
        .expect("a name")
        .to_owned();
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &resource_of(&object));
    let mut params = PatchParams::apply("flux-schemas-test").force();
    params.dry_run = true;
    params.field_validation = Some(ValidationDirective::Strict);
    match api.patch(&name, &params, &Patch::Apply(&object)).await {
        Ok(applied) => Ok(serde_json::to_value(applied).expect("JSON")),
        Err(kube::Error::Api(status)) => Err(*status),
        Err(other) => panic!("applying {name}: {other}"),
    }
}

fn is_flux(object: &Value) -> bool {
    object["apiVersion"]
        .as_str()
        .is_some_and(|v| v.contains(".toolkit.fluxcd.io/"))
}

fn json_of(doc: serde_yaml_ng::Value) -> Value {
    serde_json::to_value(doc).expect("YAML is JSON")
}

/// The Flux objects of an env's cluster dir as the product renders it for `profile`.
fn product_objects(profile: &str) -> Vec<Value> {
    let input = RenderInput {
        env: "dev".into(),
        profile: profile.into(),
        profiles_dir: "profiles".into(),
        repo_url: "https://git.example.com/platform/fleet.git".into(),
        branch: "main".into(),
        path_prefix: String::new(),
        flux_version: "v2.4.0".into(),
        interval: "1m".into(),
        age_recipient: "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p".into(),
        substitution: SubstitutionConfig::default(),
        kept: KeptContent::default(),
        install: FluxInstall::Components,
        own_instance: false,
    };
    render_cluster_dir(&input)
        .expect("rendering the cluster dir")
        .into_iter()
        .filter(|file| file.path.ends_with(".yaml"))
        .flat_map(|file| crate::profiles::documents(&file.contents))
        .map(json_of)
        .filter(is_flux)
        .collect()
}

/// Every Flux object the shipped profiles apply: their app Kustomizations and what those build.
fn profile_objects() -> Vec<Value> {
    let mut objects = Vec::new();
    for dir in crate::profiles::profiles() {
        for app in crate::profiles::documents(&crate::profiles::kustomize(&dir)) {
            objects.extend(crate::profiles::build_app(&app).into_iter().map(json_of));
            objects.push(json_of(app));
        }
    }
    objects.into_iter().filter(is_flux).collect()
}

pub(crate) struct Scratch {
    api: Api<Namespace>,
    pub(crate) name: String,
}

impl Scratch {
    pub(crate) async fn create(client: &kube::Client) -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("a clock after 1970")
            .subsec_nanos();
        let name = format!("flux-schemas-{}-{nanos}", std::process::id());
        let api: Api<Namespace> = Api::all(client.clone());
        let namespace =
            serde_json::from_value(json!({"metadata": {"name": name}})).expect("a Namespace");
        api.create(&PostParams::default(), &namespace)
            .await
            .expect("creating the namespace");
        Scratch { api, name }
    }

    pub(crate) async fn remove(self) {
        self.api
            .delete(&self.name, &DeleteParams::default())
            .await
            .expect("deleting the namespace");
    }
}

pub(crate) async fn remove_crds(client: &kube::Client, names: Vec<String>) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in names {
        api.delete(&name, &DeleteParams::default())
            .await
            .expect("deleting a CRD the test installed");
    }
}

#[tokio::test]
async fn the_products_and_the_profiles_flux_objects_pass_flux_schemas_under_strict() {
    let cluster = TestCluster::start().await.expect("a test cluster");
    let client = cluster.client();
    let installed = install_missing_crds(&client).await;
    let scratch = Scratch::create(&client).await;
    let mut kinds = BTreeMap::new();
    let objects = [
        product_objects("minimal"),
        product_objects("standard"),
        profile_objects(),
    ];
    for object in objects.into_iter().flatten() {
        let kind = object["kind"].as_str().unwrap_or_default().to_owned();
        let name = object["metadata"]["name"].clone();
        if let Err(status) = dry_run_apply(&client, &scratch.name, object).await {
            panic!("{kind} {name} refused: {}", status.message);
        }
        *kinds.entry(kind).or_insert(0) += 1;
    }
    for kind in [
        "GitRepository",
        "Kustomization",
        "HelmRepository",
        "HelmRelease",
    ] {
        assert!(kinds.contains_key(kind), "no {kind} checked: {kinds:?}");
    }
    scratch.remove().await;
    remove_crds(&client, installed).await;
}

#[tokio::test]
async fn a_typo_an_unknown_enum_or_a_bad_duration_is_refused_and_defaults_appear() {
    let cluster = TestCluster::start().await.expect("a test cluster");
    let client = cluster.client();
    let installed = install_missing_crds(&client).await;
    let scratch = Scratch::create(&client).await;
    let sync = product_objects("minimal");
    let find = |kind: &str| {
        sync.iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == "flux-system")
            .cloned()
            .unwrap_or_else(|| panic!("the sync {kind}"))
    };
    let mut typo = find("Kustomization");
    typo["spec"]["prunee"] = json!(true);
    let status = dry_run_apply(&client, &scratch.name, typo)
        .await
        .expect_err("a typo is refused");
    // kube-apiserver 1.32 answers a Strict apply's unknown field with a 500, not a 400.
    assert_eq!(status.code, 500, "{}", status.message);
    assert!(
        status
            .message
            .ends_with(".spec.prunee: field not declared in schema"),
        "{}",
        status.message
    );
    let mut wrong_kind = find("Kustomization");
    wrong_kind["spec"]["sourceRef"]["kind"] = json!("GitRepo");
    let status = dry_run_apply(&client, &scratch.name, wrong_kind)
        .await
        .expect_err("an unknown kind is refused");
    assert_eq!(
        (status.code, status.reason.as_str()),
        (422, "Invalid"),
        "{}",
        status.message
    );
    let cause = &status.details.as_ref().expect("details").causes[0];
    assert_eq!(
        (cause.reason.as_str(), cause.field.as_str()),
        ("FieldValueNotSupported", "spec.sourceRef.kind")
    );
    assert!(
        cause
            .message
            .starts_with(r#"Unsupported value: "GitRepo": supported values: "#),
        "{}",
        cause.message
    );
    let mut slow = find("GitRepository");
    slow["spec"]["interval"] = json!("1 minute");
    let status = dry_run_apply(&client, &scratch.name, slow)
        .await
        .expect_err("a bad duration is refused");
    assert_eq!(status.code, 422, "{}", status.message);
    assert_eq!(
        status.details.as_ref().expect("details").causes[0].field,
        "spec.interval"
    );
    let accepted = dry_run_apply(&client, &scratch.name, find("GitRepository"))
        .await
        .expect("the sync GitRepository");
    assert_eq!(accepted["spec"]["timeout"], "60s", "Flux's default timeout");
    scratch.remove().await;
    remove_crds(&client, installed).await;
}
