//! The error type that console server functions return to the browser.
//!
//! It carries what the user needs to fix a request and nothing internal:
//! database failures are logged on the server and reach the browser only
//! as [`AppError::Internal`].

use serde::{Deserialize, Serialize};
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};

/// One rejected entry of a list input, such as a single redirect URI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    /// Zero-based position of the entry in the submitted list.
    pub index: usize,
    /// Reason the entry was rejected, with the fix.
    pub message: String,
}

/// A failed console request, in the form the browser receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// No application has the given App ID.
    #[error("No application has the ID {0}. It may have been deleted.")]
    ApplicationNotFound(String),
    /// A single field was rejected.
    #[error("{message}")]
    InvalidField {
        /// Name of the rejected form field.
        field: String,
        /// Reason the value was rejected, with the fix.
        message: String,
    },
    /// Some entries of the redirect URI list were rejected; nothing was saved.
    #[error("{summary}")]
    InvalidRedirectUris {
        /// A sentence about the list as a whole, such as too many entries.
        summary: String,
        /// The entries that were rejected.
        rows: Vec<RowError>,
    },
    /// The request carries no live admin session.
    #[error("Your console session has ended. Sign in again at /console/sign-in.")]
    SignInRequired,
    /// The console serves only requests from the local machine.
    #[error(
        "The console accepts requests only from the machine Latch runs on. Open it through a loopback address or an SSH tunnel."
    )]
    NotLoopback,
    /// The server failed; the cause is in the server log.
    #[error("The server could not complete the request. The server log has the details.")]
    Internal,
    /// The request never reached the handler, for example a malformed body.
    #[error("The request was rejected: {0}")]
    Request(String),
}

impl AppError {
    /// Builds an [`AppError::InvalidField`].
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// Returns the HTTP status that fits this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::ApplicationNotFound(_) => 404,
            Self::InvalidField { .. } | Self::InvalidRedirectUris { .. } | Self::Request(_) => 400,
            Self::SignInRequired => 401,
            Self::NotLoopback => 403,
            Self::Internal => 500,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        let error = Self::Request(value.to_string());
        // Malformed arguments are the caller's fault, so they get 400
        // rather than the framework's default 500.
        #[cfg(feature = "ssr")]
        if matches!(
            value,
            ServerFnErrorErr::Args(_) | ServerFnErrorErr::MissingArg(_) | ServerFnErrorErr::Deserialization(_)
        ) {
            return crate::api::fail(error);
        }
        error
    }
}
