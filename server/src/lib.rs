//! The `latch` server: configuration, router assembly and start-up.
//!
//! `main.rs` only parses the command line; everything else lives here so
//! integration tests can start the same server on `127.0.0.1:0`.

pub mod cli;
pub mod config;
pub mod console;
pub mod console_auth;
pub mod oidc;
pub mod routes;
pub mod signin;

pub use config::Config;
pub use routes::{ServerState, router};

use app::ssr::AppState;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// Opens the database, runs migrations and builds the shared state.
pub async fn prepare(config: &Config) -> anyhow::Result<AppState> {
    app::ssr::passwords::set_idle_priority(config.hash_priority == config::HashPriority::Idle);
    let master_key = std::sync::Arc::new(config.load_master_key()?);
    let url = config.database_url()?;
    let db = app::ssr::db::connect_and_migrate(&url)
        .await
        .map_err(|error| anyhow::anyhow!("cannot open the database: {error}"))?;
    // Without them SQLite still checkpoints, inside a COMMIT, so a failure
    // here costs latency but not correctness.
    if let Err(error) = app::ssr::db::start_background_checkpoints(&url).await {
        tracing::warn!(%error, "background SQLite checkpoints could not start; the connection that commits copies the log instead");
    }
    app::ssr::at_rest::prepare_database(&db, &master_key, app::ssr::now()).await?;
    app::ssr::keys::ensure_signing_keys(&db, &master_key, app::ssr::now())
        .await
        .map_err(|error| anyhow::anyhow!("cannot create the token signing keys: {error}"))?;
    Ok(AppState {
        public_url: config.public_url(),
        master_key,
        throttle: config.throttle_policy(),
        token_cache: Default::default(),
        token_batches: std::sync::Arc::new(app::ssr::state::TokenBatches::start(&db)),
        db,
    })
}

/// While no console admin exists, stores a one-time setup token and logs
/// the link that creates the first admin. The link works once, for an
/// hour; each start while no admin exists logs a new one.
pub async fn announce_setup(state: &AppState) -> anyhow::Result<()> {
    let now = app::ssr::now();
    let admins = app::ssr::admins::count_admins(&state.db)
        .await
        .map_err(|error| anyhow::anyhow!("cannot count console admins: {error}"))?;
    if admins > 0 {
        return Ok(());
    }
    let token = app::ssr::admins::issue_setup_token(&state.db, now)
        .await
        .map_err(|error| anyhow::anyhow!("cannot store the setup token: {error}"))?;
    tracing::info!(target: "audit", "no console admin exists; setup link issued");
    tracing::warn!(
        "No console admin exists yet. Within an hour, open {}/console/setup?token={token} to create the first one, or run `latch admin create --username NAME`.",
        state.public_base()
    );
    Ok(())
}

/// Serves Latch on `listener` until `shutdown` completes.
pub async fn serve_on(
    listener: TcpListener,
    config: &Config,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let router = router(ServerState::new(config, state)?);
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
