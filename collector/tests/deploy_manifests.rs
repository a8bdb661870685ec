//! deploy/kubernetes and deploy/container cannot rot: every YAML document
//! parses, the ConfigMap's collector.toml is a valid `Config`, and the
//! StatefulSet, Service and image agree with it (ports, data directory,
//! PKI location, non-root, read-only root filesystem).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use census_collector::config::Config;
use yaml_rust2::{Yaml, YamlLoader};

fn deploy(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy").join(rel)
}

/// Every document of every manifest, by kind.
fn manifests() -> BTreeMap<String, Yaml> {
    let mut by_kind = BTreeMap::new();
    let dir = deploy("kubernetes");
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("deploy/kubernetes").map(|e| e.expect("entry").path()).collect();
    files.sort();
    for path in files.into_iter().filter(|p| p.extension().is_some_and(|e| e == "yaml")) {
        let text = std::fs::read_to_string(&path).expect("read manifest");
        let docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for doc in docs {
            let kind = doc["kind"].as_str().unwrap_or_else(|| panic!("{}: a document without kind", path.display())).to_string();
            assert!(doc["apiVersion"].as_str().is_some(), "{}: {kind} without apiVersion", path.display());
            assert!(doc["metadata"]["name"].as_str().is_some(), "{}: {kind} without a name", path.display());
            assert!(by_kind.insert(kind.clone(), doc).is_none(), "two {kind} documents");
        }
    }
    by_kind
}

fn list(y: &Yaml) -> &[Yaml] {
    y.as_vec().map(Vec::as_slice).unwrap_or(&[])
}

fn named<'a>(items: &'a Yaml, name: &str) -> &'a Yaml {
    list(items).iter().find(|i| i["name"].as_str() == Some(name)).unwrap_or_else(|| panic!("no item named {name}"))
}

#[test]
fn kubernetes_manifests_agree_with_the_collector_config() {
    let m = manifests();
    let kinds: Vec<&str> = m.keys().map(String::as_str).collect();
    assert_eq!(kinds, ["ConfigMap", "Secret", "Service", "StatefulSet"]);

    let config_map = &m["ConfigMap"];
    let toml = config_map["data"]["collector.toml"].as_str().expect("ConfigMap data collector.toml");
    let config = Config::from_toml(toml, "configmap.yaml collector.toml").expect("a valid collector config");

    let sts = &m["StatefulSet"];
    assert_eq!(sts["spec"]["replicas"].as_i64(), Some(1), "sled is single-writer: one replica");
    let pod = &sts["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    assert!(pod["securityContext"]["runAsUser"].as_i64().is_some_and(|u| u > 0));
    let container = &list(&pod["containers"])[0];
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(container["securityContext"]["allowPrivilegeEscalation"].as_bool(), Some(false));

    // Ports: the container's, the Service's and the config's listeners agree.
    let ports = &container["ports"];
    assert_eq!(named(ports, "agent-api")["containerPort"].as_i64(), Some(i64::from(config.agent_api.listen.port())));
    assert_eq!(named(ports, "admin-api")["containerPort"].as_i64(), Some(i64::from(config.admin_api.listen.port())));
    assert_eq!(named(ports, "http-api")["containerPort"].as_i64(), Some(i64::from(config.http_api.listen.port())));
    assert!(
        config.agent_api.listen.ip().is_unspecified()
            && config.admin_api.listen.ip().is_unspecified()
            && config.http_api.listen.ip().is_unspecified(),
        "a pod must listen beyond loopback"
    );
    let svc_ports = &m["Service"]["spec"]["ports"];
    assert_eq!(named(svc_ports, "agent-api")["port"].as_i64(), Some(i64::from(config.agent_api.listen.port())));
    assert_eq!(named(svc_ports, "admin-api")["port"].as_i64(), Some(i64::from(config.admin_api.listen.port())));
    assert_eq!(named(svc_ports, "http-api")["port"].as_i64(), Some(i64::from(config.http_api.listen.port())));
    let selector = &m["Service"]["spec"]["selector"];
    assert_eq!(selector, &sts["spec"]["template"]["metadata"]["labels"]);

    // The config is the mounted ConfigMap, named on the command line.
    let args: Vec<&str> = list(&container["args"]).iter().filter_map(Yaml::as_str).collect();
    let config_path = Path::new(args.iter().skip_while(|a| **a != "--config").nth(1).expect("--config FILE"));
    let mounts = &container["volumeMounts"];
    let volumes = &pod["volumes"];
    let config_mount = named(mounts, "config");
    assert_eq!(Path::new(config_mount["mountPath"].as_str().expect("path")).join("collector.toml"), config_path);
    assert_eq!(named(volumes, "config")["configMap"]["name"].as_str(), config_map["metadata"]["name"].as_str());

    // data_dir is the persistent volume; pki/ inside it is the Secret.
    let data_claim = list(&sts["spec"]["volumeClaimTemplates"])[0]["metadata"]["name"].as_str().expect("claim name");
    assert_eq!(Path::new(named(mounts, data_claim)["mountPath"].as_str().expect("path")), config.data_dir);
    let pki = named(mounts, "pki");
    assert_eq!(Path::new(pki["mountPath"].as_str().expect("path")), config.pki_dir());
    assert_eq!(pki["readOnly"].as_bool(), Some(true));
    let secret = &m["Secret"];
    assert_eq!(named(volumes, "pki")["secret"]["secretName"].as_str(), secret["metadata"]["name"].as_str());
    let mut files: Vec<&str> = secret["stringData"].as_hash().expect("stringData").keys().filter_map(Yaml::as_str).collect();
    files.sort();
    assert_eq!(files, ["ca.key", "ca.pem", "server.key", "server.pem"], "the files Pki::load reads");
}

#[test]
fn container_image_matches_the_defaults() {
    let text = std::fs::read_to_string(deploy("container/Containerfile")).expect("Containerfile");
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim_start().starts_with('#')).collect();
    let has = |prefix: &str| lines.iter().any(|l| l.starts_with(prefix));
    let defaults = Config::default();
    assert!(has(&format!("VOLUME [\"{}\"]", defaults.data_dir.display())), "the data directory is a volume");
    assert!(has(&format!(
        "EXPOSE {} {} {}",
        defaults.agent_api.listen.port(),
        defaults.admin_api.listen.port(),
        defaults.http_api.listen.port()
    )));
    assert!(has("USER 65532"), "non-root");
    assert!(has("ENTRYPOINT [\"/usr/local/bin/census-collector\"]"));
    assert!(has("CMD [\"serve\""));
    assert!(lines.iter().filter(|l| l.starts_with("FROM ")).count() >= 2, "multi-stage build");
    // The config baked into the image is the documented example, which parses.
    let example = std::fs::read_to_string(deploy("collector.toml")).expect("example");
    Config::from_toml(&example, "deploy/collector.toml").expect("valid");
}
