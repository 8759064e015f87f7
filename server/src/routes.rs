//! Router assembly: console pages, server functions, static assets,
//! health check, and the layers every request passes through.

use crate::config::Config;
use crate::{console, console_auth};
use app::ssr::AppState;
use app::{App, shell};
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRef, State};
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list, handle_server_fns_with_context};
use sea_orm::ConnectionTrait;
use std::sync::Arc;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

/// Largest request body the console accepts. Big enough for 32 redirect
/// URIs of 2,048 characters with form encoding, small enough to refuse
/// floods before parsing.
pub const CONSOLE_BODY_LIMIT: usize = 1024 * 1024;

/// State of the axum router.
#[derive(Clone, FromRef)]
pub struct ServerState {
    /// Leptos rendering options.
    pub leptos_options: LeptosOptions,
    /// Database and public URL.
    pub app: AppState,
    /// Folder with the compiled console assets.
    pub site_root: Arc<std::path::PathBuf>,
}

impl ServerState {
    /// Builds the router state from the configuration.
    pub fn new(config: &Config, app: AppState) -> anyhow::Result<Self> {
        let site_root = config.resolve_site_root();
        let output_name = option_env!("LEPTOS_OUTPUT_NAME").unwrap_or("latch");
        let leptos_options = LeptosOptions::builder()
            .output_name(output_name)
            .site_root(site_root.to_string_lossy().to_string())
            .site_pkg_dir("pkg")
            .site_addr(config.listen)
            .build();
        if !site_root.join("pkg").is_dir() {
            tracing::warn!(
                site_root = %site_root.display(),
                "the console assets were not found; pages render but do not hydrate. Build with `cargo leptos build` or set --site-root"
            );
        }
        Ok(Self {
            leptos_options,
            app,
            site_root: Arc::new(site_root),
        })
    }
}

/// Builds the complete router.
pub fn router(state: ServerState) -> Router {
    let routes = generate_route_list(App);
    let context_state = state.app.clone();
    let shell_options = state.leptos_options.clone();

    let console_routes = Router::new()
        .leptos_routes_with_context(
            &state,
            routes,
            move || provide_context(context_state.clone()),
            move || shell(shell_options.clone()),
        )
        .route("/api/{*function}", get(server_function).post(server_function))
        .layer(axum::middleware::from_fn(form_errors_to_page))
        .layer(axum::middleware::from_fn_with_state(state.app.clone(), console_auth::require_admin))
        .layer(axum::middleware::from_fn(console::loopback_only));

    let console_sign_in = Router::new()
        .route(
            "/console/sign-in",
            get(console_auth::sign_in_page).post(console_auth::sign_in_submit),
        )
        .route("/console/sign-out", post(console_auth::sign_out))
        .route(
            "/console/setup",
            get(console_auth::setup_page).post(console_auth::setup_submit),
        )
        .layer(axum::middleware::from_fn(console::loopback_only));

    let assets = ServeDir::new(state.site_root.join("pkg"));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/favicon.svg", get(favicon))
        .nest_service("/pkg", assets)
        .merge(crate::oidc::router())
        .merge(crate::signin::routes())
        .merge(console_sign_in)
        .merge(console_routes)
        .fallback(not_found)
        .layer(RequestBodyLimitLayer::new(CONSOLE_BODY_LIMIT))
        .layer(CompressionLayer::new())
        .layer(hsts(&state.app))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<Body>| {
                // The query string is left out: on protocol endpoints it
                // carries codes and state values.
                tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
            }),
        )
        .with_state(state)
}

/// Adds `Strict-Transport-Security` to every response when the public URL
/// is https, so browsers refuse plain http to this host for a year.
fn hsts(state: &AppState) -> tower::util::Either<SetResponseHeaderLayer<HeaderValue>, tower::layer::util::Identity> {
    if state.public_url.scheme() == "https" {
        tower::util::Either::Left(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        ))
    } else {
        tower::util::Either::Right(tower::layer::util::Identity::new())
    }
}

async fn server_function(State(state): State<ServerState>, request: Request<Body>) -> impl IntoResponse {
    let app = state.app.clone();
    handle_server_fns_with_context(move || provide_context(app.clone()), request).await
}

/// Sends a server function's rejection of a plain HTML form post back to
/// the form's page, where the console shows the message. Requests made by
/// scripts keep the JSON error.
async fn form_errors_to_page(request: Request<Body>, next: axum::middleware::Next) -> Response {
    let back = request
        .uri()
        .path()
        .starts_with("/api/")
        .then(|| form_post_origin(&request))
        .flatten();
    let response = next.run(request).await;
    match back {
        Some(page) if response.status().is_client_error() => back_with_error(page, response).await,
        _ => response,
    }
}

/// Largest error body read back for a form post, far above any message.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Returns the console page that sent a plain HTML form post (one made
/// without JavaScript, which accepts HTML and names its page in `Referer`),
/// as a path with query.
fn form_post_origin(request: &Request<Body>) -> Option<String> {
    let headers = request.headers();
    let accepts_html = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("text/html"));
    if !accepts_html {
        return None;
    }
    let referer = headers.get(header::REFERER)?.to_str().ok()?;
    let url = url::Url::parse(referer).ok()?;
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let same_origin = url.host_str().is_some_and(|referer_host| {
        let authority = match url.port() {
            Some(port) => format!("{referer_host}:{port}"),
            None => referer_host.to_owned(),
        };
        authority.eq_ignore_ascii_case(host)
    });
    (same_origin && url.path().starts_with("/console")).then(|| match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    })
}

/// Sends a rejected plain form post back to its page with the error
/// message in the `error` query parameter, which the console shows above
/// the page. Without this the browser would show the raw JSON error.
async fn back_with_error(page: String, response: Response) -> Response {
    let Ok(body) = axum::body::to_bytes(response.into_body(), ERROR_BODY_LIMIT).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let message = match serde_json::from_slice::<app::error::AppError>(&body) {
        Ok(app::error::AppError::InvalidRedirectUris { summary, rows }) => {
            let reasons: Vec<String> = rows
                .iter()
                .map(|row| format!("URI {}: {}", row.index + 1, row.message))
                .collect();
            format!("{summary} {}", reasons.join(" "))
        }
        Ok(error) => error.to_string(),
        Err(_) => "The request was rejected. Check the form and try again.".to_owned(),
    };
    let (path, query) = page.split_once('?').unwrap_or((page.as_str(), ""));
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(name, _)| name != "error" && name != "saved")
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    pairs.push(("error".to_owned(), message));
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let location = format!("{path}?{query}");
    match HeaderValue::from_str(&location) {
        Ok(value) => (StatusCode::SEE_OTHER, [(header::LOCATION, value)]).into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// Returns 200 when the database responds, 503 otherwise.
async fn healthz(State(state): State<AppState>) -> Response {
    let ping = state.db.execute_unprepared("SELECT 1").await;
    match ping {
        Ok(_) => (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")], axum::Json(serde_json::json!({"status": "ok"}))).into_response(),
        Err(error) => {
            tracing::error!(%error, "health check: the database does not respond");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CACHE_CONTROL, "no-store")],
                axum::Json(serde_json::json!({"status": "unavailable", "reason": "the database does not respond"})),
            )
                .into_response()
        }
    }
}

async fn favicon(State(state): State<ServerState>) -> Response {
    match tokio::fs::read(state.site_root.join("favicon.svg")).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "image/svg+xml")], bytes).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "Not found. The console is at /console.").into_response()
}
