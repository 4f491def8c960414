//! Many callers, one script call: a per-shard queue that sends everything
//! waiting in it as one batch while the previous batch is on the wire.
//!
//! A page's push and its duplicate check each wait for a script call of
//! their shard. Sent one by one, a busy worker makes one call per page and
//! Redis spends most of its CPU starting scripts, not running them. Here a
//! task per shard takes every request waiting (up to a weight), runs them
//! in one call and answers each caller; while that call is out, new
//! requests gather for the next. Under load the batches grow by
//! themselves. A batcher made with a linger also waits that long after
//! the first request of a batch for more: for callers that keep many
//! requests out at once (the router's look-ahead), so a shard that gets
//! a small part of a worker's pages still gets them in few, larger calls
//! (a call costs Redis a fixed few microseconds however small it is).

use std::future::Future;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

type Reply<A> = oneshot::Sender<Result<A, String>>;

/// See the module documentation.
pub(super) struct Batcher<Q, A> {
    tx: mpsc::UnboundedSender<(Q, Reply<A>)>,
    task: JoinHandle<()>,
}

impl<Q, A> Drop for Batcher<Q, A> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<Q: Send + 'static, A: Send + 'static> Batcher<Q, A> {
    /// `run` gets the requests of one batch (their weights summing to at
    /// most `max_weight`, or a single heavier one) and answers them in
    /// order, or fails them all. A batch waits up to `linger` after its
    /// first request for more (zero: takes only what is waiting).
    pub fn new<F, Fut>(max_weight: usize, linger: Duration, weight: fn(&Q) -> usize, run: F) -> Self
    where
        F: Fn(Vec<Q>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<A>, String>> + Send,
    {
        let (tx, mut rx) = mpsc::unbounded_channel::<(Q, Reply<A>)>();
        let task = tokio::spawn(async move {
            let mut held: Option<(Q, Reply<A>)> = None;
            loop {
                let first = match held.take() {
                    Some(item) => item,
                    None => match rx.recv().await {
                        Some(item) => item,
                        None => return,
                    },
                };
                let mut total = weight(&first.0);
                let (mut requests, mut replies) = (vec![first.0], vec![first.1]);
                let until = Instant::now() + linger;
                while total < max_weight {
                    let next = match rx.try_recv() {
                        Ok(item) => Some(item),
                        Err(_) if linger.is_zero() => None,
                        Err(_) => tokio::time::timeout_at(until, rx.recv())
                            .await
                            .ok()
                            .flatten(),
                    };
                    let Some(item) = next else { break };
                    let w = weight(&item.0);
                    if total + w > max_weight {
                        held = Some(item);
                        break;
                    }
                    total += w;
                    requests.push(item.0);
                    replies.push(item.1);
                }
                let n = requests.len();
                match run(requests).await {
                    Ok(answers) if answers.len() == n => {
                        for (reply, answer) in replies.into_iter().zip(answers) {
                            let _ = reply.send(Ok(answer));
                        }
                    }
                    Ok(answers) => {
                        let e = format!("{} answers for {n} requests", answers.len());
                        for reply in replies {
                            let _ = reply.send(Err(e.clone()));
                        }
                    }
                    Err(e) => {
                        for reply in replies {
                            let _ = reply.send(Err(e.clone()));
                        }
                    }
                }
            }
        });
        Batcher { tx, task }
    }

    /// Queue one request and wait for its answer.
    pub async fn call(&self, request: Q) -> Result<A, String> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((request, reply))
            .map_err(|_| "the batcher stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the batcher dropped the request".to_string())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn waiting_requests_go_together_and_each_gets_its_answer() {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let batcher = Arc::new(Batcher::new(
            10,
            Duration::ZERO,
            |q: &usize| *q,
            move |qs: Vec<usize>| {
                seen.fetch_add(1, Ordering::SeqCst);
                async move {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    Ok(qs.iter().map(|q| q * 100).collect())
                }
            },
        ));
        // One request alone goes at once; the nine sent while it is out
        // go in as few calls as their weights allow.
        let first = tokio::spawn({
            let b = batcher.clone();
            async move { b.call(1).await }
        });
        tokio::task::yield_now().await;
        let rest: Vec<_> = (1..=9)
            .map(|i| {
                let b = batcher.clone();
                tokio::spawn(async move { b.call(i % 3 + 1).await })
            })
            .collect();
        assert_eq!(first.await.unwrap(), Ok(100));
        for (i, r) in rest.into_iter().enumerate() {
            assert_eq!(r.await.unwrap(), Ok(((i + 1) % 3 + 1) * 100));
        }
        // 1 + weights 2,3,1,2,3,1,2,3,1 = 18 of at most 10 per call.
        let n = calls.load(Ordering::SeqCst);
        assert!((2..=4).contains(&n), "{n} calls");
    }

    #[tokio::test]
    async fn with_a_linger_requests_soon_after_the_first_share_its_call() {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let batcher = Arc::new(Batcher::new(
            10,
            Duration::from_millis(300),
            |_: &usize| 1,
            move |qs: Vec<usize>| {
                seen.fetch_add(1, Ordering::SeqCst);
                async move { Ok(qs.iter().map(|q| q + 1).collect()) }
            },
        ));
        let first = tokio::spawn({
            let b = batcher.clone();
            async move { b.call(1).await }
        });
        // The first is alone in the queue; the second comes while the
        // batch lingers, before any call was made.
        tokio::task::yield_now().await;
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        let second = batcher.call(2).await;
        assert_eq!(first.await.unwrap(), Ok(2));
        assert_eq!(second, Ok(3));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // A full batch does not wait out the linger.
        let started = Instant::now();
        let all: Vec<_> = (0..10)
            .map(|i| {
                let b = batcher.clone();
                tokio::spawn(async move { b.call(i).await })
            })
            .collect();
        for (i, r) in all.into_iter().enumerate() {
            assert_eq!(r.await.unwrap(), Ok(i + 1));
        }
        assert!(started.elapsed() < Duration::from_millis(300));
    }

    #[tokio::test]
    async fn a_failed_call_fails_every_request_in_it() {
        let batcher = Batcher::new(
            10,
            Duration::ZERO,
            |_: &u8| 1,
            |_: Vec<u8>| async { Err::<Vec<u8>, _>("redis away".to_string()) },
        );
        assert_eq!(batcher.call(1).await, Err("redis away".to_string()));
    }
}
