//! Helpers shared by the server's integration tests: a server on
//! 127.0.0.1 and an HTTP client.

use colsnap_server::AppState;
use std::sync::Arc;
use std::time::Duration;

/// A running server on a free loopback port; stopped when dropped.
pub struct Running {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Serve `state` on 127.0.0.1 (a free port) until the handle is dropped.
pub async fn serve(state: Arc<AppState>) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(colsnap_server::serve(listener, state, async {
        let _ = rx.await;
    }));
    Running {
        base,
        stop: Some(tx),
    }
}

/// An HTTP client with a 20 s timeout.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}
