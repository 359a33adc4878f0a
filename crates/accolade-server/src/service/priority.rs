//! The lowest CPU priority for threads that do background work (signing credentials, reading the
//! inbox for a backfill): on a machine they share with event ingest, the kernel gives ingest and
//! every request the cores first, and the background work takes what is left. Only threads made
//! for that work call this: an unprivileged process cannot raise a thread's priority again, so
//! no pooled thread may be lowered.

/// Nice 19 for the calling thread (Linux sets the nice value per thread given its id); `what`
/// names the work in the warning when it cannot be done.
pub fn lower_current_thread(what: &str) {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19) {
        tracing::warn!(error = %e, "cannot lower the priority of a {what} thread");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = what;
}

/// The calling thread's nice value (19 once lowered); 0 where it cannot be read.
pub fn current() -> i32 {
    #[cfg(target_os = "linux")]
    {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap_or(0)
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

/// Runs `work` on a thread of its own at nice 19 and waits for it without holding up the async
/// runtime: CPU work of a background job (joining a backfill's scans, replaying a preview) that
/// live requests should win the cores from. Not for short work: it starts a thread each time.
/// `Err` when the thread could not start or panicked.
pub async fn run_low<T, F>(what: &'static str, work: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(what.into())
        .spawn(move || {
            lower_current_thread(what);
            let _ = tx.send(work());
        })
        .map_err(|e| format!("cannot start a {what} thread: {e}"))?;
    rx.await.map_err(|_| format!("the {what} thread panicked"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn low_priority_work_runs_at_nice_19_and_a_panic_is_an_error() {
        let nice = run_low("priority test", current).await.unwrap();
        #[cfg(target_os = "linux")]
        assert_eq!(nice, 19);
        let _ = nice;
        let err = run_low("priority test", || -> u8 { panic!("work failed") })
            .await
            .unwrap_err();
        assert!(err.contains("panicked"), "{err}");
    }
}
