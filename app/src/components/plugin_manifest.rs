//! The generated `auth` section of `ai-plugin.json` and the form for the
//! values it needs.

use crate::api::applications::SaveManifestSettings;
use crate::components::{CopyButton, ds};
use crate::manifest::plugin_auth_json;
use crate::model::{Endpoints, TokenContentType};
use leptos::prelude::*;

/// Shows the manifest fragment, updated as the developer types, and saves
/// the verification token and the token request encoding.
#[island]
pub fn PluginManifest(
    /// App ID.
    app_id: String,
    /// Where ChatGPT reaches this server.
    endpoints: Endpoints,
    /// Scope ChatGPT will request.
    scope: String,
    /// Saved verification token.
    verification_token: Option<String>,
    /// Saved token request encoding.
    content_type: TokenContentType,
) -> impl IntoView {
    let action = ServerAction::<SaveManifestSettings>::new();
    let token = RwSignal::new(verification_token.unwrap_or_default());
    let media_type = RwSignal::new(content_type);
    let json = Signal::derive(move || {
        plugin_auth_json(&endpoints, &scope, media_type.get(), token.get().trim())
    });
    let result = move || match action.value().get() {
        Some(Ok(())) => Some(view! { <span role="status" class="text-sm text-emerald-700">"Saved."</span> }.into_any()),
        Some(Err(error)) => Some(view! { <p role="alert" class=ds::FIELD_ERROR>{error.to_string()}</p> }.into_any()),
        None => None,
    };
    let option = move |kind: TokenContentType, label: &'static str| {
        view! {
            <option value=kind.media_type() selected=move || media_type.get() == kind>
                {label}
            </option>
        }
    };

    view! {
        <div class="space-y-4">
            <ActionForm action attr:class="space-y-3" attr:aria-label="Manifest settings">
                <input type="hidden" name="id" value=app_id />
                <div>
                    <label class=ds::LABEL for="verification-token">"OpenAI verification token"</label>
                    <input
                        id="verification-token"
                        name="verification_token"
                        class=ds::INPUT
                        placeholder="Paste the token ChatGPT shows after you enter the credentials"
                        prop:value=move || token.get()
                        value=token.get_untracked()
                        on:input=move |event| token.set(event_target_value(&event))
                    />
                </div>
                <div>
                    <label class=ds::LABEL for="content-type">"Token request encoding"</label>
                    <select
                        id="content-type"
                        name="content_type"
                        class=ds::INPUT
                        on:change=move |event| {
                            if let Some(kind) = TokenContentType::parse(&event_target_value(&event)) {
                                media_type.set(kind);
                            }
                        }
                    >
                        {option(TokenContentType::Json, "application/json (ChatGPT's default)")}
                        {option(TokenContentType::Form, "application/x-www-form-urlencoded")}
                    </select>
                </div>
                <div class="flex items-center gap-3">
                    <button type="submit" class=ds::BUTTON_PRIMARY>"Save manifest settings"</button>
                    {result}
                </div>
            </ActionForm>
            <div>
                <div class="flex items-center justify-between">
                    <span class=ds::LABEL id="manifest-label">"auth section of ai-plugin.json"</span>
                    <CopyButton value=json label="Copy auth section" />
                </div>
                <pre
                    aria-labelledby="manifest-label"
                    data-testid="plugin-auth-json"
                    class="mt-2 overflow-x-auto rounded-md bg-slate-900 p-4 font-mono text-xs text-slate-100"
                >
                    {move || json.get()}
                </pre>
            </div>
        </div>
    }
}
