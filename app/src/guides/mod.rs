//! Setup guides as data: ordered steps of text and widgets that one
//! component, [`crate::pages::guide::GuideView`], renders for any guide.

mod chatgpt_plugin;

pub use chatgpt_plugin::CHATGPT_PLUGIN;

/// A guide for connecting one kind of client.
#[derive(Debug)]
pub struct Guide {
    /// Heading of the guide.
    pub title: &'static str,
    /// One sentence under the heading.
    pub summary: &'static str,
    /// Steps in order.
    pub steps: &'static [Step],
}

/// One numbered step of a guide.
#[derive(Debug)]
pub struct Step {
    /// Heading of the step.
    pub title: &'static str,
    /// Blocks shown in order.
    pub blocks: &'static [Block],
}

/// A piece of a step.
#[derive(Debug)]
pub enum Block {
    /// A paragraph of text.
    Text(&'static str),
    /// A bulleted list.
    List(&'static [&'static str]),
    /// The redirect URI editor, pre-filled with `placeholder` while nothing
    /// is saved.
    RedirectUris {
        /// Callback URL with a placeholder for the plugin ID.
        placeholder: &'static str,
    },
    /// The "Always issue refresh token" switch.
    RefreshTokenSwitch,
    /// App ID and App Secret.
    ClientCredentials,
    /// The list of client secrets with the forms that add and delete them.
    ClientSecrets,
    /// The generated `ai-plugin.json` `auth` section.
    PluginManifest,
    /// The custom-domain notice, shown only when a domain is set.
    CustomDomainNotice,
    /// Issuer, JWKS URL and the audience form.
    TokenVerification,
    /// The command that runs the example plugin API against this server.
    ExampleApi,
}
