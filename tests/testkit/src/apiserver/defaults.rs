//! The defaults kube-apiserver 1.32 fills into the built-in kinds the product and the profiles
//! write, so a write that relies on them (or a no-op apply that omits them) behaves as on a
//! real cluster: Deployments and their pod templates, Services (with a ClusterIP allocated
//! from the service range, kept across updates), Secrets, and the Namespace name label.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use serde_json::{Value, json};

use super::registry::ResourceType;
use super::store::Store;

/// The service CIDR kubeadm and kind default to, 10.96.0.0/12; `.1` is the `kubernetes`
/// Service's own.
const SERVICE_RANGE_START: u32 = u32::from_be_bytes([10, 96, 0, 0]);
const SERVICE_RANGE_SIZE: u32 = 1 << 20;
const NODE_PORTS: std::ops::RangeInclusive<u64> = 30000..=32767;

/// Fills in the defaults of `object` (a write of kind `rt`); `old` is the stored object an
/// update replaces, whose allocated ClusterIP and node ports are kept.
pub fn apply(store: &Store, rt: &ResourceType, object: &mut Value, old: Option<&Value>) {
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "namespaces") => {
            let name = object["metadata"]["name"].clone();
            object["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
        }
        ("", "secrets") => set_default(object, "type", json!("Opaque")),
        ("", "services") => service(store, object, old),
        ("apps", "deployments") => deployment(object),
        ("", "pods") => pod_spec(&mut object["spec"]),
        _ => {}
    }
}

/// The status a new object of a built-in kind has: its Go status struct's zero value as
/// kube-apiserver serializes it (a create's response carries `status: {}` for a Deployment,
/// and the non-omitempty counters of the others); `None` for kinds without one here.
pub fn empty_status(rt: &ResourceType) -> Option<Value> {
    let status = match (rt.group.as_str(), rt.plural.as_str()) {
        ("apps", "deployments") | ("batch", "jobs" | "cronjobs") | ("", "resourcequotas") => {
            json!({})
        }
        ("apps", "replicasets") => json!({"replicas": 0}),
        ("apps", "statefulsets") => json!({"replicas": 0, "availableReplicas": 0}),
        ("apps", "daemonsets") => json!({
            "currentNumberScheduled": 0,
            "numberMisscheduled": 0,
            "desiredNumberScheduled": 0,
            "numberReady": 0,
        }),
        ("", "services") | ("networking.k8s.io", "ingresses") => json!({"loadBalancer": {}}),
        ("", "persistentvolumeclaims") => json!({"phase": "Pending"}),
        ("policy", "poddisruptionbudgets") => json!({
            "disruptionsAllowed": 0,
            "currentHealthy": 0,
            "desiredHealthy": 0,
            "expectedPods": 0,
        }),
        _ => return None,
    };
    Some(status)
}

fn set_default(object: &mut Value, key: &str, value: Value) {
    if object.get(key).is_none_or(Value::is_null) {
        object[key] = value;
    }
}

fn deployment(object: &mut Value) {
    let spec = &mut object["spec"];
    set_default(spec, "replicas", json!(1));
    set_default(spec, "revisionHistoryLimit", json!(10));
    set_default(spec, "progressDeadlineSeconds", json!(600));
    let strategy = &mut spec["strategy"];
    set_default(strategy, "type", json!("RollingUpdate"));
    if strategy["type"] == "RollingUpdate" {
        let rolling = &mut strategy["rollingUpdate"];
        set_default(rolling, "maxUnavailable", json!("25%"));
        set_default(rolling, "maxSurge", json!("25%"));
    }
    pod_spec(&mut spec["template"]["spec"]);
}

fn pod_spec(spec: &mut Value) {
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    for list in ["initContainers", "containers"] {
        for container in spec[list].as_array_mut().into_iter().flatten() {
            container_defaults(container);
        }
    }
}

fn container_defaults(container: &mut Value) {
    set_default(
        container,
        "terminationMessagePath",
        json!("/dev/termination-log"),
    );
    set_default(container, "terminationMessagePolicy", json!("File"));
    let image = container["image"].as_str().unwrap_or_default();
    // Always for `:latest` or no tag (and no digest), else IfNotPresent.
    let last = image.rsplit('/').next().unwrap_or_default();
    let pull = if !image.contains('@') && (!last.contains(':') || last.ends_with(":latest")) {
        "Always"
    } else {
        "IfNotPresent"
    };
    set_default(container, "imagePullPolicy", json!(pull));
    set_default(container, "resources", json!({}));
    for port in container["ports"].as_array_mut().into_iter().flatten() {
        set_default(port, "protocol", json!("TCP"));
    }
}

fn service(store: &Store, object: &mut Value, old: Option<&Value>) {
    let spec = &mut object["spec"];
    set_default(spec, "type", json!("ClusterIP"));
    set_default(spec, "sessionAffinity", json!("None"));
    let kind = spec["type"].as_str().unwrap_or_default().to_string();
    if kind == "ExternalName" {
        return;
    }
    // The server keeps what it allocated when an update leaves it out.
    if let Some(old) = old {
        for field in ["clusterIP", "clusterIPs"] {
            set_default(spec, field, old["spec"][field].clone());
        }
    }
    if spec["clusterIP"].as_str().unwrap_or_default().is_empty() {
        spec["clusterIP"] = json!(free_cluster_ip(store).to_string());
    }
    set_default(spec, "clusterIPs", json!([spec["clusterIP"].clone()]));
    if spec["clusterIP"] != "None" {
        set_default(spec, "ipFamilies", json!(["IPv4"]));
        set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
    }
    set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    let exposed = matches!(kind.as_str(), "NodePort" | "LoadBalancer");
    if exposed {
        set_default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if kind == "LoadBalancer" {
        set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    let mut used = used_node_ports(store);
    let old_ports = old.map(|old| old["spec"]["ports"].clone());
    for port in spec["ports"].as_array_mut().into_iter().flatten() {
        set_default(port, "protocol", json!("TCP"));
        let number = port["port"].clone();
        set_default(port, "targetPort", number);
        if exposed {
            let kept = old_ports
                .iter()
                .flat_map(|p| p.as_array())
                .flatten()
                .find(|p| p["port"] == port["port"] && p["protocol"] == port["protocol"]);
            if let Some(node_port) = kept.map(|p| p["nodePort"].clone()) {
                set_default(port, "nodePort", node_port);
            }
            if port.get("nodePort").is_none_or(Value::is_null)
                && let Some(free) = NODE_PORTS.clone().find(|p| !used.contains(p))
            {
                used.insert(free);
                port["nodePort"] = json!(free);
            }
        }
    }
}

fn services(store: &Store) -> impl Iterator<Item = &Value> {
    store.list("", "services", None).into_iter()
}

fn free_cluster_ip(store: &Store) -> Ipv4Addr {
    let used: BTreeSet<&str> = services(store)
        .filter_map(|s| s["spec"]["clusterIP"].as_str())
        .collect();
    (10..SERVICE_RANGE_SIZE - 1)
        .map(|offset| Ipv4Addr::from(SERVICE_RANGE_START + offset))
        .find(|ip| !used.contains(ip.to_string().as_str()))
        .expect("a free address in 10.96.0.0/12")
}

fn used_node_ports(store: &Store) -> BTreeSet<u64> {
    services(store)
        .flat_map(|s| s["spec"]["ports"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p["nodePort"].as_u64())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::registry::Registry;

    fn rt(group: &str, plural: &str) -> ResourceType {
        Registry::with_builtins()
            .types()
            .iter()
            .find(|rt| rt.group == group && rt.plural == plural)
            .expect("a built-in kind")
            .clone()
    }

    #[test]
    fn a_bare_deployment_gets_the_servers_defaults() {
        let store = Store::new(10);
        let mut deployment = json!({"metadata": {"name": "web"}, "spec": {"template": {"spec": {
            "containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]},
                           {"name": "d", "image": "registry.example:5000/app:1.2"}]}}}});
        apply(&store, &rt("apps", "deployments"), &mut deployment, None);
        let spec = &deployment["spec"];
        assert_eq!(
            spec["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(spec["progressDeadlineSeconds"], 600);
        let pod = &spec["template"]["spec"];
        assert_eq!(pod["dnsPolicy"], "ClusterFirst");
        assert_eq!(pod["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(pod["containers"][1]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(pod["containers"][0]["ports"][0]["protocol"], "TCP");
    }

    #[test]
    fn services_get_a_cluster_ip_that_an_update_keeps() {
        let store = Store::new(10);
        let rt = rt("", "services");
        let mut service = json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}});
        apply(&store, &rt, &mut service, None);
        assert_eq!(service["spec"]["clusterIP"], "10.96.0.10");
        assert_eq!(service["spec"]["ports"][0]["targetPort"], 80);
        let mut update = json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}});
        apply(&store, &rt, &mut update, Some(&service));
        assert_eq!(update["spec"]["clusterIP"], "10.96.0.10");
    }
}
