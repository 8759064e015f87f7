//! App ID and App Secret, with copy buttons.

use crate::components::{CopyButton, ds};
use crate::model::SecretView;
use leptos::prelude::*;

/// Shows the credentials that ChatGPT requests as "Client ID" and "Client
/// Secret".
#[island]
pub fn ClientCredentials(
    /// App ID.
    app_id: String,
    /// Whether the application is a public client, which has no secret.
    public: bool,
    /// The newest secret that has not expired, if any.
    secret: Option<SecretView>,
) -> impl IntoView {
    let app_id_value = Signal::stored(app_id.clone());
    let revealed = RwSignal::new(false);

    let secret_view = match secret {
        Some(secret) => {
            let value = Signal::stored(secret.value.clone());
            view! {
                <div>
                    <label class=ds::LABEL for="app-secret">"App Secret"</label>
                    <div class="mt-1 flex gap-2">
                        <input
                            id="app-secret"
                            class=ds::INPUT
                            readonly
                            type=move || if revealed.get() { "text" } else { "password" }
                            value=secret.value
                        />
                        <button
                            type="button"
                            class=ds::BUTTON_SECONDARY
                            aria-pressed=move || revealed.get().to_string()
                            on:click=move |_| revealed.update(|shown| *shown = !*shown)
                        >
                            {move || if revealed.get() { "Hide" } else { "Show" }}
                        </button>
                        <CopyButton value label="Copy App Secret" />
                    </div>
                </div>
            }
            .into_any()
        }
        None if public => view! {
            <p class=ds::PROSE>
                "This application is a public client and has no secret: it must use PKCE instead."
            </p>
        }
        .into_any(),
        None => view! {
            <p role="alert" class="rounded-md border border-red-200 bg-red-50 p-4 text-sm text-red-800">
                "Every secret of this application has expired, so ChatGPT cannot sign users in. Add a new secret below and enter it in ChatGPT."
            </p>
        }
        .into_any(),
    };

    view! {
        <div class="space-y-4">
            <div>
                <label class=ds::LABEL for="app-id">"App ID"</label>
                <div class="mt-1 flex gap-2">
                    <input id="app-id" class=ds::INPUT readonly value=app_id />
                    <CopyButton value=app_id_value label="Copy App ID" />
                </div>
            </div>
            {secret_view}
        </div>
    }
}
