//! One module per console route.

pub mod applications;
pub mod guide;
pub mod not_found;
pub mod settings;

pub use applications::ApplicationsPage;
pub use guide::GuidePage;
pub use not_found::NotFoundPage;
pub use settings::SettingsPage;
