//! Placeholder until tests are written.
