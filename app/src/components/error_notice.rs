//! The one view that renders a console error.

use crate::error::AppError;
use leptos::prelude::*;

/// Shows an error in an alert box.
#[component]
pub fn ErrorNotice(error: AppError) -> impl IntoView {
    view! {
        <div role="alert" class="rounded-md border border-red-200 bg-red-50 p-4 text-sm text-red-800">
            {error.to_string()}
        </div>
    }
}
