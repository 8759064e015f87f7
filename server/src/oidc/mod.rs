//! The OAuth 2.0 and OpenID Connect endpoints under `/oidc`.
//!
//! Their wire formats are fixed by RFCs, so they are plain axum handlers,
//! one module per endpoint. Each module exposes `routes()`, merged here.

use crate::routes::ServerState;
use axum::Router;

pub mod authorize;
pub mod client_auth;
pub mod cors;
pub mod discovery;
pub mod errors;
pub mod grants;
pub mod introspection;
pub mod jwks;
pub mod params;
pub mod revocation;
pub mod session_end;
pub mod token;
pub mod userinfo;

/// Routes of every protocol endpoint.
pub fn router() -> Router<ServerState> {
    Router::new()
        .merge(authorize::routes())
        .merge(discovery::routes())
        .merge(introspection::routes())
        .merge(jwks::routes())
        .merge(revocation::routes())
        .merge(session_end::routes())
        .merge(token::routes())
        .merge(userinfo::routes())
}
