//! The page for unknown console paths.

use leptos::prelude::*;

/// Tells the user the page does not exist and links back to the list.
#[component]
pub fn NotFoundPage() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
        options.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <h1 class="text-2xl font-semibold">"Page not found"</h1>
        <p class="mt-2 text-sm text-slate-600">
            "No console page has this address. "
            <a class="text-indigo-700 underline" href="/console">"Go to the applications"</a>
        </p>
    }
}
