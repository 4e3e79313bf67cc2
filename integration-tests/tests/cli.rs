//! `anpctl`, the operators' CLI, against a running stack.

use std::process::Command;
use std::time::Duration;

use crate::harness::{OPS_TOKEN, Stack, bin_dir, eventually};

fn anpctl(stack: &Stack, token: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(bin_dir().join("anpctl"))
        .args(args)
        .env("ANP_SITES_URL", format!("http://{}", stack.sites_addr))
        .env("ANP_CONTENT_URL", format!("http://{}", stack.content_addr))
        .env(
            "ANP_AGGREGATOR_URL",
            format!("http://{}", stack.aggregator_addr),
        )
        .env("ANP_OPS_TOKEN", token)
        .output()
        .expect("run anpctl (make test builds it)");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operators_onboard_publish_and_search_with_anpctl() {
    let stack = Stack::start().await;
    let run = |args: &[&str]| {
        let (ok, stdout, stderr) = anpctl(&stack, OPS_TOKEN, args);
        assert!(ok, "anpctl {args:?} failed: {stderr}");
        stdout
    };
    assert!(
        run(&["network", "onboard", "tenants", "--name", "Tenants Union"])
            .starts_with("onboarded tenants")
    );
    assert!(
        run(&["network", "onboard", "tenants", "--name", "Tenants Union"])
            .starts_with("already onboarded")
    );
    assert!(run(&["network", "list"]).contains("tenants\tTenants Union"));
    assert!(
        run(&["site", "create", "tenants/chicago", "--name", "Chicago"])
            .starts_with("created tenants/chicago")
    );
    assert!(run(&["site", "list", "tenants"]).contains("tenants/chicago\tChicago"));
    let published = run(&[
        "post",
        "publish",
        "tenants/chicago",
        "--title",
        "Huelga de alquileres",
        "--body",
        "Las **inquilinas** se organizan.",
        "--lang",
        "es",
    ]);
    let post_id = published.split('\t').next().unwrap().to_owned();
    assert!(run(&["post", "get", &post_id]).contains("Las **inquilinas** se organizan."));
    eventually(
        Duration::from_secs(15),
        "the post in anpctl feed",
        || async {
            run(&["feed", "tenants/chicago"])
                .contains("Huelga de alquileres")
                .then_some(())
        },
    )
    .await;
    eventually(
        Duration::from_secs(15),
        "the post in anpctl search",
        || async {
            run(&["search", "inquilina", "--network", "tenants"])
                .contains("Huelga de alquileres")
                .then_some(())
        },
    )
    .await;

    // Errors are reported, with the field, and a non-zero exit.
    let (ok, _, stderr) = anpctl(
        &stack,
        "wrong-token",
        &["network", "onboard", "other", "--name", "Other"],
    );
    assert!(!ok && stderr.contains("authorization"), "{stderr}");
    let (ok, _, stderr) = anpctl(
        &stack,
        OPS_TOKEN,
        &["site", "create", "tenants/Bad Slug", "--name", "X"],
    );
    assert!(!ok && stderr.contains("slug"), "{stderr}");
    let (ok, _, stderr) = anpctl(
        &stack,
        OPS_TOKEN,
        &["site", "create", "no-slash", "--name", "X"],
    );
    assert!(!ok && stderr.contains("<network>/<site>"), "{stderr}");
    assert!(!run(&["network", "list"]).contains("other"));
    stack.stop().await;
}
