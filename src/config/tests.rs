//! Loading whole files: the valid example resolves, and every error the loader can report is
//! one table case with its message, its position and exit status 2.

use std::path::Path;

use super::*;
use crate::error::{Diagnose, ExitStatus};

const VALID: &str = r#"state_dir = "state"

[repository]
url = "https://git.example.com/fleet.git"
author_name = "Bootstrap Bot"
author_email = "bot@example.com"

[repository.push]
method = "token"
token_env = "GIT_PUSH_TOKEN"

[repository.read]
token_env = "GIT_READ_TOKEN"

[envs.dev]
module = "modules/kind"
profile = "base"
flux_version = "v2.4.0"

[envs.dev.variables]
node_count = 2

[envs.dev.secret_variables]
db_password = "DEV_DB_PASSWORD"
"#;

const SSH_REPOSITORY: &str = r#"
[envs.prod]
module = "./modules/kind"
profile = "base"
flux_version = "v2.4.0"

[envs.prod.repository]
url = "ssh://git@git.example.com/fleet.git"
author_name = "Bootstrap Bot"
author_email = "bot@example.com"

[envs.prod.repository.push]
method = "ssh_key"
key_file = "id_ed25519"
known_hosts = "known_hosts"
"#;

/// A directory holding everything the example config refers to.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("modules/kind")).unwrap();
    for file in [
        "known_hosts",
        "id_ed25519",
        "ca.pem",
        "flux.yaml",
        "extra.tfvars",
    ] {
        std::fs::write(dir.path().join(file), "x").unwrap();
    }
    dir
}

fn parse_in(dir: &Path, text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, &dir.join(DEFAULT_FILE))
}

#[test]
fn the_example_loads_with_resolved_paths_and_defaults() {
    let dir = fixture();
    let config = parse_in(dir.path(), &format!("{VALID}{SSH_REPOSITORY}")).unwrap();
    assert_eq!(config.state_dir, dir.path().join("state"));
    assert_eq!(config.dir(), dir.path());
    let dev = config.env("dev").unwrap();
    assert_eq!(dev.module, dir.path().join("modules/kind"));
    assert_eq!(dev.repository.branch, "main");
    assert_eq!(dev.repository.path, "");
    assert_eq!(dev.repository.transport(), GitTransport::Http);
    assert_eq!(dev.repository.read.username(), "git");
    assert_eq!(dev.backend.kind, "local");
    assert_eq!(dev.variables["node_count"], serde_json::json!(2));
    assert_eq!(dev.secret_variables["db_password"], "DEV_DB_PASSWORD");
    assert_eq!(dev.outputs.table(), "[envs.dev.outputs]");
    assert!(!dev.ci);

    let prod = config.env("prod").unwrap();
    assert_eq!(prod.module, dir.path().join("modules/kind"));
    assert_eq!(prod.repository.transport(), GitTransport::Ssh);
    assert_eq!(
        prod.repository.push,
        PushCredentials::SshKey {
            key_file: dir.path().join("id_ed25519"),
            known_hosts: dir.path().join("known_hosts"),
        }
    );
    assert_eq!(
        prod.repository.flux_known_hosts(),
        Some(dir.path().join("known_hosts").as_path())
    );
}

#[test]
fn path_variables_are_relative_to_the_config_file() {
    let dir = fixture();
    let text = VALID.replace(
        "[envs.dev.secret_variables]",
        "[envs.dev.path_variables]\nkubeconfig_path = \"clusters/dev.kubeconfig\"\n\
         ca = \"/etc/ssl/ca.pem\"\n[envs.dev.secret_variables]",
    );
    let config = parse_in(dir.path(), &text).unwrap();
    let dev = config.env("dev").unwrap();
    let kubeconfig = dir.path().join("clusters/dev.kubeconfig");
    assert_eq!(
        dev.variables["kubeconfig_path"],
        kubeconfig.to_str().unwrap()
    );
    assert_eq!(dev.variables["ca"], "/etc/ssl/ca.pem");
    assert_eq!(dev.variables["node_count"], 2);
}

#[test]
fn optional_settings_resolve() {
    let dir = fixture();
    let text = VALID.replace(
        "flux_version = \"v2.4.0\"\n",
        "flux_version = \"v2.4.0\"\nflux_manifests = \"https://example.com/install.yaml\"\n\
         flux_manifests_ca_file = \"ca.pem\"\nci = true\nvar_files = [\"extra.tfvars\"]\n\
         [envs.dev.backend]\ntype = \"s3\"\nconfig = { bucket = \"b\" }\n\
         [envs.dev.outputs]\ncluster_endpoint = \"endpoint\"\n\
         cluster_ca_certificate = { output = \"cluster_certificate_authority_data\", path = \"0.data\" }\n",
    );
    let config = parse_in(dir.path(), &text).unwrap();
    let dev = config.env("dev").unwrap();
    assert_eq!(
        dev.flux_manifests,
        Some(FluxManifests::Url(
            "https://example.com/install.yaml".into()
        ))
    );
    assert_eq!(dev.flux_manifests_ca_file, Some(dir.path().join("ca.pem")));
    assert!(dev.ci);
    assert_eq!(dev.var_files, [dir.path().join("extra.tfvars")]);
    assert_eq!(dev.backend.kind, "s3");
    assert_eq!(dev.backend.config["bucket"], "b");
    assert_eq!(
        dev.outputs.source(ContractField::ClusterCaCertificate),
        OutputRef::new("cluster_certificate_authority_data", "0.data")
    );
    assert_eq!(dev.flux.install, FluxInstall::Components);
    let unversioned = parse_in(
        dir.path(),
        &VALID.replace("flux_version = \"v2.4.0\"\n", ""),
    )
    .unwrap();
    assert_eq!(
        unversioned.env("dev").unwrap().flux_version,
        DEFAULT_FLUX_VERSION
    );
    let local = parse_in(
        dir.path(),
        &VALID.replace(
            "[envs.dev.variables]",
            "flux_manifests = \"flux.yaml\"\n[envs.dev.flux]\ninstall = \"operator\"\n\
             [envs.dev.variables]",
        ),
    )
    .unwrap();
    assert_eq!(
        local.env("dev").unwrap().flux.install,
        FluxInstall::Operator
    );
    assert_eq!(
        local.env("dev").unwrap().flux_manifests,
        Some(FluxManifests::File(dir.path().join("flux.yaml")))
    );
}

#[test]
fn toml_datetimes_become_strings() {
    let dir = fixture();
    let text = VALID.replace(
        "node_count = 2",
        "node_count = 2\ncreated = 2024-01-02T03:04:05Z",
    );
    let config = parse_in(dir.path(), &text).unwrap();
    assert_eq!(
        config.env("dev").unwrap().variables["created"],
        serde_json::json!("2024-01-02T03:04:05Z")
    );
}

struct Case {
    name: &'static str,
    replace: &'static str,
    with: &'static str,
    /// Fragments the message must contain.
    expect: &'static [&'static str],
    /// `line:column` the message must name.
    at: Option<&'static str>,
}

const CASES: &[Case] = &[
    Case {
        name: "not toml",
        replace: "[envs.dev]",
        with: "[envs.dev",
        expect: &["invalid config", "unclosed table"],
        at: Some("15:10"),
    },
    Case {
        name: "unknown key",
        replace: "profile = \"base\"",
        with: "profile = \"base\"\nprofiles = \"x\"",
        expect: &["unknown field `profiles`"],
        at: Some("18:1"),
    },
    Case {
        name: "secret literal is an unknown key",
        replace: "token_env = \"GIT_PUSH_TOKEN\"",
        with: "token = \"ghp_canary\"",
        expect: &["unknown field `token`"],
        at: Some("10:1"),
    },
    Case {
        name: "unknown top-level key",
        replace: "state_dir = \"state\"",
        with: "stat_dir = \"state\"",
        expect: &["unknown field `stat_dir`"],
        at: Some("1:1"),
    },
    Case {
        name: "wrong type",
        replace: "flux_version = \"v2.4.0\"",
        with: "flux_version = 2",
        expect: &["invalid type"],
        at: Some("18:16"),
    },
    Case {
        name: "missing required key",
        replace: "profile = \"base\"\n",
        with: "",
        expect: &["missing field `profile`"],
        at: None,
    },
    Case {
        name: "mapping target not a contract field",
        replace: "[envs.dev.variables]",
        with: "[envs.dev.outputs]\nendpoint = \"x\"\n[envs.dev.variables]",
        expect: &["unknown variant `endpoint`", "cluster_endpoint"],
        at: Some("21:1"),
    },
    Case {
        name: "bad env name",
        replace: "[envs.dev",
        with: "[envs.Dev",
        expect: &["`envs.Dev`", "DNS-1123"],
        at: Some("15:7"),
    },
    Case {
        name: "bad profile name",
        replace: "profile = \"base\"",
        with: "profile = \"../base\"",
        expect: &["`envs.dev.profile`", "must be a directory name"],
        at: Some("17:1"),
    },
    Case {
        name: "missing module dir",
        replace: "module = \"modules/kind\"",
        with: "module = \"modules/eks\"",
        expect: &["`envs.dev.module`", "modules/eks", "not a directory"],
        at: Some("16:1"),
    },
    Case {
        name: "bad flux version",
        replace: "v2.4.0",
        with: "2.4",
        expect: &["`envs.dev.flux_version`", "v2.<minor>.<patch>"],
        at: Some("18:1"),
    },
    Case {
        name: "secret variable value is not an env var name",
        replace: "\"DEV_DB_PASSWORD\"",
        with: "\"hunter2-canary\"",
        expect: &[
            "`envs.dev.secret_variables.db_password`",
            "NAME of an environment variable",
        ],
        at: Some("24:1"),
    },
    Case {
        name: "secret-looking plain variable",
        replace: "node_count = 2",
        with: "admin_password = \"canary\"",
        expect: &["`envs.dev.variables.admin_password`", "looks like a secret"],
        at: Some("21:1"),
    },
    Case {
        name: "variable given twice",
        replace: "node_count = 2",
        with: "db_password = \"x\"",
        expect: &[
            "`envs.dev.variables.db_password`",
            "also in secret_variables",
        ],
        at: Some("21:1"),
    },
    Case {
        name: "variable given as a path too",
        replace: "node_count = 2",
        with: "node_count = 2\n[envs.dev.path_variables]\nnode_count = \"x\"",
        expect: &["`envs.dev.variables.node_count`", "also in path_variables"],
        at: Some("21:1"),
    },
    Case {
        name: "plain variable naming a file beside the config",
        replace: "node_count = 2",
        with: "kubeconfig_path = \"ca.pem\"",
        expect: &[
            "`envs.dev.variables.kubeconfig_path`",
            "relative to the config file",
        ],
        at: Some("21:1"),
    },
    Case {
        name: "bad url scheme",
        replace: "https://git.example.com/fleet.git",
        with: "ftp://git.example.com/fleet.git",
        expect: &["`repository.url` has scheme `ftp`"],
        at: Some("4:1"),
    },
    Case {
        name: "scp-like url",
        replace: "https://git.example.com/fleet.git",
        with: "git@git.example.com:fleet.git",
        expect: &["`repository.url`", "ssh://git@git.example.com/fleet.git"],
        at: Some("4:1"),
    },
    Case {
        name: "token env is a value",
        replace: "token_env = \"GIT_PUSH_TOKEN\"",
        with: "token_env = \"ghp_abc\"",
        expect: &[
            "`repository.push.token_env`",
            "NAME of an environment variable",
        ],
        at: Some("10:1"),
    },
    Case {
        name: "read token missing for https",
        replace: "[repository.read]\ntoken_env = \"GIT_READ_TOKEN\"\n",
        with: "",
        expect: &["`repository.read.token_env`", "is required"],
        at: None,
    },
    Case {
        name: "read token is the push token",
        replace: "\"GIT_READ_TOKEN\"",
        with: "\"GIT_PUSH_TOKEN\"",
        expect: &["`repository.read.token_env`", "separate"],
        at: Some("13:1"),
    },
    Case {
        name: "ssh method for an https url",
        replace: "method = \"token\"\ntoken_env = \"GIT_PUSH_TOKEN\"",
        with: "method = \"ssh_agent\"\nknown_hosts = \"known_hosts\"",
        expect: &["`repository.push.method` must be `token`"],
        at: Some("9:1"),
    },
    Case {
        name: "unknown install method",
        replace: "[envs.dev.variables]",
        with: "flux = { install = \"helm\" }\n[envs.dev.variables]",
        expect: &["unknown variant `helm`", "components", "operator"],
        at: None,
    },
    Case {
        name: "unknown push method",
        replace: "method = \"token\"",
        with: "method = \"password\"",
        expect: &["unknown variant `password`"],
        at: Some("9:10"),
    },
    Case {
        name: "missing known_hosts file",
        replace: "known_hosts = \"known_hosts\"",
        with: "known_hosts = \"nowhere\"",
        expect: &[
            "`envs.prod.repository.push.known_hosts` names",
            "nowhere, which is not a file",
        ],
        at: Some("39:1"),
    },
    Case {
        name: "flux manifests over http",
        replace: "flux_version = \"v2.4.0\"",
        with: "flux_version = \"v2.4.0\"\nflux_manifests = \"http://example.com/install.yaml\"",
        expect: &["`envs.dev.flux_manifests`", "https://"],
        at: Some("19:1"),
    },
    Case {
        name: "mapping to an invalid output name",
        replace: "[envs.dev.variables]",
        with: "[envs.dev.outputs]\ncluster_name = \"my name\"\n[envs.dev.variables]",
        expect: &["`envs.dev.outputs.cluster_name`", "`my name`"],
        at: Some("21:1"),
    },
    Case {
        name: "assembled cluster_config key that is no substitution variable",
        replace: "[envs.dev.variables]",
        with: "[envs.dev.outputs]\ncluster_config = { \"bad-key\" = \"region\" }\n[envs.dev.variables]",
        expect: &[
            "`envs.dev.outputs.cluster_config.bad-key`",
            "substitution variable",
        ],
        at: None,
    },
    Case {
        name: "profiles_dir leaving the repository",
        replace: "author_name = \"Bootstrap Bot\"",
        with: "author_name = \"Bootstrap Bot\"\nprofiles_dir = \"../profiles\"",
        expect: &["`repository.profiles_dir`", "relative path"],
        at: None,
    },
    Case {
        name: "substitution secret that is Flux's own",
        replace: "[repository.push]",
        with: "[repository.substitution]\nsecret = \"sops-age\"\n[repository.push]",
        expect: &["`repository.substitution.secret`", "for Flux itself"],
        at: None,
    },
    Case {
        name: "bad backend type",
        replace: "[envs.dev.variables]",
        with: "[envs.dev.backend]\ntype = \"S3!\"\n[envs.dev.variables]",
        expect: &["`envs.dev.backend.type` must be a Terraform backend type"],
        at: Some("21:1"),
    },
    Case {
        name: "flux manifests CA without a URL",
        replace: "[envs.dev.variables]",
        with: "flux_manifests_ca_file = \"ca.pem\"\n[envs.dev.variables]",
        expect: &["`envs.dev.flux_manifests_ca_file` applies only when flux_manifests is a URL"],
        at: Some("20:1"),
    },
    Case {
        name: "read token for an ssh repository",
        replace: "known_hosts = \"known_hosts\"\n",
        with: "known_hosts = \"known_hosts\"\n[envs.prod.repository.read]\ntoken_env = \"READ\"\n",
        expect: &[
            "`envs.prod.repository.read` takes only known_hosts",
            "deploy key",
        ],
        at: Some("40:"),
    },
    Case {
        name: "credentials in the url",
        replace: "https://git.example.com/fleet.git",
        with: "https://canary@git.example.com/fleet.git",
        expect: &["`repository.url` carries credentials"],
        at: Some("4:1"),
    },
];

#[test]
fn every_error_names_key_and_position_and_is_bad_input() {
    let dir = fixture();
    let valid = format!("{VALID}{SSH_REPOSITORY}");
    for case in CASES {
        assert!(
            valid.contains(case.replace),
            "{}: nothing to replace",
            case.name
        );
        let text = valid.replace(case.replace, case.with);
        let err = parse_in(dir.path(), &text).expect_err(case.name);
        let message = err.to_string();
        assert!(message.contains(DEFAULT_FILE), "{}: {message}", case.name);
        for fragment in case.expect {
            assert!(message.contains(fragment), "{}: {message}", case.name);
        }
        if let Some(at) = case.at {
            let location = format!("{DEFAULT_FILE}:{at}");
            assert!(message.contains(&location), "{}: {message}", case.name);
        }
        assert!(!message.contains("canary"), "{}: {message}", case.name);
        assert_eq!(err.exit_status(), ExitStatus::BadInput, "{}", case.name);
        assert_eq!(crate::Error::from(err).status().code(), 2, "{}", case.name);
    }
}

#[test]
fn a_secret_literal_gets_the_secret_hint() {
    let dir = fixture();
    let text = VALID.replace("token_env = \"GIT_PUSH_TOKEN\"", "token = \"ghp_canary\"");
    let err = parse_in(dir.path(), &text).unwrap_err();
    assert!(
        err.hint().unwrap().contains("environment variable"),
        "{err:?}"
    );
}

#[test]
fn a_file_without_envs_is_rejected() {
    let dir = fixture();
    let err = parse_in(dir.path(), "state_dir = \"x\"\n").unwrap_err();
    assert!(err.to_string().contains("`envs` is missing"), "{err}");
    assert_eq!(err.exit_status(), ExitStatus::BadInput);
}

#[test]
fn an_env_without_any_repository_is_rejected() {
    let dir = fixture();
    let text = &VALID[VALID.find("[envs.dev]").unwrap()..];
    let err = parse_in(dir.path(), text).unwrap_err();
    assert!(
        err.to_string().contains("`envs.dev.repository` is missing"),
        "{err}"
    );
}

#[test]
fn unknown_env_lists_the_known_ones() {
    let dir = fixture();
    let config = parse_in(dir.path(), &format!("{VALID}{SSH_REPOSITORY}")).unwrap();
    let err = config.env("staging").unwrap_err();
    assert!(
        err.to_string().contains("unknown environment `staging`"),
        "{err}"
    );
    assert!(err.to_string().contains("dev, prod"), "{err}");
    assert!(err.hint().unwrap().contains("[envs.staging]"));
    assert_eq!(err.exit_status(), ExitStatus::BadInput);
}

#[test]
fn a_missing_file_is_bad_input() {
    let dir = fixture();
    let err = Config::load(&dir.path().join("absent.toml")).unwrap_err();
    assert!(
        err.to_string().contains("failed to read config file"),
        "{err}"
    );
    assert_eq!(err.exit_status(), ExitStatus::BadInput);
}

#[test]
fn the_schema_describes_the_env_keys() {
    let schema = json_schema();
    let text = schema.to_string();
    for key in [
        "module",
        "profile",
        "flux_version",
        "flux_manifests",
        "install",
        "secret_variables",
        "var_files",
        "backend",
        "repository",
        "outputs",
        "token_env",
        "ssh_agent",
        "known_hosts",
        "cluster_ca_certificate",
    ] {
        assert!(text.contains(&format!("\"{key}\"")), "schema lacks {key}");
    }
    assert_eq!(schema["title"], "gitops-bootstrap configuration");
    assert_eq!(schema["additionalProperties"], false);
}
