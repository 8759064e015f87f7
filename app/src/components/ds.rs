//! Design-system class sets, so every page draws buttons, fields and
//! cards the same way.

/// A white panel with a border.
pub const CARD: &str = "rounded-lg border border-slate-200 bg-white p-6 shadow-sm";
/// The main action of a form.
pub const BUTTON_PRIMARY: &str = "inline-flex items-center rounded-md bg-indigo-600 px-4 py-2 text-sm font-medium text-white hover:bg-indigo-700 focus:ring-2 focus:ring-indigo-500 disabled:cursor-not-allowed disabled:opacity-50";
/// A secondary action.
pub const BUTTON_SECONDARY: &str = "inline-flex items-center rounded-md border border-slate-300 bg-white px-3 py-2 text-sm font-medium text-slate-700 hover:bg-slate-50 focus:ring-2 focus:ring-indigo-500";
/// A destructive action.
pub const BUTTON_DANGER: &str = "inline-flex items-center rounded-md bg-red-600 px-3 py-2 text-sm font-medium text-white hover:bg-red-700 focus:ring-2 focus:ring-red-500";
/// A text input.
pub const INPUT: &str = "block w-full rounded-md border border-slate-300 px-3 py-2 font-mono text-sm focus:border-indigo-500 focus:ring-2 focus:ring-indigo-500";
/// A field label.
pub const LABEL: &str = "block text-sm font-medium text-slate-700";
/// An inline error under a field.
pub const FIELD_ERROR: &str = "mt-1 text-sm text-red-700";
/// A paragraph of guide text.
pub const PROSE: &str = "text-sm leading-6 text-slate-700";
