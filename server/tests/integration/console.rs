//! Console server functions over HTTP.
