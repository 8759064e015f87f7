//! The list of an application's client secrets, with the forms that add
//! and delete them.

use crate::api::secrets::{AddSecret, DeleteSecret};
use crate::components::{CopyButton, ds};
use crate::dates::format_date;
use crate::model::{ApplicationSecrets, MAX_SECRET_NAME_LEN, MAX_SECRETS, SecretListing};
use leptos::prelude::*;

/// Lists the secrets of a confidential application and lets the developer
/// add and delete them, so a secret can be rotated without downtime.
///
/// Both forms post without JavaScript. Either way the server sends the
/// browser back to this list, with `added` or `deleted` in the query.
#[island]
pub fn ClientSecrets(
    /// App ID.
    application_id: String,
    /// The secrets and the server time they were read at.
    secrets: ApplicationSecrets,
    /// Id of the secret that was just added, from the query string.
    added: Option<String>,
    /// Whether a secret was just deleted, from the query string.
    deleted: bool,
) -> impl IntoView {
    let add = ServerAction::<AddSecret>::new();
    let delete = ServerAction::<DeleteSecret>::new();
    let read_at = secrets.read_at;
    let live_count = secrets.live_count();
    let full = secrets.secrets.len() >= MAX_SECRETS;

    let added_name = added.and_then(|id| {
        secrets
            .secrets
            .iter()
            .find(|listing| listing.secret.id == id)
            .map(|listing| listing.secret.name.clone())
    });
    let notice = match (added_name, deleted) {
        (Some(name), _) => Some(format!(
            "Added {name}. Enter its value in ChatGPT, then delete the secret it replaces."
        )),
        (None, true) => Some("Secret deleted.".to_owned()),
        (None, false) => None,
    };

    let rows = secrets
        .secrets
        .into_iter()
        .map(|listing| {
            // The last live secret gets no delete form, because the server
            // would reject the request.
            let deletable = listing.secret.is_expired(read_at) || live_count > 1;
            view! {
                <SecretRow
                    application_id=application_id.clone()
                    listing
                    read_at
                    deletable
                    delete
                />
            }
        })
        .collect_view();

    let delete_error = move || match delete.value().get() {
        Some(Err(error)) => {
            Some(view! { <p role="alert" class=ds::FIELD_ERROR>{error.to_string()}</p> })
        }
        _ => None,
    };
    let add_error = move || match add.value().get() {
        Some(Err(error)) => {
            Some(view! { <p role="alert" class=ds::FIELD_ERROR>{error.to_string()}</p> })
        }
        _ => None,
    };

    let add_form = if full {
        view! {
            <p class=ds::PROSE>
                {format!("This application has {MAX_SECRETS} secrets, the maximum. Delete one to add another.")}
            </p>
        }
        .into_any()
    } else {
        view! {
            <ActionForm action=add attr:class="space-y-3 rounded-md bg-slate-50 p-4" attr:aria-label="Add a secret">
                <h4 class="text-sm font-medium text-slate-900">"Add a secret"</h4>
                <input type="hidden" name="application_id" value=application_id.clone() />
                <div class="flex flex-wrap items-end gap-4">
                    <div class="min-w-64 flex-1">
                        <label class=ds::LABEL for="new-secret-name">"Secret name"</label>
                        <input
                            id="new-secret-name"
                            name="name"
                            class=ds::INPUT
                            required
                            maxlength=MAX_SECRET_NAME_LEN.to_string()
                            placeholder="Rotated in March"
                        />
                    </div>
                    <div>
                        <label class=ds::LABEL for="new-secret-expiry">"Expires on (optional)"</label>
                        <input
                            id="new-secret-expiry"
                            name="expires_on"
                            type="date"
                            class=ds::INPUT
                            min=format_date(read_at)
                        />
                    </div>
                    <button type="submit" class=ds::BUTTON_PRIMARY disabled=move || add.pending().get()>
                        "Add secret"
                    </button>
                </div>
                <p class="text-xs text-slate-500">
                    "Leave the date blank for a secret that never expires. A secret stops working when its expiry date ends, at midnight UTC."
                </p>
                {add_error}
            </ActionForm>
        }
        .into_any()
    };

    view! {
        <section
            id="client-secrets"
            class="space-y-3 border-y border-slate-200 py-4"
            aria-labelledby="client-secrets-heading"
        >
            <h3 id="client-secrets-heading" class="text-base font-medium">"Client secrets"</h3>
            <p class=ds::PROSE>
                "ChatGPT may use any secret that has not expired. To change the secret without downtime, add a new one, enter it in ChatGPT, then delete the old one."
            </p>
            {notice.map(|text| view! { <p role="status" class="text-sm text-emerald-700">{text}</p> })}
            <ul class="space-y-3">{rows}</ul>
            {delete_error}
            {add_form}
        </section>
    }
}

/// Describes when a secret expires. A date-input expiry is the first
/// second after the chosen day, so the date shown is that of the last
/// second on which the secret still works.
fn expiry_text(expires_at: Option<i64>, expired: bool) -> String {
    match expires_at {
        None => "never expires".to_owned(),
        Some(expiry) if expired => format!("expired on {}", format_date(expiry - 1)),
        Some(expiry) => format!("expires on {}", format_date(expiry - 1)),
    }
}

/// Renders one secret: name, dates, masked value with Show and Copy, and
/// Delete behind a confirmation.
#[component]
fn SecretRow(
    application_id: String,
    listing: SecretListing,
    read_at: i64,
    deletable: bool,
    delete: ServerAction<DeleteSecret>,
) -> impl IntoView {
    let SecretListing { secret, created_at } = listing;
    let expired = secret.is_expired(read_at);
    let revealed = RwSignal::new(false);
    let value = Signal::stored(secret.value.clone());
    let name = secret.name.clone();
    let value_id = format!("secret-value-{}", secret.id);
    let dates = format!(
        "Created {} · {}",
        format_date(created_at),
        expiry_text(secret.expires_at, expired)
    );
    let show_label = {
        let name = name.clone();
        move || {
            let verb = if revealed.get() { "Hide" } else { "Show" };
            format!("{verb} secret {name}")
        }
    };

    let delete_control = if deletable {
        view! {
            <details class="relative">
                <summary class=format!("cursor-pointer list-none {}", ds::BUTTON_SECONDARY)>"Delete"</summary>
                <div class="absolute right-0 z-10 mt-2 w-72 rounded-md border border-slate-200 bg-white p-4 shadow-lg">
                    <p class="text-sm text-slate-700">
                        "Delete " <strong>{name.clone()}</strong> "? Token requests that send it fail from then on."
                    </p>
                    <ActionForm action=delete attr:class="mt-3">
                        <input type="hidden" name="application_id" value=application_id />
                        <input type="hidden" name="secret_id" value=secret.id.clone() />
                        <button type="submit" class=ds::BUTTON_DANGER>"Delete secret"</button>
                    </ActionForm>
                </div>
            </details>
        }
        .into_any()
    } else {
        view! {
            <p class="text-xs text-slate-500">"Add another secret before deleting this one."</p>
        }
        .into_any()
    };

    view! {
        <li class="rounded-md border border-slate-200 p-4">
            <div class="flex flex-wrap items-start justify-between gap-2">
                <div>
                    <p class="flex items-center gap-2 text-sm font-medium text-slate-900">
                        {name.clone()}
                        {expired.then(|| view! {
                            <span class="rounded-full bg-red-100 px-2 py-0.5 text-xs font-medium text-red-800">"Expired"</span>
                        })}
                    </p>
                    <p class="mt-1 text-xs text-slate-500">{dates}</p>
                </div>
                {delete_control}
            </div>
            <div class="mt-2 flex gap-2">
                <input
                    id=value_id
                    class=ds::INPUT
                    readonly
                    aria-label=format!("Value of secret {name}")
                    type=move || if revealed.get() { "text" } else { "password" }
                    value=secret.value
                />
                <button
                    type="button"
                    class=ds::BUTTON_SECONDARY
                    aria-label=show_label
                    aria-pressed=move || revealed.get().to_string()
                    on:click=move |_| revealed.update(|shown| *shown = !*shown)
                >
                    {move || if revealed.get() { "Hide" } else { "Show" }}
                </button>
                <CopyButton value label=format!("Copy secret {name}") />
            </div>
        </li>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_text_shows_the_last_day() {
        // 2030-01-31 ends at 1_896_134_400.
        assert_eq!(
            expiry_text(Some(1_896_134_400), false),
            "expires on 2030-01-31"
        );
        assert_eq!(
            expiry_text(Some(1_896_134_400), true),
            "expired on 2030-01-31"
        );
        assert_eq!(expiry_text(None, false), "never expires");
    }
}
