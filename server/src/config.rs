//! Command-line flags and their `LATCH_*` environment variables.

use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use url::Url;

/// Settings shared by every `latch` command.
#[derive(Args, Clone, Debug)]
pub struct Config {
    /// Address and port the HTTP server listens on.
    #[arg(long, env = "LATCH_LISTEN", default_value = "127.0.0.1:3000", global = true)]
    pub listen: SocketAddr,

    /// URL at which users and ChatGPT reach this server; the issuer is this
    /// URL followed by /oidc. Defaults to http://<listen>.
    #[arg(long, env = "LATCH_PUBLIC_URL", global = true)]
    pub public_url: Option<Url>,

    /// Directory for the SQLite database and other local data; created
    /// when missing.
    #[arg(long, env = "LATCH_DATA_DIR", default_value = "latch-data", global = true)]
    pub data_dir: PathBuf,

    /// Database URL, such as postgres://user@host/latch. Defaults to the
    /// SQLite file latch.db in the data directory.
    #[arg(long, env = "LATCH_DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Directory with the console's compiled assets (the pkg folder).
    /// Defaults to the site folder that cargo-leptos writes beside the
    /// binary's target directory.
    #[arg(long, env = "LATCH_SITE_ROOT", global = true)]
    pub site_root: Option<PathBuf>,

    /// Master key that encrypts client secrets, signing keys and
    /// verification tokens in the database: 32 random bytes in base64.
    /// Defaults to the file master.key in the data directory, created at
    /// first start. Instances that share a database need the same key.
    #[arg(long, env = "LATCH_MASTER_KEY", global = true, hide_env_values = true)]
    pub master_key: Option<String>,

    /// Wait, in seconds, after the first failed sign-in beyond the free
    /// allowance; each further failure doubles it.
    #[arg(long, env = "LATCH_SIGN_IN_DELAY_SECS", default_value_t = 60, global = true)]
    pub sign_in_delay_secs: i64,

    /// Maximum wait, in seconds, that failed sign-ins can cause.
    #[arg(long, env = "LATCH_SIGN_IN_MAX_DELAY_SECS", default_value_t = 900, global = true)]
    pub sign_in_max_delay_secs: i64,

    /// Scheduling priority of the password hashing threads. `idle` runs
    /// hashes only when no other thread of the machine wants the CPU, which
    /// keeps token requests fast during a burst of sign-ins, but sign-ins
    /// wait for seconds while other programs keep every core busy. `normal`
    /// shares the CPU equally.
    #[arg(long, env = "LATCH_HASH_PRIORITY", value_enum, default_value_t = HashPriority::Idle, global = true)]
    pub hash_priority: HashPriority,
}

/// Values of `--hash-priority`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HashPriority {
    /// The `SCHED_IDLE` policy on Linux.
    Idle,
    /// The default policy of the process.
    Normal,
}

impl Config {
    /// Returns the defaults of every flag, listening on `listen` and
    /// keeping local data in `data_dir`. Tests and embedders start from
    /// this and change what they need.
    pub fn local(listen: SocketAddr, data_dir: PathBuf) -> Self {
        Self {
            listen,
            public_url: None,
            data_dir,
            database_url: None,
            site_root: None,
            master_key: None,
            sign_in_delay_secs: 60,
            sign_in_max_delay_secs: 900,
            hash_priority: HashPriority::Idle,
        }
    }

    /// Returns the sign-in throttling policy that the flags describe.
    pub fn throttle_policy(&self) -> app::ssr::throttle::ThrottlePolicy {
        app::ssr::throttle::ThrottlePolicy {
            base_delay_secs: self.sign_in_delay_secs.max(0),
            max_delay_secs: self.sign_in_max_delay_secs.max(self.sign_in_delay_secs).max(0),
            ..Default::default()
        }
    }

    /// Returns the public URL, defaulting to `http://<listen>`.
    pub fn public_url(&self) -> Url {
        match &self.public_url {
            Some(url) => url.clone(),
            None => Url::parse(&format!("http://{}", self.listen)).unwrap_or_else(|_| {
                Url::parse("http://127.0.0.1:3000").unwrap_or_else(|_| unreachable!("literal URL parses"))
            }),
        }
    }

    /// Returns the database URL, creating the data directory for the
    /// SQLite default.
    pub fn database_url(&self) -> anyhow::Result<String> {
        if let Some(url) = &self.database_url {
            return Ok(url.clone());
        }
        std::fs::create_dir_all(&self.data_dir).map_err(|error| {
            anyhow::anyhow!("cannot create the data directory {}: {error}", self.data_dir.display())
        })?;
        let dir = self.data_dir.canonicalize()?;
        Ok(format!("sqlite://{}?mode=rwc", dir.join("latch.db").display()))
    }

    /// Loads the master key from the flag or environment, else from the
    /// key file in the data directory, creating it at first start.
    pub fn load_master_key(&self) -> anyhow::Result<app::ssr::crypto::MasterKey> {
        use app::ssr::crypto::MasterKey;
        if let Some(text) = &self.master_key {
            return MasterKey::from_base64(text)
                .map_err(|error| anyhow::anyhow!("LATCH_MASTER_KEY is not usable: {error}"));
        }
        let (key, created) = MasterKey::load_or_create_file(&self.data_dir)?;
        if created {
            tracing::info!(
                path = %self.data_dir.join(app::ssr::crypto::MASTER_KEY_FILE).display(),
                "created the master key file; back it up with the database, which cannot be read without it"
            );
        }
        Ok(key)
    }

    /// Finds the site root: the flag, then `LEPTOS_SITE_ROOT`, then a
    /// `site` folder beside the binary or one level up (where cargo-leptos
    /// writes it), then `target/site` under the working directory.
    pub fn resolve_site_root(&self) -> PathBuf {
        if let Some(root) = &self.site_root {
            return root.clone();
        }
        if let Ok(root) = std::env::var("LEPTOS_SITE_ROOT") {
            return PathBuf::from(root);
        }
        if let Ok(exe) = std::env::current_exe() {
            for dir in exe.ancestors().skip(1).take(2) {
                let candidate = dir.join("site");
                if candidate.join("pkg").is_dir() {
                    return candidate;
                }
            }
        }
        PathBuf::from("target/site")
    }
}
