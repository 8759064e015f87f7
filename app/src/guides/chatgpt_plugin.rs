//! The guide for connecting a ChatGPT plugin or GPT Action.

use super::{Block, Guide, Step};

/// Walks a developer through connecting a ChatGPT plugin.
pub static CHATGPT_PLUGIN: Guide = Guide {
    title: "Connect a ChatGPT plugin",
    summary: "ChatGPT signs each user in through Latch, then calls your API with an access token that your API can check on its own.",
    steps: &[
        Step {
            title: "Before you start",
            blocks: &[
                Block::Text(
                    "A ChatGPT plugin (or a GPT Action) lets ChatGPT call your HTTP API while it answers. With OAuth, each ChatGPT user signs in to your service first, and ChatGPT then sends that user's access token with every call.",
                ),
                Block::List(&[
                    "A ChatGPT account that may create plugins or custom GPTs.",
                    "Your API and its OpenAPI description, reachable over HTTPS.",
                    "This Latch server reachable over HTTPS at its public URL or custom domain, because ChatGPT's servers call its token endpoint.",
                ]),
            ],
        },
        Step {
            title: "Set the redirect URI",
            blocks: &[
                Block::Text(
                    "After a user signs in, Latch sends the browser back to ChatGPT's callback, which contains your plugin's ID. Register your plugin or GPT first, then replace the placeholder with the ID ChatGPT gave you, or type the ID below to add the callback on both of ChatGPT's hosts.",
                ),
                Block::RedirectUris {
                    placeholder: "https://chat.openai.com/aip/[your-plugin-id]/oauth/callback",
                },
                Block::RefreshTokenSwitch,
            ],
        },
        Step {
            title: "Configure your plugin",
            blocks: &[
                Block::Text(
                    "When ChatGPT asks for the OAuth client ID and client secret, enter the App ID and App Secret below.",
                ),
                Block::ClientCredentials,
                Block::ClientSecrets,
                Block::Text(
                    "Put the following auth section into your plugin's ai-plugin.json. ChatGPT shows a verification token once you have entered the credentials: paste it into the field so the section carries it.",
                ),
                Block::CustomDomainNotice,
                Block::PluginManifest,
                Block::Text(
                    "The scope is never empty on purpose: ChatGPT sends the scope parameter even when the manifest leaves it blank.",
                ),
            ],
        },
        Step {
            title: "Test the sign-in",
            blocks: &[
                Block::Text(
                    "Install the plugin in ChatGPT. ChatGPT shows a button to sign in with your plugin; it opens Latch's sign-in page, where the user signs in or creates an account and is then sent back to ChatGPT.",
                ),
                Block::Text(
                    "From then on, every request ChatGPT sends to your API has an Authorization: Bearer header holding a signed JWT. Your API must check, for every request:",
                ),
                Block::List(&[
                    "the signature, with a key from the JWKS URL below (choose the key by the token's kid);",
                    "iss, which must equal the issuer below;",
                    "aud, which must equal the audience you set below, or the App ID while no audience is set;",
                    "exp, which must lie in the future, allowing up to 60 seconds of clock difference.",
                ]),
                Block::TokenVerification,
                Block::Text(
                    "To try a token before your own API is ready, run the example plugin API from the Latch source tree. It checks tokens exactly as listed above and answers GET /whoami with the caller's sub:",
                ),
                Block::ExampleApi,
            ],
        },
    ],
};
