//! Bench: a node's memory under a client that writes and never reads.
//!
//! Starts one `faultline node` on loopback, writes one value of each size
//! asked, then, per size, opens a connection that sends `--requests` reads
//! of that key and reads nothing for `--hold-seconds`, sampling the node's
//! resident set from /proc. Prints the baseline and the peak (VmHWM) per
//! size, then reads every reply to show that none was lost. Issue 21,
//! finding 4: the node used to queue every reply (2 MiB of requests took it
//! from 19 MB to 815 MB); now a connection is owed at most 64 replies.
//!
//!     cargo build --release -p faultline --example slow_reader
//!     target/release/examples/slow_reader [--requests 50000] [--sizes 1KiB,100KiB,900KiB]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "peak RSS of a node under a client that never reads")]
struct Args {
    /// Read requests each slow client sends.
    #[arg(long, default_value_t = 50_000)]
    requests: u64,
    /// Value sizes, one slow client each (KiB, MiB or bytes).
    #[arg(long, value_delimiter = ',', default_value = "1KiB,100KiB,900KiB")]
    sizes: Vec<String>,
    /// How long each client writes without reading.
    #[arg(long, default_value_t = 5)]
    hold_seconds: u64,
    /// The faultline binary (default: next to this example's directory).
    #[arg(long)]
    faultline: Option<PathBuf>,
}

/// A field of /proc/PID/status in KiB (VmRSS, VmHWM).
fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn call(
    stream: &mut TcpStream,
    reader: &mut BufReader<TcpStream>,
    line: &str,
) -> anyhow::Result<String> {
    stream.write_all(line.as_bytes())?;
    stream.write_all(b"\n")?;
    let mut reply = String::new();
    reader.read_line(&mut reply)?;
    Ok(reply)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let sizes: Vec<usize> = args
        .sizes
        .iter()
        .map(|s| faultline::parse::bytes(s).map_err(anyhow::Error::msg))
        .collect::<Result<_, _>>()?;
    let bin = match &args.faultline {
        Some(b) => b.clone(),
        None => std::env::current_exe()?
            .parent()
            .and_then(|p| p.parent())
            .context("locating the faultline binary")?
            .join("faultline"),
    };
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir()?;
    let mut child = Command::new(&bin)
        .args([
            "node",
            "--id",
            "1",
            "--listen",
            &addr,
            "--peers",
            &format!("1={addr}"),
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let mut ready = String::new();
    BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut ready)?;
    let node = Node(child);
    let pid = node.0.id();

    let mut admin = TcpStream::connect(&addr)?;
    let mut admin_reader = BufReader::new(admin.try_clone()?);
    let deadline = Instant::now() + Duration::from_secs(30);
    for (i, size) in sizes.iter().enumerate() {
        let value = "v".repeat(*size);
        loop {
            let reply = call(
                &mut admin,
                &mut admin_reader,
                &format!(r#"{{"id":{i},"op":"write","key":"k{size}","value":"{value}"}}"#),
            )?;
            if reply.contains(r#""ok":true"#) {
                break;
            }
            if Instant::now() > deadline {
                bail!("the node did not take a write: {reply}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    println!(
        "node pid {pid}; {} read requests per slow client, held {} s each",
        args.requests, args.hold_seconds
    );
    println!(
        "{:>10} {:>14} {:>14} {:>16} {:>10}",
        "value", "rss before MB", "peak rss MB", "owed replies MB", "replies"
    );
    for size in sizes {
        let before = status_kib(pid, "VmRSS:")?;
        let mut slow = TcpStream::connect(&addr)?;
        let requests = args.requests;
        let mut writer = slow.try_clone()?;
        let sender = std::thread::spawn(move || -> std::io::Result<()> {
            let mut batch = String::new();
            for id in 0..requests {
                batch.push_str(&format!(
                    "{{\"id\":{id},\"op\":\"read\",\"key\":\"k{size}\"}}\n"
                ));
                if batch.len() > 64 << 10 {
                    writer.write_all(batch.as_bytes())?;
                    batch.clear();
                }
            }
            writer.write_all(batch.as_bytes())
        });
        let hold = Instant::now() + Duration::from_secs(args.hold_seconds);
        while Instant::now() < hold {
            std::thread::sleep(Duration::from_millis(50));
        }
        let peak = status_kib(pid, "VmHWM:")?;
        // Now read: every request gets its reply.
        slow.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut replies = 0u64;
        let mut reader = BufReader::with_capacity(1 << 20, slow.try_clone()?);
        let mut line = Vec::new();
        while replies < requests {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            replies += 1;
        }
        sender.join().expect("sender thread")?;
        let _ = slow.read(&mut [0u8; 1]);
        println!(
            "{:>10} {:>14.1} {:>14.1} {:>16.1} {:>10}",
            format!("{size} B"),
            before as f64 / 1024.0,
            peak as f64 / 1024.0,
            (64 * size) as f64 / (1 << 20) as f64,
            replies
        );
    }
    Ok(())
}
