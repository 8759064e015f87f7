//! A button that copies a value to the clipboard.

use leptos::prelude::*;

/// Copies `value` to the clipboard and shows "Copied" for two seconds.
#[component]
pub fn CopyButton(
    /// The text to copy.
    #[prop(into)]
    value: Signal<String>,
    /// Accessible name, such as "Copy App ID".
    #[prop(into)]
    label: String,
) -> impl IntoView {
    let copied = RwSignal::new(false);
    let copy = move |_| {
        let text = value.get_untracked();
        write_clipboard(text, copied);
    };
    view! {
        <button
            type="button"
            class=crate::components::ds::BUTTON_SECONDARY
            aria-label=label
            on:click=copy
        >
            {move || if copied.get() { "Copied" } else { "Copy" }}
        </button>
    }
}

#[cfg(feature = "hydrate")]
fn write_clipboard(text: String, copied: RwSignal<bool>) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let promise = window.navigator().clipboard().write_text(&text);
    leptos::task::spawn_local(async move {
        if wasm_bindgen_futures::JsFuture::from(promise).await.is_ok() {
            copied.set(true);
            set_timeout(move || copied.set(false), std::time::Duration::from_secs(2));
        }
    });
}

#[cfg(not(feature = "hydrate"))]
fn write_clipboard(_text: String, _copied: RwSignal<bool>) {}
