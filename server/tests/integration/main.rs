//! Integration tests: each starts the real server on 127.0.0.1 with its own
//! SQLite file and talks to it over HTTP.

mod common;

mod at_rest;
mod attacks;
mod authorize;
mod browser;
mod brute_force;
mod console;
mod console_auth;
mod crash;
mod discovery;
mod sign_in;
mod token;
mod fixtures;
mod instances;
mod openid_client;
mod refresh;
mod resources;
mod secrets;
