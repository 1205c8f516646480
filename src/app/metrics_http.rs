//! The daemon's scrape endpoint (`daemon --metrics-listen ADDR`, or `[daemon] metrics_listen`):
//! a small HTTP server (`tiny_http`) on a thread of its own that answers `GET /metrics` (and
//! `HEAD`) with what a given function renders at that moment, 405 for another method on it,
//! and 404 for every other path. It knows nothing of reports: the daemon hands it the
//! function, which reads the local server on its own connection, so a scrape costs the
//! daemon's loop nothing, and a scrape that fails (server down) answers `pxcrm_up 0` rather
//! than stopping anything.
//!
//! There is no authentication: a non-loopback address is served (a common choice behind a
//! firewall), but the start says so in the log.
//!
//! A scrape's connection to the local server is the host's (`memory::Held`), so a policy
//! call's memory meter, which counts the whole process, leaves it out; the few KiB a scrape
//! allocates beyond it are counted if a call runs at that moment.

use crate::error::{Error, Result};
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Renders the body of one scrape (scrapes are answered one at a time, so it may keep state).
pub type Scrape = Box<dyn FnMut() -> String + Send + 'static>;

/// A running endpoint; [`MetricsServer::stop`] ends its thread.
pub struct MetricsServer {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    addr: SocketAddr,
}

impl MetricsServer {
    /// Binds `addr` and serves `scrape` on a thread. A port that cannot be bound is an error
    /// (exit code 2): the daemon does not start without the endpoint it was asked for.
    pub fn start(addr: SocketAddr, scrape: Scrape) -> Result<MetricsServer> {
        let server = tiny_http::Server::http(addr).map_err(|e| {
            Error::Process(format!("--metrics-listen {addr}: cannot listen there: {e}"))
        })?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| Error::Process(format!("--metrics-listen {addr}: not an IP address")))?;
        if addr.ip().is_loopback() {
            log::info!("daemon: metrics on http://{addr}/metrics");
        } else {
            log::warn!(
                "daemon: metrics on http://{addr}/metrics, WITHOUT authentication, reachable beyond this host: restrict it with a firewall, or listen on 127.0.0.1"
            );
        }
        let server = Arc::new(server);
        let thread = {
            let server = server.clone();
            std::thread::Builder::new()
                .name("metrics".into())
                .spawn(move || serve(&server, scrape))
                .map_err(|e| Error::Process(format!("cannot start the metrics thread: {e}")))?
        };
        Ok(MetricsServer {
            server,
            thread: Some(thread),
            addr,
        })
    }

    /// The address bound (with the port chosen when port 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and waits for the thread (a scrape in progress finishes).
    pub fn stop(mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers requests one at a time until the server is unblocked.
fn serve(server: &tiny_http::Server, mut scrape: Scrape) {
    for req in server.incoming_requests() {
        let path = req.url().split('?').next().unwrap_or("");
        let method = req.method().clone();
        let response = if path != "/metrics" {
            text(
                404,
                "not found: the metrics are at /metrics\n".into(),
                "text/plain",
            )
        } else if !matches!(method, tiny_http::Method::Get | tiny_http::Method::Head) {
            text(405, "only GET /metrics\n".into(), "text/plain")
        } else {
            text(200, scrape(), super::prometheus::CONTENT_TYPE)
        };
        if let Err(e) = req.respond(response) {
            log::debug!("metrics: could not answer a request: {e}");
        }
    }
}

fn text(
    status: u16,
    body: String,
    content_type: &str,
) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let mut r = tiny_http::Response::from_string(body).with_status_code(status);
    if let Ok(h) = tiny_http::Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes()) {
        r = r.with_header(h);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    /// One HTTP/1.0 request; the status line and the body.
    fn get(addr: SocketAddr, method: &str, path: &str) -> (String, String) {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(s, "{method} {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out.lines().next().unwrap_or("").to_string();
        let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        (status, body)
    }

    #[test]
    fn serves_metrics_at_metrics_only() {
        let m = MetricsServer::start(
            "127.0.0.1:0".parse().unwrap(),
            Box::new(|| "pxcrm_up 1\n".to_string()),
        )
        .unwrap();
        let addr = m.addr();
        assert_ne!(addr.port(), 0);
        let (status, body) = get(addr, "GET", "/metrics");
        assert!(status.contains(" 200"), "{status}");
        assert_eq!(body, "pxcrm_up 1\n");
        let (status, _) = get(addr, "GET", "/metrics?x=1");
        assert!(status.contains(" 200"), "{status}");
        let (status, _) = get(addr, "GET", "/");
        assert!(status.contains(" 404"), "{status}");
        let (status, _) = get(addr, "POST", "/metrics");
        assert!(status.contains(" 405"), "{status}");
        m.stop();
        // The listener closes once its accept thread has seen the stop.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "the port is still open 10 s after stop"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_port_in_use_is_an_input_error() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let e = MetricsServer::start(l.local_addr().unwrap(), Box::new(String::new))
            .err()
            .expect("the port is taken");
        assert_eq!(e.exit_code(), crate::error::exit::INPUT);
        assert!(e.to_string().contains("cannot listen"), "{e}");
    }
}
