//! The HTML document and the router of the console.

use crate::pages::{ApplicationsPage, GuidePage, NotFoundPage, SettingsPage};
use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{A, Redirect, Route, Router, Routes};
use leptos_router::{SsrMode, path};

/// Renders the whole HTML document around [`App`] on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    set_content_security_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <HydrationScripts options islands=true />
                <MetaTags />
            </head>
            <body class="min-h-screen bg-slate-50 text-slate-900">
                <App />
            </body>
        </html>
    }
}

/// Sends a Content-Security-Policy that lets the page run only scripts
/// from this origin and the inline hydration script that carries this
/// response's nonce, compile WebAssembly, and load styles and images from
/// this origin. No other site may frame the page.
#[cfg(feature = "ssr")]
fn set_content_security_policy() {
    use axum::http::{HeaderValue, header};
    let (Some(nonce), Some(response)) = (use_nonce(), use_context::<leptos_axum::ResponseOptions>()) else {
        return;
    };
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response.insert_header(header::CONTENT_SECURITY_POLICY, value);
    }
}

/// Returns the admin that the server's console guard found, during server
/// rendering; `None` in the browser.
fn signed_in_admin() -> Option<crate::model::SignedInAdmin> {
    #[cfg(feature = "ssr")]
    {
        use_context::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<crate::model::SignedInAdmin>().cloned())
    }
    #[cfg(not(feature = "ssr"))]
    {
        None
    }
}

/// Renders the console application: navigation and routes.
///
/// Pages render with [`SsrMode::Async`]: the server waits for their data and
/// sends complete HTML, so they work before hydration and without
/// JavaScript. Only the islands (the guide's widgets) hydrate, and links
/// load whole pages.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();

    view! {
        <Stylesheet id="latch" href="/pkg/latch.css" />
        <Title text="Latch console" />
        <Router>
            <header class="border-b border-slate-200 bg-white">
                <nav
                    class="mx-auto flex max-w-5xl items-center gap-6 px-6 py-3"
                    aria-label="Console"
                >
                    <A href="/console" attr:class="text-lg font-semibold text-indigo-700">
                        "Latch"
                    </A>
                    <A href="/console" attr:class="text-sm text-slate-600 hover:text-slate-900">
                        "Applications"
                    </A>
                    <A
                        href="/console/settings"
                        attr:class="text-sm text-slate-600 hover:text-slate-900"
                    >
                        "Settings"
                    </A>
                    {signed_in_admin().map(|admin| view! {
                        <span class="ml-auto text-sm text-slate-500">{format!("Signed in as {}", admin.username)}</span>
                        <form method="post" action="/console/sign-out">
                            <input type="hidden" name="csrf_token" value=admin.csrf_token />
                            <button type="submit" class="text-sm text-slate-600 hover:text-slate-900">
                                "Sign out"
                            </button>
                        </form>
                    })}
                </nav>
            </header>
            <main class="mx-auto max-w-5xl px-6 py-8">
                <FormError />
                <Routes fallback=NotFoundPage>
                    <Route path=path!("/") view=|| view! { <Redirect path="/console" /> } />
                    <Route path=path!("/console") view=ApplicationsPage ssr=SsrMode::Async />
                    <Route
                        path=path!("/console/applications/:id")
                        view=GuidePage
                        ssr=SsrMode::Async
                    />
                    <Route path=path!("/console/settings") view=SettingsPage ssr=SsrMode::Async />
                </Routes>
            </main>
            <HydrationMarker />
        </Router>
    }
}

/// Shows the message of a form that was posted without JavaScript and
/// rejected: the server sends the browser back with it in `?error=`.
#[component]
fn FormError() -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    move || {
        query.read().get("error").map(|message| {
            view! {
                <p class="mb-6 rounded-md bg-red-50 p-3 text-sm text-red-700" role="alert">
                    {message}
                </p>
            }
        })
    }
}

/// Marks the body with `data-hydrated` once the WASM has taken over.
/// Islands hydrate in document order and this one comes last, so browser
/// tests know that every widget's event handlers are attached.
#[island]
fn HydrationMarker() -> impl IntoView {
    Effect::new(|_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "");
        }
    });
}
