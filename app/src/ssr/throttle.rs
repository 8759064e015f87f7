//! Slowing down password guessing on the console and end-user sign-in
//! pages.
//!
//! Failed sign-ins are counted per account and per client address in the
//! `sign_in_throttles` table, so every instance that shares the database
//! sees the same counts. After a free allowance, each failure blocks the
//! key for a delay that doubles up to a cap. A block always ends, so an
//! attacker can slow an account down but never lock it for good. While a
//! key is blocked, callers check no password at all and return the same
//! answer whether or not the account exists.
//!
//! A sign-in handler calls [`wait_before`] first and stops when it returns
//! a wait. Otherwise it checks the password and calls [`record_failure`]
//! or [`record_success`]. [`verify_password`] does all three under one
//! hashing permit, which bounds how many attempts can pass the check
//! before earlier ones are recorded.

use super::applications::internal;
use super::entities::sign_in_throttle::{Column, Entity};
use super::ids::sha256_hex;
use super::passwords::HashingPermit;
use crate::error::AppError;
use rand::Rng;
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use std::net::{IpAddr, Ipv6Addr};

/// Policy that slows down failed sign-ins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures of one account that cost nothing, to allow for typing
    /// mistakes.
    pub free_account_failures: u32,
    /// Failures from one client address that cost nothing; higher than the
    /// account allowance because many users may share an address.
    pub free_address_failures: u32,
    /// Wait after the first failure beyond the allowance, in seconds; each
    /// further failure doubles it.
    pub base_delay_secs: i64,
    /// Maximum wait, in seconds.
    pub max_delay_secs: i64,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            free_account_failures: 5,
            free_address_failures: 20,
            base_delay_secs: 60,
            max_delay_secs: 15 * 60,
        }
    }
}

/// Largest number of doublings of the base delay that the schedule
/// considers; 2^40 seconds is far beyond any sensible cap.
const MAX_DOUBLINGS: u32 = 40;

impl ThrottlePolicy {
    /// Returns the block, in seconds, that the `failures`-th failure in a
    /// row causes when the first `free` failures cost nothing: zero within
    /// the allowance, then the base delay doubling per failure up to the
    /// cap.
    pub fn delay_after(&self, failures: i64, free: u32) -> i64 {
        let beyond = failures - i64::from(free);
        if beyond <= 0 || self.base_delay_secs <= 0 {
            return 0;
        }
        let cap = self.max_delay_secs.max(0);
        let doublings = u32::try_from(beyond - 1).unwrap_or(u32::MAX).min(MAX_DOUBLINGS);
        self.base_delay_secs
            .saturating_mul(1i64 << doublings)
            .min(cap)
    }

    /// Returns the quiet time, in seconds, after which a key's count starts
    /// again from zero: four times the cap.
    pub fn quiet_period_secs(&self) -> i64 {
        self.max_delay_secs.max(0).saturating_mul(4)
    }

    /// Returns the delays below the cap, in order: the block after failure
    /// `free + 1`, `free + 2`, and so on. Every later failure blocks for
    /// the cap.
    fn delays_below_cap(&self) -> Vec<i64> {
        (0..=MAX_DOUBLINGS)
            .map(|doublings| self.base_delay_secs.saturating_mul(1i64 << doublings))
            .take_while(|delay| *delay > 0 && *delay < self.max_delay_secs)
            .collect()
    }
}

/// Whose sign-in is counted: console admins and end users have separate
/// account and address counters, so neither slows the other down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Realm {
    /// Console sign-in.
    Admin,
    /// End-user sign-in on the `/sign-in` page.
    User,
}

impl Realm {
    fn key_prefix(self) -> &'static str {
        match self {
            Self::Admin => "admin-account:",
            Self::User => "user-account:",
        }
    }
}

/// One sign-in attempt: the typed login and the client address.
#[derive(Clone, Copy, Debug)]
pub struct Attempt<'a> {
    /// Console or end-user sign-in.
    pub realm: Realm,
    /// User name or email as typed.
    pub login: &'a str,
    /// Address of the client that sent the form.
    pub address: IpAddr,
}

impl Attempt<'_> {
    /// Returns the account key: the realm and the SHA-256 of the trimmed,
    /// lower-case login. The typed name is not stored, and an unknown
    /// login gets a key of the same shape as an existing one.
    pub fn account_key(&self) -> String {
        let normalised = self.login.trim().to_lowercase();
        format!("{}{}", self.realm.key_prefix(), sha256_hex(&normalised))
    }

    /// Returns the address key of the attempt's realm. Each realm counts
    /// addresses apart, so failed end-user sign-ins from a shared address
    /// (such as a reverse proxy on this machine) never block the console.
    pub fn address_key(&self) -> String {
        let realm = match self.realm {
            Realm::Admin => "admin-",
            Realm::User => "user-",
        };
        format!("{realm}{}", address_key(self.address))
    }
}

/// Returns `address:<ip>` for an IPv4 address (including one mapped into
/// IPv6) and `address:<prefix>/64` for other IPv6 addresses, because one
/// host is usually assigned a whole /64 and could otherwise rotate through
/// it.
pub fn address_key(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => format!("address:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("address:{v4}"),
            None => {
                let prefix = u128::from(v6) & (u128::MAX << 64);
                format!("address:{}/64", Ipv6Addr::from(prefix))
            }
        },
    }
}

/// Returns the message for a blocked sign-in, in whole minutes rounded
/// up. It names no account, so it reads the same for every login.
pub fn wait_message(wait_secs: i64) -> String {
    let minutes = (wait_secs.max(1) + 59) / 60;
    let unit = if minutes == 1 { "minute" } else { "minutes" };
    format!("Too many failed sign-ins. Wait {minutes} {unit}, then try again.")
}

/// Returns `Some(seconds left)` while the attempt's account or address is
/// blocked at `now`, else `None`. Reads only.
///
/// The policy is not consulted: the end of each block was written with the
/// failure that caused it.
pub async fn wait_before(
    db: &impl ConnectionTrait,
    _policy: &ThrottlePolicy,
    attempt: &Attempt<'_>,
    now: i64,
) -> Result<Option<i64>, AppError> {
    let rows = Entity::find()
        .filter(Column::Key.is_in([attempt.account_key(), attempt.address_key()]))
        .all(db)
        .await
        .map_err(internal)?;
    let wait = rows
        .iter()
        .map(|row| row.blocked_until - now)
        .filter(|left| *left > 0)
        .max();
    Ok(wait)
}

/// Counts a failed attempt against its account and its address, and
/// blocks either one that is past its allowance. One call in
/// [`PRUNE_ONE_IN`], on average, also prunes quiet rows.
pub async fn record_failure(
    db: &impl ConnectionTrait,
    policy: &ThrottlePolicy,
    attempt: &Attempt<'_>,
    now: i64,
) -> Result<(), AppError> {
    count_failures(db, policy, attempt, now).await?;
    if rand::rngs::OsRng.gen_ratio(1, PRUNE_ONE_IN) {
        prune(db, policy, now).await?;
    }
    Ok(())
}

/// Counts a failed attempt against its account and its address, as
/// [`record_failure`] does, but never prunes.
pub async fn count_failures(
    db: &impl ConnectionTrait,
    policy: &ThrottlePolicy,
    attempt: &Attempt<'_>,
    now: i64,
) -> Result<(), AppError> {
    count_failure(db, policy, &attempt.account_key(), policy.free_account_failures, now).await?;
    count_failure(db, policy, &attempt.address_key(), policy.free_address_failures, now).await
}

/// Clears the account counter after a correct password. The address
/// counter stays, so an attacker cannot reset it with an account of their
/// own.
pub async fn record_success(
    db: &impl ConnectionTrait,
    attempt: &Attempt<'_>,
    _now: i64,
) -> Result<(), AppError> {
    Entity::delete_by_id(attempt.account_key())
        .exec(db)
        .await
        .map_err(internal)?;
    Ok(())
}

/// On average one in this many recorded failures also deletes the rows
/// that have been quiet for longer than the quiet period.
const PRUNE_ONE_IN: u32 = 64;

/// Deletes the counters whose last failure is older than the quiet
/// period. Such a counter would start again from zero anyway, and its
/// block has ended. Returns how many rows were deleted.
pub async fn prune(
    db: &impl ConnectionTrait,
    policy: &ThrottlePolicy,
    now: i64,
) -> Result<u64, AppError> {
    let cutoff = now - policy.quiet_period_secs();
    let deleted = Entity::delete_many()
        .filter(Column::LastFailureAt.lt(cutoff))
        .filter(Column::BlockedUntil.lte(now))
        .exec(db)
        .await
        .map_err(internal)?;
    Ok(deleted.rows_affected)
}

/// Adds one failure to `key` in a single upsert, so concurrent failures on
/// several instances are all counted. A counter whose last failure is
/// older than the quiet period starts again at one. The end of the block
/// is computed in the same statement from the new count.
async fn count_failure(
    db: &impl ConnectionTrait,
    policy: &ThrottlePolicy,
    key: &str,
    free: u32,
    now: i64,
) -> Result<(), AppError> {
    // Imported here because its `min` and `max` shadow those of integers.
    use sea_orm::sea_query::ExprTrait;

    let cutoff = now - policy.quiet_period_secs();
    // In ON CONFLICT DO UPDATE, table-qualified columns are the stored
    // row's values before the update, on both PostgreSQL and SQLite.
    let stored_failures = Expr::col((Entity, Column::Failures));
    let stored_last_failure = Expr::col((Entity, Column::LastFailureAt));
    let new_count: Expr = Expr::case(stored_last_failure.lt(cutoff), 1i32)
        .finally(stored_failures.add(1i32))
        .into();

    // CASE WHEN count <= free THEN 0 WHEN count = free + 1 THEN now + base
    // ... ELSE now + cap END, spelled out because SQLite provides POWER()
    // only when built with its math functions.
    let free_count = i32::try_from(free).unwrap_or(i32::MAX);
    let mut blocked_until = Expr::case(new_count.clone().lte(free_count), 0i64);
    for (step, delay) in policy.delays_below_cap().into_iter().enumerate() {
        let failures = free_count.saturating_add(1).saturating_add(step as i32);
        blocked_until = blocked_until.case(new_count.clone().eq(failures), now.saturating_add(delay));
    }
    let capped = now.saturating_add(policy.delay_after(i64::MAX, 0));
    let blocked_until: Expr = blocked_until.finally(capped).into();

    let first_delay = policy.delay_after(1, free);
    let first_block = if first_delay > 0 { now + first_delay } else { 0 };
    let statement = Query::insert()
        .into_table(Entity)
        .columns([Column::Key, Column::Failures, Column::LastFailureAt, Column::BlockedUntil])
        .values_panic([key.into(), 1i32.into(), now.into(), first_block.into()])
        .on_conflict(
            OnConflict::column(Column::Key)
                .value(Column::Failures, new_count)
                .value(Column::LastFailureAt, now)
                .value(Column::BlockedUntil, blocked_until)
                .to_owned(),
        )
        .to_owned();
    db.execute(&statement).await.map_err(internal)?;
    Ok(())
}

/// The outcome of [`verify_password`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The account or address is blocked; no password was checked.
    Blocked {
        /// Seconds until the block ends.
        retry_after_secs: i64,
    },
    /// The password is wrong or the account does not exist; the failure
    /// was counted.
    Rejected,
    /// The password matches; the account counter was cleared.
    Accepted,
}

/// Checks whether the attempt may go ahead and, when it may, checks
/// `password` against `stored_hash` (`None` for an unknown account, which
/// costs a full hash too) and records the outcome.
///
/// All of it runs under one hashing permit. Attempts beyond the permits
/// wait before their throttle check, so at most one attempt per permit and
/// instance can pass the check before the failures of the others are
/// recorded.
pub async fn verify_password(
    db: &impl ConnectionTrait,
    policy: &ThrottlePolicy,
    attempt: &Attempt<'_>,
    password: String,
    stored_hash: Option<String>,
) -> Result<Verdict, AppError> {
    let permit = HashingPermit::acquire().await.map_err(hashing_failed)?;
    verify_password_under(db, policy, attempt, &permit, password, stored_hash).await
}

/// Does what [`verify_password`] does under a permit that the caller
/// took earlier, for example before the other database reads of the
/// attempt.
pub async fn verify_password_under(
    db: &impl ConnectionTrait,
    policy: &ThrottlePolicy,
    attempt: &Attempt<'_>,
    permit: &HashingPermit,
    password: String,
    stored_hash: Option<String>,
) -> Result<Verdict, AppError> {
    if let Some(wait) = wait_before(db, policy, attempt, super::now()).await? {
        return Ok(Verdict::Blocked {
            retry_after_secs: wait,
        });
    }
    let matches = permit
        .verify_password(password, stored_hash)
        .await
        .map_err(hashing_failed)?;
    let now = super::now();
    if matches {
        record_success(db, attempt, now).await?;
        Ok(Verdict::Accepted)
    } else {
        record_failure(db, policy, attempt, now).await?;
        Ok(Verdict::Rejected)
    }
}

/// Logs a failure of the hashing machinery and returns
/// [`AppError::Internal`].
pub fn hashing_failed(error: super::passwords::PasswordError) -> AppError {
    tracing::error!(%error, "password verification failed to run");
    AppError::Internal
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn policy() -> ThrottlePolicy {
        ThrottlePolicy::default()
    }

    #[test]
    fn allowance_costs_nothing() {
        for failures in 0..=5 {
            assert_eq!(policy().delay_after(failures, 5), 0, "failure {failures}");
        }
    }

    #[test]
    fn delay_doubles_then_caps() {
        let expected = [(6, 60), (7, 120), (8, 240), (9, 480), (10, 900), (11, 900), (30, 900)];
        for (failures, delay) in expected {
            assert_eq!(policy().delay_after(failures, 5), delay, "failure {failures}");
        }
    }

    #[test]
    fn huge_counts_stay_at_cap() {
        assert_eq!(policy().delay_after(i64::MAX, 0), 900);
        assert_eq!(policy().delay_after(1_000_000, 20), 900);
    }

    #[test]
    fn zero_base_delay_never_blocks() {
        let off = ThrottlePolicy {
            base_delay_secs: 0,
            ..policy()
        };
        assert_eq!(off.delay_after(100, 5), 0);
        assert!(off.delays_below_cap().is_empty());
    }

    #[test]
    fn delays_below_cap_match_schedule() {
        let delays = policy().delays_below_cap();
        assert_eq!(delays, vec![60, 120, 240, 480]);
        for (step, delay) in delays.iter().enumerate() {
            assert_eq!(policy().delay_after(6 + step as i64, 5), *delay);
        }
        let short = ThrottlePolicy {
            base_delay_secs: 1,
            max_delay_secs: 2,
            ..policy()
        };
        assert_eq!(short.delays_below_cap(), vec![1]);
        assert_eq!(short.delay_after(7, 5), 2);
    }

    #[test]
    fn quiet_period_is_four_caps() {
        assert_eq!(policy().quiet_period_secs(), 3600);
    }

    #[test]
    fn account_key_ignores_case_and_spaces() {
        let attempt = |login| Attempt {
            realm: Realm::User,
            login,
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        let key = attempt("Ada@Example.com").account_key();
        assert_eq!(key, attempt("  ada@example.com ").account_key());
        assert!(key.starts_with("user-account:"));
        assert!(!key.contains("ada"));
        assert_eq!(key.len(), "user-account:".len() + 64);
        assert_ne!(key, attempt("grace").account_key());
    }

    #[test]
    fn realms_have_separate_account_keys() {
        let user = Attempt {
            realm: Realm::User,
            login: "ada",
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        let admin = Attempt {
            realm: Realm::Admin,
            ..user
        };
        assert_ne!(user.account_key(), admin.account_key());
        assert!(admin.account_key().starts_with("admin-account:"));
        assert_ne!(user.address_key(), admin.address_key());
        assert_eq!(user.address_key(), "user-address:127.0.0.1");
    }

    #[test]
    fn ipv6_addresses_group_by_64() {
        let first: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let second: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(first), "address:2001:db8:1:2::/64");
        assert_eq!(address_key(first), address_key(second));
        assert_ne!(address_key(first), address_key(other));
    }

    #[test]
    fn ipv4_keys_are_exact() {
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "address:192.0.2.7");
        assert_eq!(address_key("192.0.2.7".parse().unwrap()), "address:192.0.2.7");
        assert_ne!(address_key("192.0.2.8".parse().unwrap()), "address:192.0.2.7");
    }

    #[test]
    fn wait_message_rounds_up_to_minutes() {
        assert_eq!(wait_message(1), "Too many failed sign-ins. Wait 1 minute, then try again.");
        assert_eq!(wait_message(60), "Too many failed sign-ins. Wait 1 minute, then try again.");
        assert_eq!(wait_message(61), "Too many failed sign-ins. Wait 2 minutes, then try again.");
        assert_eq!(wait_message(900), "Too many failed sign-ins. Wait 15 minutes, then try again.");
    }
}
