//! The domain crate stays pure: it must not depend directly on any IO crate.

use std::process::Command;

#[test]
fn domain_depends_on_no_io_crate() {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let domain = packages
        .iter()
        .find(|p| p["name"] == "ringledger-domain")
        .expect("domain crate exists");
    let deps: Vec<&str> = domain["dependencies"]
        .as_array()
        .expect("dependencies")
        .iter()
        .filter(|d| d["kind"].is_null())
        .filter_map(|d| d["name"].as_str())
        .collect();
    for forbidden in ["sqlx", "tokio", "axum", "reqwest", "hyper", "postgres-es"] {
        assert!(
            !deps.contains(&forbidden),
            "ringledger-domain depends on {forbidden}: {deps:?}"
        );
    }
    assert!(
        deps.contains(&"cqrs-es"),
        "sanity: the dependency list was read ({deps:?})"
    );
}
