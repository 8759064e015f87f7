//! The "Always issue refresh token" switch.

use crate::api::applications::SetAlwaysIssueRefreshToken;
use crate::components::ds;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;

/// Renders a switch that saves as soon as it is flipped. When saving fails it
/// flips back and shows the error.
///
/// Without JavaScript it is a plain form whose button submits the opposite
/// of the saved value.
#[island]
pub fn RefreshTokenSwitch(
    /// App ID.
    app_id: String,
    /// Saved value.
    enabled: bool,
) -> impl IntoView {
    let action = ServerAction::<SetAlwaysIssueRefreshToken>::new();
    let on = RwSignal::new(enabled);
    let before = StoredValue::new(enabled);
    let error = RwSignal::new(None::<String>);

    Effect::new(move |_| match action.value().get() {
        Some(Ok(saved)) => {
            before.set_value(saved);
            on.set(saved);
            error.set(None);
        }
        Some(Err(failure)) => {
            on.set(before.get_value());
            error.set(Some(format!("The change was not saved: {failure}")));
        }
        None => {}
    });

    let id = app_id.clone();
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let next = !on.get_untracked();
        on.set(next);
        action.dispatch(SetAlwaysIssueRefreshToken { id: id.clone(), enabled: next });
    };

    view! {
        <form
            method="post"
            action=SetAlwaysIssueRefreshToken::url()
            class="flex items-start gap-4 rounded-md border border-slate-200 p-4"
            on:submit=submit
        >
            <input type="hidden" name="id" value=app_id />
            <input type="hidden" name="enabled" value=move || (!on.get()).to_string() />
            <button
                type="submit"
                role="switch"
                id="always-issue-refresh-token"
                aria-checked=move || on.get().to_string()
                aria-labelledby="always-issue-refresh-token-label"
                class=move || {
                    if on.get() {
                        "relative mt-1 inline-flex h-6 w-11 shrink-0 items-center rounded-full bg-indigo-600 focus:ring-2 focus:ring-indigo-500"
                    } else {
                        "relative mt-1 inline-flex h-6 w-11 shrink-0 items-center rounded-full bg-slate-300 focus:ring-2 focus:ring-indigo-500"
                    }
                }
            >
                <span class=move || {
                    if on.get() {
                        "inline-block h-5 w-5 translate-x-5 rounded-full bg-white shadow-sm"
                    } else {
                        "inline-block h-5 w-5 translate-x-1 rounded-full bg-white shadow-sm"
                    }
                }></span>
            </button>
            <div>
                <span id="always-issue-refresh-token-label" class=ds::LABEL>
                    "Always issue refresh token"
                </span>
                <p class="mt-1 text-sm text-slate-600">
                    "When on, every code exchange returns a refresh token, because ChatGPT never asks for offline_access with prompt=consent and would otherwise send users back to sign in each time the access token expires."
                </p>
                {move || error.get().map(|message| view! { <p role="alert" class=ds::FIELD_ERROR>{message}</p> })}
            </div>
        </form>
    }
}
