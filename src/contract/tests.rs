//! The contract read from whole `terraform output -json` documents: the accepted shapes, one
//! table case per error it reports, and redaction of secrets everywhere.

use std::collections::BTreeMap;

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};

use super::*;
use crate::config::{ContractField, OutputMapping, OutputRef};
use crate::error::{Diagnose, ExitStatus};

const CANARY: &str = "canary-7f3a9";
const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----";

fn output(value: Value, ty: Value, sensitive: bool) -> Value {
    json!({ "sensitive": sensitive, "type": ty, "value": value })
}

/// A module's outputs that satisfy the contract, with the canary in every secret.
fn valid() -> Map<String, Value> {
    let mut outputs = Map::new();
    outputs.insert(
        "cluster_name".into(),
        output(json!("dev"), json!("string"), false),
    );
    outputs.insert(
        "kubeconfig".into(),
        output(
            json!(format!("apiVersion: v1\ntoken: {CANARY}")),
            json!("string"),
            true,
        ),
    );
    outputs.insert(
        "network".into(),
        output(
            json!({ "vpc_id": "vpc-1", "subnets": ["a", "b"], "dns": { "zone": "z", "ttl": 60 },
                    "ipv6": false, "unset": null }),
            json!(["object", { "vpc_id": "string" }]),
            false,
        ),
    );
    outputs.insert(
        "cluster_config".into(),
        output(json!({ "region": "eu-1" }), json!(["map", "string"]), false),
    );
    outputs.insert(
        "cluster_secrets".into(),
        output(
            json!({ "db_password": CANARY }),
            json!(["map", "string"]),
            true,
        ),
    );
    outputs
}

/// The outputs as `terraform output -json` prints them, parsed by the Terraform adapter.
fn raw(outputs: &Map<String, Value>) -> terraform::Outputs {
    let text = SecretString::from(Value::Object(outputs.clone()).to_string());
    terraform::Outputs::parse(&text).unwrap()
}

fn endpoint_outputs(ca: &str) -> Map<String, Value> {
    let mut outputs = valid();
    outputs.remove("kubeconfig");
    outputs.insert(
        "cluster_endpoint".into(),
        output(json!("https://203.0.113.10:6443"), json!("string"), false),
    );
    outputs.insert(
        "cluster_ca_certificate".into(),
        output(json!(ca), json!("string"), false),
    );
    outputs.insert(
        "cluster_token".into(),
        output(json!(CANARY), json!("string"), true),
    );
    outputs
}

fn mapping(fields: &[(ContractField, &str, &str)]) -> OutputMapping {
    let fields = fields
        .iter()
        .map(|(field, output, path)| (*field, OutputRef::new(*output, path)))
        .collect();
    OutputMapping::new("dev", fields)
}

#[test]
fn a_kubeconfig_module_gives_the_configmap_and_secret_data() {
    let contract = Contract::from_outputs(&raw(&valid()), &OutputMapping::default()).unwrap();
    assert_eq!(contract.contract_version, 1);
    assert_eq!(contract.cluster_name, "dev");
    let ClusterAccess::Kubeconfig(kubeconfig) = &contract.access else {
        panic!("expected kubeconfig access");
    };
    assert!(kubeconfig.expose_secret().contains(CANARY));
    let expected: BTreeMap<String, String> = [
        ("cluster_name", "dev"),
        ("region", "eu-1"),
        ("network_vpc_id", "vpc-1"),
        ("network_subnets", "a,b"),
        ("network_dns_zone", "z"),
        ("network_dns_ttl", "60"),
        ("network_ipv6", "false"),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect();
    assert_eq!(contract.config_map_data(), expected);
    let secrets = contract.secret_data();
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets["db_password"].expose_secret(), CANARY);
}

#[test]
fn cluster_config_takes_numbers_and_bools_as_strings() {
    let mut outputs = valid();
    outputs.insert(
        "cluster_config".into(),
        output(
            json!({ "replicas": 3, "ha": true, "region": "eu-1" }),
            json!(["object", { "replicas": "number" }]),
            false,
        ),
    );
    let contract = Contract::from_outputs(&raw(&outputs), &OutputMapping::default()).unwrap();
    assert_eq!(contract.cluster_config["replicas"], "3");
    assert_eq!(contract.cluster_config["ha"], "true");
}

/// `cluster_config = { region = "region", vpc = "vpc.id", ... }`: outputs named like the
/// public EKS module's, assembled into the ConfigMap.
#[test]
fn cluster_config_is_assembled_from_several_outputs() {
    let mut outputs = valid();
    outputs.remove("cluster_config");
    outputs.insert(
        "region".into(),
        output(json!("eu-west-1"), json!("string"), false),
    );
    outputs.insert(
        "vpc".into(),
        output(json!({ "id": "vpc-9", "azs": 3 }), json!("dynamic"), false),
    );
    outputs.insert("unset".into(), output(Value::Null, json!("string"), false));
    let keys = [
        ("region", OutputRef::new("region", "")),
        ("vpc_id", OutputRef::new("vpc", "id")),
        ("azs", OutputRef::new("vpc", "azs")),
        ("optional", OutputRef::new("unset", "")),
    ]
    .into_iter()
    .map(|(key, source)| (key.to_owned(), source))
    .collect();
    let assembled = mapping(&[]).with_assembled_cluster_config(keys);
    let contract = Contract::from_outputs(&raw(&outputs), &assembled).unwrap();
    let expected: BTreeMap<String, String> =
        [("azs", "3"), ("region", "eu-west-1"), ("vpc_id", "vpc-9")]
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect();
    assert_eq!(contract.cluster_config, expected);

    let mut typo = BTreeMap::new();
    typo.insert("zone".to_owned(), OutputRef::new("regoin", ""));
    let err = Contract::from_outputs(
        &raw(&outputs),
        &mapping(&[]).with_assembled_cluster_config(typo),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("maps `cluster_config` to output `regoin`"),
        "{err}"
    );
    let mut object = BTreeMap::new();
    object.insert("vpc".to_owned(), OutputRef::new("vpc", ""));
    let err = Contract::from_outputs(
        &raw(&outputs),
        &mapping(&[]).with_assembled_cluster_config(object),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("needs a string, number or bool"),
        "{err}"
    );
}

#[test]
fn optional_outputs_may_be_absent_or_null() {
    let mut outputs = valid();
    outputs.remove("network");
    outputs.remove("cluster_secrets");
    outputs.insert(
        "cluster_config".into(),
        output(Value::Null, json!("dynamic"), false),
    );
    outputs.insert(
        "contract_version".into(),
        output(json!(1), json!("number"), false),
    );
    let contract = Contract::from_outputs(&raw(&outputs), &OutputMapping::default()).unwrap();
    assert!(contract.network.is_empty());
    assert!(contract.cluster_config.is_empty());
    assert!(contract.secret_data().is_empty());
    assert_eq!(contract.config_map_data().len(), 1);
}

#[test]
fn an_eks_style_module_is_read_through_the_mapping() {
    let mut outputs = endpoint_outputs("unused");
    for name in [
        "cluster_endpoint",
        "cluster_ca_certificate",
        "cluster_token",
    ] {
        outputs.remove(name);
    }
    let base64_pem = base64::engine::general_purpose::STANDARD.encode(PEM);
    outputs.insert(
        "endpoint".into(),
        output(
            json!("https://abc.eks.amazonaws.com"),
            json!("string"),
            false,
        ),
    );
    outputs.insert(
        "cluster_certificate_authority_data".into(),
        output(
            json!([{ "data": base64_pem }]),
            json!(["list", ["object", { "data": "string" }]]),
            false,
        ),
    );
    outputs.insert(
        "auth_token".into(),
        output(json!(CANARY), json!("string"), true),
    );
    let mapping = mapping(&[
        (ContractField::ClusterEndpoint, "endpoint", ""),
        (
            ContractField::ClusterCaCertificate,
            "cluster_certificate_authority_data",
            "0.data",
        ),
        (ContractField::ClusterToken, "auth_token", ""),
    ]);
    let contract = Contract::from_outputs(&raw(&outputs), &mapping).unwrap();
    let ClusterAccess::Endpoint {
        endpoint,
        ca_certificate_pem,
        token,
    } = &contract.access
    else {
        panic!("expected endpoint access");
    };
    assert_eq!(endpoint, "https://abc.eks.amazonaws.com");
    assert_eq!(ca_certificate_pem, &format!("{PEM}\n"));
    assert_eq!(token.expose_secret(), CANARY);
    assert!(
        contract.ca_certificate_base64,
        "EKS gives base64 of the PEM"
    );
}

#[test]
fn a_credential_plugin_output_gives_exec_access_and_wins_over_a_token() {
    let mut outputs = endpoint_outputs(PEM);
    outputs.insert(
        "cluster_exec".into(),
        output(
            json!({ "command": "aws", "args": ["eks", "get-token", "--cluster-name", "dev"],
                    "env": { "AWS_PROFILE": "prod" } }),
            json!("dynamic"),
            false,
        ),
    );
    let contract = Contract::from_outputs(&raw(&outputs), &OutputMapping::default()).unwrap();
    let ClusterAccess::EndpointExec { exec, .. } = &contract.access else {
        panic!("expected exec access");
    };
    assert_eq!(exec.command_line(), "aws eks get-token --cluster-name dev");
    assert_eq!(exec.env["AWS_PROFILE"], "prod");
    let json = serde_json::to_string(&contract).unwrap();
    assert!(!json.contains("prod\""), "env values are not shown: {json}");

    outputs.insert(
        "cluster_exec".into(),
        output(json!({ "args": ["x"] }), json!("dynamic"), false),
    );
    let err = Contract::from_outputs(&raw(&outputs), &OutputMapping::default()).unwrap_err();
    assert!(err.to_string().contains("cluster_exec"), "{err}");
    assert!(err.to_string().contains("command = string"), "{err}");
}

#[test]
fn a_pem_ca_is_taken_as_is() {
    let contract =
        Contract::from_outputs(&raw(&endpoint_outputs(PEM)), &OutputMapping::default()).unwrap();
    let ClusterAccess::Endpoint {
        ca_certificate_pem, ..
    } = &contract.access
    else {
        panic!("expected endpoint access");
    };
    assert_eq!(ca_certificate_pem, &format!("{PEM}\n"));
    assert!(!contract.ca_certificate_base64);
}

#[test]
fn secrets_never_show_in_debug_or_json() {
    for outputs in [valid(), endpoint_outputs(PEM)] {
        let contract = Contract::from_outputs(&raw(&outputs), &OutputMapping::default()).unwrap();
        let debug = format!("{contract:?} {contract:#?}");
        let json = serde_json::to_string(&contract).unwrap();
        assert!(!debug.contains(CANARY), "{debug}");
        assert!(!json.contains(CANARY), "{json}");
        assert!(json.contains("db_password"), "{json}");
        assert!(json.contains("[redacted]"), "{json}");
    }
}

struct Case {
    name: &'static str,
    outputs: Map<String, Value>,
    mapping: OutputMapping,
    expect: &'static [&'static str],
    hint: &'static str,
}

fn case(
    name: &'static str,
    edit: impl FnOnce(&mut Map<String, Value>),
    expect: &'static [&'static str],
    hint: &'static str,
) -> Case {
    let mut outputs = valid();
    edit(&mut outputs);
    Case {
        name,
        outputs,
        mapping: OutputMapping::new("dev", BTreeMap::new()),
        expect,
        hint,
    }
}

fn set(name: &str, value: Value, sensitive: bool) -> impl FnOnce(&mut Map<String, Value>) {
    let name = name.to_owned();
    move |outputs| {
        outputs.insert(name, output(value, json!("dynamic"), sensitive));
    }
}

fn endpoint_case(
    name: &'static str,
    edit: impl FnOnce(&mut Map<String, Value>),
    expect: &'static [&'static str],
    hint: &'static str,
) -> Case {
    case(
        name,
        |outputs| {
            *outputs = endpoint_outputs(PEM);
            edit(outputs);
        },
        expect,
        hint,
    )
}

fn presence_and_sensitivity_cases() -> Vec<Case> {
    vec![
        case(
            "missing cluster_name",
            |o| drop(o.remove("cluster_name")),
            &[
                "output `cluster_name` is missing",
                "needs a string",
                "`kubeconfig` (string, sensitive)",
            ],
            "[envs.dev.outputs]",
        ),
        case(
            "cluster_name of the wrong type",
            |o| {
                drop(o.insert(
                    "cluster_name".into(),
                    output(json!(3), json!("number"), false),
                ))
            },
            &["output `cluster_name` has type number", "needs a string"],
            "[envs.dev.outputs]",
        ),
        case(
            "kubeconfig not sensitive",
            |o| {
                drop(o.insert(
                    "kubeconfig".into(),
                    output(json!(CANARY), json!("string"), false),
                ))
            },
            &["output `kubeconfig`", "not marked sensitive"],
            "sensitive = true",
        ),
        case(
            "cluster_secrets not sensitive",
            |o| {
                let secrets = output(json!({ "k": CANARY }), json!(["map", "string"]), false);
                o.insert("cluster_secrets".into(), secrets);
            },
            &["output `cluster_secrets`", "not marked sensitive"],
            "sensitive = true",
        ),
        case(
            "cluster_name sensitive",
            set("cluster_name", json!(CANARY), true),
            &[
                "output `cluster_name`",
                "is sensitive",
                "cluster-config ConfigMap",
            ],
            "nonsensitive",
        ),
        case(
            "no access",
            |o| drop(o.remove("kubeconfig")),
            &[
                "no cluster access",
                "`cluster_endpoint` + `cluster_ca_certificate`",
            ],
            "output \"kubeconfig\"",
        ),
        case(
            "both kinds of access",
            set("cluster_endpoint", json!("https://x"), false),
            &["both `kubeconfig` and `cluster_endpoint`"],
            "[envs.dev.outputs]",
        ),
    ]
}

fn key_cases() -> Vec<Case> {
    vec![
        case(
            "invalid cluster_config key",
            set("cluster_config", json!({ "my-key": "v" }), false),
            &[
                "invalid key `my-key`",
                "`cluster_config`",
                "^[_a-zA-Z][_a-zA-Z0-9]*$",
            ],
            "rename",
        ),
        case(
            "invalid cluster_secrets key",
            set("cluster_secrets", json!({ "1st": CANARY }), true),
            &["invalid key `1st`", "`cluster_secrets`"],
            "rename",
        ),
        case(
            "invalid network key",
            set("network", json!({ "dns": { "zone.name": "z" } }), false),
            &["invalid key `dns.zone.name`", "`network`"],
            "rename",
        ),
        case(
            "cluster_config collides with cluster_name",
            set("cluster_config", json!({ "cluster_name": "x" }), false),
            &["key `cluster_name` of the contract's `cluster_config` collides"],
            "rename",
        ),
        case(
            "cluster_config collides with network",
            set("cluster_config", json!({ "network_vpc_id": "x" }), false),
            &["key `network_vpc_id`", "flattened `network` key"],
            "rename",
        ),
        case(
            "cluster_secrets collides with cluster_config",
            set("cluster_secrets", json!({ "region": CANARY }), true),
            &["key `region` of the contract's `cluster_secrets` collides"],
            "rename",
        ),
        case(
            "network flattens two attributes to one key",
            set("network", json!({ "a": { "b": "1" }, "a_b": "2" }), false),
            &["`network_a_b`", "collides"],
            "rename",
        ),
    ]
}

fn name_and_size_cases() -> Vec<Case> {
    let name = |value: &'static str| {
        move |o: &mut Map<String, Value>| {
            drop(o.insert(
                "cluster_name".into(),
                output(json!(value), json!("string"), false),
            ))
        }
    };
    let huge = "x".repeat(crate::contract::MAX_OBJECT_DATA_BYTES);
    let huge_secret = CANARY.repeat(crate::contract::MAX_OBJECT_DATA_BYTES / CANARY.len() + 1);
    vec![
        case(
            "cluster_name with a space",
            name("my cluster"),
            &[
                "output `cluster_name`",
                "must be a cluster name",
                "`my cluster`",
            ],
            "change the cluster's name",
        ),
        case(
            "cluster_name with a slash",
            name("a/b"),
            &["must be a cluster name"],
            "change the cluster's name",
        ),
        case(
            "cluster_name with ..",
            name(".."),
            &["must be a cluster name"],
            "change the cluster's name",
        ),
        case(
            "cluster_config over 1 MiB",
            set("cluster_config", json!({ "blob": huge }), false),
            &[
                "`cluster_config` makes ConfigMap cluster-config",
                "over Kubernetes' limit of 1048576 bytes",
            ],
            "keep large data out",
        ),
        case(
            "cluster_secrets over 1 MiB",
            set("cluster_secrets", json!({ "blob": huge_secret }), true),
            &["`cluster_secrets` makes Secret cluster-secrets"],
            "keep large data out",
        ),
    ]
}

fn type_cases() -> Vec<Case> {
    vec![
        case(
            "cluster_config value not a string, number or bool",
            set("cluster_config", json!({ "replicas": [3] }), false),
            &[
                "output `cluster_config.replicas` has type a list",
                "needs map(string)",
            ],
            "[envs.dev.outputs]",
        ),
        case(
            "cluster_secrets value not a string",
            set("cluster_secrets", json!({ "pair": [CANARY] }), true),
            &[
                "output `cluster_secrets.pair` has type a list",
                "needs map(string)",
            ],
            "[envs.dev.outputs]",
        ),
        case(
            "network list of objects",
            set("network", json!({ "subnets": [{ "id": "s" }] }), false),
            &["output `network.subnets` has type a list"],
            "[envs.dev.outputs]",
        ),
        case(
            "network not an object",
            |o| drop(o.insert("network".into(), output(json!("x"), json!("string"), false))),
            &["output `network` has type string", "needs an object"],
            "[envs.dev.outputs]",
        ),
    ]
}

fn version_and_access_cases() -> Vec<Case> {
    vec![
        case(
            "future contract version",
            set("contract_version", json!(2), false),
            &["contract_version 2", "upgrade gitops-bootstrap"],
            "newer gitops-bootstrap",
        ),
        case(
            "contract version zero",
            set("contract_version", json!(0), false),
            &["`contract_version` must be a whole number from 1"],
            "contract_version = 1",
        ),
        case(
            "contract version as a string",
            set("contract_version", json!("1"), false),
            &["output `contract_version` has type", "needs a number"],
            "[envs.dev.outputs]",
        ),
        endpoint_case(
            "endpoint access without token",
            |o| drop(o.remove("cluster_token")),
            &[
                "output `cluster_token` is missing",
                "needs a sensitive string",
            ],
            "output \"cluster_token\"",
        ),
        endpoint_case(
            "token not sensitive",
            |o| {
                drop(o.insert(
                    "cluster_token".into(),
                    output(json!(CANARY), json!("string"), false),
                ))
            },
            &["output `cluster_token`", "not marked sensitive"],
            "sensitive = true",
        ),
        endpoint_case(
            "endpoint over http",
            set("cluster_endpoint", json!("http://203.0.113.10"), false),
            &["output `cluster_endpoint`", "not an https:// URL"],
            "https://",
        ),
        endpoint_case(
            "ca not pem",
            set("cluster_ca_certificate", json!("bm90IGEgY2VydA=="), false),
            &[
                "output `cluster_ca_certificate`",
                "neither a PEM certificate nor base64",
            ],
            "PEM",
        ),
    ]
}

fn mapping_cases() -> Vec<Case> {
    let mut mapped_missing = case(
        "mapping to a missing output",
        |_| {},
        &[
            "[envs.dev.outputs] maps `cluster_endpoint` to output `endpoint`",
            "does not declare",
        ],
        "fix the mapping",
    );
    mapped_missing.mapping = mapping(&[(ContractField::ClusterEndpoint, "endpoint", "")]);
    let mut path_missing = case(
        "mapping path not in the output",
        |_| {},
        &[
            "maps `cluster_config` to `cluster_config.0.data`",
            "no `0` in map(string)",
        ],
        "fix the mapping",
    );
    path_missing.mapping = mapping(&[(ContractField::ClusterConfig, "cluster_config", "0.data")]);
    vec![mapped_missing, path_missing]
}

fn cases() -> Vec<Case> {
    [
        presence_and_sensitivity_cases(),
        key_cases(),
        name_and_size_cases(),
        type_cases(),
        version_and_access_cases(),
        mapping_cases(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[test]
fn every_contract_error_says_what_and_how_and_is_bad_input() {
    for case in cases() {
        let err = Contract::from_outputs(&raw(&case.outputs), &case.mapping)
            .err()
            .unwrap_or_else(|| panic!("{}: parsed", case.name));
        let message = err.to_string();
        let hint = err.hint().unwrap_or_default();
        for fragment in case.expect {
            assert!(message.contains(fragment), "{}: {message}", case.name);
        }
        assert!(hint.contains(case.hint), "{}: {hint}", case.name);
        for text in [&message, &hint, &format!("{err:?}")] {
            assert!(!text.contains(CANARY), "{}: {text}", case.name);
        }
        assert_eq!(err.exit_status(), ExitStatus::BadInput, "{}", case.name);
        assert_eq!(crate::Error::from(err).status().code(), 2, "{}", case.name);
    }
}

#[test]
fn the_mapping_hint_names_a_placeholder_without_an_env() {
    let mut outputs = valid();
    outputs.remove("cluster_name");
    let err = Contract::from_outputs(&raw(&outputs), &OutputMapping::default()).unwrap_err();
    assert!(err.hint().unwrap().contains("[envs.<env>.outputs]"));
}
