//! The sign-in experience: sign-in, registration, consent and error pages
//! that the authorization endpoint sends browsers to.
//!
//! The pages are plain HTML forms rendered on the server, without
//! JavaScript, and every response forbids framing and caching.

use crate::routes::ServerState;
use axum::Router;
use axum::routing::get;

pub mod flow;
pub mod handlers;
pub mod http;
pub mod interaction;
pub mod pages;

/// Routes of the sign-in pages.
pub fn routes() -> Router<ServerState> {
    Router::new()
        .route(
            "/sign-in",
            get(handlers::sign_in_page).post(handlers::sign_in_submit),
        )
        .route(
            "/register",
            get(handlers::register_page).post(handlers::register_submit),
        )
        .route(
            "/consent",
            get(handlers::consent_page).post(handlers::consent_submit),
        )
}
