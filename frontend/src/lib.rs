//! Hydrates the server-rendered console in the browser.

/// Entry point that the generated JavaScript calls once the WASM loads.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
