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
