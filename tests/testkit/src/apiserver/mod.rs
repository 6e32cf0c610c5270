//! An in-process Kubernetes API server for tests: HTTPS with its own CA, bearer-token auth,
//! discovery, CRUD/watch/patch/server-side apply over JSON objects, CRDs, finalizers,
//! Namespace termination, garbage collection, and fault injection. See the crate README for
//! what is and is not implemented.

mod audit;
mod defaults;
mod discovery;
mod error;
mod faults;
pub mod fieldset;
mod handlers;
mod lifecycle;
mod objects;
mod openapi;
mod pagination;
pub(crate) mod patch;
mod protobuf;
mod registry;
mod schema;
mod selectors;
mod ssa;
mod store;
mod table;
mod watch;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse as _, Response};
use base64::Engine as _;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use audit::WriteRecord;
pub use error::ApiError;
pub use faults::{Admin, FaultOptions};
use handlers::{Call, Target};

use crate::tls::{TestCa, serve_https};

const MAX_BODY: usize = 64 * 1024 * 1024;

/// How to start an [`ApiServer`].
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// The bearer token clients must send; `None` generates one.
    pub token: Option<String>,
    pub faults: FaultOptions,
    /// Watch events kept for resumption; older resourceVersions get 410 Gone.
    pub history_limit: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            port: 0,
            token: None,
            faults: FaultOptions::default(),
            history_limit: 10_000,
        }
    }
}

/// State shared by the request handlers, the controllers and the admin handle.
pub(crate) struct Shared {
    store: Mutex<store::Store>,
    token: String,
    /// Authenticated, but authorised for discovery only.
    no_rbac_token: String,
    faults: Mutex<FaultOptions>,
    counters: Mutex<BTreeMap<(String, String), u64>>,
    audit: audit::Audit,
    changed: Notify,
    shutdown: CancellationToken,
    /// The cluster CA, as the root CA publisher hands it out.
    ca_pem: String,
}

impl Shared {
    fn faults(&self) -> FaultOptions {
        self.faults.lock().expect("faults lock").clone()
    }

    /// Returns once the server answers again (no [`FaultOptions::stall`]): `true`, or `false`
    /// when it shuts down first.
    async fn until_answering(&self) -> bool {
        while self.faults().stall {
            tokio::select! {
                () = self.shutdown.cancelled() => return false,
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        true
    }

    fn count(&self, verb: &str, resource: String) {
        let mut counters = self.counters.lock().expect("counters lock");
        *counters.entry((verb.to_string(), resource)).or_default() += 1;
    }
}

/// A running server; dropping it stops the server and ends open connections.
pub struct ApiServer {
    shared: Arc<Shared>,
    url: String,
    ca_pem: String,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl ApiServer {
    pub async fn start(options: ServerOptions) -> anyhow::Result<ApiServer> {
        let ca = TestCa::generate()?;
        let tls = ca.server_config()?;
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, options.port)))
            .await
            .with_context(|| format!("binding 127.0.0.1:{}", options.port))?;
        let port = listener.local_addr()?.port();
        let mut store = store::Store::new(options.history_limit.max(1));
        seed_namespaces(&mut store)?;
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            token: options
                .token
                .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()),
            no_rbac_token: uuid::Uuid::new_v4().simple().to_string(),
            faults: Mutex::new(options.faults),
            counters: Mutex::new(BTreeMap::new()),
            audit: audit::Audit::default(),
            changed: Notify::new(),
            shutdown: CancellationToken::new(),
            ca_pem: ca.ca_pem().to_string(),
        });
        let router = axum::Router::new()
            .fallback(dispatch)
            .with_state(shared.clone());
        let shutdown = shared.shutdown.clone();
        tokio::spawn(async move {
            serve_https(listener, tls, router, shutdown.cancelled_owned()).await
        });
        tokio::spawn(run_controllers(shared.clone()));
        Ok(ApiServer {
            shared,
            url: format!("https://127.0.0.1:{port}"),
            ca_pem: ca.ca_pem().to_string(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The bearer token; a test credential, never a real secret.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig_yaml(&self.url, &self.ca_pem, &self.shared.token)
    }

    /// A token the server authenticates but authorises for discovery (`/version`, `/api`,
    /// `/apis`, `/openapi`) only: anything else is 403 Forbidden, as for a service account
    /// without RBAC bindings on a real API server.
    pub fn no_rbac_token(&self) -> &str {
        &self.shared.no_rbac_token
    }

    /// Writes the kubeconfig to `path`, readable by the owner only.
    pub fn write_kubeconfig(&self, path: &Path) -> anyhow::Result<()> {
        write_private(path, &self.kubeconfig_yaml())
    }

    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        client_from_kubeconfig(&self.kubeconfig_yaml()).await
    }

    pub fn admin(&self) -> Admin {
        Admin {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

fn seed_namespaces(store: &mut store::Store) -> anyhow::Result<()> {
    let rt = store
        .registry
        .lookup("", "v1", "namespaces")
        .map_err(|e| anyhow::anyhow!(e.message))?
        .clone();
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let namespace =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        let options = objects::WriteOptions {
            manager: "testkit-apiserver",
            version: "v1",
            dry_run: false,
        };
        objects::create(store, &rt, namespace, options, false)
            .map_err(|e| anyhow::anyhow!(e.message))?;
    }
    Ok(())
}

/// A kubeconfig with one cluster, user and context named `testkit`.
pub fn kubeconfig_yaml(url: &str, ca_pem: &str, token: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: testkit\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\n\
         users:\n- name: testkit\n  user:\n    token: {token}\ncontexts:\n- name: testkit\n  context:\n    cluster: testkit\n    user: testkit\n    namespace: default\n\
         current-context: testkit\n"
    )
}

/// Writes `text` to a new or truncated file with mode 0600.
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

pub async fn client_from_kubeconfig(yaml: &str) -> anyhow::Result<kube::Client> {
    crate::tls::install_crypto_provider();
    let kubeconfig = kube::config::Kubeconfig::from_yaml(yaml).context("parsing the kubeconfig")?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .context("loading the kubeconfig")?;
    kube::Client::try_from(config).context("building the kube client")
}

async fn run_controllers(shared: Arc<Shared>) {
    loop {
        tokio::select! {
            () = shared.shutdown.cancelled() => return,
            () = shared.changed.notified() => {}
            // A periodic pass also settles what no request triggered.
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        lifecycle::reconcile(
            &mut shared.store.lock().expect("store lock"),
            &shared.ca_pem,
        );
    }
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("static response parts")
}

/// Query parameters, last value wins.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query(BTreeMap<String, String>);

impl Query {
    fn parse(query: Option<&str>) -> Query {
        Query(
            url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("1" | "true"))
    }
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| given == token)
}

async fn dispatch(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if authorized(&parts.headers, &shared.no_rbac_token) {
        return match discovery_document(&shared, parts.uri.path()) {
            Some(Ok(document)) => json_response(StatusCode::OK, &document),
            Some(Err(error)) => error.into_response(),
            None => ApiError::forbidden(format!(
                "User \"system:serviceaccount:default:no-rbac\" cannot {} {}",
                parts.method.as_str().to_lowercase(),
                parts.uri.path()
            ))
            .into_response(),
        };
    }
    if !authorized(&parts.headers, &shared.token) {
        return ApiError::unauthorized().into_response();
    }
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return ApiError::bad_request("the request body could not be read").into_response();
    };
    let path = parts.uri.path();
    if path.starts_with("/testkit/admin/") {
        return faults::handle(
            &Admin {
                shared: shared.clone(),
            },
            &parts.method,
            path,
            &body,
        );
    }
    if let Some(document) = discovery_document(&shared, path) {
        return match document {
            Ok(document) => json_response(StatusCode::OK, &document),
            Err(error) => error.into_response(),
        };
    }
    let Some(target) = Target::parse(path) else {
        return ApiError::not_found_path(format!(
            "the server could not find the requested resource ({path})"
        ))
        .into_response();
    };
    let query = Query::parse(parts.uri.query());
    let verb = target.verb(&parts.method, &query);
    shared.count(verb, target.resource());
    let agent = audit::agent_name(
        parts
            .headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default(),
    );
    shared.audit.count_agent(&agent);
    if !shared.until_answering().await {
        return ApiError::internal("the server is shutting down").into_response();
    }
    let faults = shared.faults();
    if faults.aimed_at(&agent) {
        if faults.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
        }
        if let Some(error) = faults.draw() {
            shared.audit.count_injected();
            return error.into_response();
        }
    }
    let written = audit::is_write(verb).then(|| WriteRecord {
        at: std::time::SystemTime::now(),
        verb: verb.to_owned(),
        resource: target.resource(),
        namespace: target.namespace.clone(),
        name: target.name.clone(),
        agent,
    });
    let call = Call {
        target,
        method: parts.method.clone(),
        query,
        headers: &parts.headers,
        body: &body,
    };
    let response = handlers::handle(&shared, call).unwrap_or_else(|error| error.into_response());
    // Stamped as the write arrived, before any watcher could see it: a delay measured from
    // the stamp is never negative, and includes the server's own work.
    if let Some(record) = written.filter(|_| response.status().is_success()) {
        shared.audit.record_write(record);
    }
    response
}

fn discovery_document(shared: &Shared, path: &str) -> Option<Result<Value, ApiError>> {
    let store = shared.store.lock().expect("store lock");
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let document = match segments.as_slice() {
        ["version"] => Ok(discovery::version()),
        ["api"] => Ok(discovery::core_versions()),
        ["api", version] => discovery::resource_list(&store.registry, "", version),
        ["apis"] => Ok(discovery::group_list(&store.registry)),
        ["apis", group] => discovery::group_document(&store.registry, group),
        ["apis", group, version] => discovery::resource_list(&store.registry, group, version),
        ["openapi", "v3"] => Ok(openapi::root(&store.registry)),
        ["openapi", "v3", "api", version] => openapi::group_version(&store.registry, "", version),
        ["openapi", "v3", "apis", group, version] => {
            openapi::group_version(&store.registry, group, version)
        }
        ["openapi", ..] => Err(ApiError::not_found_path(
            "only the OpenAPI v3 documents are served",
        )),
        ["healthz" | "livez" | "readyz"] => return Some(Ok(Value::String("ok".into()))),
        _ => return None,
    };
    Some(document)
}
