//! Server-rendered HTML of the sign-in experience. The pages work without
//! JavaScript. Leptos escapes every text node and attribute value, so user
//! input such as a user name or an application name cannot inject markup.

use leptos::prelude::*;

pub(crate) const INPUT: &str = "mt-1 block w-full rounded-md border border-slate-300 px-3 py-2 text-slate-900";
pub(crate) const LABEL: &str = "block text-sm font-medium text-slate-700";
pub(crate) const PRIMARY: &str =
    "w-full rounded-md bg-indigo-600 px-4 py-2 font-semibold text-white hover:bg-indigo-500";
pub(crate) const SECONDARY: &str =
    "w-full rounded-md border border-slate-300 bg-white px-4 py-2 font-semibold text-slate-700";
pub(crate) const LINK: &str = "font-medium text-indigo-600 hover:text-indigo-500";

/// Renders a full document around `content` that sends no referrer.
pub(crate) fn document(title: String, content: impl IntoView + 'static) -> String {
    document_with_referrer(title, "no-referrer", content)
}

/// Renders a full document around `content` with the given referrer
/// policy.
pub(crate) fn document_with_referrer(
    title: String,
    referrer: &'static str,
    content: impl IntoView + 'static,
) -> String {
    let page = view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="referrer" content=referrer />
                <title>{title}</title>
                <link rel="stylesheet" href="/pkg/latch.css" />
            </head>
            <body class="min-h-screen bg-slate-50 text-slate-900">
                <main class="mx-auto mt-16 max-w-md rounded-lg bg-white p-8 shadow-sm">{content}</main>
            </body>
        </html>
    };
    page.to_html()
}

pub(crate) fn error_notice(error: Option<String>) -> impl IntoView {
    error.map(|message| {
        view! {
            <p class="mb-4 rounded-md bg-red-50 p-3 text-sm text-red-700" role="alert">
                {message}
            </p>
        }
    })
}

fn hidden_fields(interaction: String, csrf: String) -> impl IntoView {
    view! {
        <input type="hidden" name="interaction" value=interaction />
        <input type="hidden" name="csrf_token" value=csrf />
    }
}

/// Values of the sign-in form.
pub struct SignInForm {
    /// Name of the application the user signs in to.
    pub app_name: String,
    /// Interaction id.
    pub interaction: String,
    /// CSRF token of the interaction.
    pub csrf: String,
    /// User name or email typed before, shown again after an error.
    pub login: String,
    /// Error shown above the form.
    pub error: Option<String>,
}

/// Renders the sign-in page.
pub fn sign_in(form: SignInForm) -> String {
    let register_href = format!("/register?interaction={}", form.interaction);
    let heading = format!("Sign in to continue to {}", form.app_name);
    let content = view! {
        <h1 class="mb-6 text-2xl font-bold">{heading}</h1>
        {error_notice(form.error)}
        <form method="post" action="/sign-in" class="space-y-4">
            {hidden_fields(form.interaction, form.csrf)}
            <label class=LABEL>
                "User name or email"
                <input class=INPUT type="text" name="login" value=form.login autocomplete="username" required />
            </label>
            <label class=LABEL>
                "Password"
                <input class=INPUT type="password" name="password" autocomplete="current-password" required />
            </label>
            <button class=PRIMARY type="submit">"Sign in"</button>
        </form>
        <p class="mt-6 text-sm text-slate-600">
            "No account yet? " <a class=LINK href=register_href>"Create one"</a>
        </p>
    };
    document("Sign in".into(), content)
}

/// Values of the registration form.
pub struct RegisterForm {
    /// Name of the application the user signs in to.
    pub app_name: String,
    /// Interaction id.
    pub interaction: String,
    /// CSRF token of the interaction.
    pub csrf: String,
    /// User name typed before.
    pub username: String,
    /// Email typed before.
    pub email: String,
    /// Error shown above the form.
    pub error: Option<String>,
}

/// Renders the registration page.
pub fn register(form: RegisterForm) -> String {
    let sign_in_href = format!("/sign-in?interaction={}", form.interaction);
    let heading = format!("Create an account for {}", form.app_name);
    let content = view! {
        <h1 class="mb-6 text-2xl font-bold">{heading}</h1>
        {error_notice(form.error)}
        <form method="post" action="/register" class="space-y-4">
            {hidden_fields(form.interaction, form.csrf)}
            <label class=LABEL>
                "User name"
                <input class=INPUT type="text" name="username" value=form.username autocomplete="username" required />
            </label>
            <label class=LABEL>
                "Email (optional)"
                <input class=INPUT type="email" name="email" value=form.email autocomplete="email" />
            </label>
            <label class=LABEL>
                "Password (at least 8 characters)"
                <input class=INPUT type="password" name="password" autocomplete="new-password" minlength="8" required />
            </label>
            <label class=LABEL>
                "Confirm password"
                <input class=INPUT type="password" name="password_confirmation" autocomplete="new-password" minlength="8" required />
            </label>
            <button class=PRIMARY type="submit">"Create account"</button>
        </form>
        <p class="mt-6 text-sm text-slate-600">
            "Already registered? " <a class=LINK href=sign_in_href>"Sign in"</a>
        </p>
    };
    document("Create an account".into(), content)
}

/// Returns the sentence that the consent page shows for `scope`.
fn describe_scope(scope: &str) -> String {
    match scope {
        "openid" => "Confirm who you are".into(),
        "profile" => "See your user name and profile".into(),
        "email" => "See your email address".into(),
        "offline_access" => "Stay connected when you are not using it (refresh token)".into(),
        other => other.to_owned(),
    }
}

/// Values of the consent form.
pub struct ConsentForm {
    /// Name of the application that requests access.
    pub app_name: String,
    /// Interaction id.
    pub interaction: String,
    /// CSRF token of the interaction.
    pub csrf: String,
    /// Requested scopes.
    pub scopes: Vec<String>,
}

/// Renders the consent page.
pub fn consent(form: ConsentForm) -> String {
    let heading = format!("{} asks for access", form.app_name);
    let items = form
        .scopes
        .iter()
        .map(|scope| view! { <li>{describe_scope(scope)}</li> })
        .collect_view();
    let content = view! {
        <h1 class="mb-4 text-2xl font-bold">{heading}</h1>
        <p class="mb-2 text-sm text-slate-600">"If you allow it, the application can:"</p>
        <ul class="mb-6 list-disc space-y-1 pl-6 text-sm">{items}</ul>
        <form method="post" action="/consent" class="space-y-3">
            {hidden_fields(form.interaction, form.csrf)}
            <button class=PRIMARY type="submit" name="decision" value="allow">"Allow"</button>
            <button class=SECONDARY type="submit" name="decision" value="deny">"Deny"</button>
        </form>
    };
    document("Allow access".into(), content)
}

/// Renders an error page with a title and one explanatory paragraph.
pub fn error(title: &str, message: &str) -> String {
    let content = view! {
        <h1 class="mb-4 text-2xl font-bold">{title.to_owned()}</h1>
        <p class="text-slate-700">{message.to_owned()}</p>
    };
    document(title.to_owned(), content)
}

/// Renders the page shown after signing out when no registered
/// post-logout redirect URI was given.
pub fn signed_out() -> String {
    let content = view! {
        <h1 class="mb-4 text-2xl font-bold">"You are signed out"</h1>
        <p class="text-slate-700">"You can close this window."</p>
    };
    document("Signed out".into(), content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_input_is_escaped() {
        let html = sign_in(SignInForm {
            app_name: "<script>alert(1)</script>".into(),
            interaction: "i\"><b>".into(),
            csrf: "t".into(),
            login: "\"><img src=x>".into(),
            error: Some("<em>bad</em>".into()),
        });
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<img"));
        assert!(!html.contains("<em>"));
        assert!(!html.contains("\"><b>"));
        assert!(html.contains("&lt;script&gt;"));
    }

    #[test]
    fn sign_in_page_links_stylesheet() {
        let html = sign_in(SignInForm {
            app_name: "Demo".into(),
            interaction: "abc".into(),
            csrf: "t".into(),
            login: String::new(),
            error: None,
        });
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("/pkg/latch.css"));
        assert!(html.contains("Demo"));
    }
}
