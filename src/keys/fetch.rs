//! Fetching the key bundle: a small retry builder and one HTTP(S) GET per attempt.
//!
//! [`Retry`] has an initial backoff that doubles up to a cap, jitter (each wait is drawn
//! uniformly from [backoff/2, backoff], so a rack that boots at once spreads out), an optional
//! `max_retries` and an overall deadline; each attempt is logged with the time to the next.
//! Only what can succeed later is retried: connect errors, timeouts, broken transfers and HTTP
//! 408/429/5xx. Other statuses (403, 404 …) fail at once; a TLS certificate rejection fails at
//! once as a verification error.

use anyhow::{Context as _, Result};
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::blocking::Client;
use reqwest::{StatusCode, Url};

use crate::exit::{coded, Code};

/// The outcome of a failed attempt.
#[derive(Debug)]
pub enum Failure {
    /// Worth another try (optionally not before `after`, from `Retry-After`).
    Retry {
        err: anyhow::Error,
        after: Option<Duration>,
    },
    /// Will not get better by trying again.
    Fatal(anyhow::Error),
}

/// Attempts too close to the deadline to be useful are not started.
const MIN_ATTEMPT: Duration = Duration::from_millis(200);

/// Retry policy: exponential backoff with jitter, a cap, optional max retries, overall deadline.
#[derive(Debug, Clone)]
pub struct Retry {
    initial_backoff: Duration,
    max_backoff: Duration,
    max_retries: Option<u32>,
    deadline: Option<Duration>,
    jitter: bool,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retries: None,
            deadline: None,
            jitter: true,
        }
    }
}

impl Retry {
    pub fn new() -> Self {
        Self::default()
    }
    /// Wait before the first retry (doubles after each failure).
    pub fn initial_backoff(mut self, d: Duration) -> Self {
        self.initial_backoff = d;
        self
    }
    /// Upper bound of a single wait.
    pub fn max_backoff(mut self, d: Duration) -> Self {
        self.max_backoff = d;
        self
    }
    /// At most this many retries after the first attempt (`0`: try once).
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = Some(n);
        self
    }
    /// Give up once this much time has passed since the first attempt started.
    pub fn deadline(mut self, d: Duration) -> Self {
        self.deadline = Some(d);
        self
    }
    /// Randomise each wait within [backoff/2, backoff] (on by default).
    pub fn jitter(mut self, on: bool) -> Self {
        self.jitter = on;
        self
    }

    /// The backoff (before jitter) after `failed` attempts (1 = after the first failure).
    pub fn backoff(&self, failed: u32) -> Duration {
        let shift = failed.saturating_sub(1).min(31);
        self.initial_backoff
            .saturating_mul(1u32 << shift)
            .min(self.max_backoff)
    }

    fn jittered(&self, d: Duration) -> Duration {
        if !self.jitter || d.is_zero() {
            return d;
        }
        let half = d / 2;
        half + d.mul_f64(rand::rng().random_range(0.0..=0.5))
    }

    /// Run `op` until it succeeds, fails fatally, or retries/deadline run out. `op` gets the
    /// attempt number (1-based) and the time left before the deadline (if there is one), to cap
    /// its own timeout. `what` names the operation in logs and errors (e.g. "fetching URL").
    /// Running out of retries or time is a [`Code::Network`] error carrying the last failure.
    pub fn run<T>(
        &self,
        what: &str,
        mut op: impl FnMut(u32, Option<Duration>) -> std::result::Result<T, Failure>,
    ) -> Result<T> {
        let start = Instant::now();
        let deadline = self.deadline.map(|d| start + d);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            tracing::info!(stage = "keys", attempt, "{what}: attempt {attempt}");
            let (err, after) = match op(attempt, left) {
                Ok(v) => return Ok(v),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Retry { err, after }) => (err, after),
            };
            let elapsed = start.elapsed().as_secs_f64();
            if self.max_retries.is_some_and(|m| attempt > m) {
                return Err(coded(
                    Code::Network,
                    format!(
                        "{what}: giving up after {attempt} attempt(s) in {elapsed:.1} s: {err:#}"
                    ),
                ));
            }
            let mut wait = self.jittered(self.backoff(attempt));
            if let Some(a) = after {
                wait = wait.max(a.min(self.max_backoff));
            }
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(Instant::now());
                if left <= MIN_ATTEMPT {
                    return Err(coded(
                        Code::Network,
                        format!(
                            "{what}: deadline of {:.1} s reached after {attempt} attempt(s): {err:#}",
                            self.deadline.unwrap_or_default().as_secs_f64()
                        ),
                    ));
                }
                // Squeeze in a last attempt before the deadline rather than sleeping past it.
                wait = wait.min(left - MIN_ATTEMPT);
            }
            tracing::warn!(
                stage = "keys",
                attempt,
                "{what}: attempt {attempt} failed: {err:#}; next in {:.1} s",
                wait.as_secs_f64()
            );
            std::thread::sleep(wait);
        }
    }
}

/// How the HTTP client is set up.
#[derive(Debug, Clone)]
pub struct ClientOptions<'a> {
    pub connect_timeout: Duration,
    /// PEM file with the CA certificate(s) to trust instead of the system roots.
    pub ca_file: Option<&'a Path>,
    /// Refuse any plain-http request (including redirects), for https URLs.
    pub https_only: bool,
}

/// Read the CA file and parse its certificates (at least one). Errors are [`Code::BadInput`].
pub fn load_ca(path: &Path) -> Result<Vec<reqwest::Certificate>> {
    let pem = std::fs::read(path).map_err(|e| {
        coded(
            Code::BadInput,
            format!("keys.ca_file {}: {e}", path.display()),
        )
    })?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        coded(
            Code::BadInput,
            format!("keys.ca_file {}: not PEM certificates: {e}", path.display()),
        )
    })?;
    if certs.is_empty() {
        return Err(coded(
            Code::BadInput,
            format!(
                "keys.ca_file {}: no PEM certificate in the file",
                path.display()
            ),
        ));
    }
    Ok(certs)
}

/// Build the blocking client (rustls with AWS-LC). With a CA file, only that CA is trusted.
pub fn client(opts: &ClientOptions<'_>) -> Result<Client> {
    // reqwest is built without a crypto provider of its own (it would bring ring): TLS uses
    // AWS-LC, as ssh-rsa secrets do. An Err only says a provider is already installed.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut b = Client::builder()
        .user_agent(concat!("provision/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(opts.connect_timeout)
        .https_only(opts.https_only)
        .redirect(reqwest::redirect::Policy::limited(5))
        .pool_max_idle_per_host(0);
    if let Some(ca) = opts.ca_file {
        b = b.tls_built_in_root_certs(false);
        for c in load_ca(ca)? {
            b = b.add_root_certificate(c);
        }
    }
    b.build().context("building the HTTP client")
}

/// Is this status worth retrying (408, 429, 5xx)?
pub fn retryable_status(s: StatusCode) -> bool {
    s == StatusCode::REQUEST_TIMEOUT || s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error()
}

/// The error chain as one line (reqwest's own Display leaves out the cause).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// A TLS certificate rejection (unknown issuer, wrong name, expired …): not worth retrying.
fn is_tls_rejection(text: &str) -> bool {
    text.contains("invalid peer certificate") || text.contains("peer sent no certificates")
}

/// A URL fit for logs: the password (if any) is masked.
pub fn display_url(url: &Url) -> String {
    let mut u = url.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    u.to_string()
}

/// One GET: the whole body (at most `max_bytes`), or why not.
pub fn get_once(
    client: &Client,
    url: &Url,
    timeout: Duration,
    max_bytes: u64,
) -> std::result::Result<Vec<u8>, Failure> {
    let shown = display_url(url);
    // Retryable errors are reported under "fetching URL: …" by the caller, so they leave the
    // URL out; fatal ones name it.
    let send_err = |e: reqwest::Error| {
        let retry = e.is_timeout() || e.is_connect() || e.is_request() || e.is_body();
        let text = chain(&e.without_url());
        if is_tls_rejection(&text) {
            return Failure::Fatal(coded(
                Code::Verify,
                format!("{shown}: TLS certificate rejected: {text}"),
            ));
        }
        if retry {
            Failure::Retry {
                err: anyhow::anyhow!("{text}"),
                after: None,
            }
        } else {
            Failure::Fatal(coded(Code::Network, format!("{shown}: {text}")))
        }
    };
    let started = Instant::now();
    let mut resp = client
        .get(url.clone())
        .timeout(timeout)
        .send()
        .map_err(send_err)?;
    let status = resp.status();
    if !status.is_success() {
        if retryable_status(status) {
            let after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(Failure::Retry {
                err: anyhow::anyhow!("HTTP {status}"),
                after,
            });
        }
        return Err(Failure::Fatal(coded(
            Code::Network,
            format!("{shown}: HTTP {status}"),
        )));
    }
    if let Some(len) = resp.content_length() {
        if len > max_bytes {
            return Err(Failure::Fatal(coded(
                Code::Verify,
                format!(
                    "{shown}: key bundle rejected: {len} bytes, more than max_bundle_bytes ({max_bytes})"
                ),
            )));
        }
    }
    // Read in chunks and hold the transfer to the attempt's time, so a server that trickles
    // the body cannot stretch an attempt (and the overall deadline) indefinitely.
    let mut body = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = resp.read(&mut chunk).map_err(|e| Failure::Retry {
            err: anyhow::anyhow!("reading the body: {}", chain(&e)),
            after: None,
        })?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
        if body.len() as u64 > max_bytes {
            break;
        }
        if started.elapsed() > timeout {
            return Err(Failure::Retry {
                err: anyhow::anyhow!(
                    "reading the body: timed out after {:.1} s",
                    timeout.as_secs_f64()
                ),
                after: None,
            });
        }
    }
    if body.len() as u64 > max_bytes {
        return Err(Failure::Fatal(coded(
            Code::Verify,
            format!("{shown}: key bundle rejected: more than max_bundle_bytes ({max_bytes}) bytes"),
        )));
    }
    Ok(body)
}

/// Fetch `url` with `retry`; each attempt's timeout is `request_timeout`, cut to the time left
/// before the deadline. `on_attempt` gets each attempt's number (1-based) as it starts.
pub fn fetch(
    client: &Client,
    url: &Url,
    retry: &Retry,
    request_timeout: Duration,
    max_bytes: u64,
    on_attempt: &dyn Fn(u32),
) -> Result<Vec<u8>> {
    let what = format!("fetching {}", display_url(url));
    retry.run(&what, |attempt, left| {
        on_attempt(attempt);
        let t = left.map_or(request_timeout, |l| {
            request_timeout.min(l.max(Duration::from_millis(1)))
        });
        get_once(client, url, t, max_bytes)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn backoff_doubles_to_cap() {
        let r = Retry::new()
            .initial_backoff(Duration::from_millis(100))
            .max_backoff(Duration::from_millis(500));
        let got: Vec<u128> = (1..=6).map(|n| r.backoff(n).as_millis()).collect();
        assert_eq!(got, vec![100, 200, 400, 500, 500, 500]);
        assert_eq!(r.backoff(200), Duration::from_millis(500));
    }

    #[test]
    fn jitter_stays_within_half_to_full() {
        let r = Retry::new();
        for _ in 0..200 {
            let d = r.jittered(Duration::from_millis(1000));
            assert!(d >= Duration::from_millis(500) && d <= Duration::from_millis(1000));
        }
        let r = r.jitter(false);
        assert_eq!(r.jittered(Duration::from_millis(1000)).as_millis(), 1000);
    }

    #[test]
    fn max_retries_bounds_attempts_and_fatal_stops() {
        let r = Retry::new()
            .initial_backoff(Duration::from_millis(1))
            .max_retries(2);
        let n = Cell::new(0);
        let e = r
            .run("op", |_, _| -> std::result::Result<(), Failure> {
                n.set(n.get() + 1);
                Err(Failure::Retry {
                    err: anyhow::anyhow!("boom"),
                    after: None,
                })
            })
            .unwrap_err();
        assert_eq!(n.get(), 3);
        assert_eq!(crate::exit::code_of(&e), Code::Network);
        assert!(format!("{e:#}").contains("op: giving up after 3 attempt(s)"));

        let n = Cell::new(0);
        let e = Retry::new()
            .run("op", |_, _| -> std::result::Result<(), Failure> {
                n.set(n.get() + 1);
                Err(Failure::Fatal(coded(Code::Verify, "bad")))
            })
            .unwrap_err();
        assert_eq!(n.get(), 1);
        assert_eq!(crate::exit::code_of(&e), Code::Verify);

        let v = Retry::new()
            .initial_backoff(Duration::from_millis(1))
            .run("op", |a, _| {
                if a < 3 {
                    Err(Failure::Retry {
                        err: anyhow::anyhow!("not yet"),
                        after: None,
                    })
                } else {
                    Ok(a)
                }
            })
            .unwrap();
        assert_eq!(v, 3);
    }

    #[test]
    fn deadline_stops_retrying() {
        let r = Retry::new()
            .initial_backoff(Duration::from_millis(50))
            .max_backoff(Duration::from_millis(100))
            .deadline(Duration::from_millis(600));
        let mut lefts = Vec::new();
        let e = r
            .run("op", |_, left| -> std::result::Result<(), Failure> {
                lefts.push(left.expect("deadline set"));
                Err(Failure::Retry {
                    err: anyhow::anyhow!("down"),
                    after: None,
                })
            })
            .unwrap_err();
        assert!(
            format!("{e:#}").contains("deadline of 0.6 s reached"),
            "{e:#}"
        );
        assert_eq!(crate::exit::code_of(&e), Code::Network);
        assert!(lefts.len() >= 2, "{lefts:?}");
        assert!(lefts.windows(2).all(|w| w[1] < w[0]), "{lefts:?}");
    }

    #[test]
    fn statuses() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 403, 404, 410] {
            assert!(!retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }

    #[test]
    fn password_masked() {
        let u = Url::parse("http://u:secret@h/k.tar.gz").unwrap();
        assert_eq!(display_url(&u), "http://u:***@h/k.tar.gz");
    }
}
