//! The checks a plugin's API makes on each access token, and the audience
//! form.

use crate::api::applications::SaveAudience;
use crate::components::{CopyButton, ds};
use crate::model::Endpoints;
use leptos::prelude::*;

/// Lists the values an API verifies and lets the developer set the
/// audience of the application's access tokens.
#[island]
pub fn TokenVerification(
    /// App ID.
    app_id: String,
    /// Where ChatGPT reaches this server.
    endpoints: Endpoints,
    /// Saved audience.
    audience: Option<String>,
) -> impl IntoView {
    let action = ServerAction::<SaveAudience>::new();
    let result = move || match action.value().get() {
        Some(Ok(())) => Some(view! { <span role="status" class="text-sm text-emerald-700">"Saved."</span> }.into_any()),
        Some(Err(error)) => Some(view! { <p role="alert" class=ds::FIELD_ERROR>{error.to_string()}</p> }.into_any()),
        None => None,
    };
    let fact = |label: &'static str, value: String| {
        let copy_label = format!("Copy {label}");
        view! {
            <div>
                <dt class=ds::LABEL>{label}</dt>
                <dd class="mt-1 flex gap-2">
                    <code class="block w-full rounded-md bg-slate-100 px-3 py-2 font-mono text-sm">{value.clone()}</code>
                    <CopyButton value=Signal::stored(value) label=copy_label />
                </dd>
            </div>
        }
    };

    view! {
        <div class="space-y-4">
            <dl class="space-y-3">
                {fact("Issuer", endpoints.issuer.clone())}
                {fact("JWKS URL", endpoints.jwks.clone())}
            </dl>
            <ActionForm action attr:class="space-y-2" attr:aria-label="Access token audience">
                <input type="hidden" name="id" value=app_id />
                <label class=ds::LABEL for="audience">"Audience (your plugin API's URL)"</label>
                <input
                    id="audience"
                    name="audience"
                    class=ds::INPUT
                    placeholder="https://api.example.com"
                    value=audience.unwrap_or_default()
                />
                <div class="flex items-center gap-3">
                    <button type="submit" class=ds::BUTTON_PRIMARY>"Save audience"</button>
                    {result}
                </div>
            </ActionForm>
        </div>
    }
}
