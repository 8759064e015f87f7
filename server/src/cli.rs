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
    /// Manage console admins.
    #[command(subcommand)]
    Admin(AdminCommand),
}

/// `latch admin ...`
#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Create a console admin. The password is read from a prompt, or from
    /// the first line of standard input when that is not a terminal. It is
    /// never taken from the command line, because other users of the
    /// machine could read it there.
    Create {
        /// User name of the new admin.
        #[arg(long)]
        username: String,
    },
}

/// Reads the new admin's password: twice from a hidden prompt on a
/// terminal, else once from the first line of standard input.
fn read_new_password() -> anyhow::Result<String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password for the new admin: ")?;
        let second = rpassword::prompt_password("Type it again: ")?;
        if first != second {
            anyhow::bail!("the two passwords differ; run the command again");
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

/// Runs `latch admin ...`.
pub async fn run_admin_command(config: &Config, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::Create { username } => {
            let password = read_new_password()?;
            let state = crate::prepare(config).await?;
            let admin = app::ssr::admins::create_admin(&state.db, &username, &password, app::ssr::now())
                .await
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            println!("Created admin {}. Sign in at {}/console/sign-in", admin.username, state.public_base());
            Ok(())
        }
    }
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

#[cfg(test)]
mod flag_tests {
    use super::*;
    use crate::config::HashPriority;

    #[test]
    fn hash_priority_defaults_to_idle() {
        let cli = Cli::try_parse_from(["latch"]).unwrap();
        assert_eq!(cli.config.hash_priority, HashPriority::Idle);
    }

    #[test]
    fn hash_priority_accepts_normal() {
        let cli = Cli::try_parse_from(["latch", "--hash-priority", "normal"]).unwrap();
        assert_eq!(cli.config.hash_priority, HashPriority::Normal);
        assert!(Cli::try_parse_from(["latch", "--hash-priority", "high"]).is_err());
    }
}
