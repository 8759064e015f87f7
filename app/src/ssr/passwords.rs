//! Password hashing with Argon2id.
//!
//! Each hash costs about 19 MiB of memory and tens of milliseconds of CPU,
//! so hashing runs on its own threads, never on the async runtime, and a
//! process-wide semaphore sized to the CPU count bounds how many hashes run
//! at once. Requests that find every permit taken wait in line instead of
//! exhausting memory.
//!
//! On Linux the hashing threads run under the `SCHED_IDLE` policy unless
//! [`set_idle_priority`] turns it off. Any other runnable thread of the
//! machine, such as a runtime worker serving a token request, then takes
//! the CPU from a hash at once instead of waiting for the hash's time slice
//! to end. A burst of sign-ins therefore
//! slows the token endpoint only by the cores it occupies, not by
//! scheduling delay. The price: while other work keeps every core busy,
//! hashes get almost no CPU and sign-ins wait. With two busy threads of
//! normal priority on a two-core machine, one hash took 7 s and more
//! instead of about 24 ms. `latch --hash-priority normal` turns the policy
//! off.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{Semaphore, SemaphorePermit};

/// Permits for concurrent hashes: one per CPU the process may use.
static HASHING_PERMITS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(hashing_capacity()));

/// Number of hashes that may run at once: the CPUs the process may use.
fn hashing_capacity() -> usize {
    std::thread::available_parallelism().map_or(1, |count| count.get())
}

/// A hash of a random password that nobody knows. Verifying against it when
/// the user does not exist costs the same time as a real verification, so
/// response times do not reveal which user names exist.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let password = super::ids::new_opaque_token();
    hash_blocking(&password).unwrap_or_default()
});

/// A failure of the hashing machinery, never a wrong password.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The argon2 crate rejected the input or the stored hash.
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// The blocking task was cancelled or panicked.
    #[error("the password hashing task did not finish")]
    TaskFailed,
}

/// Returns the Argon2id hasher with the argon2 0.5 defaults:
/// m = 19 MiB, t = 2, p = 1.
fn argon2() -> Argon2<'static> {
    Argon2::default()
}

fn hash_blocking(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| PasswordError::Hashing(error.to_string()))
}

fn verify_blocking(password: &str, stored: Option<&str>) -> Result<bool, PasswordError> {
    let dummy = DUMMY_HASH.as_str();
    let encoded = stored.unwrap_or(dummy);
    let parsed =
        PasswordHash::new(encoded).map_err(|error| PasswordError::Hashing(error.to_string()))?;
    let matches = argon2()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    Ok(matches && stored.is_some())
}

/// Runs `work` on a hashing thread once a hashing permit is free.
async fn run_limited<T, F>(work: F) -> Result<T, PasswordError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, PasswordError> + Send + 'static,
{
    let _permit = HashingPermit::acquire().await?;
    run_blocking(work).await
}

async fn run_blocking<T, F>(work: F) -> Result<T, PasswordError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, PasswordError> + Send + 'static,
{
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job: HashJob = Box::new(move || {
        // A caller that went away while its job was queued has already
        // released its hashing permit. Running the job anyway would let jobs
        // of abandoned requests pile up ahead of every later hash, so it is
        // skipped. A caller that goes away during the hash has its result
        // dropped.
        if reply.is_closed() {
            return;
        }
        let _ = reply.send(work());
    });
    match HASHING_THREADS.as_ref() {
        Some(threads) => threads
            .send(job)
            .map_err(|_| PasswordError::TaskFailed)?,
        // No hashing thread could be started: use the runtime's pool.
        None => drop(tokio::task::spawn_blocking(job)),
    }
    answer.await.map_err(|_| PasswordError::TaskFailed)?
}

type HashJob = Box<dyn FnOnce() + Send>;

/// Queue of the hashing threads, one thread per hashing permit, started on
/// first use. `None` when no thread could be started.
static HASHING_THREADS: LazyLock<Option<std::sync::mpsc::Sender<HashJob>>> =
    LazyLock::new(start_hashing_threads);

fn start_hashing_threads() -> Option<std::sync::mpsc::Sender<HashJob>> {
    let (sender, receiver) = std::sync::mpsc::channel::<HashJob>();
    let receiver = std::sync::Arc::new(std::sync::Mutex::new(receiver));
    let mut started = 0;
    for index in 0..hashing_capacity() {
        let receiver = receiver.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("latch-hash-{index}"))
            .spawn(move || {
                lower_thread_priority();
                loop {
                    let job = {
                        let Ok(queue) = receiver.lock() else { return };
                        match queue.recv() {
                            Ok(job) => job,
                            Err(_) => return,
                        }
                    };
                    // A panicking job drops its reply, so its caller gets
                    // `TaskFailed`, and the thread goes on serving the queue.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            });
        match spawned {
            Ok(_) => started += 1,
            Err(error) => tracing::warn!(%error, "cannot start a password hashing thread"),
        }
    }
    (started > 0).then_some(sender)
}

/// Whether hashing threads move to the `SCHED_IDLE` policy when they
/// start. On by default.
static IDLE_PRIORITY: AtomicBool = AtomicBool::new(true);

/// Chooses whether hashing threads run under `SCHED_IDLE` (`true`) or the
/// process's normal policy. Takes effect only before the first hash, when
/// the threads start.
pub fn set_idle_priority(idle: bool) {
    IDLE_PRIORITY.store(idle, Ordering::Relaxed);
}

/// Moves the calling thread to the `SCHED_IDLE` policy, unless
/// [`set_idle_priority`] turned that off. A thread that cannot change its
/// policy keeps the normal one.
#[cfg(target_os = "linux")]
fn lower_thread_priority() {
    if !IDLE_PRIORITY.load(Ordering::Relaxed) {
        return;
    }
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid `sched_param` that outlives the call, and
    // pid 0 names the calling thread, whose policy is all this changes.
    let result = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if result != 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "password hashing threads keep the normal scheduling policy"
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_thread_priority() {}

/// A hashing permit that the caller holds across several steps, such as a
/// throttling check, a verification and the recording of its outcome.
pub struct HashingPermit {
    _permit: SemaphorePermit<'static>,
}

impl HashingPermit {
    /// Waits until a hashing permit is free and takes it.
    pub async fn acquire() -> Result<Self, PasswordError> {
        let permit = HASHING_PERMITS
            .acquire()
            .await
            .map_err(|_| PasswordError::TaskFailed)?;
        Ok(Self { _permit: permit })
    }

    /// Checks `password` as [`verify_password`] does, under this permit.
    pub async fn verify_password(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, PasswordError> {
        run_blocking(move || verify_blocking(&password, stored.as_deref())).await
    }
}

/// Hashes `password` with a fresh random salt and returns the PHC string.
pub async fn hash_password(password: String) -> Result<String, PasswordError> {
    run_limited(move || hash_blocking(&password)).await
}

/// Checks `password` against `stored`, a PHC string. When `stored` is
/// `None` (the user does not exist), verifies against a dummy hash so the
/// call takes as long as a real check, and returns `false`.
pub async fn verify_password(
    password: String,
    stored: Option<String>,
) -> Result<bool, PasswordError> {
    run_limited(move || verify_blocking(&password, stored.as_deref())).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify_round_trip() {
        let hash = hash_password("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            verify_password("correct horse".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify_password("wrong horse".into(), Some(hash))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn abandoned_hash_job_is_skipped() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        use std::time::Duration;

        // Occupy every hashing thread until `release` is dropped.
        let threads = hashing_capacity();
        let (release, release_signal) = std::sync::mpsc::channel::<()>();
        let release_signal = Arc::new(Mutex::new(release_signal));
        let (started, mut starts) = tokio::sync::mpsc::unbounded_channel();
        let mut blockers = Vec::new();
        for _ in 0..threads {
            let (release_signal, started) = (release_signal.clone(), started.clone());
            blockers.push(tokio::spawn(run_blocking(move || {
                let _ = started.send(());
                let _ = release_signal.lock().unwrap().recv();
                Ok(())
            })));
        }
        for _ in 0..threads {
            starts.recv().await.unwrap();
        }

        // A job queues behind them, and its caller stops waiting.
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        let waited = tokio::time::timeout(
            Duration::from_millis(50),
            run_blocking(move || {
                flag.store(true, Ordering::SeqCst);
                Ok(())
            }),
        )
        .await;
        assert!(waited.is_err());

        drop(release);
        for blocker in blockers {
            blocker.await.unwrap().unwrap();
        }
        // The queue is in order, so later jobs finish only after the
        // abandoned one has been taken from it.
        for _ in 0..threads {
            run_blocking(|| Ok(())).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!ran.load(Ordering::SeqCst), "the abandoned job ran");
    }

    #[tokio::test]
    async fn hashing_threads_survive_panicking_job() {
        for _ in 0..hashing_capacity() + 1 {
            let failed = run_blocking::<(), _>(|| panic!("deliberate failure of a hash job")).await;
            assert!(matches!(failed, Err(PasswordError::TaskFailed)));
        }
        assert!(run_blocking(|| Ok(7)).await.is_ok_and(|value| value == 7));
    }

    #[tokio::test]
    async fn missing_user_never_verifies() {
        assert!(!verify_password(String::new(), None).await.unwrap());
        assert!(!verify_password("anything".into(), None).await.unwrap());
    }

    #[tokio::test]
    async fn missing_user_costs_a_full_hash() {
        // Argon2's cost is fixed by the algorithm and parameters in the PHC
        // string, so a dummy hash with the same ones costs the same time.
        // Comparing them is exact, unlike timing two calls on a busy machine.
        let real = hash_password("correct horse".into()).await.unwrap();
        let real = PasswordHash::new(&real).unwrap();
        let dummy = PasswordHash::new(DUMMY_HASH.as_str()).unwrap();
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(dummy.params, real.params);
        assert!(!verify_password("wrong".into(), None).await.unwrap());
    }
}
