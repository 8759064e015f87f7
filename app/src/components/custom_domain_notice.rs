//! A notice that the guide's URLs use the custom domain.

use leptos::prelude::*;

/// Says that every URL on the page uses `domain`, when one is set.
#[component]
pub fn CustomDomainNotice(
    /// Custom domain, if any.
    domain: Option<String>,
) -> impl IntoView {
    domain.map(|domain| {
        view! {
            <div
                role="note"
                aria-label="Custom domain"
                class="rounded-md border border-amber-200 bg-amber-50 p-4 text-sm text-amber-900"
            >
                "A custom domain is set, so every URL in this guide uses https://"
                {domain.clone()}
                ". Make sure that domain reaches this Latch server over HTTPS before ChatGPT uses it."
            </div>
        }
    })
}
