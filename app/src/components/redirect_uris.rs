//! The redirect URI list of an application, with a helper that builds
//! ChatGPT's callbacks from a plugin or GPT ID.

use crate::api::applications::SaveRedirectUris;
use crate::components::ds;
use crate::error::AppError;
use leptos::prelude::*;
use std::collections::HashMap;

/// Hosts ChatGPT sends callbacks from; it has used both.
const CHATGPT_HOSTS: [&str; 2] = ["chat.openai.com", "chatgpt.com"];

/// Builds ChatGPT's callback URL for a plugin or GPT ID on `host`.
pub fn chatgpt_callback(host: &str, plugin_id: &str) -> String {
    format!("https://{host}/aip/{plugin_id}/oauth/callback")
}

/// Tells whether `id` looks like a plugin or GPT ID: letters, digits,
/// hyphens and underscores.
fn is_plugin_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// One row of the editor: a stable key for rendering and the text.
#[derive(Clone, Debug)]
struct Row {
    key: usize,
    value: RwSignal<String>,
}

fn rows_from(values: &[String], next_key: &mut usize) -> Vec<Row> {
    values
        .iter()
        .map(|value| {
            *next_key += 1;
            Row {
                key: *next_key,
                value: RwSignal::new(value.clone()),
            }
        })
        .collect()
}

/// Edits the redirect URIs of one application.
///
/// While nothing is saved the first row shows ChatGPT's callback with a
/// placeholder, which the server rejects until it is replaced.
#[island]
pub fn RedirectUriField(
    /// App ID.
    app_id: String,
    /// Saved redirect URIs.
    saved: Vec<String>,
    /// Callback with a placeholder, shown while nothing is saved.
    placeholder: String,
) -> impl IntoView {
    let action = ServerAction::<SaveRedirectUris>::new();
    let placeholder = StoredValue::new(placeholder);
    let shown_for = move |list: &[String]| -> Vec<String> {
        if list.is_empty() {
            vec![placeholder.get_value()]
        } else {
            list.to_vec()
        }
    };
    let initial = shown_for(&saved);
    // What the rows showed after the last load or save; Save is enabled
    // only when the rows differ from it.
    let baseline = RwSignal::new(initial.clone());
    let next_key = StoredValue::new(0usize);
    let rows = RwSignal::new(next_key.try_update_value(|key| rows_from(&initial, key)).unwrap_or_default());

    // Save stays enabled until hydration, so the form also works without
    // JavaScript.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));

    let current = move || -> Vec<String> {
        rows.read()
            .iter()
            .map(|row| row.value.get().trim().to_owned())
            .filter(|value| !value.is_empty())
            .collect()
    };
    let dirty = move || current() != baseline.get();

    Effect::new(move |_| {
        if let Some(Ok(list)) = action.value().get() {
            let shown = shown_for(&list);
            rows.set(next_key.try_update_value(|key| rows_from(&shown, key)).unwrap_or_default());
            baseline.set(shown);
        }
    });

    let row_errors = move || -> (Option<String>, HashMap<usize, String>) {
        match action.value().get() {
            Some(Err(AppError::InvalidRedirectUris { summary, rows })) => {
                (Some(summary), rows.into_iter().map(|row| (row.index, row.message)).collect())
            }
            Some(Err(other)) => (Some(other.to_string()), HashMap::new()),
            _ => (None, HashMap::new()),
        }
    };
    let saved_notice = move || matches!(action.value().get(), Some(Ok(_))) && !dirty();

    let add_row = move |_| {
        let key = next_key
            .try_update_value(|key| {
                *key += 1;
                *key
            })
            .unwrap_or_default();
        rows.update(|rows| rows.push(Row { key, value: RwSignal::new(String::new()) }));
    };

    let plugin_id = RwSignal::new(String::new());
    let plugin_id_error = RwSignal::new(None::<String>);
    let use_plugin_id = move |_| {
        let id = plugin_id.get_untracked().trim().to_owned();
        if !is_plugin_id(&id) {
            plugin_id_error.set(Some(
                "Enter the ID as ChatGPT shows it, such as plugin-1a2b3c or g-abc123: letters, digits, - and _."
                    .into(),
            ));
            return;
        }
        plugin_id_error.set(None);
        let mut values: Vec<String> = rows
            .get_untracked()
            .iter()
            .map(|row| row.value.get_untracked())
            .filter(|value| !value.trim().is_empty() && *value != placeholder.get_value())
            .collect();
        for host in CHATGPT_HOSTS {
            let callback = chatgpt_callback(host, &id);
            if !values.contains(&callback) {
                values.push(callback);
            }
        }
        rows.set(next_key.try_update_value(|key| rows_from(&values, key)).unwrap_or_default());
    };

    view! {
        <div class="space-y-3">
            <ActionForm action attr:class="space-y-3" attr:aria-label="Redirect URIs">
                <input type="hidden" name="id" value=app_id />
                <span class=ds::LABEL id="redirect-uris-label">"Redirect URIs"</span>
                <For
                    each=move || rows.get().into_iter().enumerate()
                    key=|(index, row)| (*index, row.key)
                    children=move |(index, row)| {
                        let error = move || row_errors().1.get(&index).cloned();
                        let remove = move |_| rows.update(|rows| rows.retain(|other| other.key != row.key));
                        view! {
                            <div>
                                <div class="flex gap-2">
                                    <input
                                        type="text"
                                        class=ds::INPUT
                                        name=format!("uris[{index}]")
                                        aria-label=format!("Redirect URI {}", index + 1)
                                        aria-invalid=move || error().is_some().to_string()
                                        prop:value=move || row.value.get()
                                        value=row.value.get_untracked()
                                        on:input=move |event| row.value.set(event_target_value(&event))
                                    />
                                    <button
                                        type="button"
                                        class=ds::BUTTON_SECONDARY
                                        aria-label=format!("Remove redirect URI {}", index + 1)
                                        on:click=remove
                                    >
                                        "Remove"
                                    </button>
                                </div>
                                {move || error().map(|message| view! { <p class=ds::FIELD_ERROR>{message}</p> })}
                            </div>
                        }
                    }
                />
                <div class="flex items-center gap-3">
                    <button type="button" class=ds::BUTTON_SECONDARY on:click=add_row>
                        "Add another URI"
                    </button>
                    <button
                        type="submit"
                        class=ds::BUTTON_PRIMARY
                        disabled=move || hydrated.get() && (!dirty() || action.pending().get())
                    >
                        "Save redirect URIs"
                    </button>
                    <Show when=saved_notice>
                        <span role="status" class="text-sm text-emerald-700">"Saved."</span>
                    </Show>
                </div>
                {move || row_errors().0.map(|summary| view! { <p role="alert" class=ds::FIELD_ERROR>{summary}</p> })}
            </ActionForm>
            <div class="rounded-md bg-slate-50 p-4">
                <label class=ds::LABEL for="plugin-id">"Build the callbacks from your plugin or GPT ID"</label>
                <p class="mt-1 text-xs text-slate-500">
                    "ChatGPT may call back on chat.openai.com or chatgpt.com, so both are added. Save afterwards."
                </p>
                <div class="mt-2 flex gap-2">
                    <input
                        id="plugin-id"
                        type="text"
                        class=ds::INPUT
                        placeholder="plugin-1a2b3c or g-abc123"
                        prop:value=move || plugin_id.get()
                        on:input=move |event| plugin_id.set(event_target_value(&event))
                    />
                    <button type="button" class=ds::BUTTON_SECONDARY on:click=use_plugin_id>
                        "Use this ID"
                    </button>
                </div>
                {move || plugin_id_error.get().map(|message| view! { <p class=ds::FIELD_ERROR>{message}</p> })}
            </div>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_for_both_hosts() {
        assert_eq!(
            chatgpt_callback("chatgpt.com", "g-abc123"),
            "https://chatgpt.com/aip/g-abc123/oauth/callback"
        );
    }

    #[test]
    fn plugin_id_shape() {
        assert!(is_plugin_id("plugin-1a2b"));
        assert!(is_plugin_id("g-abc_123"));
        assert!(!is_plugin_id("g abc"));
        assert!(!is_plugin_id("[your-plugin-id]"));
        assert!(!is_plugin_id(""));
    }
}
