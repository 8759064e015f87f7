//! The guide page of one application.

use crate::api::applications::get_guide;
use crate::api::secrets::list_secrets;
use crate::components::{
    ClientCredentials, ClientSecrets, CustomDomainNotice, ErrorNotice, PluginManifest, RedirectUriField,
    RefreshTokenSwitch, TokenVerification, ds,
};
use crate::guides::{Block, CHATGPT_PLUGIN, Guide};
use crate::model::{ApplicationSecrets, GuideData};
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

/// Loads an application and renders its guide.
#[component]
pub fn GuidePage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let guide = Resource::new(id, get_guide);
    let secrets = Resource::new(id, list_secrets);
    // The secret forms send the browser back here with the id of the
    // secret they added or deleted.
    let query = use_query_map();
    let secret_change = move || SecretChange {
        added: query.read().get("added"),
        deleted: query.read().get("deleted").is_some(),
    };

    view! {
        <p class="text-sm">
            <a class="text-indigo-700 hover:underline" href="/console">"← Applications"</a>
        </p>
        <Transition fallback=|| view! { <p class="mt-4 text-sm text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match (guide.await, secrets.await) {
                    (Ok(data), Ok(secrets)) => {
                        let change = secret_change();
                        view! { <GuideView guide=&CHATGPT_PLUGIN data secrets change /> }.into_any()
                    }
                    (Err(error), _) | (_, Err(error)) => {
                        view! { <div class="mt-4"><ErrorNotice error /></div> }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

/// Outcome of a secret form, read from the query string of the address
/// that the form sends the browser back to.
#[derive(Debug, Clone, Default)]
pub struct SecretChange {
    /// Id of the secret that was added.
    pub added: Option<String>,
    /// Whether a secret was deleted.
    pub deleted: bool,
}

/// Renders any guide for one application.
#[component]
pub fn GuideView(
    guide: &'static Guide,
    data: GuideData,
    secrets: ApplicationSecrets,
    #[prop(optional)] change: SecretChange,
) -> impl IntoView {
    let name = data.application.name.clone();
    let steps = guide
        .steps
        .iter()
        .enumerate()
        .map(|(index, step)| {
            let blocks = step
                .blocks
                .iter()
                .map(|block| render_block(block, &data, &secrets, &change))
                .collect_view();
            let heading_id = format!("step-{}", index + 1);
            view! {
                <li class=ds::CARD aria-labelledby=heading_id.clone()>
                    <h2 id=heading_id.clone() class="flex items-center gap-3 text-lg font-medium">
                        <span class="inline-flex h-7 w-7 items-center justify-center rounded-full bg-indigo-100 text-sm font-semibold text-indigo-700">
                            {index + 1}
                        </span>
                        {step.title}
                    </h2>
                    <div class="mt-4 space-y-4">{blocks}</div>
                </li>
            }
        })
        .collect_view();

    view! {
        <h1 class="mt-4 text-2xl font-semibold">{name}</h1>
        <p class="mt-1 text-sm text-slate-600">
            <strong>{guide.title}</strong>
            ". "
            {guide.summary}
        </p>
        <ol class="mt-6 space-y-6">{steps}</ol>
    }
}

fn render_block(block: &Block, data: &GuideData, secrets: &ApplicationSecrets, change: &SecretChange) -> AnyView {
    let app = &data.application;
    match block {
        Block::Text(text) => view! { <p class=ds::PROSE>{*text}</p> }.into_any(),
        Block::List(items) => view! {
            <ul class=format!("list-disc space-y-1 pl-6 {}", ds::PROSE)>
                {items.iter().map(|item| view! { <li>{*item}</li> }).collect_view()}
            </ul>
        }
        .into_any(),
        Block::RedirectUris { placeholder } => view! {
            <RedirectUriField app_id=app.id.clone() saved=app.redirect_uris.clone() placeholder=placeholder.to_string() />
        }
        .into_any(),
        Block::RefreshTokenSwitch => view! {
            <RefreshTokenSwitch app_id=app.id.clone() enabled=app.always_issue_refresh_token />
        }
        .into_any(),
        Block::ClientCredentials => view! {
            <ClientCredentials
                app_id=app.id.clone()
                public=!app.kind.is_confidential()
                secret=secrets.current().cloned()
            />
        }
        .into_any(),
        Block::ClientSecrets if !app.kind.is_confidential() => ().into_any(),
        Block::ClientSecrets => view! {
            <ClientSecrets
                application_id=app.id.clone()
                secrets=secrets.clone()
                added=change.added.clone()
                deleted=change.deleted
            />
        }
        .into_any(),
        Block::PluginManifest => view! {
            <PluginManifest
                app_id=app.id.clone()
                endpoints=data.endpoints.clone()
                scope=app.default_scope.clone()
                verification_token=app.openai_verification_token.clone()
                content_type=app.token_content_type
            />
        }
        .into_any(),
        Block::CustomDomainNotice => view! {
            <CustomDomainNotice domain=data.endpoints.custom_domain.clone() />
        }
        .into_any(),
        Block::ExampleApi => {
            let audience = app.audience.clone().unwrap_or_else(|| app.id.clone());
            let command = format!(
                "cargo run -p server --example plugin_api -- \\\n    --issuer {} \\\n    --audience {audience}\ncurl -H \"Authorization: Bearer $ACCESS_TOKEN\" http://127.0.0.1:4000/whoami",
                data.endpoints.issuer
            );
            view! {
                <pre
                    data-testid="example-api-command"
                    class="overflow-x-auto rounded-md bg-slate-900 p-4 font-mono text-xs text-slate-100"
                >
                    {command}
                </pre>
            }
            .into_any()
        }
        Block::TokenVerification => view! {
            <TokenVerification
                app_id=app.id.clone()
                endpoints=data.endpoints.clone()
                audience=app.audience.clone()
            />
        }
        .into_any(),
    }
}
