//! Memory on large inputs: `check` and `save` of a large `lvs.conf` stay within a
//! small multiple of the file's size, measured as the real binary's peak resident
//! memory.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Big enough that the multiple dominates the binary's own footprint, small
/// enough for a debug build to check it and save it twice in under half a minute.
const INPUT_BYTES: u64 = 16 << 20;

/// What `check` may hold per byte of input: the file as read and the parsed
/// model, about twice the text (it measures 3.6 here with the debug build's
/// footprint, 2.9 for a 60 MB file in a release build). Before the lexer handed
/// out one line at a time it took 6.4.
const CHECK_BYTES_PER_INPUT_BYTE: u64 = 4;

/// What `save` may hold per byte of input: `check`'s, plus the previous version
/// and a second read of the config dir, held by the store around validation and
/// the summary (it measures 4 to 5 in a debug build). Before the summary kept
/// fingerprints instead of both versions as JSON, it took 21, and 40 when the
/// previous version was as large.
const SAVE_BYTES_PER_INPUT_BYTE: u64 = 5;

/// The binary's own footprint: code, runtime, buffers. About 14 MiB for a debug
/// build with a small configuration; twice that leaves room for the allocator.
const BASE_BYTES: u64 = 28 << 20;

/// Writes `lvs.conf` of at least `bytes`: directors with a VIP, checks,
/// persistence and forty servers each, as a large appliance carries them. The
/// first server's weight is `first_weight`, so that a second file differs in one.
fn write_large_lvs_conf(path: &Path, bytes: u64, first_weight: u32) -> u64 {
    // Written as it is generated, so this process stays small: a child's
    // ru_maxrss starts from its parent's resident size when it is spawned.
    let mut out = BufWriter::new(File::create(path).expect("create lvs.conf"));
    let mut written = 0u64;
    let mut director = 0u32;
    while written < bytes {
        let (high, low) = (director / 250, director % 250);
        let mut section = format!(
            "# farm {director}\n\
             director web-{director:06} 192.{}.{}.{}:80 TCP\n    \
             balance leastconn\n    mode nat\n    \
             check interval 5 timeout 2 port 8080 rise 2 fall 3\n    \
             option httpcheck uri /health statuscode 200 vhost www.example.com\n    \
             option persistence timeout 300 netmask 255.255.255.0\n",
            168 + high / 250,
            high % 250,
            low + 1
        );
        for server in 0..40 {
            let weight = if director == 0 && server == 0 {
                first_weight
            } else {
                server % 5 + 1
            };
            section.push_str(&format!(
                "    server web{server:02} 10.{}.{low}.{}:8080 weight {weight} check\n",
                high % 250,
                server + 1,
            ));
        }
        section.push('\n');
        out.write_all(section.as_bytes()).expect("write lvs.conf");
        written += section.len() as u64;
        director += 1;
    }
    out.flush().expect("write lvs.conf");
    written
}

/// How a command ended: its exit code, what it printed, and its peak resident
/// memory in bytes.
struct Finished {
    code: Option<i32>,
    stdout: String,
    peak_rss: u64,
}

// Reaped by wait4 in `wait_with_peak_rss`, which std's wait cannot replace.
#[allow(clippy::zombie_processes)]
fn run(args: &[&str]) -> Finished {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lbconsole"))
        .args(args)
        .env_remove("LBCONSOLE_CONFIG_DIR")
        .env_remove("LBCONSOLE_STATE_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("lbconsole runs");
    // The output is a line or two, so the pipe holds it until the child is reaped.
    let (code, peak_rss) = wait_with_peak_rss(&child);
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_string(&mut stdout)
        .expect("read stdout");
    Finished {
        code,
        stdout,
        peak_rss,
    }
}

/// Reaps `child` with wait4(2), the one wait that reports the child's own peak
/// resident memory (`ru_maxrss`, in KiB on Linux).
fn wait_with_peak_rss(child: &Child) -> (Option<i32>, u64) {
    let pid = libc::pid_t::try_from(child.id()).expect("a pid fits pid_t");
    let mut status = 0;
    // SAFETY: rusage is a plain C struct of integers; all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own child, not yet reaped (std waits only when
        // asked to); `status` and `usage` are valid for writes for the call.
        let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if waited == pid {
            break;
        }
        let error = std::io::Error::last_os_error();
        assert_eq!(
            error.kind(),
            std::io::ErrorKind::Interrupted,
            "wait4: {error}"
        );
    }
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let peak_rss = u64::try_from(usage.ru_maxrss).expect("ru_maxrss is not negative") * 1024;
    (code, peak_rss)
}

fn assert_small(what: &str, finished: &Finished, input: u64, per_input_byte: u64) {
    let limit = per_input_byte * input + BASE_BYTES;
    let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
    eprintln!(
        "{what}: peak RSS {:.1} MiB for {:.1} MiB of input ({:.2} x), limit {:.1} MiB",
        mib(finished.peak_rss),
        mib(input),
        finished.peak_rss as f64 / input as f64,
        mib(limit)
    );
    assert!(
        finished.peak_rss <= limit,
        "{what} peaked at {:.1} MiB for {:.1} MiB of lvs.conf; the limit is {per_input_byte} x input + {:.0} MiB = {:.1} MiB",
        mib(finished.peak_rss),
        mib(input),
        mib(BASE_BYTES),
        mib(limit)
    );
}

#[test]
fn check_and_save_of_a_large_lvs_conf_take_a_small_multiple_of_its_size() {
    let dir = std::env::temp_dir().join(format!("lbconsole-memory-{}", std::process::id()));
    let (config_dir, state_dir) = (dir.join("config"), dir.join("state"));
    std::fs::create_dir_all(&config_dir).expect("temp dir");
    let lvs_conf = config_dir.join("lvs.conf");
    let input = write_large_lvs_conf(&lvs_conf, INPUT_BYTES, 1);
    let config = config_dir.to_str().expect("UTF-8 path");
    let state = state_dir.to_str().expect("UTF-8 path");
    let command = |name: &'static str| [name, "--config-dir", config, "--state-dir", state];

    let check = run(&command("check"));
    assert_eq!(check.code, Some(0), "{}", check.stdout);
    assert_small("check", &check, input, CHECK_BYTES_PER_INPUT_BYTE);

    let first = run(&command("save"));
    assert_eq!(first.code, Some(0), "{}", first.stdout);
    assert!(
        first
            .stdout
            .starts_with("saved version 1: lvs.conf: +director web-000000")
    );
    assert_small("first save", &first, input, SAVE_BYTES_PER_INPUT_BYTE);

    // The second save holds the previous version too, and compares the two.
    write_large_lvs_conf(&lvs_conf, INPUT_BYTES, 9);
    let second = run(&command("save"));
    assert_eq!(second.code, Some(0), "{}", second.stdout);
    assert_eq!(
        second.stdout,
        "saved version 2: lvs.conf: ~director web-000000; network.conf, flows.conf unchanged\n"
    );
    assert_small("second save", &second, input, SAVE_BYTES_PER_INPUT_BYTE);

    std::fs::remove_dir_all(&dir).expect("clean up");
}
