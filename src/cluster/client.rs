//! A verified client for the cluster the Terraform outputs describe: from a kubeconfig (token,
//! client certificate or `exec` plugin) or from endpoint + CA + bearer token. TLS is always
//! verified. A just-created API server may refuse connections for a while, so connecting
//! retries within a budget; rejected credentials fail at once. Every request the client sends
//! afterwards goes through one retry layer (429/5xx, [`super::retry::TransientRetry`]) and has
//! a deadline for its answer, so nothing waits on a silent API server for ever.

use std::time::Duration;

use base64::Engine as _;
use kube::config::{
    AuthInfo, Cluster, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedCluster,
    NamedContext,
};
use kube::{Client, Config};
use secrecy::ExposeSecret as _;

use super::exec_auth::{ExecAuthLayer, ExecToken};
use super::retry::{RetryFailure, TransientRetry, retry};
use crate::contract::ClusterAccess;
use crate::error::{Diagnose, ExitStatus};

/// Longest single attempt at `/version`; the budget bounds the whole.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest wait for the answer to one request (its status line: a watch's events stream after
/// it, and the wait bounds their silence): an API server that takes the request and never
/// answers fails it with [`NoAnswer`] instead of hanging the run.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest TCP + TLS handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A request the API server took and did not answer within [`REQUEST_TIMEOUT`].
#[derive(Debug, thiserror::Error)]
#[error("the API server at {endpoint} did not answer within {}", crate::report::duration(*timeout))]
pub struct NoAnswer {
    pub endpoint: String,
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("the kubeconfig from Terraform output `{output}` is not usable: {reason}")]
    InvalidKubeconfig {
        output: &'static str,
        reason: String,
    },
    #[error(
        "the kubeconfig from Terraform output `{output}` disables TLS verification (insecure-skip-tls-verify)"
    )]
    InsecureKubeconfig { output: &'static str },
    #[error(
        "the cluster endpoint `{endpoint}` from Terraform output `cluster_endpoint` is not an https URL"
    )]
    InvalidEndpoint { endpoint: String },
    #[error(
        "the credential plugin `{command}` from Terraform output `cluster_exec` is not an executable on PATH"
    )]
    ExecPluginMissing { command: String },
    #[error("failed to build a client for {endpoint}: {source}")]
    Client {
        endpoint: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "the cluster at {endpoint} rejected the credentials from Terraform output `{output}` (HTTP {code}): {message}"
    )]
    Rejected {
        endpoint: String,
        output: &'static str,
        code: u16,
        message: String,
    },
    #[error(
        "the TLS certificate of {endpoint} could not be verified against the CA from Terraform output `{output}`: {message}"
    )]
    UntrustedServer {
        endpoint: String,
        output: &'static str,
        message: String,
    },
    #[error("failed to reach the cluster at {endpoint}: {message}")]
    Request { endpoint: String, message: String },
    #[error(
        "the cluster at {endpoint} did not answer within {} ({attempts} attempts); last error: {message}",
        crate::report::duration(*budget)
    )]
    Unreachable {
        endpoint: String,
        budget: Duration,
        attempts: u32,
        message: String,
    },
}

impl Diagnose for ClusterError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            ClusterError::InvalidKubeconfig { .. }
            | ClusterError::InsecureKubeconfig { .. }
            | ClusterError::InvalidEndpoint { .. }
            | ClusterError::ExecPluginMissing { .. }
            | ClusterError::Rejected { .. }
            | ClusterError::UntrustedServer { .. } => ExitStatus::BadInput,
            ClusterError::Unreachable { .. } => ExitStatus::TimedOut,
            ClusterError::Client { .. } | ClusterError::Request { .. } => ExitStatus::Failure,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            ClusterError::Rejected { output, code: 403, .. } => Some(format!(
                "the credentials in `{output}` are known to the cluster but may not read it: give them the rights to manage the cluster (e.g. cluster-admin), or output credentials that have them"
            )),
            ClusterError::Rejected { output, .. } => Some(format!(
                "the token or certificate in `{output}` is wrong or expired: check the Terraform module's output (`terraform output {output}` after a refresh), or the output mapping in the config"
            )),
            ClusterError::ExecPluginMissing { command } => Some(format!(
                "install `{command}` (for EKS: the AWS CLI) or put it on PATH, then rerun: kube runs it for every token"
            )),
            ClusterError::InsecureKubeconfig { .. } => Some(
                "give the module's kubeconfig the cluster's CA (certificate-authority-data) instead of skipping verification".to_owned(),
            ),
            ClusterError::UntrustedServer { .. } => Some(
                "the CA output must be the certificate that signed the API server's certificate (PEM, or base64 of PEM)".to_owned(),
            ),
            ClusterError::Unreachable { .. } => Some(
                "a new cluster can take minutes to answer; check the endpoint and network, then rerun (it resumes where it stopped)".to_owned(),
            ),
            _ => None,
        }
    }
}

/// A client whose cluster answered, with where it points and which Terraform output its
/// credentials came from (for messages when the cluster later refuses them).
#[derive(Clone)]
pub struct Connection {
    pub client: Client,
    pub endpoint: String,
    pub output: &'static str,
}

impl Connection {
    /// The cluster refused a request of these credentials (401, 403): the user's to fix.
    pub fn rejected(&self, code: u16, message: String) -> ClusterError {
        ClusterError::Rejected {
            endpoint: self.endpoint.clone(),
            output: self.output,
            code,
            message,
        }
    }
}

/// Connects to the cluster `access` describes and checks it answers `/version`, retrying
/// connection failures within `budget`.
pub async fn connect(access: &ClusterAccess, budget: Duration) -> Result<Connection, ClusterError> {
    super::install_crypto_provider();
    let output = credentials_output(access);
    let config = client_config(access).await?;
    let endpoint = config.cluster_url.to_string();
    let exec = match access {
        ClusterAccess::EndpointExec { exec, .. } => Some(ExecToken::new(exec)),
        _ => None,
    };
    let client = client_for(config, exec).map_err(|source| ClusterError::Client {
        endpoint: endpoint.clone(),
        source,
    })?;
    let check = || async {
        match tokio::time::timeout(ATTEMPT_TIMEOUT, client.apiserver_version()).await {
            Ok(answer) => answer.map_err(Failure::from),
            Err(_) => Err(Failure::Transient(format!(
                "no answer within {}",
                crate::report::duration(ATTEMPT_TIMEOUT)
            ))),
        }
    };
    match retry(
        budget,
        |f: &Failure| matches!(f, Failure::Transient(_)),
        check,
    )
    .await
    {
        Ok(version) => {
            tracing::debug!(endpoint, version = %version.git_version, "connected");
            Ok(Connection {
                client,
                endpoint,
                output,
            })
        }
        Err(RetryFailure::Permanent(failure)) => Err(failure.into_error(endpoint, output)),
        Err(RetryFailure::Exhausted { last, attempts }) => Err(ClusterError::Unreachable {
            endpoint,
            budget,
            attempts,
            message: last.message(),
        }),
    }
}

/// kube's client with the tool's retries instead of kube's own (which has no jitter, waits up
/// to 1000 s, and leaves 500s alone), a deadline per request, the tool's user agent (how an
/// API server's audit log, and the test cluster's fault injection, tell it apart) and, for a
/// credential plugin, its token kept until shortly before it expires.
fn client_for(mut config: Config, exec: Option<ExecToken>) -> Result<Client, kube::Error> {
    config.default_retry = false;
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    let agent = format!("gitops-bootstrap/{}", env!("CARGO_PKG_VERSION"));
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_str(&agent).expect("a version is a valid header value"),
    ));
    let no_answer = NoAnswer {
        endpoint: config.cluster_url.to_string(),
        timeout: REQUEST_TIMEOUT,
    };
    let name_the_silence = move |err: tower::BoxError| -> tower::BoxError {
        if err.is::<tower::timeout::error::Elapsed>() {
            Box::new(NoAnswer {
                endpoint: no_answer.endpoint.clone(),
                timeout: no_answer.timeout,
            })
        } else {
            err
        }
    };
    Ok(kube::client::ClientBuilder::try_from(config)?
        // The retry layer sends a request again: the boxed stack below it must be cloneable.
        .with_layer(&tower::buffer::BufferLayer::new(1024))
        .with_layer(&ExecAuthLayer(exec))
        .with_layer(&tower::timeout::TimeoutLayer::new(REQUEST_TIMEOUT))
        .with_layer(&tower::util::MapErrLayer::new(name_the_silence))
        .with_layer(&tower::retry::RetryLayer::new(TransientRetry::default()))
        .build())
}

/// Names the contract output the credentials came from, for messages.
fn credentials_output(access: &ClusterAccess) -> &'static str {
    match access {
        ClusterAccess::Kubeconfig(_) => "kubeconfig",
        ClusterAccess::Endpoint { .. } => "cluster_token",
        ClusterAccess::EndpointExec { .. } => "cluster_exec",
    }
}

/// The client configuration for `access`, refusing what kube would accept but a user should
/// not (skipped TLS verification). Nothing connects yet.
pub async fn client_config(access: &ClusterAccess) -> Result<Config, ClusterError> {
    let (kubeconfig, output) = match access {
        ClusterAccess::Kubeconfig(yaml) => {
            let parsed = Kubeconfig::from_yaml(yaml.expose_secret()).map_err(|err| {
                ClusterError::InvalidKubeconfig {
                    output: "kubeconfig",
                    reason: kubeconfig_reason(&err),
                }
            })?;
            (parsed, "kubeconfig")
        }
        ClusterAccess::Endpoint {
            endpoint,
            ca_certificate_pem,
            token,
        } => {
            let auth = AuthInfo {
                token: Some(token.clone()),
                ..Default::default()
            };
            (
                endpoint_kubeconfig(endpoint, ca_certificate_pem, auth)?,
                "cluster_endpoint",
            )
        }
        ClusterAccess::EndpointExec {
            endpoint,
            ca_certificate_pem,
            exec,
        } => {
            // kube would only say "failed to run the plugin" at the first request.
            which::which(&exec.command).map_err(|_| ClusterError::ExecPluginMissing {
                command: exec.command.clone(),
            })?;
            // No auth here: `ExecAuthLayer` runs the plugin and keeps its token.
            (
                endpoint_kubeconfig(endpoint, ca_certificate_pem, AuthInfo::default())?,
                "cluster_endpoint",
            )
        }
    };
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|err| ClusterError::InvalidKubeconfig {
            output,
            reason: kubeconfig_reason(&err),
        })?;
    if config.accept_invalid_certs {
        return Err(ClusterError::InsecureKubeconfig { output });
    }
    Ok(config)
}

/// kube's own message, except for YAML errors whose text may quote the (secret) input.
fn kubeconfig_reason(err: &kube::config::KubeconfigError) -> String {
    match err {
        kube::config::KubeconfigError::Parse(_) => {
            "it is not a valid kubeconfig YAML document".to_owned()
        }
        other => other.to_string(),
    }
}

/// The endpoint forms of the contract as a one-context kubeconfig, so every form goes through
/// kube's one loader (CA parsing, token auth, exec plugins).
fn endpoint_kubeconfig(
    endpoint: &str,
    ca_certificate_pem: &str,
    auth: AuthInfo,
) -> Result<Kubeconfig, ClusterError> {
    if !endpoint.starts_with("https://") {
        return Err(ClusterError::InvalidEndpoint {
            endpoint: endpoint.to_owned(),
        });
    }
    const NAME: &str = "gitops-bootstrap";
    Ok(Kubeconfig {
        clusters: vec![NamedCluster {
            name: NAME.to_owned(),
            cluster: Some(Cluster {
                server: Some(endpoint.to_owned()),
                certificate_authority_data: Some(
                    base64::engine::general_purpose::STANDARD.encode(ca_certificate_pem),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }],
        auth_infos: vec![NamedAuthInfo {
            name: NAME.to_owned(),
            auth_info: Some(auth),
            ..Default::default()
        }],
        contexts: vec![NamedContext {
            name: NAME.to_owned(),
            context: Some(Context {
                cluster: NAME.to_owned(),
                user: Some(NAME.to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        }],
        current_context: Some(NAME.to_owned()),
        ..Default::default()
    })
}

/// One failed `/version` attempt, classified.
#[derive(Debug)]
enum Failure {
    Rejected { code: u16, message: String },
    Untrusted(String),
    Permanent(String),
    Transient(String),
}

impl Failure {
    fn message(&self) -> String {
        match self {
            Failure::Rejected { message, .. }
            | Failure::Untrusted(message)
            | Failure::Permanent(message)
            | Failure::Transient(message) => message.clone(),
        }
    }

    fn into_error(self, endpoint: String, output: &'static str) -> ClusterError {
        match self {
            Failure::Rejected { code, message } => ClusterError::Rejected {
                endpoint,
                output,
                code,
                message,
            },
            Failure::Untrusted(message) => ClusterError::UntrustedServer {
                endpoint,
                output: if output == "cluster_token" {
                    "cluster_ca_certificate"
                } else {
                    output
                },
                message,
            },
            Failure::Permanent(message) | Failure::Transient(message) => {
                ClusterError::Request { endpoint, message }
            }
        }
    }
}

impl From<kube::Error> for Failure {
    fn from(err: kube::Error) -> Failure {
        match &err {
            kube::Error::Api(status) if matches!(status.code, 401 | 403) => Failure::Rejected {
                code: status.code,
                message: super::api_message(&err),
            },
            kube::Error::Api(status) if status.code == 429 || status.code >= 500 => {
                Failure::Transient(super::api_message(&err))
            }
            kube::Error::Api(_) | kube::Error::Auth(_) => {
                Failure::Permanent(super::api_message(&err))
            }
            _ => {
                let chain = super::error_chain(&err);
                match (tls_rejection(&chain), &err) {
                    (Some(rejection), _) => Failure::Untrusted(rejection),
                    (None, kube::Error::HyperError(_) | kube::Error::Service(_)) => {
                        Failure::Transient(chain)
                    }
                    (None, _) => Failure::Permanent(chain),
                }
            }
        }
    }
}

/// The certificate-verification failure in an error chain. The rustls error sits behind
/// boxed connector errors that hide its type, so this reads rustls's message, which starts
/// "invalid peer certificate" for every verification failure.
fn tls_rejection(chain: &str) -> Option<String> {
    const REJECTED: &str = "invalid peer certificate";
    chain.find(REJECTED).map(|at| chain[at..].to_owned())
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    const CANARY: &str = "canary-token-5f3a";

    #[tokio::test]
    async fn endpoint_access_becomes_a_token_config_that_verifies_tls() {
        let access = ClusterAccess::Endpoint {
            endpoint: "https://127.0.0.1:6443".to_owned(),
            ca_certificate_pem: TEST_CA_PEM.to_owned(),
            token: SecretString::from(CANARY),
        };
        let config = client_config(&access).await.unwrap();
        assert_eq!(config.cluster_url.to_string(), "https://127.0.0.1:6443/");
        assert!(!config.accept_invalid_certs);
        assert_eq!(config.root_cert.as_ref().map(Vec::len), Some(1));
        assert!(!format!("{config:?}").contains(CANARY));
    }

    #[tokio::test]
    async fn a_credential_plugin_that_is_not_on_path_is_bad_input() {
        let access = ClusterAccess::EndpointExec {
            endpoint: "https://127.0.0.1:6443".to_owned(),
            ca_certificate_pem: TEST_CA_PEM.to_owned(),
            exec: crate::contract::ExecCredential {
                command: "no-such-get-token-5f3a".to_owned(),
                args: vec!["eks".to_owned()],
                env: Default::default(),
            },
        };
        let err = client_config(&access).await.unwrap_err();
        assert!(
            matches!(err, ClusterError::ExecPluginMissing { .. }),
            "{err}"
        );
        assert_eq!(err.exit_status(), ExitStatus::BadInput);
        assert!(err.to_string().contains("no-such-get-token-5f3a"), "{err}");
    }

    #[tokio::test]
    async fn plain_http_endpoints_are_refused() {
        let access = ClusterAccess::Endpoint {
            endpoint: "http://127.0.0.1:6443".to_owned(),
            ca_certificate_pem: TEST_CA_PEM.to_owned(),
            token: SecretString::from(CANARY),
        };
        let err = client_config(&access).await.unwrap_err();
        assert!(matches!(err, ClusterError::InvalidEndpoint { .. }), "{err}");
    }

    #[tokio::test]
    async fn kubeconfigs_that_skip_tls_verification_are_refused() {
        let yaml = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n    server: https://127.0.0.1:6443\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: {CANARY}\ncontexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n"
        );
        let err = client_config(&ClusterAccess::Kubeconfig(SecretString::from(yaml)))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ClusterError::InsecureKubeconfig { .. }),
            "{err}"
        );
        assert_eq!(err.exit_status(), ExitStatus::BadInput);
    }

    #[tokio::test]
    async fn broken_kubeconfig_errors_do_not_quote_the_input() {
        let yaml = format!("clusters: [{CANARY}");
        let err = client_config(&ClusterAccess::Kubeconfig(SecretString::from(yaml)))
            .await
            .unwrap_err();
        assert!(!err.to_string().contains(CANARY), "{err}");
        assert!(!format!("{err:?}").contains(CANARY));
    }

    #[test]
    fn rejected_credentials_name_the_output_and_hint_at_the_token() {
        let err = Failure::Rejected {
            code: 401,
            message: "Unauthorized".to_owned(),
        }
        .into_error("https://k:6443/".to_owned(), "cluster_token");
        assert!(
            err.to_string()
                .contains("rejected the credentials from Terraform output `cluster_token`")
        );
        assert_eq!(err.exit_status(), ExitStatus::BadInput);
        assert!(err.hint().unwrap().contains("cluster_token"));
    }

    // A self-signed CA certificate made for this test (never used to connect).
    const TEST_CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBgzCCASmgAwIBAgIUPXFidL0IAkNKBghSpwcdoEy9h8swCgYIKoZIzj0EAwIw
FzEVMBMGA1UEAwwMdW5pdC10ZXN0LWNhMB4XDTI2MTEyMzE0MDIyMloXDTM2MTEy
MDE0MDIyMlowFzEVMBMGA1UEAwwMdW5pdC10ZXN0LWNhMFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAE//ecx2hDtK/PnYbwZ64BTTXS/JcH3S4E+azE50JwV4T74iGP
j+aT9ARBx3eGvV0wxanxL6QMlj3ae0e7pTozoKNTMFEwHQYDVR0OBBYEFHZS6dhK
5wXLHVEkZyR99Ufa9GF4MB8GA1UdIwQYMBaAFHZS6dhK5wXLHVEkZyR99Ufa9GF4
MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIgHxpZiZM29sZC3U3B
2vrYCZpbQOn5SNxQVnyJbPQqslQCIQCbeALe/0RqcSK/nElWxIbOMOC5FPBU8TMK
XldiDjgc5Q==
-----END CERTIFICATE-----
";
}
