//! Subcommands of `latch`, built on the same services as the console.

use crate::config::Config;
use app::model::{ApplicationDetails, ApplicationKind};
use app::ssr::applications::{self, NewApplication};
use clap::{Parser, Subcommand};

/// Self-hosted OAuth 2.0 and OpenID Connect provider for ChatGPT plugins.
#[derive(Parser, Debug)]
#[command(name = "latch", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands of `latch`. Without one, it serves.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Manage applications.
    #[command(subcommand)]
    App(AppCommand),
}

/// `latch app ...`
#[derive(Subcommand, Debug)]
pub enum AppCommand {
    /// Create a ChatGPT plugin application and print its App ID and App Secret.
    Create {
        /// Name shown in the console and on the sign-in page.
        #[arg(long)]
        name: String,
        /// Redirect URI; repeat the flag for several.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Return a refresh token from every code exchange.
        #[arg(long)]
        always_issue_refresh_token: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List applications.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show one application with its secret.
    Show {
        /// App ID.
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs an `app` subcommand against the configured database.
pub async fn run_app_command(config: &Config, command: AppCommand) -> anyhow::Result<()> {
    let state = crate::prepare(config).await?;
    let db = &state.db;
    match command {
        AppCommand::Create {
            name,
            redirect_uris,
            always_issue_refresh_token,
            json,
        } => {
            let input = NewApplication {
                name,
                kind: ApplicationKind::ChatgptPlugin,
                redirect_uris,
                always_issue_refresh_token,
            };
            let created = applications::create_application(db, &state.master_key, input, app::ssr::now())
                .await
                .map_err(describe)?;
            print_application(&created, json)?;
        }
        AppCommand::List { json } => {
            let list = applications::list_applications(db).await.map_err(describe)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for app in list {
                    println!("{}\t{}\t{}", app.id, app.kind.label(), app.name);
                }
            }
        }
        AppCommand::Show { id, json } => {
            let app = applications::get_application(db, &state.master_key, &id).await.map_err(describe)?;
            print_application(&app, json)?;
        }
    }
    Ok(())
}

fn describe(error: app::error::AppError) -> anyhow::Error {
    match error {
        app::error::AppError::InvalidRedirectUris { summary, rows } => {
            let details: Vec<String> = rows
                .iter()
                .map(|row| format!("redirect URI {}: {}", row.index + 1, row.message))
                .collect();
            anyhow::anyhow!("{summary}\n{}", details.join("\n"))
        }
        other => anyhow::anyhow!("{other}"),
    }
}

fn print_application(app: &ApplicationDetails, json: bool) -> anyhow::Result<()> {
    let secret = app.secrets.first().map(|secret| secret.value.as_str()).unwrap_or("");
    if json {
        let value = serde_json::json!({
            "app_id": app.id,
            "app_secret": secret,
            "name": app.name,
            "redirect_uris": app.redirect_uris,
            "always_issue_refresh_token": app.always_issue_refresh_token,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("App ID:      {}", app.id);
        println!("App Secret:  {secret}");
        println!("Name:        {}", app.name);
        for uri in &app.redirect_uris {
            println!("Redirect:    {uri}");
        }
        println!("Always issue refresh token: {}", app.always_issue_refresh_token);
    }
    Ok(())
}
