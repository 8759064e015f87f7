//! The applications list, with the create and delete forms.

use crate::api::applications::{CreateApplication, DeleteApplication, list_applications};
use crate::components::{ErrorNotice, ds};
use crate::model::{ApplicationKind, ApplicationSummary};
use leptos::prelude::*;

/// Lists applications and creates new ones.
#[component]
pub fn ApplicationsPage() -> impl IntoView {
    let create = ServerAction::<CreateApplication>::new();
    let delete = ServerAction::<DeleteApplication>::new();
    let applications = Resource::new(
        move || (create.version().get(), delete.version().get()),
        |_| list_applications(),
    );
    let create_error = move || match create.value().get() {
        Some(Err(error)) => Some(view! { <p role="alert" class=ds::FIELD_ERROR>{error.to_string()}</p> }),
        _ => None,
    };

    view! {
        <h1 class="text-2xl font-semibold">"Applications"</h1>
        <p class="mt-1 text-sm text-slate-600">
            "Each application is an OAuth client, such as a ChatGPT plugin, that signs users in through Latch."
        </p>
        <section class=format!("mt-6 {}", ds::CARD) aria-labelledby="create-heading">
            <h2 id="create-heading" class="text-lg font-medium">"Create an application"</h2>
            <ActionForm action=create attr:class="mt-4 flex flex-wrap items-end gap-4">
                <div class="min-w-64 flex-1">
                    <label class=ds::LABEL for="new-app-name">"Name"</label>
                    <input
                        id="new-app-name"
                        name="name"
                        class=ds::INPUT
                        required
                        maxlength="128"
                        placeholder="Weather plugin"
                    />
                </div>
                <div>
                    <label class=ds::LABEL for="new-app-kind">"Kind"</label>
                    <select id="new-app-kind" name="kind" class=ds::INPUT>
                        {ApplicationKind::ALL
                            .into_iter()
                            .map(|kind| view! { <option value=kind.as_str()>{kind.label()}</option> })
                            .collect_view()}
                    </select>
                </div>
                <button type="submit" class=ds::BUTTON_PRIMARY>"Create application"</button>
            </ActionForm>
            {create_error}
        </section>
        <section class="mt-8" aria-labelledby="list-heading">
            <h2 id="list-heading" class="text-lg font-medium">"Your applications"</h2>
            <Transition fallback=|| view! { <p class="mt-4 text-sm text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match applications.await {
                        Ok(list) if list.is_empty() => view! {
                            <p class="mt-4 text-sm text-slate-500">"No applications yet. Create one above."</p>
                        }
                        .into_any(),
                        Ok(list) => view! {
                            <ul class="mt-4 space-y-3">
                                {list
                                    .into_iter()
                                    .map(|app| view! { <ApplicationRow app delete /> })
                                    .collect_view()}
                            </ul>
                        }
                        .into_any(),
                        Err(error) => view! { <ErrorNotice error /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn ApplicationRow(app: ApplicationSummary, delete: ServerAction<DeleteApplication>) -> impl IntoView {
    let href = format!("/console/applications/{}", app.id);
    let uri_count = match app.redirect_uri_count {
        0 => "no redirect URI yet".to_owned(),
        1 => "1 redirect URI".to_owned(),
        n => format!("{n} redirect URIs"),
    };
    view! {
        <li class=format!("flex items-center justify-between {}", ds::CARD)>
            <div>
                <a class="font-medium text-indigo-700 hover:underline" href=href>{app.name.clone()}</a>
                <p class="text-xs text-slate-500">
                    <span class="font-mono">{app.id.clone()}</span>
                    " · "
                    {app.kind.label()}
                    " · "
                    {uri_count}
                </p>
            </div>
            <details class="relative">
                <summary class=format!("cursor-pointer list-none {}", ds::BUTTON_SECONDARY)>
                    "Delete"
                </summary>
                <div class="absolute right-0 z-10 mt-2 w-72 rounded-md border border-slate-200 bg-white p-4 shadow-lg">
                    <p class="text-sm text-slate-700">
                        "Delete " <strong>{app.name.clone()}</strong>
                        "? Its App ID and secrets stop working at once."
                    </p>
                    <ActionForm action=delete attr:class="mt-3">
                        <input type="hidden" name="id" value=app.id.clone() />
                        <button type="submit" class=ds::BUTTON_DANGER>"Delete for good"</button>
                    </ActionForm>
                </div>
            </details>
        </li>
    }
}
