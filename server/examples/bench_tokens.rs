//! Load test of the token endpoint and the discovery documents against the
//! real `latch` release binary.
//!
//! The program starts `latch` pinned to one core with `taskset` and creates
//! two applications with `latch app create`, one of them switched to RS256.
//! It seeds users and refresh token families through the library services
//! on the same database. Then it drives a fixed number of keep-alive
//! connections, each sending one request at a time. Every response is
//! checked, and errors are counted and reported. A run with errors makes
//! the program exit with a failure.
//!
//! Refresh scenarios keep rotation on. Each connection owns a set of
//! families and replaces every token with the successor that the response
//! carries, so the seeded pool never runs out. Authorization code exchange
//! consumes one freshly issued code per request; the codes are issued just
//! before each run because they live for 60 seconds.
//!
//! Run it through `scripts/bench-tokens`, which builds both binaries in
//! release mode and pins this program to the second core.

use anyhow::{Context, anyhow, bail};
use app::ssr::codes::{CodeGrant, issue_code};
use app::ssr::entities::{application, user};
use app::ssr::grants::{CodeRedemption, redeem_code};
use app::ssr::ids;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Parser;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, Set, TransactionTrait,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const REDIRECT_URI: &str = "https://chatgpt.com/aip/g-bench/oauth/callback";
const SCOPE: &str = "openid profile offline_access";
const PKCE_VERIFIER: &str = "bench-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";
const USERS: usize = 1024;
const REFRESH_TTL_DAYS: i32 = 14;

/// Command-line options.
#[derive(Parser, Debug, Clone)]
#[command(about = "Benchmark the Latch token endpoint")]
struct Args {
    /// Path of the release `latch` binary.
    #[arg(long)]
    latch: PathBuf,
    /// Backends to run, comma-separated: sqlite, postgres.
    #[arg(long, default_value = "sqlite,postgres", value_delimiter = ',')]
    backends: Vec<String>,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Measured seconds per scenario and run.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Warm-up seconds before each measurement.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Runs of every scenario.
    #[arg(long, default_value_t = 2)]
    runs: usize,
    /// CPU list for the server, as taskset takes it.
    #[arg(long, default_value = "0")]
    server_cpu: String,
    /// CPU list for the second server of the two-instance PostgreSQL run.
    #[arg(long, default_value = "0")]
    second_server_cpu: String,
    /// Refresh token families per application, split across connections.
    #[arg(long, default_value_t = 1024)]
    families: usize,
    /// Upper bound on the codes issued before one code exchange run.
    #[arg(long, default_value_t = 100_000)]
    max_codes: usize,
    /// PostgreSQL URL of a database to connect to when creating and
    /// dropping the benchmark database.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres_admin_url: String,
    /// LATCH_LOG of the server; unset means the server default (info).
    #[arg(long)]
    server_log: Option<String>,
    /// Only these scenarios, comma-separated (refresh-es256-json,
    /// refresh-rs256-json, refresh-es256-form, code-exchange, discovery,
    /// jwks, refresh-two-instances). Empty means all.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

impl Args {
    fn wants(&self, scenario: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|name| name == scenario)
    }
}

/// App ID and secret printed by `latch app create --json`.
#[derive(Debug, Clone, Deserialize)]
struct AppCreds {
    app_id: String,
    app_secret: String,
}

/// A running `latch` process.
struct Server {
    child: tokio::process::Child,
    pid: u32,
    base: String,
}

impl Server {
    async fn start(args: &Args, cpu: &str, data_dir: &Path, database_url: &str, log: &Path) -> anyhow::Result<Self> {
        let port = free_port()?;
        let base = format!("http://127.0.0.1:{port}");

        let log_file = std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let mut command = tokio::process::Command::new("taskset");
        command
            .arg("-c")
            .arg(cpu)
            .arg(&args.latch)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--public-url")
            .arg(&base)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--database-url")
            .arg(database_url)
            .arg("serve")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true);

        clear_latch_env(command.as_std_mut());
        if let Some(level) = &args.server_log {
            command.env("LATCH_LOG", level);
        }

        let child = command.spawn().context("cannot start latch under taskset")?;
        let pid = child.id().ok_or_else(|| anyhow!("latch exited at once"))?;
        let mut server = Server { child, pid, base };
        server.wait_healthy(log).await?;
        Ok(server)
    }

    async fn wait_healthy(&mut self, log: &Path) -> anyhow::Result<()> {
        let client = reqwest::Client::builder().no_proxy().build()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                bail!("latch exited with {status} during start-up:\n{text}");
            }
            if let Ok(response) = client.get(format!("{}/healthz", self.base)).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("latch at {} did not become healthy within 60 s", self.base)
    }

    async fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

fn clear_latch_env(command: &mut std::process::Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LATCH_") {
            command.env_remove(name);
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Memory figures of a process, in KiB.
#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    rss_kib: u64,
    peak_kib: u64,
}

fn memory_of(pid: u32) -> anyhow::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse::<u64>().ok())
    };
    Ok(Memory {
        rss_kib: field("VmRSS:").ok_or_else(|| anyhow!("no VmRSS for {pid}"))?,
        peak_kib: field("VmHWM:").unwrap_or(0),
    })
}

/// User plus system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let Some((_, after_name)) = stat.rsplit_once(')') else {
        return 0;
    };
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let number = |index: usize| fields.get(index).and_then(|value| value.parse::<u64>().ok()).unwrap_or(0);
    // After the command name: state is field 3, utime 14, stime 15.
    number(11) + number(12)
}

/// CPU time stolen by the hypervisor from every CPU of the machine, in
/// clock ticks: the eighth value of the `cpu` line of `/proc/stat`.
fn steal_ticks() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|stat| {
            let line = stat.lines().next()?.to_owned();
            line.split_whitespace().nth(8)?.parse().ok()
        })
        .unwrap_or(0)
}

/// Number of CPUs that `/proc/stat` sums in its `cpu` line. This process
/// may be pinned to fewer, so its own affinity does not tell.
fn online_cpus() -> f64 {
    let count = std::fs::read_to_string("/proc/stat").map_or(0, |stat| {
        stat.lines()
            .filter(|line| line.strip_prefix("cpu").is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit())))
            .count()
    });
    count.max(1) as f64
}

fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100)
}

/// Runs `latch app create` and returns the new application's credentials.
fn create_app(args: &Args, data_dir: &Path, database_url: &str, name: &str) -> anyhow::Result<AppCreds> {
    let mut command = std::process::Command::new(&args.latch);
    command
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--database-url")
        .arg(database_url)
        .args(["app", "create", "--name", name, "--redirect-uri", REDIRECT_URI])
        .arg("--always-issue-refresh-token")
        .arg("--json")
        .stderr(std::process::Stdio::null());
    clear_latch_env(&mut command);
    let output = command.output().context("cannot run latch app create")?;
    if !output.status.success() {
        bail!("latch app create failed with {}", output.status);
    }
    serde_json::from_slice(&output.stdout).context("latch app create printed no JSON")
}

/// The PostgreSQL database of one benchmark, dropped by [`PgDatabase::drop_now`].
struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDatabase {
    async fn create(admin_url: &str) -> anyhow::Result<Self> {
        let name = format!("latch_bench_{}", ids::new_row_id());
        let admin = sea_orm::Database::connect(admin_url)
            .await
            .with_context(|| format!("cannot reach PostgreSQL at {admin_url}"))?;
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await?;
        let _ = admin.close().await;
        let base = admin_url.rsplit_once('/').map(|(base, _)| base).unwrap_or(admin_url);
        Ok(Self {
            admin_url: admin_url.to_owned(),
            url: format!("{base}/{name}"),
            name,
        })
    }

    async fn drop_now(&self) -> anyhow::Result<()> {
        let admin = sea_orm::Database::connect(&self.admin_url).await?;
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
            .await?;
        let _ = admin.close().await;
        Ok(())
    }
}

fn pkce_challenge() -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(PKCE_VERIFIER.as_bytes()))
}

fn code_grant(app: &AppCreds, user_id: &str, now: i64) -> CodeGrant {
    CodeGrant {
        application_id: app.app_id.clone(),
        user_id: user_id.to_owned(),
        redirect_uri: REDIRECT_URI.to_owned(),
        scope: SCOPE.to_owned(),
        nonce: Some("bench-nonce".to_owned()),
        code_challenge: Some(pkce_challenge()),
        auth_time: now,
        issue_refresh_token: true,
    }
}

/// Inserts the benchmark users and returns their ids.
async fn seed_users(db: &DatabaseConnection) -> anyhow::Result<Vec<String>> {
    let password_hash = app::ssr::passwords::hash_password("bench password".into())
        .await
        .map_err(|error| anyhow!("{error}"))?;
    let now = app::ssr::now();
    let mut ids_out = Vec::with_capacity(USERS);
    let txn = db.begin().await?;
    for chunk_start in (0..USERS).step_by(200) {
        let rows: Vec<user::ActiveModel> = (chunk_start..USERS.min(chunk_start + 200))
            .map(|index| {
                let id = ids::new_row_id();
                ids_out.push(id.clone());
                user::ActiveModel {
                    id: Set(id),
                    username: Set(format!("bench-user-{index}")),
                    email: Set(Some(format!("bench-user-{index}@example.com"))),
                    name: Set(Some(format!("Bench User {index}"))),
                    password_hash: Set(password_hash.clone()),
                    created_at: Set(now),
                    updated_at: Set(now),
                }
            })
            .collect();
        user::Entity::insert_many(rows).exec(&txn).await?;
    }
    txn.commit().await?;
    Ok(ids_out)
}

/// Starts `count` refresh token families of `app`: each one is a code
/// issued and redeemed through the library, as the token endpoint would.
async fn seed_families(
    db: &DatabaseConnection,
    app: &AppCreds,
    users: &[String],
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let now = app::ssr::now();
    let mut tokens = Vec::with_capacity(count);
    for index in 0..count {
        let code = issue_code(db, code_grant(app, &users[index % users.len()], now), now)
            .await
            .map_err(|error| anyhow!("{error}"))?;
        let redemption = CodeRedemption {
            client_id: &app.app_id,
            redirect_uri: Some(REDIRECT_URI),
            code_verifier: Some(PKCE_VERIFIER),
            public_client: false,
            refresh_ttl_days: REFRESH_TTL_DAYS,
        };
        let redeemed = redeem_code(db, &code, redemption, now).await?;
        let refresh = redeemed.refresh.ok_or_else(|| anyhow!("the seeded code gave no refresh token"))?;
        tokens.push(refresh.token);
    }
    Ok(tokens)
}

/// Issues `count` codes in one transaction.
async fn seed_codes(db: &DatabaseConnection, app: &AppCreds, users: &[String], count: usize) -> anyhow::Result<Vec<String>> {
    let now = app::ssr::now();
    let txn = db.begin().await?;
    let mut codes = Vec::with_capacity(count);
    for index in 0..count {
        let code = issue_code(&txn, code_grant(app, &users[index % users.len()], now), now)
            .await
            .map_err(|error| anyhow!("{error}"))?;
        codes.push(code);
    }
    txn.commit().await?;
    Ok(codes)
}

/// The request kind that every connection sends.
#[derive(Clone)]
enum Load {
    /// Refresh grant; the body is JSON or form-encoded.
    Refresh { app: Arc<AppCreds>, form: bool },
    /// Authorization code exchange from a shared pool of codes.
    Code { app: Arc<AppCreds>, pool: Arc<CodePool> },
    /// A GET of a public document.
    Get { path: &'static str, check: DocumentCheck },
}

#[derive(Clone, Copy)]
enum DocumentCheck {
    Discovery,
    Jwks,
}

struct CodePool {
    codes: Vec<String>,
    next: AtomicUsize,
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    refresh_token: Option<String>,
    id_token: Option<String>,
}

/// Counts of failed requests, by cause.
#[derive(Debug, Default, Clone, Copy)]
struct Errors {
    status: u64,
    transport: u64,
    body: u64,
}

impl Errors {
    fn total(&self) -> u64 {
        self.status + self.transport + self.body
    }

    fn add(&mut self, other: Errors) {
        self.status += other.status;
        self.transport += other.transport;
        self.body += other.body;
    }
}

enum Failure {
    /// The code pool is empty; no request was sent.
    Exhausted,
    Status,
    Transport,
    Body,
}

struct WorkerResult {
    latencies_us: Vec<u32>,
    errors: Errors,
    tokens: Vec<String>,
    exhausted_at: Option<Instant>,
    first_error: Option<String>,
}

/// Figures of one measured run of one scenario.
#[derive(Debug, Clone)]
struct Measurement {
    requests: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors: Errors,
    server_cpu: f64,
    loadgen_cpu: f64,
    /// Share of the machine's CPU time that the hypervisor gave to other
    /// guests during the run. Above a few percent, the run measured the
    /// host's load as much as Latch.
    steal: f64,
    exhausted: bool,
}

impl Measurement {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

fn percentile_ms(sorted: &[u32], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((fraction * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

fn new_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?)
}

async fn one_request(
    client: &reqwest::Client,
    base: &str,
    load: &Load,
    tokens: &mut [String],
    slot: usize,
) -> Result<(), (Failure, String)> {
    match load {
        Load::Refresh { app, form } => {
            let presented = &tokens[slot];
            let (content_type, body) = if *form {
                (
                    "application/x-www-form-urlencoded",
                    format!(
                        "grant_type=refresh_token&refresh_token={presented}&client_id={}&client_secret={}",
                        app.app_id, app.app_secret
                    ),
                )
            } else {
                (
                    "application/json",
                    format!(
                        r#"{{"grant_type":"refresh_token","refresh_token":"{presented}","client_id":"{}","client_secret":"{}"}}"#,
                        app.app_id, app.app_secret
                    ),
                )
            };
            let parsed = post_token(client, base, content_type, body).await?;
            match (parsed.refresh_token, parsed.id_token) {
                (Some(successor), Some(_)) if successor != *presented && !parsed.access_token.is_empty() => {
                    tokens[slot] = successor;
                    Ok(())
                }
                _ => Err((Failure::Body, "refresh response without a rotated token or ID token".into())),
            }
        }
        Load::Code { app, pool } => {
            let index = pool.next.fetch_add(1, Ordering::Relaxed);
            let Some(code) = pool.codes.get(index) else {
                return Err((Failure::Exhausted, String::new()));
            };
            let body = format!(
                r#"{{"grant_type":"authorization_code","code":"{code}","redirect_uri":"{REDIRECT_URI}","code_verifier":"{PKCE_VERIFIER}","client_id":"{}","client_secret":"{}"}}"#,
                app.app_id, app.app_secret
            );
            let parsed = post_token(client, base, "application/json", body).await?;
            if parsed.access_token.is_empty() || parsed.refresh_token.is_none() || parsed.id_token.is_none() {
                return Err((Failure::Body, "code exchange response is missing a token".into()));
            }
            Ok(())
        }
        Load::Get { path, check } => {
            let response = client
                .get(format!("{base}{path}"))
                .send()
                .await
                .map_err(|error| (Failure::Transport, error.to_string()))?;
            let status = response.status();
            let bytes = response
                .bytes()
                .await
                .map_err(|error| (Failure::Transport, error.to_string()))?;
            if status != reqwest::StatusCode::OK {
                return Err((Failure::Status, format!("{status}: {}", String::from_utf8_lossy(&bytes))));
            }
            let value: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|error| (Failure::Body, error.to_string()))?;
            let good = match check {
                DocumentCheck::Discovery => value["issuer"] == format!("{base}/oidc").as_str(),
                DocumentCheck::Jwks => value["keys"].as_array().is_some_and(|keys| keys.len() >= 2),
            };
            if good {
                Ok(())
            } else {
                Err((Failure::Body, format!("unexpected document: {value}")))
            }
        }
    }
}

async fn post_token(
    client: &reqwest::Client,
    base: &str,
    content_type: &'static str,
    body: String,
) -> Result<TokenBody, (Failure, String)> {
    let response = client
        .post(format!("{base}/oidc/token"))
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .map_err(|error| (Failure::Transport, error.to_string()))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|error| (Failure::Transport, error.to_string()))?;
    if status != reqwest::StatusCode::OK {
        return Err((Failure::Status, format!("{status}: {}", String::from_utf8_lossy(&bytes))));
    }
    serde_json::from_slice(&bytes).map_err(|error| (Failure::Body, error.to_string()))
}

async fn worker(
    base: String,
    load: Load,
    mut tokens: Vec<String>,
    measure_from: Instant,
    end: Instant,
) -> anyhow::Result<WorkerResult> {
    let client = new_client()?;
    let mut result = WorkerResult {
        latencies_us: Vec::with_capacity(65_536),
        errors: Errors::default(),
        tokens: Vec::new(),
        exhausted_at: None,
        first_error: None,
    };
    let mut slot = 0usize;
    loop {
        let started = Instant::now();
        if started >= end {
            break;
        }
        if let Load::Code { pool, .. } = &load
            && pool.next.load(Ordering::Relaxed) >= pool.codes.len()
        {
            result.exhausted_at = Some(started);
            break;
        }
        if matches!(load, Load::Refresh { .. }) {
            if tokens.is_empty() {
                result.exhausted_at = Some(started);
                break;
            }
            slot = (slot + 1) % tokens.len();
        }
        let outcome = one_request(&client, &base, &load, &mut tokens, slot).await;
        let latency = started.elapsed();
        if let Err((Failure::Exhausted, _)) = outcome {
            result.exhausted_at = Some(started);
            break;
        }
        match outcome {
            Ok(()) => {
                if started >= measure_from {
                    result.latencies_us.push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
                }
            }
            Err((failure, text)) => {
                match failure {
                    Failure::Exhausted => {}
                    Failure::Status => result.errors.status += 1,
                    Failure::Transport => result.errors.transport += 1,
                    Failure::Body => result.errors.body += 1,
                }
                result.first_error.get_or_insert(text);
                if matches!(load, Load::Refresh { .. }) {
                    // The token may be spent; leave it out from now on.
                    tokens.swap_remove(slot);
                }
            }
        }
    }
    result.tokens = tokens;
    Ok(result)
}

/// Drives `bases` (one or more servers, connections spread evenly) with
/// `load` and returns the measurement and the tokens that each
/// connection has afterwards.
async fn run_load(
    args: &Args,
    bases: &[String],
    server_pids: &[u32],
    load: Load,
    token_sets: Vec<Vec<String>>,
) -> anyhow::Result<(Measurement, Vec<Vec<String>>)> {
    let warmup = Duration::from_secs(args.warmup);
    let duration = Duration::from_secs(args.duration);
    let begin = Instant::now() + Duration::from_millis(50);
    let measure_from = begin + warmup;
    let end = measure_from + duration;
    let mut handles = Vec::with_capacity(args.connections);
    let mut token_sets = token_sets.into_iter();
    for index in 0..args.connections {
        let base = bases[index % bases.len()].clone();
        let tokens = token_sets.next().unwrap_or_default();
        let load = load.clone();
        handles.push(tokio::spawn(async move {
            tokio::time::sleep_until(begin.into()).await;
            worker(base, load, tokens, measure_from, end).await
        }));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let server_before: Vec<u64> = server_pids.iter().map(|pid| cpu_ticks(&pid.to_string())).collect();
    let self_before = cpu_ticks("self");
    let steal_before = steal_ticks();
    let cpu_start = Instant::now();
    tokio::time::sleep_until(end.into()).await;
    let server_after: Vec<u64> = server_pids.iter().map(|pid| cpu_ticks(&pid.to_string())).collect();
    let self_after = cpu_ticks("self");
    let steal_after = steal_ticks();
    let cpu_seconds = cpu_start.elapsed().as_secs_f64();

    let mut latencies = Vec::new();
    let mut errors = Errors::default();
    let mut tokens_after = Vec::new();
    let mut exhausted_at: Option<Instant> = None;
    let mut first_error = None;
    for handle in handles {
        let result = handle.await??;
        latencies.extend_from_slice(&result.latencies_us);
        errors.add(result.errors);
        tokens_after.push(result.tokens);
        if let Some(at) = result.exhausted_at {
            exhausted_at = Some(exhausted_at.map_or(at, |earlier| earlier.min(at)));
        }
        if first_error.is_none() {
            first_error = result.first_error;
        }
    }
    if let Some(text) = first_error {
        println!("    first error: {}", text.chars().take(300).collect::<String>());
    }
    latencies.sort_unstable();
    let window_end = exhausted_at.filter(|at| *at < end).unwrap_or(end);
    let seconds = window_end.saturating_duration_since(measure_from).as_secs_f64().max(1e-3);
    let ticks = clock_ticks_per_second() as f64;
    let server_ticks: u64 = server_after.iter().zip(&server_before).map(|(after, before)| after - before).sum();
    let measurement = Measurement {
        requests: latencies.len(),
        seconds,
        p50_ms: percentile_ms(&latencies, 0.50),
        p99_ms: percentile_ms(&latencies, 0.99),
        max_ms: latencies.last().map_or(f64::NAN, |max| f64::from(*max) / 1000.0),
        errors,
        server_cpu: server_ticks as f64 / ticks / cpu_seconds * 100.0,
        loadgen_cpu: (self_after - self_before) as f64 / ticks / cpu_seconds * 100.0,
        steal: steal_after.saturating_sub(steal_before) as f64 / ticks / cpu_seconds / online_cpus() * 100.0,
        exhausted: exhausted_at.is_some_and(|at| at < end),
    };
    Ok((measurement, tokens_after))
}

/// Splits `tokens` into one set per connection.
fn split_tokens(tokens: Vec<String>, connections: usize) -> Vec<Vec<String>> {
    let mut sets = vec![Vec::new(); connections];
    for (index, token) in tokens.into_iter().enumerate() {
        sets[index % connections].push(token);
    }
    sets
}

fn join_tokens(sets: Vec<Vec<String>>) -> Vec<String> {
    sets.into_iter().flatten().collect()
}

/// One measured run of one scenario on one backend.
struct Record {
    backend: &'static str,
    scenario: &'static str,
    run: usize,
    measurement: Measurement,
}

fn print_line(record: &Record) {
    let m = &record.measurement;
    println!(
        "{:<8} {:<22} run {}: {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  n={:<7} errors={} (status {}, transport {}, body {})  server cpu {:>3.0}%  loadgen cpu {:>3.0}%  steal {:>4.1}%{}",
        record.backend,
        record.scenario,
        record.run,
        m.rate(),
        m.p50_ms,
        m.p99_ms,
        m.max_ms,
        m.requests,
        m.errors.total(),
        m.errors.status,
        m.errors.transport,
        m.errors.body,
        m.server_cpu,
        m.loadgen_cpu,
        m.steal,
        if m.exhausted { "  (pool ran out; rate over the shorter window)" } else { "" },
    );
}

struct MemoryReport {
    backend: &'static str,
    moment: &'static str,
    memory: Memory,
}

async fn bench_backend(
    args: &Args,
    backend: &'static str,
    records: &mut Vec<Record>,
    memory: &mut Vec<MemoryReport>,
) -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let data_dir = data.path().canonicalize()?;
    let pg = if backend == "postgres" {
        Some(PgDatabase::create(&args.postgres_admin_url).await?)
    } else {
        None
    };
    let database_url = match &pg {
        Some(pg) => pg.url.clone(),
        None => format!("sqlite://{}?mode=rwc", data_dir.join("latch.db").display()),
    };
    let outcome = bench_on_database(args, backend, &data_dir, &database_url, records, memory).await;
    if let Some(pg) = &pg {
        if let Err(error) = pg.drop_now().await {
            eprintln!("cannot drop {}: {error:#}", pg.name);
        } else {
            println!("{backend}: dropped database {}", pg.name);
        }
    }
    outcome
}

async fn bench_on_database(
    args: &Args,
    backend: &'static str,
    data_dir: &Path,
    database_url: &str,
    records: &mut Vec<Record>,
    memory: &mut Vec<MemoryReport>,
) -> anyhow::Result<()> {
    let es_app = Arc::new(create_app(args, data_dir, database_url, "Bench ES256")?);
    let rs_app = Arc::new(create_app(args, data_dir, database_url, "Bench RS256")?);
    let db = app::ssr::db::connect_and_migrate(database_url).await?;
    application::Entity::update_many()
        .col_expr(application::Column::SigningAlg, Expr::value("RS256"))
        .filter(application::Column::Id.eq(rs_app.app_id.as_str()))
        .exec(&db)
        .await?;

    let server = Server::start(args, &args.server_cpu, data_dir, database_url, &data_dir.join("server-1.log")).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = memory_of(server.pid)?;
    println!("{backend}: server pid {} idle after start: VmRSS {:.1} MiB", server.pid, idle.rss_kib as f64 / 1024.0);
    memory.push(MemoryReport { backend, moment: "idle after start", memory: idle });

    let seeding = Instant::now();
    let users = seed_users(&db).await?;
    let mut es_tokens = seed_families(&db, &es_app, &users, args.families).await?;
    let mut rs_tokens = seed_families(&db, &rs_app, &users, args.families).await?;
    println!(
        "{backend}: seeded {} users and {} refresh token families in {:.1} s",
        users.len(),
        2 * args.families,
        seeding.elapsed().as_secs_f64()
    );

    let bases = [server.base.clone()];
    let pids = [server.pid];
    let outcome: anyhow::Result<()> = async {
        for run in 1..=args.runs {
            let mut refresh_rate = 0.0f64;
            if args.wants("refresh-es256-json") {
                let load = Load::Refresh { app: es_app.clone(), form: false };
                let (m, sets) = run_load(args, &bases, &pids, load, split_tokens(es_tokens, args.connections)).await?;
                es_tokens = join_tokens(sets);
                refresh_rate = m.rate();
                let record = Record { backend, scenario: "refresh-es256-json", run, measurement: m };
                print_line(&record);
                records.push(record);
            }
            if args.wants("refresh-rs256-json") {
                let load = Load::Refresh { app: rs_app.clone(), form: false };
                let (m, sets) = run_load(args, &bases, &pids, load, split_tokens(rs_tokens, args.connections)).await?;
                rs_tokens = join_tokens(sets);
                let record = Record { backend, scenario: "refresh-rs256-json", run, measurement: m };
                print_line(&record);
                records.push(record);
            }
            if args.wants("refresh-es256-form") {
                let load = Load::Refresh { app: es_app.clone(), form: true };
                let (m, sets) = run_load(args, &bases, &pids, load, split_tokens(es_tokens, args.connections)).await?;
                es_tokens = join_tokens(sets);
                refresh_rate = refresh_rate.max(m.rate());
                let record = Record { backend, scenario: "refresh-es256-form", run, measurement: m };
                print_line(&record);
                records.push(record);
            }
            if args.wants("code-exchange") {
                // Enough codes for 1.5 times the refresh rate over warm-up
                // and measurement. A run that still runs out of codes reports it.
                let estimate = if refresh_rate > 0.0 { refresh_rate } else { 6000.0 };
                let expected_codes = (estimate * (args.warmup + args.duration) as f64 * 1.5) as usize;
                let count = expected_codes.clamp(2000, args.max_codes);
                let started = Instant::now();
                let codes = seed_codes(&db, &es_app, &users, count).await?;
                println!("    issued {count} codes in {:.1} s", started.elapsed().as_secs_f64());
                let pool = Arc::new(CodePool { codes, next: AtomicUsize::new(0) });
                let load = Load::Code { app: es_app.clone(), pool };
                let (m, _) = run_load(args, &bases, &pids, load, Vec::new()).await?;
                let record = Record { backend, scenario: "code-exchange", run, measurement: m };
                print_line(&record);
                records.push(record);
            }
            for (scenario, path, check) in [
                ("discovery", "/oidc/.well-known/openid-configuration", DocumentCheck::Discovery),
                ("jwks", "/oidc/jwks", DocumentCheck::Jwks),
            ] {
                if !args.wants(scenario) {
                    continue;
                }
                let load = Load::Get { path, check };
                let (m, _) = run_load(args, &bases, &pids, load, Vec::new()).await?;
                let record = Record { backend, scenario, run, measurement: m };
                print_line(&record);
                records.push(record);
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = memory_of(server.pid)?;
        println!(
            "{backend}: after the load: VmRSS {:.1} MiB, peak VmHWM {:.1} MiB",
            after.rss_kib as f64 / 1024.0,
            after.peak_kib as f64 / 1024.0
        );
        memory.push(MemoryReport { backend, moment: "after the load", memory: after });

        if backend == "postgres" && args.wants("refresh-two-instances") {
            let second = Server::start(
                args,
                &args.second_server_cpu,
                data_dir,
                database_url,
                &data_dir.join("server-2.log"),
            )
            .await?;
            let two_bases = [server.base.clone(), second.base.clone()];
            let two_pids = [server.pid, second.pid];
            let result: anyhow::Result<()> = async {
                for run in 1..=args.runs {
                    let load = Load::Refresh { app: es_app.clone(), form: false };
                    let sets = split_tokens(std::mem::take(&mut es_tokens), args.connections);
                    let (m, sets) = run_load(args, &two_bases, &two_pids, load, sets).await?;
                    es_tokens = join_tokens(sets);
                    let record = Record { backend, scenario: "refresh-two-instances", run, measurement: m };
                    print_line(&record);
                    records.push(record);
                }
                Ok(())
            }
            .await;
            second.stop().await;
            result?;
        }
        Ok(())
    }
    .await;
    server.stop().await;
    db.close().await?;
    outcome
}

fn print_summary(args: &Args, records: &[Record], memory: &[MemoryReport]) {
    println!();
    println!(
        "Summary: {} connections, {} s warm-up, {} s measured, {} runs; server on CPU {}, load generator on this process's CPUs",
        args.connections, args.warmup, args.duration, args.runs, args.server_cpu
    );
    println!();

    println!("| backend | scenario | best req/s | spread req/s | p50 ms | p99 ms | errors |");
    println!("| --- | --- | ---: | --- | ---: | ---: | ---: |");
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for record in records {
        if !keys.contains(&(record.backend, record.scenario)) {
            keys.push((record.backend, record.scenario));
        }
    }

    for (backend, scenario) in &keys {
        let runs: Vec<&Measurement> = records
            .iter()
            .filter(|record| record.backend == *backend && record.scenario == *scenario)
            .map(|record| &record.measurement)
            .collect();
        let best = runs
            .iter()
            .max_by(|a, b| a.rate().total_cmp(&b.rate()))
            .copied()
            .unwrap_or_else(|| unreachable!("every key has a record"));
        let low = runs.iter().map(|m| m.rate()).fold(f64::INFINITY, f64::min);
        let high = runs.iter().map(|m| m.rate()).fold(0.0, f64::max);
        let errors: u64 = runs.iter().map(|m| m.errors.total()).sum();
        println!(
            "| {backend} | {scenario} | {:.0} | {:.0}–{:.0} | {:.2} | {:.2} | {errors} |",
            best.rate(),
            low,
            high,
            best.p50_ms,
            best.p99_ms
        );
    }

    println!();
    for report in memory {
        println!(
            "| {} | VmRSS {} | {:.1} MiB (peak {:.1} MiB) |",
            report.backend,
            report.moment,
            report.memory.rss_kib as f64 / 1024.0,
            report.memory.peak_kib as f64 / 1024.0
        );
    }

    println!();
    for backend in ["sqlite", "postgres"] {
        let best = records
            .iter()
            .filter(|record| record.backend == backend && record.scenario == "refresh-es256-json")
            .map(|record| &record.measurement)
            .max_by(|a, b| a.rate().total_cmp(&b.rate()));
        if let Some(best) = best {
            let clean = best.errors.total() == 0;
            println!(
                "target {backend} refresh ES256 >= 5700 req/s with p99 < 10 ms: {:.0} req/s, p99 {:.2} ms -> {}; {:.0}x Keycloak's 120 per vCPU",
                best.rate(),
                best.p99_ms,
                if clean && best.rate() >= 5700.0 && best.p99_ms < 10.0 { "met" } else { "missed" },
                best.rate() / 120.0
            );
        }
        if let Some(idle) = memory.iter().find(|report| report.backend == backend && report.moment == "idle after start") {
            let mib = idle.memory.rss_kib as f64 / 1024.0;
            println!(
                "target {backend} idle VmRSS < 25 MiB: {mib:.1} MiB -> {}",
                if mib < 25.0 { "met" } else { "missed" }
            );
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if !args.latch.is_file() {
        eprintln!("{} is missing; build it with cargo build --release -p server --bin latch", args.latch.display());
        return std::process::ExitCode::FAILURE;
    }
    let mut records = Vec::new();
    let mut memory = Vec::new();
    let mut failed = false;
    for backend in args.backends.clone() {
        let backend: &'static str = match backend.as_str() {
            "sqlite" => "sqlite",
            "postgres" => "postgres",
            other => {
                eprintln!("unknown backend {other}; use sqlite or postgres");
                return std::process::ExitCode::FAILURE;
            }
        };
        if let Err(error) = bench_backend(&args, backend, &mut records, &mut memory).await {
            eprintln!("{backend}: benchmark failed: {error:#}");
            failed = true;
        }
    }
    print_summary(&args, &records, &memory);
    let errors: u64 = records.iter().map(|record| record.measurement.errors.total()).sum();
    if errors > 0 {
        println!("{errors} requests failed: these figures are not a valid result");
        failed = true;
    }
    if failed { std::process::ExitCode::FAILURE } else { std::process::ExitCode::SUCCESS }
}
