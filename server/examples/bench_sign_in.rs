//! Load test of the end-user sign-in against the real `latch` release
//! binary, and of its effect on the token endpoint.
//!
//! The program starts `latch` pinned to one core with `taskset`, creates an
//! application with `latch app create` and seeds users through the library
//! on the same database, all with one Argon2id hash. Each sign-in is
//! prepared beforehand as a browser would start it: `GET /oidc/auth`, then
//! `GET /sign-in` for the CSRF token. The measured part is only the
//! `POST /sign-in` with the right password, which must return 303 to the
//! callback with a code. Then it measures:
//!
//! 1. successful sign-ins per second with a fixed number of concurrent
//!    posts, and the server's CPU time per sign-in;
//! 2. one Argon2id verification alone, in this process on the server's CPU,
//!    with the same hash and code path (`passwords::verify_password`), for
//!    the share of a sign-in's CPU time spent outside Argon2id;
//! 3. the latency of authorization code exchanges sent at a fixed rate,
//!    first with nothing else running, then while a burst of concurrent
//!    sign-ins runs, in several rounds. Latency counts from the moment a
//!    request was due, so a stalled server is not hidden by requests that
//!    were sent late.
//!
//! Any sign-in or token response other than the expected one counts as an
//! error, and a run with errors exits with a failure.
//!
//! Run it through `scripts/bench-sign-in`, which builds both binaries in
//! release mode and pins this program to the second core.

use anyhow::{Context, anyhow, bail};
use app::ssr::codes::{CodeGrant, issue_code};
use app::ssr::entities::user;
use app::ssr::ids;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Parser;
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, Set, TransactionTrait};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const REDIRECT_URI: &str = "https://chatgpt.com/aip/g-bench/oauth/callback";
const PASSWORD: &str = "bench password 2026";
const PKCE_VERIFIER: &str = "bench-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";

/// Command-line options.
#[derive(Parser, Debug, Clone)]
#[command(about = "Benchmark the Latch end-user sign-in and its effect on the token endpoint")]
struct Args {
    /// Path of the release `latch` binary.
    #[arg(long)]
    latch: PathBuf,
    /// Backends to run, comma-separated: sqlite, postgres.
    #[arg(long, default_value = "sqlite,postgres", value_delimiter = ',')]
    backends: Vec<String>,
    /// CPU list for the server, as taskset takes it.
    #[arg(long, default_value = "0")]
    server_cpu: String,
    /// Measured sign-ins of the throughput run.
    #[arg(long, default_value_t = 300)]
    sign_ins: usize,
    /// Sign-ins before the throughput run, not measured.
    #[arg(long, default_value_t = 20)]
    warmup_sign_ins: usize,
    /// Concurrent sign-in posts during the throughput run.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Argon2id verifications timed alone in this process.
    #[arg(long, default_value_t = 100)]
    argon2_samples: usize,
    /// Code exchanges per second sent to the token endpoint.
    #[arg(long, default_value_t = 100.0)]
    token_rate: f64,
    /// Seconds of the token load with nothing else running.
    #[arg(long, default_value_t = 10)]
    idle_secs: u64,
    /// Concurrent sign-ins of the burst.
    #[arg(long, default_value_t = 200)]
    burst: usize,
    /// Rounds of idle token load followed by a burst.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// PostgreSQL URL of a database to connect to when creating and
    /// dropping the benchmark database.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres_admin_url: String,
    /// LATCH_LOG of the server; unset means the server default (info).
    #[arg(long)]
    server_log: Option<String>,
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
    async fn start(args: &Args, data_dir: &Path, database_url: &str, log: &Path) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let base = format!("http://127.0.0.1:{port}");
        let log_file = std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;

        let mut command = tokio::process::Command::new("taskset");
        command
            .arg("-c")
            .arg(&args.server_cpu)
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
        let mut server = Self { child, pid, base };
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

/// User and system CPU time of process `pid` (a number or `self`), in
/// seconds, with the clock tick resolution of `/proc/<pid>/stat`.
fn cpu_seconds_split(pid: &str) -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return (0.0, 0.0);
    };
    let Some((_, after_name)) = stat.rsplit_once(')') else {
        return (0.0, 0.0);
    };
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let number = |index: usize| fields.get(index).and_then(|value| value.parse::<u64>().ok()).unwrap_or(0);
    let per_second = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse::<u64>().ok())
        .unwrap_or(100) as f64;
    // After the command name, utime and stime are the 12th and 13th fields.
    (number(11) as f64 / per_second, number(12) as f64 / per_second)
}

/// User plus system CPU time of process `pid`, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let (user, system) = cpu_seconds_split(&pid.to_string());
    user + system
}

/// Checks [`PASSWORD`] against its hash with `passwords::verify_password`,
/// the function the server's sign-in uses.
async fn verify_benchmark_password(password_hash: &str) -> anyhow::Result<()> {
    let matches = app::ssr::passwords::verify_password(PASSWORD.into(), Some(password_hash.to_owned()))
        .await
        .map_err(|error| anyhow!("{error}"))?;
    if !matches {
        bail!("the benchmark password does not match its own hash");
    }
    Ok(())
}

/// CPU time of Argon2id verifications measured alone, per verification.
struct Argon2Timing {
    /// User CPU time, in milliseconds: the hashing itself.
    user_ms: f64,
    /// System CPU time, in milliseconds, mostly page faults on memory that
    /// the allocator maps afresh for the 19 MiB of each hash.
    system_ms: f64,
    /// Median wall time, in milliseconds.
    median_wall_ms: f64,
}

/// Verifies the benchmark password `samples` times on a thread of its own
/// pinned to `cpus`, whose tokio blocking pool (where the hash runs)
/// inherits the pinning. The rest of the program waits meanwhile, so the
/// CPU time of this process is the hashing's.
fn time_argon2_on(cpus: &str, password_hash: &str, samples: usize) -> anyhow::Result<Argon2Timing> {
    let cpus = cpus.to_owned();
    let password_hash = password_hash.to_owned();
    let worker = std::thread::spawn(move || -> anyhow::Result<Argon2Timing> {
        let own_task = std::fs::read_link("/proc/thread-self").context("cannot read /proc/thread-self")?;
        let tid = own_task
            .file_name()
            .and_then(|name| name.to_str())
            .ok_or_else(|| anyhow!("unreadable thread id in {}", own_task.display()))?
            .to_owned();
        let status = std::process::Command::new("taskset")
            .args(["-p", "-c", &cpus, &tid])
            .stdout(std::process::Stdio::null())
            .status()
            .context("cannot run taskset")?;
        if !status.success() {
            bail!("taskset -p -c {cpus} {tid} failed with {status}");
        }
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async {
            verify_benchmark_password(&password_hash).await?;
            let mut walls = Vec::with_capacity(samples);
            let (user_before, system_before) = cpu_seconds_split("self");
            for _ in 0..samples {
                let started = Instant::now();
                verify_benchmark_password(&password_hash).await?;
                walls.push(started.elapsed());
            }
            let (user_after, system_after) = cpu_seconds_split("self");
            walls.sort_unstable();
            Ok(Argon2Timing {
                user_ms: (user_after - user_before) * 1000.0 / samples as f64,
                system_ms: (system_after - system_before) * 1000.0 / samples as f64,
                median_wall_ms: walls[samples / 2].as_secs_f64() * 1000.0,
            })
        })
    });
    worker.join().map_err(|_| anyhow!("the Argon2id timing thread panicked"))?
}

/// Runs `latch app create` and returns the new application's credentials.
fn create_app(args: &Args, data_dir: &Path, database_url: &str) -> anyhow::Result<AppCreds> {
    let mut command = std::process::Command::new(&args.latch);
    command
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--database-url")
        .arg(database_url)
        .args(["app", "create", "--name", "Bench sign-in", "--redirect-uri", REDIRECT_URI])
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

/// The PostgreSQL database of one run, dropped by [`PgDatabase::drop_now`].
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

/// Inserts `count` users that all have [`PASSWORD`] and returns their
/// user names and ids, with the hash.
async fn seed_users(db: &DatabaseConnection, count: usize) -> anyhow::Result<(Vec<(String, String)>, String)> {
    let password_hash = app::ssr::passwords::hash_password(PASSWORD.into())
        .await
        .map_err(|error| anyhow!("{error}"))?;
    let now = app::ssr::now();
    let mut users = Vec::with_capacity(count);
    let txn = db.begin().await?;
    for chunk_start in (0..count).step_by(200) {
        let mut rows = Vec::new();
        for index in chunk_start..count.min(chunk_start + 200) {
            let id = ids::new_row_id();
            let username = format!("bench-user-{index}");
            users.push((username.clone(), id.clone()));
            rows.push(user::ActiveModel {
                id: Set(id),
                username: Set(username),
                email: Set(None),
                name: Set(None),
                password_hash: Set(password_hash.clone()),
                created_at: Set(now),
                updated_at: Set(now),
            });
        }
        user::Entity::insert_many(rows).exec(&txn).await?;
    }
    txn.commit().await?;
    Ok((users, password_hash))
}

fn new_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(120))
        .build()?)
}

/// A sign-in form opened the way a browser opens it, ready to be posted.
struct PreparedSignIn {
    browser_cookie: String,
    interaction: String,
    csrf: String,
    login: String,
}

/// Returns the `value` of the input named `name` in `html`.
fn input_value(html: &str, name: &str) -> Option<String> {
    let start = html.find(&format!("name=\"{name}\""))?;
    let rest = &html[start..];
    let value_start = rest.find("value=\"")? + "value=\"".len();
    let value_end = rest[value_start..].find('"')?;
    Some(rest[value_start..value_start + value_end].to_owned())
}

/// Sends the authorization request and opens the sign-in page it leads to.
async fn prepare_sign_in(
    client: &reqwest::Client,
    base: &str,
    app: &AppCreds,
    login: &str,
) -> anyhow::Result<PreparedSignIn> {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &app.app_id)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("scope", "openid")
        .append_pair("state", "bench")
        .finish();
    let response = client.get(format!("{base}/oidc/auth?{query}")).send().await?;
    if response.status() != reqwest::StatusCode::SEE_OTHER {
        bail!("the authorization request returned {}", response.status());
    }
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| anyhow!("the authorization request has no Location"))?
        .to_owned();
    let browser_cookie = response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split(';').next())
        .find(|pair| pair.starts_with("latch_browser="))
        .ok_or_else(|| anyhow!("the authorization request set no browser cookie"))?
        .to_owned();
    let page = client
        .get(format!("{base}{location}"))
        .header(reqwest::header::COOKIE, &browser_cookie)
        .send()
        .await?;
    if page.status() != reqwest::StatusCode::OK {
        bail!("the sign-in page returned {}", page.status());
    }
    let html = page.text().await?;
    Ok(PreparedSignIn {
        browser_cookie,
        interaction: input_value(&html, "interaction").ok_or_else(|| anyhow!("no interaction field"))?,
        csrf: input_value(&html, "csrf_token").ok_or_else(|| anyhow!("no csrf_token field"))?,
        login: login.to_owned(),
    })
}

async fn prepare_sign_ins(
    client: &reqwest::Client,
    base: &str,
    app: &AppCreds,
    logins: &[(String, String)],
) -> anyhow::Result<Vec<PreparedSignIn>> {
    let mut prepared = Vec::with_capacity(logins.len());
    for (login, _) in logins {
        prepared.push(prepare_sign_in(client, base, app, login).await?);
    }
    Ok(prepared)
}

/// Posts one prepared sign-in and checks that it ends at the callback with
/// a code.
async fn post_sign_in(client: &reqwest::Client, base: &str, form: &PreparedSignIn) -> anyhow::Result<()> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("interaction", &form.interaction)
        .append_pair("csrf_token", &form.csrf)
        .append_pair("login", &form.login)
        .append_pair("password", PASSWORD)
        .finish();
    let response = client
        .post(format!("{base}/sign-in"))
        .header(reqwest::header::COOKIE, &form.browser_cookie)
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if status != reqwest::StatusCode::SEE_OTHER || !location.starts_with(REDIRECT_URI) || !location.contains("code=") {
        let text = response.text().await.unwrap_or_default();
        bail!("sign-in returned {status} to {location:?}: {}", text.chars().take(200).collect::<String>());
    }
    Ok(())
}

/// Posts every prepared sign-in with at most `concurrency` in flight and
/// returns the number of failures and the first error.
async fn run_sign_ins(
    client: &reqwest::Client,
    base: &str,
    forms: Vec<PreparedSignIn>,
    concurrency: usize,
) -> (usize, Option<String>) {
    let forms = Arc::new(forms);
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (client, base, forms, next) = (client.clone(), base.to_owned(), forms.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut failures = 0;
            let mut first_error = None;
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(form) = forms.get(index) else {
                    break;
                };
                if let Err(error) = post_sign_in(&client, &base, form).await {
                    failures += 1;
                    first_error.get_or_insert(error.to_string());
                }
            }
            (failures, first_error)
        }));
    }
    let mut failures = 0;
    let mut first_error = None;
    for worker in workers {
        match worker.await {
            Ok((count, error)) => {
                failures += count;
                if first_error.is_none() {
                    first_error = error;
                }
            }
            Err(error) => {
                failures += 1;
                first_error.get_or_insert(error.to_string());
            }
        }
    }
    (failures, first_error)
}

/// Issues `count` codes for the benchmark users in one transaction.
async fn seed_codes(
    db: &DatabaseConnection,
    app: &AppCreds,
    users: &[(String, String)],
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let now = app::ssr::now();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(PKCE_VERIFIER.as_bytes()));
    let txn = db.begin().await?;
    let mut codes = Vec::with_capacity(count);
    for index in 0..count {
        let grant = CodeGrant {
            application_id: app.app_id.clone(),
            user_id: users[index % users.len()].1.clone(),
            redirect_uri: REDIRECT_URI.to_owned(),
            scope: "openid offline_access".to_owned(),
            nonce: None,
            code_challenge: Some(challenge.clone()),
            auth_time: now,
            issue_refresh_token: true,
        };
        codes.push(issue_code(&txn, grant, now).await.map_err(|error| anyhow!("{error}"))?);
    }
    txn.commit().await?;
    Ok(codes)
}

/// One code exchange: when it was due, how long it took from then, and
/// whether the response was a token response.
struct TokenSample {
    due: Instant,
    latency: Duration,
    ok: bool,
}

/// Exchanges codes at `rate` per second until `stop` is set or the codes
/// run out. Every request is sent when it is due, whether or not earlier
/// ones have completed.
async fn paced_token_load(
    client: reqwest::Client,
    base: String,
    app: Arc<AppCreds>,
    codes: Vec<String>,
    rate: f64,
    stop: Arc<AtomicBool>,
) -> (Vec<TokenSample>, bool) {
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut requests = Vec::new();
    let mut codes = codes.into_iter();
    let mut ran_out = false;
    loop {
        let due = interval.tick().await.into_std();
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let Some(code) = codes.next() else {
            ran_out = true;
            break;
        };
        let (client, base, app) = (client.clone(), base.clone(), app.clone());
        requests.push(tokio::spawn(async move {
            let body = serde_json::json!({
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": PKCE_VERIFIER,
                "client_id": app.app_id,
                "client_secret": app.app_secret,
            });
            let outcome = client.post(format!("{base}/oidc/token")).json(&body).send().await;
            let ok = match outcome {
                Ok(response) if response.status() == reqwest::StatusCode::OK => response
                    .json::<serde_json::Value>()
                    .await
                    .is_ok_and(|value| value["access_token"].is_string()),
                _ => false,
            };
            TokenSample {
                due,
                latency: due.elapsed(),
                ok,
            }
        }));
    }
    let mut samples = Vec::with_capacity(requests.len());
    for request in requests {
        if let Ok(sample) = request.await {
            samples.push(sample);
        }
    }
    (samples, ran_out)
}

/// Percentiles of a set of latencies, in milliseconds.
#[derive(Debug, Clone, Copy)]
struct Latency {
    count: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

fn latency_of(samples: &[&TokenSample]) -> Latency {
    let mut micros: Vec<u128> = samples.iter().map(|sample| sample.latency.as_micros()).collect();
    micros.sort_unstable();
    let at = |fraction: f64| {
        if micros.is_empty() {
            return f64::NAN;
        }
        let rank = ((fraction * micros.len() as f64).ceil() as usize).clamp(1, micros.len());
        micros[rank - 1] as f64 / 1000.0
    };
    Latency {
        count: micros.len(),
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: micros.last().map_or(f64::NAN, |max| *max as f64 / 1000.0),
    }
}

/// Figures of one backend.
struct Report {
    backend: &'static str,
    sign_in_rate: f64,
    wall_ms_per_sign_in: f64,
    server_cpu_ms_per_sign_in: f64,
    argon2_ms: f64,
    rounds: Vec<Round>,
    errors: usize,
}

impl Report {
    /// Returns the share of a sign-in's server CPU time spent outside
    /// Argon2id.
    fn outside_share_cpu(&self) -> f64 {
        1.0 - self.argon2_ms / self.server_cpu_ms_per_sign_in
    }

    /// Returns the same share of the wall time per sign-in at full load.
    /// The server has one core, so that is the cost of one sign-in, but
    /// other processes on the core add to it.
    fn outside_share_wall(&self) -> f64 {
        1.0 - self.argon2_ms / self.wall_ms_per_sign_in
    }

    /// Median over the rounds of idle p99 and of p99 during the burst.
    fn median_p99_ms(&self) -> (f64, f64) {
        let median = |mut values: Vec<f64>| {
            values.sort_by(f64::total_cmp);
            match values.len() {
                0 => f64::NAN,
                count if count % 2 == 1 => values[count / 2],
                count => (values[count / 2 - 1] + values[count / 2]) / 2.0,
            }
        };
        let idle = median(self.rounds.iter().map(|round| round.idle.p99_ms).collect());
        let burst = median(self.rounds.iter().map(|round| round.burst.all.p99_ms).collect());
        (idle, burst)
    }
}

async fn bench_backend(args: &Args, backend: &'static str) -> anyhow::Result<Report> {
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
    let outcome = bench_on_database(args, backend, &data_dir, &database_url).await;
    if let Some(pg) = &pg {
        if let Err(error) = pg.drop_now().await {
            eprintln!("cannot drop {}: {error:#}", pg.name);
        }
    }
    outcome
}

async fn bench_on_database(
    args: &Args,
    backend: &'static str,
    data_dir: &Path,
    database_url: &str,
) -> anyhow::Result<Report> {
    let app = Arc::new(create_app(args, data_dir, database_url)?);
    let db = app::ssr::db::connect_and_migrate(database_url).await?;
    let total_users = args.warmup_sign_ins + args.sign_ins + args.burst * args.rounds.max(1);
    let (users, password_hash) = seed_users(&db, total_users).await?;
    let server = Server::start(args, data_dir, database_url, &data_dir.join("server.log")).await?;
    println!("{backend}: server pid {}, {} users seeded", server.pid, users.len());
    let outcome = measure(args, backend, &db, &server, &app, &users, &password_hash).await;
    server.stop().await;
    db.close().await?;
    outcome
}

async fn measure(
    args: &Args,
    backend: &'static str,
    db: &DatabaseConnection,
    server: &Server,
    app: &Arc<AppCreds>,
    users: &[(String, String)],
    password_hash: &str,
) -> anyhow::Result<Report> {
    let client = new_client()?;
    let base = server.base.clone();
    let (warmup_users, rest) = users.split_at(args.warmup_sign_ins);
    let (measured_users, burst_users) = rest.split_at(args.sign_ins);
    let mut errors = 0;

    // 1. Sign-in throughput.
    let warmup = prepare_sign_ins(&client, &base, app, warmup_users).await?;
    let (failed, first_error) = run_sign_ins(&client, &base, warmup, args.concurrency).await;
    report_failures(backend, "warm-up sign-ins", failed, first_error);
    errors += failed;
    let forms = prepare_sign_ins(&client, &base, app, measured_users).await?;
    println!("{backend}: measuring {} sign-ins", forms.len());
    let cpu_before = cpu_seconds(server.pid);
    let started = Instant::now();
    let (failed, first_error) = run_sign_ins(&client, &base, forms, args.concurrency).await;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_used = cpu_seconds(server.pid) - cpu_before;
    report_failures(backend, "sign-ins", failed, first_error);
    errors += failed;
    let succeeded = args.sign_ins - failed;
    let sign_in_rate = succeeded as f64 / elapsed;
    let wall_ms_per_sign_in = elapsed * 1000.0 / succeeded.max(1) as f64;
    let server_cpu_ms_per_sign_in = cpu_used * 1000.0 / succeeded.max(1) as f64;
    println!(
        "{backend}: {succeeded} sign-ins in {elapsed:.2} s with {} in flight: {sign_in_rate:.1}/s, {wall_ms_per_sign_in:.2} ms each, server CPU {server_cpu_ms_per_sign_in:.2} ms each",
        args.concurrency
    );

    // 2. Argon2id alone, through the same function the server calls, on
    // the server's CPU while the server is idle. Other processes may share
    // that CPU, so CPU time is compared. Only user time counts as the
    // hash: the system time here is page faults that the long-running
    // server does not pay, as a profile of it shows.
    let samples = args.argon2_samples.max(1);
    let argon2 = time_argon2_on(&args.server_cpu, password_hash, samples)?;
    println!(
        "{backend}: Argon2id verification alone in this process on CPU {}, each of {samples}: {:.2} ms user CPU, {:.2} ms system CPU, median {:.2} ms wall",
        args.server_cpu, argon2.user_ms, argon2.system_ms, argon2.median_wall_ms
    );
    let argon2_ms = argon2.user_ms;

    // 3. Token endpoint latency, idle and during a burst, in rounds because
    // other processes on the machine disturb single runs.
    let mut rounds = Vec::new();
    for (round, burst_users) in burst_users.chunks(args.burst).enumerate() {
        let idle = idle_token_latency(args, backend, db, &client, &base, app, users, &mut errors).await?;
        let burst = burst_token_latency(args, backend, db, &client, &base, app, users, burst_users, sign_in_rate, &mut errors).await?;
        println!(
            "{backend}: round {}: code exchange p99 idle {:.2} ms, during the burst {:.2} ms ({:.2}x); burst of {} sign-ins took {:.1} s; p99 in its first second {:.2} ms, after it {:.2} ms",
            round + 1,
            idle.p99_ms,
            burst.all.p99_ms,
            burst.all.p99_ms / idle.p99_ms,
            burst_users.len(),
            burst.seconds,
            burst.first_second.p99_ms,
            burst.rest.p99_ms,
        );
        rounds.push(Round { idle, burst });
    }

    Ok(Report {
        backend,
        sign_in_rate,
        wall_ms_per_sign_in,
        server_cpu_ms_per_sign_in,
        argon2_ms,
        rounds,
        errors,
    })
}

/// Exchanges codes at the configured rate for `idle_secs` with nothing
/// else running.
#[allow(clippy::too_many_arguments)]
async fn idle_token_latency(
    args: &Args,
    backend: &str,
    db: &DatabaseConnection,
    client: &reqwest::Client,
    base: &str,
    app: &Arc<AppCreds>,
    users: &[(String, String)],
    errors: &mut usize,
) -> anyhow::Result<Latency> {
    let count = (args.token_rate * args.idle_secs as f64) as usize;
    let codes = seed_codes(db, app, users, count).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let (samples, _) = paced_token_load(client.clone(), base.to_owned(), app.clone(), codes, args.token_rate, stop).await;
    let failed = samples.iter().filter(|sample| !sample.ok).count();
    report_failures(backend, "idle code exchanges", failed, None);
    *errors += failed;
    Ok(latency_of(&samples.iter().collect::<Vec<_>>()))
}

/// Code exchange latency during one burst of sign-ins.
struct BurstLatency {
    all: Latency,
    first_second: Latency,
    rest: Latency,
    seconds: f64,
}

/// Exchanges codes at the configured rate while every sign-in of
/// `burst_users` is posted at once. Only exchanges due between the first
/// post and the last sign-in response count.
#[allow(clippy::too_many_arguments)]
async fn burst_token_latency(
    args: &Args,
    backend: &str,
    db: &DatabaseConnection,
    client: &reqwest::Client,
    base: &str,
    app: &Arc<AppCreds>,
    users: &[(String, String)],
    burst_users: &[(String, String)],
    sign_in_rate: f64,
    errors: &mut usize,
) -> anyhow::Result<BurstLatency> {
    let forms = prepare_sign_ins(client, base, app, burst_users).await?;
    // Codes for twice the time the burst should take at the measured
    // sign-in rate, plus a margin.
    let expected_secs = burst_users.len() as f64 / sign_in_rate.max(1.0);
    let count = (args.token_rate * (2.0 * expected_secs + 5.0)) as usize;
    let codes = seed_codes(db, app, users, count).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(paced_token_load(
        client.clone(),
        base.to_owned(),
        app.clone(),
        codes,
        args.token_rate,
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    let (failed, first_error) = run_sign_ins(client, base, forms, burst_users.len()).await;
    let ended = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let (samples, ran_out) = load.await?;
    report_failures(backend, "burst sign-ins", failed, first_error);
    *errors += failed;
    if ran_out {
        println!("{backend}: the codes ran out before the burst ended; the burst window is only partly covered");
    }
    let failed = samples.iter().filter(|sample| !sample.ok).count();
    report_failures(backend, "code exchanges around the burst", failed, None);
    *errors += failed;

    let during: Vec<&TokenSample> = samples
        .iter()
        .filter(|sample| sample.due >= started && sample.due <= ended)
        .collect();
    // The first second is when the sign-in requests arrive and queue;
    // after it they are hashed one by one.
    let first_second_end = started + Duration::from_secs(1);
    let (first_second, rest): (Vec<&TokenSample>, Vec<&TokenSample>) =
        during.iter().partition(|sample| sample.due < first_second_end);
    Ok(BurstLatency {
        all: latency_of(&during),
        first_second: latency_of(&first_second),
        rest: latency_of(&rest),
        seconds: (ended - started).as_secs_f64(),
    })
}

/// Token latency of one round: idle, then during a burst.
struct Round {
    idle: Latency,
    burst: BurstLatency,
}

fn report_failures(backend: &str, what: &str, failed: usize, first_error: Option<String>) {
    if failed > 0 {
        println!("{backend}: {failed} {what} failed; first error: {}", first_error.unwrap_or_default());
    }
}

fn print_report(args: &Args, report: &Report) {
    let backend = report.backend;
    println!();
    println!("{backend}: sign-ins per second: {:.1}", report.sign_in_rate);
    println!(
        "{backend}: outside Argon2id: {:.1} % of server CPU time per sign-in ({:.2} of {:.2} ms), {:.1} % of wall time ({:.2} ms)",
        report.outside_share_cpu() * 100.0,
        report.server_cpu_ms_per_sign_in - report.argon2_ms,
        report.server_cpu_ms_per_sign_in,
        report.outside_share_wall() * 100.0,
        report.wall_ms_per_sign_in
    );
    for (index, round) in report.rounds.iter().enumerate() {
        println!(
            "{backend}: round {}: code exchange at {:.0}/s, idle: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (n={}); during {} concurrent sign-ins ({:.1} s): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (n={})",
            index + 1,
            args.token_rate,
            round.idle.p50_ms,
            round.idle.p99_ms,
            round.idle.max_ms,
            round.idle.count,
            args.burst,
            round.burst.seconds,
            round.burst.all.p50_ms,
            round.burst.all.p99_ms,
            round.burst.all.max_ms,
            round.burst.all.count
        );
    }
    let share = report.outside_share_cpu();
    println!(
        "target {backend} at most 10 % outside Argon2id: {:.1} % -> {}",
        share * 100.0,
        if share <= 0.10 { "met" } else { "missed" }
    );
    if report.rounds.is_empty() {
        return;
    }
    let (idle_p99, burst_p99) = report.median_p99_ms();
    let ratio = burst_p99 / idle_p99;
    println!(
        "target {backend} token p99 during the burst within 2x of idle (medians over {} rounds, {burst_p99:.2} ms vs {idle_p99:.2} ms): {ratio:.2}x -> {}",
        report.rounds.len(),
        if ratio <= 2.0 { "met" } else { "missed" }
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if !args.latch.is_file() {
        eprintln!("{} is missing; build it with cargo build --release -p server --bin latch", args.latch.display());
        return std::process::ExitCode::FAILURE;
    }
    let mut failed = false;
    let mut reports = Vec::new();
    for backend in args.backends.clone() {
        let backend: &'static str = match backend.as_str() {
            "sqlite" => "sqlite",
            "postgres" => "postgres",
            other => {
                eprintln!("unknown backend {other}; use sqlite or postgres");
                return std::process::ExitCode::FAILURE;
            }
        };
        match bench_backend(&args, backend).await {
            Ok(report) => reports.push(report),
            Err(error) => {
                eprintln!("{backend}: benchmark failed: {error:#}");
                failed = true;
            }
        }
    }
    for report in &reports {
        print_report(&args, report);
        if report.errors > 0 {
            println!("{}: {} requests failed: these figures are not a valid result", report.backend, report.errors);
            failed = true;
        }
    }
    if failed { std::process::ExitCode::FAILURE } else { std::process::ExitCode::SUCCESS }
}
