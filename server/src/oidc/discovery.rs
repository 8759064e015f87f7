//! Placeholder until the endpoint is written.

use crate::routes::ServerState;
use axum::Router;

/// Routes of this endpoint.
pub fn routes() -> Router<ServerState> {
    Router::new()
}
