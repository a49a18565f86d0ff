//! One shutdown signal that reaches every task (mini-redis's `Shutdown`).

use tokio::sync::watch;

/// Held by whoever decides to stop (Ctrl-C, `--for`, a test).
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// Cloned into every task; `wait` resolves once shutdown starts.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }

    pub fn subscribe(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }
}

impl Shutdown {
    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    pub async fn wait(&mut self) {
        // An error means the trigger is gone: treat that as shutdown too.
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM (systemd, docker stop).
pub async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
