//! The chart catalogue: what the helm-controller stand-in installs for (repository URL, chart,
//! version). It knows exactly the upstream charts the product's profiles reference, each as a
//! small set of objects shaped like the chart's main ones (names follow Helm's `fullname`).
//! With [`Charts::Any`] every repository and chart is available, charts outside the catalogue
//! installing a stand-in Deployment, so one's own repository can be rehearsed in the sandbox.

use std::str::FromStr;

use kube::api::DynamicObject;
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::flux::types::free_form;

/// One chart version of the catalogue.
pub struct ChartEntry {
    pub repository: &'static str,
    pub chart: &'static str,
    pub version: &'static str,
    objects: fn(&Release) -> Vec<Value>,
}

/// Who a chart is rendered for: Helm's release name and namespace, plus the values.
pub struct Release<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub values: &'a Value,
}

impl Release<'_> {
    /// Helm's usual `fullname` helper: `fullnameOverride`, else the release name when it
    /// contains the chart name, else `<release>-<chart>`.
    fn fullname(&self, chart: &str) -> String {
        if let Some(name) = self.values.get("fullnameOverride").and_then(Value::as_str) {
            return name.to_owned();
        }
        if self.name.contains(chart) {
            self.name.to_owned()
        } else {
            format!("{}-{chart}", self.name)
        }
    }

    fn labels(&self, chart: &str, version: &str, component: &str) -> Value {
        json!({
            "app.kubernetes.io/name": chart,
            "app.kubernetes.io/instance": self.name,
            "app.kubernetes.io/component": component,
            "app.kubernetes.io/managed-by": "Helm",
            "helm.sh/chart": format!("{chart}-{}", version.trim_start_matches('v')),
        })
    }
}

impl ChartEntry {
    /// The objects of this chart for `release`, namespaced ones in the release namespace.
    pub fn render(&self, release: &Release) -> anyhow::Result<Vec<DynamicObject>> {
        (self.objects)(release)
            .into_iter()
            .map(|value| Ok(serde_json::from_value(value)?))
            .collect()
    }
}

static CATALOGUE: [ChartEntry; 3] = [
    ChartEntry {
        repository: "https://kubernetes.github.io/ingress-nginx",
        chart: "ingress-nginx",
        version: "4.12.1",
        objects: ingress_nginx,
    },
    ChartEntry {
        repository: "https://charts.jetstack.io",
        chart: "cert-manager",
        version: "v1.17.2",
        objects: cert_manager,
    },
    ChartEntry {
        repository: "https://kubernetes-sigs.github.io/external-dns/",
        chart: "external-dns",
        version: "1.16.1",
        objects: external_dns,
    },
];

pub fn catalogue() -> &'static [ChartEntry] {
    &CATALOGUE
}

/// Which charts the helm stand-ins treat as available.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Charts {
    /// Exactly the catalogue's: another repository's index is a 404, another chart or version
    /// fails to install.
    #[default]
    Catalogue,
    /// Every repository has an index and every chart and version exists.
    Any,
}

impl FromStr for Charts {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "catalogue" => Ok(Charts::Catalogue),
            "any" => Ok(Charts::Any),
            other => Err(format!(
                "unknown chart mode '{other}': use catalogue or any"
            )),
        }
    }
}

/// The version a stand-in chart gets when the HelmRelease names none (or `*`).
const STAND_IN_VERSION: &str = "0.1.0";

impl Charts {
    /// Whether a HelmRepository at `url` serves an index.
    pub fn has_index(self, url: &str) -> bool {
        self == Charts::Any || is_known_repository(url)
    }

    /// The chart a HelmRelease asks for; no version (or `*`) means the catalogue's.
    pub fn find(self, repository: &str, chart: &str, version: Option<&str>) -> Option<Chart> {
        let version = version.filter(|v| *v != "*");
        let known = match version {
            Some(exact) => lookup(repository, chart, exact),
            None => CATALOGUE
                .iter()
                .find(|e| same_repository(e.repository, repository) && e.chart == chart),
        };
        match (known, self) {
            (Some(entry), _) => Some(Chart::Catalogue(entry)),
            (None, Charts::Catalogue) => None,
            (None, Charts::Any) => Some(Chart::StandIn {
                chart: chart.to_owned(),
                version: version.unwrap_or(STAND_IN_VERSION).to_owned(),
            }),
        }
    }

    /// The chart a recorded release was installed from, to know what it installed.
    pub fn installed(self, chart: &str, version: &str) -> Option<Chart> {
        let known = CATALOGUE
            .iter()
            .find(|e| e.chart == chart && e.version == version);
        match (known, self) {
            (Some(entry), _) => Some(Chart::Catalogue(entry)),
            (None, Charts::Catalogue) => None,
            (None, Charts::Any) => Some(Chart::StandIn {
                chart: chart.to_owned(),
                version: version.to_owned(),
            }),
        }
    }
}

/// A chart the helm stand-in can install.
pub enum Chart {
    Catalogue(&'static ChartEntry),
    /// Outside the catalogue ([`Charts::Any`]): a ServiceAccount and a Deployment named by
    /// Helm's `fullname`, image `testkit.invalid/charts/<chart>:<version>`.
    StandIn {
        chart: String,
        version: String,
    },
}

impl Chart {
    pub fn name(&self) -> &str {
        match self {
            Chart::Catalogue(entry) => entry.chart,
            Chart::StandIn { chart, .. } => chart,
        }
    }

    pub fn version(&self) -> &str {
        match self {
            Chart::Catalogue(entry) => entry.version,
            Chart::StandIn { version, .. } => version,
        }
    }

    /// The objects of this chart for `release`, namespaced ones in the release namespace.
    pub fn render(&self, release: &Release) -> anyhow::Result<Vec<DynamicObject>> {
        match self {
            Chart::Catalogue(entry) => entry.render(release),
            Chart::StandIn { chart, version } => stand_in(release, chart, version)
                .into_iter()
                .map(|value| Ok(serde_json::from_value(value)?))
                .collect(),
        }
    }
}

fn same_repository(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// Whether a HelmRepository URL is one the catalogue serves (its "index" can be fetched).
pub fn is_known_repository(url: &str) -> bool {
    CATALOGUE.iter().any(|e| same_repository(e.repository, url))
}

/// The chart at exactly this repository, name and version (a leading `v` must match too).
pub fn lookup(repository: &str, chart: &str, version: &str) -> Option<&'static ChartEntry> {
    CATALOGUE.iter().find(|e| {
        same_repository(e.repository, repository) && e.chart == chart && e.version == version
    })
}

fn deployment(release: &Release, name: &str, labels: Value, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name, "namespace": release.namespace, "labels": labels },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app.kubernetes.io/name": labels["app.kubernetes.io/name"], "app.kubernetes.io/instance": release.name, "app.kubernetes.io/component": labels["app.kubernetes.io/component"] } },
            "template": {
                "metadata": { "labels": labels },
                "spec": { "serviceAccountName": name, "containers": [{ "name": "main", "image": image }] }
            }
        }
    })
}

fn service_account(release: &Release, name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": { "name": name, "namespace": release.namespace, "labels": labels }
    })
}

fn stand_in(release: &Release, chart: &str, version: &str) -> Vec<Value> {
    let image = format!("testkit.invalid/charts/{chart}:{version}");
    account_and_deployment(release, chart, version, "app", &image)
}

/// A ServiceAccount and a Deployment, both named by Helm's `fullname`: a small chart's shape.
fn account_and_deployment(
    release: &Release,
    chart: &str,
    version: &str,
    component: &str,
    image: &str,
) -> Vec<Value> {
    let fullname = release.fullname(chart);
    let labels = release.labels(chart, version, component);
    vec![
        service_account(release, &fullname, labels.clone()),
        deployment(release, &fullname, labels, image),
    ]
}

fn ingress_nginx(release: &Release) -> Vec<Value> {
    let (chart, version) = ("ingress-nginx", "4.12.1");
    let fullname = release.fullname(chart);
    let controller = format!("{fullname}-controller");
    let labels = release.labels(chart, version, "controller");
    vec![
        service_account(release, &fullname, labels.clone()),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": { "name": controller, "namespace": release.namespace, "labels": labels },
            "data": { "allow-snippet-annotations": "false" }
        }),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": { "name": controller, "namespace": release.namespace, "labels": labels },
            "spec": {
                "type": "LoadBalancer",
                "selector": { "app.kubernetes.io/name": chart, "app.kubernetes.io/instance": release.name, "app.kubernetes.io/component": "controller" },
                "ports": [
                    { "name": "http", "port": 80, "protocol": "TCP", "targetPort": "http" },
                    { "name": "https", "port": 443, "protocol": "TCP", "targetPort": "https" }
                ]
            }
        }),
        deployment(
            release,
            &controller,
            labels,
            "registry.k8s.io/ingress-nginx/controller:v1.12.1",
        ),
    ]
}

fn cert_manager(release: &Release) -> Vec<Value> {
    let (chart, version) = ("cert-manager", "v1.17.2");
    let fullname = release.fullname(chart);
    let mut objects: Vec<Value> = [
        Certificate::crd(),
        CertificateRequest::crd(),
        Issuer::crd(),
        ClusterIssuer::crd(),
    ]
    .into_iter()
    .map(|crd| {
        let mut value = serde_json::to_value(crd).unwrap_or_default();
        value["apiVersion"] = json!("apiextensions.k8s.io/v1");
        value["kind"] = json!("CustomResourceDefinition");
        value["metadata"]["labels"] = release.labels(chart, version, "crds");
        value
    })
    .collect();
    for (suffix, component) in [
        ("", "controller"),
        ("-cainjector", "cainjector"),
        ("-webhook", "webhook"),
    ] {
        let name = format!("{fullname}{suffix}");
        let image = format!("quay.io/jetstack/cert-manager-{component}:{version}");
        objects.push(deployment(
            release,
            &name,
            release.labels(chart, version, component),
            &image,
        ));
    }
    objects
}

fn external_dns(release: &Release) -> Vec<Value> {
    account_and_deployment(
        release,
        "external-dns",
        "1.16.1",
        "controller",
        "registry.k8s.io/external-dns/external-dns:v0.16.1",
    )
}

/// Which issuer signs a certificate.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
pub struct IssuerReference {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// Free-form status: cert-manager writes conditions the testkit never reads.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
pub struct CertManagerStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form")]
    pub conditions: Option<Value>,
}

#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
#[kube(
    group = "cert-manager.io",
    version = "v1",
    kind = "Certificate",
    namespaced,
    status = "CertManagerStatus",
    shortname = "cert"
)]
#[serde(rename_all = "camelCase")]
pub struct CertificateSpec {
    pub secret_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_names: Option<Vec<String>>,
    pub issuer_ref: IssuerReference,
}

#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
#[kube(
    group = "cert-manager.io",
    version = "v1",
    kind = "CertificateRequest",
    namespaced,
    status = "CertManagerStatus",
    shortname = "cr"
)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRequestSpec {
    pub request: String,
    pub issuer_ref: IssuerReference,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usages: Option<Vec<String>>,
}

/// The issuer kinds cert-manager ships; only the shape matters to the testkit.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form")]
    pub acme: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form")]
    pub ca: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form")]
    pub self_signed: Option<Value>,
}

#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
#[kube(
    group = "cert-manager.io",
    version = "v1",
    kind = "Issuer",
    namespaced,
    status = "CertManagerStatus"
)]
pub struct IssuerSpec {
    #[serde(flatten)]
    pub config: IssuerConfig,
}

#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
#[kube(
    group = "cert-manager.io",
    version = "v1",
    kind = "ClusterIssuer",
    status = "CertManagerStatus"
)]
pub struct ClusterIssuerSpec {
    #[serde(flatten)]
    pub config: IssuerConfig,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds_and_names(entry: &ChartEntry, release: &Release) -> Vec<(String, String)> {
        entry
            .render(release)
            .unwrap()
            .into_iter()
            .map(|o| (o.types.unwrap().kind, o.metadata.name.unwrap()))
            .collect()
    }

    #[test]
    fn knows_exactly_the_documented_charts() {
        assert_eq!(catalogue().len(), 3);
        assert!(
            lookup(
                "https://kubernetes.github.io/ingress-nginx/",
                "ingress-nginx",
                "4.12.1"
            )
            .is_some()
        );
        assert!(lookup("https://charts.jetstack.io", "cert-manager", "v1.17.2").is_some());
        assert!(lookup("https://charts.jetstack.io", "cert-manager", "1.17.2").is_none());
        assert!(
            lookup(
                "https://kubernetes-sigs.github.io/external-dns",
                "external-dns",
                "1.16.1"
            )
            .is_some()
        );
        assert!(lookup("https://charts.jetstack.io", "ingress-nginx", "4.12.1").is_none());
        assert!(is_known_repository(
            "https://kubernetes-sigs.github.io/external-dns/"
        ));
        assert!(!is_known_repository("https://example.invalid/charts"));
    }

    #[test]
    fn any_mode_serves_every_repository_and_chart_keeping_the_catalogue_s() {
        let elsewhere = "https://charts.example.invalid";
        assert!(!Charts::Catalogue.has_index(elsewhere));
        assert!(Charts::Any.has_index(elsewhere));
        assert!(
            Charts::Catalogue
                .find(elsewhere, "app", Some("1.0.0"))
                .is_none()
        );
        let jetstack = "https://charts.jetstack.io";
        let newest = Charts::Catalogue
            .find(jetstack, "cert-manager", None)
            .unwrap();
        assert_eq!(newest.version(), "v1.17.2");
        assert!(matches!(
            Charts::Any.find(jetstack, "cert-manager", Some("*")),
            Some(Chart::Catalogue(_))
        ));

        let chart = Charts::Any
            .find(elsewhere, "datadog", Some("3.1.4"))
            .unwrap();
        assert_eq!((chart.name(), chart.version()), ("datadog", "3.1.4"));
        let values = json!({});
        let release = Release {
            name: "datadog",
            namespace: "monitoring",
            values: &values,
        };
        let objects = chart.render(&release).unwrap();
        let deployment = objects
            .iter()
            .find(|o| o.types.as_ref().unwrap().kind == "Deployment")
            .unwrap();
        assert_eq!(deployment.metadata.name.as_deref(), Some("datadog"));
        assert_eq!(
            deployment.data["spec"]["template"]["spec"]["containers"][0]["image"],
            "testkit.invalid/charts/datadog:3.1.4"
        );
        assert!(Charts::Catalogue.installed("datadog", "3.1.4").is_none());
        let installed = Charts::Any.installed("datadog", "3.1.4").unwrap();
        assert_eq!(installed.render(&release).unwrap().len(), objects.len());
        let unversioned = Charts::Any.find(elsewhere, "app", None).unwrap();
        assert_eq!(unversioned.version(), STAND_IN_VERSION);
        assert!("any".parse::<Charts>().is_ok() && "some".parse::<Charts>().is_err());
    }

    #[test]
    fn renders_objects_named_like_the_charts() {
        let values = json!({});
        let release = Release {
            name: "ingress-nginx",
            namespace: "ingress",
            values: &values,
        };
        let nginx = kinds_and_names(
            lookup(
                "https://kubernetes.github.io/ingress-nginx",
                "ingress-nginx",
                "4.12.1",
            )
            .unwrap(),
            &release,
        );
        assert!(nginx.contains(&("Deployment".into(), "ingress-nginx-controller".into())));
        assert!(nginx.contains(&("Service".into(), "ingress-nginx-controller".into())));
        let release = Release {
            name: "cert-manager",
            namespace: "cert-manager",
            values: &values,
        };
        let cm = kinds_and_names(
            lookup("https://charts.jetstack.io", "cert-manager", "v1.17.2").unwrap(),
            &release,
        );
        for deployment in [
            "cert-manager",
            "cert-manager-cainjector",
            "cert-manager-webhook",
        ] {
            assert!(
                cm.contains(&("Deployment".into(), deployment.into())),
                "{deployment}"
            );
        }
        for crd in [
            "certificates",
            "certificaterequests",
            "issuers",
            "clusterissuers",
        ] {
            assert!(
                cm.contains(&(
                    "CustomResourceDefinition".into(),
                    format!("{crd}.cert-manager.io")
                )),
                "{crd}"
            );
        }
        let overridden = json!({"fullnameOverride": "dns"});
        let release = Release {
            name: "x",
            namespace: "dns",
            values: &overridden,
        };
        let dns = kinds_and_names(
            lookup(
                "https://kubernetes-sigs.github.io/external-dns/",
                "external-dns",
                "1.16.1",
            )
            .unwrap(),
            &release,
        );
        assert_eq!(
            dns,
            vec![
                ("ServiceAccount".into(), "dns".into()),
                ("Deployment".into(), "dns".into())
            ]
        );
    }
}
