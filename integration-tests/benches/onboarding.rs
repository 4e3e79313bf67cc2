//! Onboarding 1,000 networks with 10 sites each through the ops API, against
//! every service running as its own process.
//!
//! Prints the time per onboarding beside a baseline (the cheapest gRPC call
//! that reads PostgreSQL, on the same server, in the same run), and the
//! resident memory of every service before and after, per network.
//! Run with `make bench`; results in `docs/benchmarks.md`.

#[allow(dead_code)]
#[path = "../tests/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use anp_proto::ops::v1::OnboardNetworkRequest;
use anp_proto::ops::v1::ops_service_client::OpsServiceClient;
use anp_proto::sites::v1::sites_service_client::SitesServiceClient;
use anp_proto::sites::v1::{
    AcceptInvitationRequest, CreateSiteRequest, GetNetworkRequest, SignUpRequest,
};
use harness::{
    Infra, PASSWORD, Process, authorized, free_addr, process_env, wait_for, wait_healthy,
    with_token,
};
use tonic::transport::Channel;

fn networks() -> usize {
    std::env::var("ANP_BENCH_NETWORKS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000)
}
const SITES: usize = 10;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn p99(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[(values.len() * 99 / 100).min(values.len() - 1)]
}

/// Onboards one network, signs its admin up and creates its sites; returns
/// the time of the OnboardNetwork call and of each CreateSite.
async fn onboard(
    ops: &mut OpsServiceClient<Channel>,
    sites: &mut SitesServiceClient<Channel>,
    slug: &str,
    n: usize,
) -> (Duration, Vec<Duration>) {
    let slug = slug.to_owned();
    let mut site_times = Vec::with_capacity(SITES);
    let sent = Instant::now();
    let onboarded = ops
        .onboard_network(authorized(OnboardNetworkRequest {
            slug: slug.clone(),
            name: format!("Network {n}"),
            idempotency_key: format!("bench-{slug}"),
            admin_email: format!("admin@{slug}.example.org"),
            ..Default::default()
        }))
        .await
        .expect("onboard")
        .into_inner();
    let onboard_time = sent.elapsed();

    let token = sites
        .sign_up(SignUpRequest {
            email: format!("admin@{slug}.example.org"),
            password: PASSWORD.into(),
            display_name: format!("Admin {n}"),
        })
        .await
        .expect("sign up")
        .into_inner()
        .token;
    sites
        .accept_invitation(with_token(
            AcceptInvitationRequest {
                token: onboarded.admin_invitation.unwrap().token,
            },
            &token,
        ))
        .await
        .expect("accept");
    for s in 0..SITES {
        let sent = Instant::now();
        sites
            .create_site(with_token(
                CreateSiteRequest {
                    network_slug: slug.clone(),
                    slug: format!("site-{s}"),
                    name: format!("Site {s}"),
                    ..Default::default()
                },
                &token,
            ))
            .await
            .expect("create site");
        site_times.push(sent.elapsed());
    }
    (onboard_time, site_times)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        println!("onboarding: benchmark");
        return;
    }
    let count = networks();
    println!(
        "# ANP onboarding benchmark: {count} networks × {SITES} sites, every service its own process\n"
    );
    let infra = Infra::new().await;
    let index = tempfile::tempdir().expect("tempdir");
    let (sites_addr, content_addr, aggregator_addr, gateway_addr) =
        (free_addr(), free_addr(), free_addr(), free_addr());
    let mut env = process_env(&infra);
    env.extend([
        ("ANP_SITES_LISTEN", sites_addr.clone()),
        ("ANP_CONTENT_LISTEN", content_addr.clone()),
        ("ANP_AGGREGATOR_LISTEN", aggregator_addr.clone()),
        ("ANP_GATEWAY_LISTEN", gateway_addr.clone()),
        ("ANP_SITES_URL", format!("http://{sites_addr}")),
        ("ANP_CONTENT_URL", format!("http://{content_addr}")),
        ("ANP_AGGREGATOR_URL", format!("http://{aggregator_addr}")),
        ("ANP_INDEX_DIR", index.path().display().to_string()),
        ("ANP_SIGN_IN_PER_MINUTE", "100000".to_owned()),
    ]);
    let services = [
        ("anp-sites", Process::spawn("anp-sites", &env)),
        ("anp-content", Process::spawn("anp-content", &env)),
        ("anp-aggregator", Process::spawn("anp-aggregator", &env)),
        ("anp-gateway", Process::spawn("anp-gateway", &env)),
    ];
    let channel = |addr: &str| {
        Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy()
    };
    let mut ops = OpsServiceClient::new(channel(&sites_addr));
    let mut sites = SitesServiceClient::new(channel(&sites_addr));
    for addr in [&sites_addr, &content_addr, &aggregator_addr] {
        wait_healthy(addr).await;
    }
    wait_for("the gateway", Duration::from_secs(60), || {
        let url = format!("http://{gateway_addr}/healthz");
        async move {
            reqwest::get(url)
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
    // Warm up with a few networks of the same shape (one-time costs such as
    // the search index's writer buffer and the password hashers' memory are
    // not per network), then measure the idle services.
    for n in 0..3 {
        onboard(&mut ops, &mut sites, &format!("warm-up-{n}"), n).await;
    }
    let before: Vec<u64> = services
        .iter()
        .map(|(_, process)| rss_kib(process.pid()))
        .collect();

    let mut baseline = Vec::with_capacity(count);
    let mut onboarding = Vec::with_capacity(count);
    let mut site_times = Vec::with_capacity(count * SITES);
    let started = Instant::now();
    for n in 0..count {
        let slug = format!("network-{n:04}");
        let sent = Instant::now();
        let _ = sites
            .get_network(GetNetworkRequest {
                slug: format!("absent-{n}"),
            })
            .await;
        baseline.push(sent.elapsed());
        let (onboard_time, times) = onboard(&mut ops, &mut sites, &slug, n).await;
        onboarding.push(onboard_time);
        site_times.extend(times);
    }
    let elapsed = started.elapsed();
    // Let the relay and the aggregator take everything in before measuring.
    let pg = infra.pg().await;
    let expected: i64 = pg
        .query_one("SELECT count(*) FROM sites.events WHERE network_id <> '00000000-0000-0000-0000-000000000000'", &[])
        .await
        .unwrap()
        .get(0);
    wait_for(
        "the aggregator to catch up",
        Duration::from_secs(300),
        || {
            let pg = &pg;
            async move {
                pg.query_one("SELECT count(*) FROM aggregator.usage_events", &[])
                    .await
                    .map(|row| row.get::<_, i64>(0) >= expected)
                    .unwrap_or(false)
            }
        },
    )
    .await;
    let after: Vec<u64> = services
        .iter()
        .map(|(_, process)| rss_kib(process.pid()))
        .collect();

    let (onboard_median, base_median) = (median(onboarding.clone()), median(baseline));
    println!(
        "## Time per onboarding (OnboardNetwork: network, plan, admin invitation; sequential)\n"
    );
    println!("| figure | median | p99 | baseline median | ratio |");
    println!("|---|---|---|---|---|");
    println!(
        "| onboarding | {:.2} ms | {:.2} ms | {:.2} ms | {:.1}× |",
        onboard_median.as_secs_f64() * 1e3,
        p99(onboarding).as_secs_f64() * 1e3,
        base_median.as_secs_f64() * 1e3,
        onboard_median.as_secs_f64() / base_median.as_secs_f64()
    );
    let site_median = median(site_times.clone());
    println!(
        "| CreateSite | {:.2} ms | {:.2} ms | {:.2} ms | {:.1}× |",
        site_median.as_secs_f64() * 1e3,
        p99(site_times).as_secs_f64() * 1e3,
        base_median.as_secs_f64() * 1e3,
        site_median.as_secs_f64() / base_median.as_secs_f64()
    );
    println!(
        "\nTarget: onboarding median under 20 ms. Whole run (with admin sign-up, Argon2id, and {SITES} sites each): {:.1} s.\n",
        elapsed.as_secs_f64()
    );
    println!("## Resident memory (VmRSS) before and after {count} networks\n");
    println!("| service | idle | after | per network | after / idle |");
    println!("|---|---|---|---|---|");
    for (i, (name, _)) in services.iter().enumerate() {
        let per_network = (after[i] as f64 - before[i] as f64) * 1024.0 / count as f64;
        println!(
            "| {name} | {} KiB | {} KiB | {:.1} KB | {:.2}× |",
            before[i],
            after[i],
            per_network / 1000.0,
            after[i] as f64 / before[i].max(1) as f64
        );
    }
    println!("\nTarget: under 50 KB per idle network.");
    drop(services);
    infra.cleanup().await;
}
