//! Gathers concurrent requests for the same kind of database work so that
//! one statement or one transaction serves all of them.
//!
//! A [`Batcher`] owns one task. The task waits for a job, takes every other
//! job already queued (up to a limit), runs them together and hands each
//! caller its own result. While one batch runs, new jobs queue up, so the
//! batch size follows the load by itself: one job when the server is idle,
//! dozens when many requests arrive at once. No job waits for a timer.
//!
//! When the database work of a batch runs on this process's own CPU time,
//! as SQLite does, the task first lets every other ready task take its
//! turn (see [`BatchStart`]).
//!
//! The point is fewer round trips to the database. With sqlx's SQLite
//! driver every statement is a message to a worker thread and back, which
//! costs two context switches. With PostgreSQL it is a network round trip.
//!
//! A caller whose batch could not run gets `None`: the task stopped, or the
//! batch returned no result for it. The caller then does the work on its
//! own, so a failed batch costs time but does not fail the request.

use std::future::Future;
use tokio::sync::{mpsc, oneshot};

/// Maximum number of queued jobs. Further callers wait for room.
const QUEUE_CAPACITY: usize = 4096;

type Queued<J, R> = (J, oneshot::Sender<R>);

/// When a batch starts once its first job has arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchStart {
    /// At once. Suits a database server of its own, such as PostgreSQL:
    /// it works on the batch while this process handles other requests.
    Now,
    /// After the other tasks that are ready to run have had their turn,
    /// so that requests already being parsed or signed join this batch.
    /// Tokio runs a yielded task again once its worker has no other task
    /// ready, or at its next periodic check of timers and sockets (every
    /// 61 polls by default), whichever comes first. Suits SQLite: its
    /// statements run on a thread of this process, and with one CPU a
    /// batch started at once would pause those requests and leave their
    /// jobs for the next batch.
    AfterReadyTasks,
}

impl BatchStart {
    /// Returns the start that suits the database behind `db`.
    pub fn for_database(db: &sea_orm::DatabaseConnection) -> Self {
        match db.get_database_backend() {
            sea_orm::DatabaseBackend::Sqlite => Self::AfterReadyTasks,
            _ => Self::Now,
        }
    }
}

/// Runs jobs of type `J` in batches and returns an `R` for each.
pub struct Batcher<J, R> {
    sender: mpsc::Sender<Queued<J, R>>,
}

impl<J, R> std::fmt::Debug for Batcher<J, R> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Batcher")
            .field("queued", &(QUEUE_CAPACITY - self.sender.capacity()))
            .finish()
    }
}

impl<J, R> Batcher<J, R>
where
    J: Send + 'static,
    R: Send + 'static,
{
    /// Spawns the task that runs batches of at most `max_batch` jobs with
    /// `run`, which must return one result per job, in order. The task ends
    /// when the last [`Batcher`] handle is dropped. Must be called inside a
    /// tokio runtime.
    pub fn spawn<F, Fut>(max_batch: usize, start: BatchStart, mut run: F) -> Self
    where
        F: FnMut(Vec<J>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<R>> + Send,
    {
        let (sender, mut receiver) = mpsc::channel::<Queued<J, R>>(QUEUE_CAPACITY);
        let max_batch = max_batch.max(1);
        tokio::spawn(async move {
            let mut queued = Vec::with_capacity(max_batch);
            while receiver.recv_many(&mut queued, max_batch).await > 0 {
                if start == BatchStart::AfterReadyTasks && queued.len() < max_batch {
                    tokio::task::yield_now().await;
                    while queued.len() < max_batch {
                        match receiver.try_recv() {
                            Ok(job) => queued.push(job),
                            Err(_) => break,
                        }
                    }
                }
                // A caller that went away while its job waited in the queue,
                // for example because its client disconnected, expects
                // nothing to happen on its behalf, so its job is not run.
                let (jobs, replies): (Vec<J>, Vec<oneshot::Sender<R>>) = queued
                    .drain(..)
                    .filter(|(_, reply)| !reply.is_closed())
                    .unzip();
                if jobs.is_empty() {
                    continue;
                }
                let results = run(jobs).await;
                // Callers beyond the end of a short result list get no
                // result, so they fall back to working alone.
                for (reply, result) in replies.into_iter().zip(results) {
                    // The caller may have gone away, for example when its
                    // client disconnected; its result is then dropped.
                    let _ = reply.send(result);
                }
            }
        });
        Self { sender }
    }

    /// Queues `job` and waits for its result. Returns `None` when the batch
    /// task has stopped or gave no result for this job. Dropping the future
    /// before the job's batch starts withdraws the job. Once its batch has
    /// started, the job runs to the end and its result is dropped.
    pub async fn submit(&self, job: J) -> Option<R> {
        let (reply, answer) = oneshot::channel();
        self.sender.send((job, reply)).await.ok()?;
        answer.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Submits jobs `0..count` from a task each and checks that every
    /// caller gets its own job back.
    async fn submit_from_tasks(batcher: &Arc<Batcher<u32, u32>>, count: u32) {
        let calls: Vec<_> = (0..count)
            .map(|job| {
                let batcher = batcher.clone();
                tokio::spawn(async move { batcher.submit(job).await })
            })
            .collect();
        for (job, call) in (0..count).zip(calls) {
            assert_eq!(call.await.unwrap(), Some(job));
        }
    }

    #[tokio::test]
    async fn each_caller_gets_its_own_result() {
        let batcher = Batcher::spawn(8, BatchStart::Now, |jobs: Vec<u32>| async move {
            jobs.into_iter().map(|job| job * 10).collect::<Vec<_>>()
        });
        assert_eq!(batcher.submit(1).await, Some(10));
        assert_eq!(batcher.submit(7).await, Some(70));
    }

    #[tokio::test]
    async fn concurrent_jobs_share_batches() {
        let batches = Arc::new(AtomicUsize::new(0));
        let counter = batches.clone();
        let batcher = Arc::new(Batcher::spawn(64, BatchStart::Now, move |jobs: Vec<u32>| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                // Give the other callers time to queue behind this batch.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                jobs
            }
        }));
        submit_from_tasks(&batcher, 50).await;
        let ran = batches.load(Ordering::SeqCst);
        assert!(ran < 50, "50 concurrent jobs ran in {ran} batches");
    }

    /// With one worker thread, a woken task runs right after the task that
    /// woke it. The first job would then start a batch of its own while
    /// the jobs of the other ready callers were still to be submitted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn callers_ready_together_share_one_batch() {
        let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let batcher = Arc::new(Batcher::spawn(64, BatchStart::AfterReadyTasks, {
            let sizes = sizes.clone();
            move |jobs: Vec<u32>| {
                sizes.lock().unwrap().push(jobs.len());
                async move { jobs }
            }
        }));
        // Spawned from a worker, the callers queue on that worker together.
        let callers = tokio::spawn({
            let batcher = batcher.clone();
            async move { submit_from_tasks(&batcher, 20).await }
        });
        callers.await.unwrap();
        assert_eq!(*sizes.lock().unwrap(), [20]);
    }

    #[tokio::test]
    async fn abandoned_jobs_do_not_run() {
        let ran = Arc::new(std::sync::Mutex::new(Vec::new()));
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let batcher = Arc::new(Batcher::spawn(8, BatchStart::Now, {
            let (ran, gate) = (ran.clone(), gate.clone());
            move |jobs: Vec<u32>| {
                let (ran, gate) = (ran.clone(), gate.clone());
                async move {
                    gate.acquire().await.unwrap().forget();
                    ran.lock().unwrap().extend(jobs.iter().copied());
                    jobs
                }
            }
        }));
        let first = tokio::spawn({
            let batcher = batcher.clone();
            async move { batcher.submit(1).await }
        });
        // The batch of job 1 starts and waits at the gate.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        // Job 2 queues behind it, and its caller stops waiting.
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(50), batcher.submit(2)).await;
        assert!(waited.is_err());
        gate.add_permits(3);
        assert_eq!(first.await.unwrap(), Some(1));
        assert_eq!(batcher.submit(3).await, Some(3));
        assert_eq!(*ran.lock().unwrap(), [1, 3]);
    }

    #[tokio::test]
    async fn missing_results_answer_none() {
        let batcher = Batcher::spawn(8, BatchStart::Now, |_jobs: Vec<u32>| async move { Vec::<u32>::new() });
        assert_eq!(batcher.submit(1).await, None);
    }

    #[tokio::test]
    async fn panicking_batch_returns_none() {
        let batcher = Batcher::spawn(8, BatchStart::Now, |jobs: Vec<u32>| async move {
            assert!(jobs.is_empty(), "deliberate failure of the batch");
            jobs
        });
        assert_eq!(batcher.submit(1).await, None);
        assert_eq!(batcher.submit(2).await, None);
    }
}
