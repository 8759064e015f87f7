//! Server-wide settings: public URL and custom domain.

use crate::api::settings::{SaveCustomDomain, get_settings};
use crate::components::{ErrorNotice, ds};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// Shows the public URL and edits the custom domain.
#[component]
pub fn SettingsPage() -> impl IntoView {
    let save = ServerAction::<SaveCustomDomain>::new();
    let settings = Resource::new(move || save.version().get(), |_| get_settings());
    // The form posts without JavaScript. On success the server sends the
    // browser back here with `saved=true`. On failure the query string
    // carries the error, which the action reads.
    let query = use_query_map();
    let saved = move || query.read().get("saved").is_some_and(|value| value == "true");
    let result = move || match save.value().get() {
        Some(Err(error)) => Some(view! { <p role="alert" class=ds::FIELD_ERROR>{error.to_string()}</p> }.into_any()),
        _ if saved() => Some(view! { <span role="status" class="text-sm text-emerald-700">"Saved."</span> }.into_any()),
        _ => None,
    };

    view! {
        <h1 class="text-2xl font-semibold">"Settings"</h1>
        <Transition fallback=|| view! { <p class="mt-4 text-sm text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match settings.await {
                    Ok(current) => view! {
                        <section class=format!("mt-6 space-y-4 {}", ds::CARD)>
                            <div>
                                <span class=ds::LABEL>"Public URL"</span>
                                <p class="mt-1 font-mono text-sm" data-testid="public-url">{current.public_url}</p>
                                <p class="mt-1 text-xs text-slate-500">
                                    "Set with --public-url or LATCH_PUBLIC_URL when Latch starts."
                                </p>
                            </div>
                            <ActionForm action=save attr:class="space-y-2" attr:aria-label="Custom domain">
                                <label class=ds::LABEL for="custom-domain">"Custom domain"</label>
                                <input
                                    id="custom-domain"
                                    name="custom_domain"
                                    class=ds::INPUT
                                    placeholder="auth.example.com"
                                    value=current.custom_domain.unwrap_or_default()
                                />
                                <p class="text-xs text-slate-500">
                                    "A host name that reaches this server over HTTPS. Guides and the issuer use it instead of the public URL. Leave it empty to use the public URL."
                                </p>
                                <button type="submit" class=ds::BUTTON_PRIMARY>"Save domain"</button>
                            </ActionForm>
                        </section>
                    }
                    .into_any(),
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                }
            })}
        </Transition>
        {result}
    }
}
