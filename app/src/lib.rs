//! The Latch console and the types it shares with the server.
//!
//! Everything here compiles for both the browser (feature `hydrate`) and the
//! server (feature `ssr`). Code that must never reach the browser, such as
//! database access and credential generation, lives under [`ssr`], which is
//! compiled only with the `ssr` feature.

pub mod api;
pub mod components;
pub mod dates;
pub mod error;
pub mod guides;
pub mod manifest;
pub mod model;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod ssr;
pub mod validation;

mod shell;

pub use shell::{App, shell};
