//! Hydrates the interactive islands of the server-rendered console.

// The islands' hydration functions are exported from the app crate, which
// is linked only when something names it.
use app as _;

/// Entry point that the generated JavaScript calls once the WASM loads.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // A server function that redirects (creating an application, say)
    // sends the whole page to the new address: islands have no router.
    let _ = leptos::server_fn::redirect::set_redirect_hook(|location| {
        if let Some(window) = web_sys::window() {
            let _ = window.location().set_href(location);
        }
    });
    leptos::mount::hydrate_islands();
}
