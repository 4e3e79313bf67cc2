//! Test environment: a fresh database, a private JetStream stream and
//! subject prefix, and the services started in-process on free ports (or as
//! child processes, for tests that kill them).

use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anp_bus::BusConfig;
use anp_kit::SecretToken;
use anp_proto::aggregator::v1::aggregator_service_client::AggregatorServiceClient;
use anp_proto::content::v1::content_service_client::ContentServiceClient;
use anp_proto::ops::v1::ops_service_client::OpsServiceClient;
use anp_proto::ops::v1::{OnboardNetworkRequest, OnboardNetworkResponse};
use anp_proto::sites::v1::sites_service_client::SitesServiceClient;
use anp_proto::sites::v1::{AcceptInvitationRequest, SignUpRequest};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::Channel;
use uuid::Uuid;

pub const OPS_TOKEN: &str = "test-ops-token-0123456789";
/// The tests' session signing key (base64 of 32 bytes).
pub const SESSION_SEED: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
pub const PASSWORD: &str = "correct horse battery staple";

pub fn signer() -> anp_session::Signer {
    anp_session::Signer::from_seed(SESSION_SEED).expect("test signing key")
}
/// Connections per service: tests run in parallel against one server.
const POOL_SIZE: usize = 8;

pub fn pg_url() -> String {
    std::env::var("ANP_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn nats_url() -> String {
    std::env::var("ANP_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

pub fn bin_dir() -> PathBuf {
    std::env::var("ANP_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug"))
}

/// Polls `check` until it returns `Some`, or fails the test at the deadline.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Adds the ops bearer token to a request.
pub fn authorized<T>(message: T) -> tonic::Request<T> {
    with_token(message, OPS_TOKEN)
}

/// Adds a bearer token (a session's or an ops token) to a request.
pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// Asserts a call failed with `code` and a message naming `field`.
pub fn expect_error<T: std::fmt::Debug>(result: Result<T, tonic::Status>, code: Code, field: &str) {
    let status = result.expect_err("the call must fail");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(field),
        "message {:?} names {field}",
        status.message()
    );
}

/// One number from SQL against the test's database.
pub async fn count(stack: &Stack, sql: &str) -> i64 {
    stack
        .infra
        .pg()
        .await
        .query_one(sql, &[])
        .await
        .expect(sql)
        .get(0)
}

/// A database and a bus of the test's own.
pub struct Infra {
    pub database: String,
    pub database_url: String,
    pub bus: BusConfig,
}

impl Infra {
    pub async fn new() -> Infra {
        let id = Uuid::new_v4().simple().to_string()[..12].to_owned();
        let database = format!("anp_test_{id}");
        let (client, connection) =
            tokio_postgres::connect(&format!("{}/postgres", pg_url()), tokio_postgres::NoTls)
                .await
                .expect("connect to PostgreSQL (set ANP_TEST_PG_URL)");
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {database}"))
            .await
            .expect("create test database");
        Infra {
            database_url: format!("{}/{database}", pg_url()),
            database,
            bus: BusConfig {
                nats_url: nats_url(),
                stream_name: format!("T_{id}"),
                subject_prefix: format!("t{id}.anp.events"),
            },
        }
    }

    pub async fn pg(&self) -> tokio_postgres::Client {
        let (client, connection) =
            tokio_postgres::connect(&self.database_url, tokio_postgres::NoTls)
                .await
                .expect("connect to test database");
        tokio::spawn(connection);
        client
    }

    pub async fn jetstream(&self) -> async_nats::jetstream::Context {
        anp_bus::connect(&self.bus).await.expect("connect to NATS")
    }

    /// Drops the database and the stream.
    pub async fn cleanup(&self) {
        if let Ok(mut jetstream) = anp_bus::connect(&self.bus).await {
            // A benchmark's stream of a million events takes the server
            // longer than a request's default 5 s to delete.
            jetstream.set_timeout(Duration::from_secs(120));
            if let Err(err) = jetstream.delete_stream(&self.bus.stream_name).await {
                eprintln!("stream {} not deleted: {err}", self.bus.stream_name);
            }
        }
        if let Ok((client, connection)) =
            tokio_postgres::connect(&format!("{}/postgres", pg_url()), tokio_postgres::NoTls).await
        {
            tokio::spawn(connection);
            let _ = client
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.database
                ))
                .await;
        }
    }
}

fn database(infra: &Infra, schema: &str) -> anp_kit::DatabaseConfig {
    anp_kit::DatabaseConfig {
        url: infra.database_url.clone(),
        schema: schema.to_owned(),
        pool_size: POOL_SIZE,
    }
}

async fn listener() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr").to_string();
    (listener, addr)
}

fn grpc_channel(addr: &str) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy()
}

/// Which services a test wants and how.
#[derive(Clone, Copy)]
pub struct Options {
    /// Run the aggregator in-process (false: the test starts it itself).
    pub aggregator: bool,
    /// Run the content service's relay inside it (false: the test runs one).
    pub content_relay: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            aggregator: true,
            content_relay: true,
        }
    }
}

/// The whole stack for one test.
pub struct Stack {
    pub infra: Infra,
    pub index_dir: tempfile::TempDir,
    pub sites_addr: String,
    pub content_addr: String,
    pub events_addr: String,
    pub aggregator_addr: String,
    pub gateway_addr: String,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Session token of each network's first admin, by network slug.
    admins: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl Stack {
    pub async fn start() -> Stack {
        Stack::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Stack {
        // Service errors show up in the output of a failing test.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,anp=info".into()))
            .try_init();
        let infra = Infra::new().await;
        let shutdown = CancellationToken::new();
        let index_dir = tempfile::tempdir().expect("tempdir");
        let mut tasks = Vec::new();

        let (sites_listener, sites_addr) = listener().await;
        let (aggregator_listener, aggregator_addr) = listener().await;
        let (content_listener, content_addr) = listener().await;
        let (events_listener, events_addr) = listener().await;
        let sites_config = anp_sites::Config {
            database: database(&infra, "sites"),
            bus: infra.bus.clone(),
            ops_token: SecretToken::new(OPS_TOKEN),
            signer: signer(),
            session_ttl: chrono::Duration::hours(1),
            sign_in_per_minute: 5,
            embedded_relay: true,
            aggregator_url: format!("http://{aggregator_addr}"),
            archive_peers: vec![
                ("content".into(), format!("http://{content_addr}")),
                ("events".into(), format!("http://{events_addr}")),
            ],
        };
        tasks.push(spawn_service(
            "sites",
            anp_sites::run(sites_config, sites_listener, shutdown.clone()),
        ));

        let content_config = anp_content::Config {
            scheduler_interval: Duration::from_millis(100),
            // Fixture feed servers run on loopback.
            feeds: anp_content::feeds::FeedsConfig {
                interval: Duration::from_secs(1),
                tick: Duration::from_millis(100),
                sync: Duration::from_millis(500),
                fetch: anp_fetch::Limits {
                    timeout: Duration::from_millis(1000),
                    max_bytes: 1024 * 1024,
                    allow_private: true,
                    ..Default::default()
                },
            },
            database: database(&infra, "content"),
            bus: infra.bus.clone(),
            sessions: signer().verifier().clone(),
            sites_url: format!("http://{sites_addr}"),
            embedded_relay: options.content_relay,
        };
        tasks.push(spawn_service(
            "content",
            anp_content::run(content_config, content_listener, shutdown.clone()),
        ));
        let events_config = anp_events::Config {
            database: database(&infra, "events"),
            bus: infra.bus.clone(),
            sessions: signer().verifier().clone(),
            sites_url: format!("http://{sites_addr}"),
            embedded_relay: true,
            // Fixture calendars are served on loopback.
            imports: anp_fetch::Limits {
                timeout: Duration::from_millis(2000),
                max_bytes: 1024 * 1024,
                allow_private: true,
                ..Default::default()
            },
        };
        tasks.push(spawn_service(
            "events",
            anp_events::run(events_config, events_listener, shutdown.clone()),
        ));

        if options.aggregator {
            let config = aggregator_config(&infra, &index_dir, &sites_addr);
            tasks.push(spawn_service(
                "aggregator",
                anp_aggregator::run(config, aggregator_listener, shutdown.clone()),
            ));
        } else {
            drop(aggregator_listener);
        }

        let (gateway_listener, gateway_addr) = listener().await;
        let gateway_config = anp_gateway::Config {
            sites_url: format!("http://{sites_addr}"),
            content_url: format!("http://{content_addr}"),
            events_url: format!("http://{events_addr}"),
            aggregator_url: format!("http://{aggregator_addr}"),
            public_url: format!("http://{gateway_addr}"),
            umbrella_name: "Test Umbrella".into(),
            usage_flush: Duration::from_millis(200),
        };
        tasks.push(spawn_service(
            "gateway",
            anp_gateway::run(gateway_config, gateway_listener, shutdown.clone()),
        ));

        let stack = Stack {
            infra,
            index_dir,
            sites_addr,
            content_addr,
            events_addr,
            aggregator_addr,
            gateway_addr,
            shutdown,
            tasks,
            admins: Default::default(),
        };
        stack.wait_ready(options).await;
        stack
    }

    async fn wait_ready(&self, options: Options) {
        let mut addrs = vec![
            self.sites_addr.clone(),
            self.content_addr.clone(),
            self.events_addr.clone(),
        ];
        if options.aggregator {
            addrs.push(self.aggregator_addr.clone());
        }
        for addr in addrs {
            eventually(
                Duration::from_secs(30),
                &format!("grpc health on {addr}"),
                || {
                    let addr = addr.clone();
                    async move {
                        let mut health = tonic_health_client(&addr);
                        health
                            .check(tonic_health::pb::HealthCheckRequest {
                                service: String::new(),
                            })
                            .await
                            .ok()
                            .map(|_| ())
                    }
                },
            )
            .await;
        }
    }

    pub fn ops(&self) -> OpsServiceClient<Channel> {
        OpsServiceClient::new(grpc_channel(&self.sites_addr))
    }

    pub fn sites(&self) -> SitesServiceClient<Channel> {
        SitesServiceClient::new(grpc_channel(&self.sites_addr))
    }

    pub fn content(&self) -> ContentServiceClient<Channel> {
        ContentServiceClient::new(grpc_channel(&self.content_addr))
    }

    pub fn calendar(
        &self,
    ) -> anp_proto::calendar::v1::calendar_service_client::CalendarServiceClient<Channel> {
        anp_proto::calendar::v1::calendar_service_client::CalendarServiceClient::new(grpc_channel(
            &self.events_addr,
        ))
    }

    pub fn aggregator(&self) -> AggregatorServiceClient<Channel> {
        AggregatorServiceClient::new(grpc_channel(&self.aggregator_addr))
    }

    /// Signs up an account; returns its session token.
    pub async fn sign_up(&self, email: &str) -> String {
        self.sites()
            .sign_up(SignUpRequest {
                email: email.into(),
                password: PASSWORD.into(),
                display_name: email.split('@').next().unwrap_or("someone").into(),
            })
            .await
            .unwrap_or_else(|err| panic!("sign up {email}: {err}"))
            .into_inner()
            .token
    }

    /// Onboards a network (key `key-<slug>`) and signs its first admin
    /// (`admin@<slug>.example.org`) up; [`Stack::admin`] has the admin's token.
    pub async fn onboard(&self, slug: &str, name: &str) -> OnboardNetworkResponse {
        let response = self
            .ops()
            .onboard_network(authorized(OnboardNetworkRequest {
                slug: slug.into(),
                name: name.into(),
                idempotency_key: format!("key-{slug}"),
                admin_email: format!("admin@{slug}.example.org"),
                ..Default::default()
            }))
            .await
            .unwrap_or_else(|err| panic!("onboard {slug}: {err}"))
            .into_inner();
        self.adopt(slug, &response).await;
        response
    }

    /// Signs the admin invited by an onboarding up and accepts the invitation.
    pub async fn adopt(&self, slug: &str, onboarded: &OnboardNetworkResponse) {
        let token = self.sign_up(&format!("admin@{slug}.example.org")).await;
        let invitation = onboarded
            .admin_invitation
            .as_ref()
            .expect("admin invitation");
        self.sites()
            .accept_invitation(with_token(
                AcceptInvitationRequest {
                    token: invitation.token.clone(),
                },
                &token,
            ))
            .await
            .unwrap_or_else(|err| panic!("accept admin invitation of {slug}: {err}"));
        self.admins.lock().unwrap().insert(slug.to_owned(), token);
    }

    /// The session token of a network's first admin.
    pub fn admin(&self, network: &str) -> String {
        self.admins
            .lock()
            .unwrap()
            .get(network)
            .cloned()
            .unwrap_or_else(|| {
                panic!("no admin for network {network}: onboard it with Stack::onboard")
            })
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.gateway_addr)
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        self.infra.cleanup().await;
    }
}

fn tonic_health_client(addr: &str) -> tonic_health::pb::health_client::HealthClient<Channel> {
    tonic_health::pb::health_client::HealthClient::new(grpc_channel(addr))
}

fn spawn_service(
    name: &'static str,
    future: impl Future<Output = anyhow::Result<()>> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(err) = future.await {
            panic!("{name} failed: {err:#}");
        }
    })
}

pub fn aggregator_config(
    infra: &Infra,
    index_dir: &tempfile::TempDir,
    sites_addr: &str,
) -> anp_aggregator::Config {
    anp_aggregator::Config {
        database: database(infra, "aggregator"),
        bus: infra.bus.clone(),
        index_dir: index_dir.path().to_path_buf(),
        consumer: "aggregator".into(),
        metrics_listen: None,
        sites_url: format!("http://{sites_addr}"),
        event_stores: anp_aggregator::parse_event_stores(anp_aggregator::DEFAULT_EVENT_STORES)
            .expect("event stores"),
        session_public_key: Some(signer().public_key().to_owned()),
    }
}

/// A service binary run as a child process, killed on drop.
pub struct Process {
    child: Child,
}

impl Process {
    pub fn spawn(binary: &str, env: &[(&str, String)]) -> Process {
        let path = bin_dir().join(binary);
        assert!(
            path.exists(),
            "{} is missing: run `cargo build --bins` first (make test does)",
            path.display()
        );
        let mut command = Command::new(&path);
        // Logs go to target/test-logs/<binary>-<pid of the test>.log.
        let log_dir = bin_dir().join("../test-logs");
        let _ = std::fs::create_dir_all(&log_dir);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_dir.join(format!("{binary}-{}.log", std::process::id())))
            .expect("open log file");
        command.stdout(Stdio::null()).stderr(log);
        command.env("RUST_LOG", "info");
        for (key, value) in env {
            command.env(key, value);
        }
        Process {
            child: command.spawn().expect("spawn service binary"),
        }
    }

    #[allow(dead_code)] // used by benches/onboarding.rs
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Environment for an `anp-*` binary that uses this infrastructure.
pub fn process_env(infra: &Infra) -> Vec<(&'static str, String)> {
    vec![
        ("ANP_DATABASE_URL", infra.database_url.clone()),
        ("ANP_NATS_URL", infra.bus.nats_url.clone()),
        ("ANP_NATS_STREAM", infra.bus.stream_name.clone()),
        ("ANP_NATS_SUBJECT_PREFIX", infra.bus.subject_prefix.clone()),
        ("ANP_OPS_TOKEN", OPS_TOKEN.to_owned()),
        ("ANP_SESSION_SIGNING_KEY", SESSION_SEED.to_owned()),
        ("ANP_SESSION_PUBLIC_KEY", signer().public_key().to_owned()),
        ("ANP_DATABASE_POOL_SIZE", POOL_SIZE.to_string()),
    ]
}

/// A free local address for a service process (benchmarks).
#[allow(dead_code)] // the benchmarks use it
pub fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").to_string()
}

/// Waits for `check`, failing after `within` (benchmarks; tests use
/// `eventually`).
#[allow(dead_code)] // the benchmarks use it
pub async fn wait_for<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + within;
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until a gRPC server at `addr` answers its health check.
#[allow(dead_code)] // the benchmarks use it
pub async fn wait_healthy(addr: &str) {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect_lazy();
    let health = tonic_health::pb::health_client::HealthClient::new(channel);
    wait_for("a service to answer", Duration::from_secs(60), || {
        let mut health = health.clone();
        async move {
            health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .is_ok()
        }
    })
    .await;
}
