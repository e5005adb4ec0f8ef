//! Runs one piece of work per role over the roles' tree: a role starts once
//! its parent's work succeeded, at most `jobs` at once, earlier roles first
//! when more are ready than may start. The first failure, or `stop`, starts
//! nothing more; work already running is left to end (it watches the same
//! interrupt itself). A role whose parent failed or never ran never starts.
//! The results keep the roles' order, whatever order the work ended in.
//!
//! `oxbake build` and `oxbake nightly` both bake through this; what a
//! failure means to them (stop everything, or only the role's descendants)
//! is theirs to say by what they count as an `Err`.

use std::future::Future;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::watch;

use crate::pipeline::cancel;

/// Runs `work(i)` for every role `i` of `parents` (`parents[i]`: the index
/// of role `i`'s parent, if it has one here). The result of role `i` is at
/// `i`: `None` if its work never started.
pub async fn run<T, E, F, Fut>(
    parents: &[Option<usize>],
    jobs: usize,
    stop: &watch::Receiver<bool>,
    work: F,
) -> Vec<Option<Result<T, E>>>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let jobs = jobs.max(1);
    let mut results: Vec<Option<Result<T, E>>> = parents.iter().map(|_| None).collect();
    let mut started = vec![false; parents.len()];
    let mut failed = false;
    let mut running = FuturesUnordered::new();
    loop {
        if !failed && !cancel::is_set(stop) {
            for i in 0..parents.len() {
                if running.len() >= jobs {
                    break;
                }
                let parent_done = match parents[i] {
                    None => true,
                    Some(p) => matches!(results.get(p), Some(Some(Ok(_)))),
                };
                if !started[i] && parent_done {
                    started[i] = true;
                    let job = work(i);
                    running.push(async move { (i, job.await) });
                }
            }
        }
        match running.next().await {
            Some((i, result)) => {
                failed |= result.is_err();
                results[i] = Some(result);
            }
            None => break,
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use tokio::time::sleep;

    use super::*;

    /// What the work saw: starts and ends, in order, and the most at once.
    #[derive(Default)]
    struct Seen {
        events: Mutex<Vec<String>>,
        now: Mutex<(usize, usize)>,
    }

    impl Seen {
        fn start(&self, i: usize) {
            self.events.lock().unwrap().push(format!("start {i}"));
            let mut now = self.now.lock().unwrap();
            now.0 += 1;
            now.1 = now.1.max(now.0);
        }

        fn end(&self, i: usize) {
            self.events.lock().unwrap().push(format!("end {i}"));
            self.now.lock().unwrap().0 -= 1;
        }

        fn most(&self) -> usize {
            self.now.lock().unwrap().1
        }

        fn started(&self) -> Vec<String> {
            let events = self.events.lock().unwrap();
            events
                .iter()
                .filter(|e| e.starts_with("start"))
                .cloned()
                .collect()
        }

        fn position(&self, event: &str) -> usize {
            let events = self.events.lock().unwrap();
            events.iter().position(|e| e == event).unwrap()
        }
    }

    /// Work that takes `millis[i]` and fails for the roles in `fail`.
    async fn job(seen: &Seen, i: usize, millis: &[u64], fail: &[usize]) -> Result<usize, String> {
        seen.start(i);
        sleep(Duration::from_millis(millis[i])).await;
        seen.end(i);
        match fail.contains(&i) {
            true => Err(format!("role {i} failed")),
            false => Ok(i),
        }
    }

    fn never() -> watch::Receiver<bool> {
        cancel::never()
    }

    #[tokio::test(start_paused = true)]
    async fn a_child_starts_after_its_parent_and_siblings_run_at_once() {
        // 0 is the parent of 1, 2 and 3; 4 stands alone.
        let parents = [None, Some(0), Some(0), Some(0), None];
        let millis = [50, 100, 100, 100, 10];
        let seen = Seen::default();
        let out = run(&parents, 8, &never(), |i| job(&seen, i, &millis, &[])).await;
        let done: Vec<usize> = out.into_iter().map(|r| r.unwrap().unwrap()).collect();
        assert_eq!(done, [0, 1, 2, 3, 4]);
        for child in 1..=3 {
            assert!(seen.position("end 0") < seen.position(&format!("start {child}")));
        }
        assert_eq!(seen.most(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn no_more_than_jobs_run_at_once() {
        let parents = [None; 7];
        let millis = [30; 7];
        for jobs in [1, 2, 3] {
            let seen = Seen::default();
            let out = run(&parents, jobs, &never(), |i| job(&seen, i, &millis, &[])).await;
            assert!(out.iter().all(|r| matches!(r, Some(Ok(_)))));
            assert_eq!(seen.most(), jobs, "jobs = {jobs}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_failure_starts_nothing_more_and_running_work_ends() {
        // One at a time: after 0 fails nothing else starts.
        let parents = [None; 3];
        let seen = Seen::default();
        let out = run(&parents, 1, &never(), |i| {
            job(&seen, i, &[10, 10, 10], &[0])
        })
        .await;
        assert_eq!(out[0], Some(Err("role 0 failed".to_owned())));
        assert_eq!((out[1].clone(), out[2].clone()), (None, None));
        assert_eq!(seen.started(), ["start 0"]);

        // Two at once: 1, already running, ends; 2 never starts.
        let seen = Seen::default();
        let out = run(&parents, 2, &never(), |i| {
            job(&seen, i, &[10, 50, 10], &[0])
        })
        .await;
        assert_eq!(out[1], Some(Ok(1)));
        assert_eq!(out[2], None);
        assert_eq!(seen.started(), ["start 0", "start 1"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_child_of_a_failed_parent_never_starts() {
        // 0 fails late; its children 1 and 2 never start, 3 (alone) ran.
        let parents = [None, Some(0), Some(0), None];
        let seen = Seen::default();
        let out = run(&parents, 4, &never(), |i| {
            job(&seen, i, &[50, 10, 10, 10], &[0])
        })
        .await;
        assert!(matches!(out[0], Some(Err(_))));
        assert_eq!((out[1].clone(), out[2].clone()), (None, None));
        assert_eq!(out[3], Some(Ok(3)));
        assert_eq!(seen.started(), ["start 0", "start 3"]);
    }

    #[tokio::test(start_paused = true)]
    async fn results_keep_the_roles_order_whatever_ends_first() {
        let parents = [None, None, None, None];
        let seen = Seen::default();
        let out = run(&parents, 4, &never(), |i| {
            job(&seen, i, &[40, 30, 20, 10], &[])
        })
        .await;
        assert_eq!(seen.position("end 3"), 4, "the last started ends first");
        let done: Vec<usize> = out.into_iter().map(|r| r.unwrap().unwrap()).collect();
        assert_eq!(done, [0, 1, 2, 3]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_starts_nothing_more() {
        let (tx, rx) = watch::channel(false);
        let parents = [None, Some(0), None];
        let seen = Seen::default();
        let out = run(&parents, 1, &rx, |i| {
            let (seen, tx) = (&seen, &tx);
            async move {
                let r = job(seen, i, &[10, 10, 10], &[]).await;
                let _ = tx.send(true);
                r
            }
        })
        .await;
        assert_eq!(out[0], Some(Ok(0)));
        assert_eq!((out[1].clone(), out[2].clone()), (None, None));
    }
}
