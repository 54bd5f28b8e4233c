//! Helpers for the keys-stage tests: test keys (ssh-keygen), tarballs (including malicious
//! ones), a small HTTP server on 127.0.0.1 with scripted behaviour, an HTTPS server (python3)
//! with a test CA made by the `openssl` CLI, and a Context for a temp root.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use provision::context::Context;

/// Run a command, panicking with its stderr on failure.
pub fn sh(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A fresh OpenSSH private key made by ssh-keygen: (private key bytes, public line).
pub fn keygen(dir: &Path, name: &str, kind: &str) -> (Vec<u8>, String) {
    let p = dir.join(name);
    let mut c = Command::new("ssh-keygen");
    c.args(["-q", "-N", "", "-C", &format!("{name}@test"), "-t", kind]);
    if kind == "rsa" {
        c.args(["-b", "2048"]);
    }
    sh(c.arg("-f").arg(&p));
    let key = std::fs::read(&p).unwrap();
    let public = std::fs::read_to_string(p.with_extension("pub")).unwrap();
    (key, public.trim().to_string())
}

/// `ssh-keygen -l -E sha256` fingerprint of a key file.
pub fn fingerprint(path: &Path) -> String {
    let out = sh(Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(path));
    String::from_utf8(out)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

/// A tar entry with an unchecked name, so malicious names can be built.
pub fn tar_entry(b: &mut tar::Builder<Vec<u8>>, path: &str, kind: tar::EntryType, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    {
        let name = &mut h.as_old_mut().name;
        name.fill(0);
        name[..path.len()].copy_from_slice(path.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(0o600);
    if kind == tar::EntryType::Symlink || kind == tar::EntryType::Link {
        h.set_link_name("/etc/shadow").unwrap();
    }
    h.set_cksum();
    b.append(&h, data).unwrap();
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A .tar.gz of regular files (and other kinds) with raw names.
pub fn targz(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (p, k, d) in entries {
        tar_entry(&mut b, p, *k, d);
    }
    gzip(&b.into_inner().unwrap())
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// What the test server does with the n-th request (0-based).
#[derive(Clone)]
pub enum Reply {
    /// 200 with this body.
    Body(Vec<u8>),
    /// This status, empty body.
    Status(u16),
    /// Read the request, then say nothing for this long, then close.
    Stall(Duration),
    /// 200 with this body, sent one byte every `Duration` (a server that trickles).
    Trickle(Vec<u8>, Duration),
}

type Script = dyn Fn(usize, &str) -> Reply + Send + Sync;

/// A tiny HTTP/1.1 server on 127.0.0.1 that answers each request per a script. Records the
/// request paths. Stops when dropped.
pub struct Server {
    pub port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    /// Listen on an ephemeral port now.
    pub fn start(script: impl Fn(usize, &str) -> Reply + Send + Sync + 'static) -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        Self::serve(l, port, Arc::new(script))
    }

    /// Pick a free port but start listening on it only after `delay` (the server is "down" —
    /// connections refused — until then).
    pub fn start_after(
        delay: Duration,
        script: impl Fn(usize, &str) -> Reply + Send + Sync + 'static,
    ) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (requests.clone(), stop.clone());
        let script: Arc<Script> = Arc::new(script);
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            let l = TcpListener::bind(("127.0.0.1", port)).expect("rebinding the test port");
            accept_loop(l, script, r, s);
        });
        Server {
            port,
            requests,
            stop,
        }
    }

    fn serve(l: TcpListener, port: u16, script: Arc<Script>) -> Server {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (requests.clone(), stop.clone());
        std::thread::spawn(move || accept_loop(l, script, r, s));
        Server {
            port,
            requests,
            stop,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The request paths seen so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // unblock accept()
    }
}

fn accept_loop(
    l: TcpListener,
    script: Arc<Script>,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
) {
    let n = Arc::new(AtomicUsize::new(0));
    for conn in l.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(conn) = conn else { continue };
        let (script, requests, n) = (script.clone(), requests.clone(), n.clone());
        std::thread::spawn(move || handle(conn, &*script, &requests, &n));
    }
}

fn handle(conn: TcpStream, script: &Script, requests: &Mutex<Vec<String>>, n: &AtomicUsize) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" || h == "\n" {
            break;
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    requests.lock().unwrap().push(path.clone());
    let i = n.fetch_add(1, Ordering::SeqCst);
    let mut conn = conn;
    match script(i, &path) {
        Reply::Body(b) => {
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                b.len()
            );
            let _ = conn.write_all(&b);
        }
        Reply::Status(s) => {
            let _ = write!(
                conn,
                "HTTP/1.1 {s} Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
        Reply::Stall(d) => {
            std::thread::sleep(d);
        }
        Reply::Trickle(b, every) => {
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                b.len()
            );
            for byte in b {
                if conn.write_all(&[byte]).is_err() {
                    return;
                }
                std::thread::sleep(every);
            }
        }
    }
    let _ = conn.flush();
    let _ = conn.shutdown(Shutdown::Write);
    let mut sink = [0u8; 64];
    let _ = conn.read(&mut sink);
}

/// A test CA and a server certificate for 127.0.0.1/localhost, made with the openssl CLI.
pub struct TestCa {
    pub ca_pem: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn make_ca(dir: &Path, name: &str) -> TestCa {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    let p = |f: &str| d.join(f);
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    sh(Command::new("openssl")
        .args(["req", "-x509"])
        .args(ec)
        .arg("-keyout")
        .arg(p("ca.key"))
        .arg("-out")
        .arg(p("ca.pem"))
        .args(["-days", "2", "-subj", &format!("/CN={name} test CA")])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]));
    sh(Command::new("openssl")
        .arg("req")
        .args(ec)
        .arg("-keyout")
        .arg(p("srv.key"))
        .arg("-out")
        .arg(p("srv.csr"))
        .args(["-subj", "/CN=localhost"]));
    std::fs::write(
        p("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    sh(Command::new("openssl")
        .args(["x509", "-req", "-in"])
        .arg(p("srv.csr"))
        .arg("-CA")
        .arg(p("ca.pem"))
        .arg("-CAkey")
        .arg(p("ca.key"))
        .args(["-CAcreateserial", "-days", "2", "-extfile"])
        .arg(p("ext.cnf"))
        .arg("-out")
        .arg(p("srv.pem")));
    TestCa {
        ca_pem: p("ca.pem"),
        cert: p("srv.pem"),
        key: p("srv.key"),
    }
}

const HTTPS_SERVER: &str = r#"
import functools, http.server, ssl, sys
docroot, cert, key = sys.argv[1:4]
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_GET(self):
        # /to-http/HOST:PORT/PATH redirects to http://HOST:PORT/PATH (a downgrade)
        if self.path.startswith("/to-http/"):
            self.send_response(302)
            self.send_header("Location", "http://" + self.path[len("/to-http/"):])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()
h = functools.partial(Quiet, directory=docroot)
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), h)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;

/// python3's http.server over TLS, serving `docroot`. Killed (by its own pid) when dropped.
pub struct HttpsServer {
    pub port: u16,
    child: Child,
}

impl HttpsServer {
    pub fn start(docroot: &Path, ca: &TestCa) -> HttpsServer {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(HTTPS_SERVER)
            .arg(docroot)
            .arg(&ca.cert)
            .arg(&ca.key)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("python https server port");
        HttpsServer { port, child }
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Context for a temp root with this kernel cmdline.
pub fn context(root: &Path, cmdline: &str, dry_run: bool) -> Context {
    Context::for_root(root, root, cmdline, dry_run)
}

/// Every file (not directory) under `root`, relative, sorted.
pub fn files_under(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    walk(root, root, &mut out);
    out.sort();
    out
}
