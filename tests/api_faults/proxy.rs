//! A fault-injecting HTTP proxy in front of `sim serve`: one request per connection (it asks
//! the server to close after each answer), each matched against the rules the test set —
//! answer with a status (and `Retry-After`), reset the connection, stall forever, lose the
//! answer after the server acted, or an outage of N seconds — counting what it injected.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What to do to a matching request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status (and `Retry-After: secs` when given), without asking the server.
    Status(u16, Option<u64>),
    /// Close the connection without an answer.
    Reset,
    /// Never answer.
    Stall,
    /// Forward to the server, then answer 500 instead of its answer.
    Lost,
}

/// A rule: requests whose method and path match get `fault`, `times` times (0: every time).
#[derive(Debug, Clone)]
pub struct Rule {
    pub method: &'static str,
    pub path_contains: String,
    pub fault: Fault,
    pub times: usize,
    /// Only until this instant (an outage), when set.
    pub until: Option<Instant>,
}

impl Rule {
    pub fn new(method: &'static str, path_contains: &str, fault: Fault, times: usize) -> Rule {
        Rule {
            method,
            path_contains: path_contains.into(),
            fault,
            times,
            until: None,
        }
    }

    /// Every request (but watches) gets `fault` for `secs` seconds from now.
    pub fn outage(fault: Fault, secs: u64) -> Rule {
        Rule {
            until: Some(Instant::now() + Duration::from_secs(secs)),
            ..Rule::new("*", "", fault, 0)
        }
    }
}

struct Shared {
    upstream: String,
    rules: Mutex<Vec<(Rule, usize)>>,
    injected: AtomicUsize,
    closed: AtomicBool,
}

/// The proxy; stops accepting when dropped.
pub struct Proxy {
    pub addr: String,
    shared: Arc<Shared>,
}

impl Proxy {
    /// Starts a proxy to `upstream` (`127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().unwrap().to_string();
        let shared = Arc::new(Shared {
            upstream: upstream.into(),
            rules: Mutex::new(Vec::new()),
            injected: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.closed.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                std::thread::spawn(move || {
                    let _ = serve(&s, conn);
                });
            }
        });
        Proxy { addr, shared }
    }

    pub fn add(&self, rule: Rule) {
        self.shared.rules.lock().unwrap().push((rule, 0));
    }

    pub fn clear(&self) {
        self.shared.rules.lock().unwrap().clear();
    }

    /// Requests a rule answered so far.
    pub fn injected(&self) -> usize {
        self.shared.injected.load(Ordering::SeqCst)
    }

    /// A kubeconfig pointing at this proxy, written next to `like` (the server's own).
    pub fn kubeconfig(&self, like: &std::path::Path) -> std::path::PathBuf {
        let text = std::fs::read_to_string(like).unwrap();
        let out = like.with_file_name(format!("kubeconfig-proxy-{}", self.addr.replace(':', "-")));
        let server_line = text
            .lines()
            .find(|l| l.trim_start().starts_with("server:"))
            .unwrap()
            .to_string();
        let text = text.replace(&server_line, &format!("    server: http://{}", self.addr));
        std::fs::write(&out, text).unwrap();
        out
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

/// The fault for a request, if a rule matches (and counts it).
fn matching(s: &Shared, method: &str, path: &str) -> Option<Fault> {
    if path.contains("watch=true") || path.contains("watch=1") {
        return None;
    }
    let mut rules = s.rules.lock().unwrap();
    let now = Instant::now();
    for (rule, used) in rules.iter_mut() {
        let live = rule.until.is_none_or(|u| now < u) && (rule.times == 0 || *used < rule.times);
        if live
            && (rule.method == "*" || rule.method == method)
            && path.contains(&rule.path_contains)
        {
            *used += 1;
            s.injected.fetch_add(1, Ordering::SeqCst);
            return Some(rule.fault.clone());
        }
    }
    None
}

fn serve(s: &Shared, mut client: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    let mut length = 0usize;
    let mut request_line = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if request_line.is_empty() {
            request_line = line.trim_end().to_string();
            head.push(line);
            continue;
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("connection:") {
            continue;
        }
        head.push(line);
    }
    head.push("Connection: close\r\n\r\n".into());
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let fault = matching(s, &method, &path);
    match fault {
        Some(Fault::Status(code, retry_after)) => {
            let msg = format!(
                r#"{{"kind":"Status","apiVersion":"v1","status":"Failure","message":"injected {code}","reason":"ServiceUnavailable","code":{code}}}"#
            );
            let extra = retry_after
                .map(|s| format!("Retry-After: {s}\r\n"))
                .unwrap_or_default();
            write!(
                client,
                "HTTP/1.1 {code} Injected\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{msg}",
                msg.len()
            )?;
            client.flush()?;
            return client.shutdown(Shutdown::Both);
        }
        Some(Fault::Reset) => return client.shutdown(Shutdown::Both),
        Some(Fault::Stall) => {
            while !s.closed.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(200));
            }
            return Ok(());
        }
        _ => {}
    }
    let mut upstream = TcpStream::connect(&s.upstream)?;
    for line in &head {
        upstream.write_all(line.as_bytes())?;
    }
    upstream.write_all(&body)?;
    upstream.flush()?;
    if matches!(fault, Some(Fault::Lost)) {
        let mut ignored = Vec::new();
        let _ = upstream.read_to_end(&mut ignored);
        let msg = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"injected: answer lost","reason":"InternalError","code":500}"#;
        write!(
            client,
            "HTTP/1.1 500 Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{msg}",
            msg.len()
        )?;
        client.flush()?;
        return client.shutdown(Shutdown::Both);
    }
    // Stream the answer (a watch streams until the server closes it).
    let mut buf = [0u8; 16384];
    loop {
        if s.closed.load(Ordering::SeqCst) {
            break;
        }
        let n = upstream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        client.write_all(&buf[..n])?;
        client.flush()?;
    }
    client.shutdown(Shutdown::Both)
}
