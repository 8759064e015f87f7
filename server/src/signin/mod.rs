//! The sign-in experience: sign-in, registration and error pages that the
//! authorization endpoint sends browsers to.

use crate::routes::ServerState;
use axum::Router;

/// Routes of the sign-in pages.
pub fn routes() -> Router<ServerState> {
    Router::new()
}
