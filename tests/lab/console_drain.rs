//! Issue 18 in the console, end to end on the lab's kernel: `lbconsole` in
//! tmux on a farm's config and state dirs drains a server with keys (the live
//! pane focused, the server selected, `d`, a note), the LB Layer4 pane shows
//! it draining with the connection it still has, and the CLI's `server list`
//! and `ipvsadm` agree.
//!
//! No `lbconsole daemon` runs (the console starts none): the daemon is what
//! turns a drain with no connection left into disabled, so without it the
//! drain stays a drain while the test reads it. A client connection kept open
//! on the drained server is what the pane counts as "active left".

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::apply_lvs::{farm, ipvsadm_table};
use crate::sandbox::{Tmux, pane};
use crate::support::{Lab, lbconsole_binary};

/// The console's start and a refresh of its pane take seconds in the VM.
const SHOWN: Duration = Duration::from_secs(60);

const LVS: &str = "\
director web 198.51.100.10:80 TCP
    balance roundrobin
    mode nat
    server web1 10.0.1.2:80
    server web2 10.0.2.2:80
";

/// Opens connections to `vip` until one is answered by `backend` over HTTP
/// keep-alive, and returns that one, still open.
fn connection_to(vip: SocketAddr, backend: &str) -> Result<TcpStream, String> {
    for _ in 0..10 {
        let Ok(mut stream) = TcpStream::connect_timeout(&vip, Duration::from_secs(3)) else {
            continue;
        };
        let answered = stream
            .set_read_timeout(Some(Duration::from_secs(3)))
            .and_then(|()| stream.write_all(b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n"));
        if answered.is_err() {
            continue;
        }
        // The answer's body, the backend's name, is its last bytes.
        let mut answer = Vec::new();
        let mut buffer = [0; 1024];
        while let Ok(read @ 1..) = stream.read(&mut buffer) {
            answer.extend_from_slice(&buffer[..read]);
            if answer.ends_with(b"web1") || answer.ends_with(b"web2") {
                break;
            }
        }
        if answer.ends_with(backend.as_bytes()) {
            return Ok(stream);
        }
    }
    Err(format!("no connection to {vip} reached {backend}"))
}

/// `server list --json`: the row of DIRECTOR/SERVER.
fn listed(lab: &Lab, director: &str, server: &str) -> serde_json::Value {
    let out = lab
        .lbconsole(&["server", "list", "--json"])
        .expect_success();
    let rows: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    rows.as_array()
        .expect("rows")
        .iter()
        .find(|row| row["director"] == director && row["server"] == server)
        .cloned()
        .unwrap_or_else(|| panic!("{director}/{server} not listed: {rows}"))
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn the_console_drains_a_server_with_keys_and_the_cli_agrees() {
    let farm = farm("console-drain", 2);
    let lab = &farm.lab;
    farm.configure(LVS);
    let vip: SocketAddr = "198.51.100.10:80".parse().expect("the VIP");
    let kept = farm
        .client
        .thread(move || connection_to(vip, "web2"))
        .join()
        .expect("the client's thread")
        .expect("a connection kept open on web2");

    // The console as alice (who acts is SUDO_USER, when set).
    let command = format!(
        "SUDO_USER=alice exec {} --config-dir {} --state-dir {} 2>{}",
        lbconsole_binary().display(),
        lab.config_dir().display(),
        lab.state_dir().display(),
        lab.state_dir().with_file_name("console.err").display()
    );
    let tmux = Tmux::start("console-drain", &command);
    tmux.keys(&["F3"]);
    tmux.wait(SHOWN, "web2 with its open connection", |s| {
        pane(s)
            .iter()
            .any(|line| line.contains("> web2 10.0.2.2:80 w1 1/"))
    });

    // Focus the pane, select web2 (web1 is first), drain it with a note.
    tmux.keys(&["C-w", "j", "d"]);
    tmux.wait(SHOWN, "the note's prompt", |s| {
        s.contains("Drain: a note saying why")
    });
    tmux.text("kernel upgrade");
    tmux.keys(&["Enter"]);
    // The pane is narrow: its lines are joined as words, for what wraps.
    let screen = tmux.wait(SHOWN, "web2 draining", |s| {
        let pane = pane(s).join(" ");
        pane.contains("D web2 10.0.2.2:80 w0 (out) 1/")
            && pane.contains("draining by alice: 1 active left (kernel upgrade)")
    });
    assert!(
        screen
            .lines()
            .any(|line| line.contains(" D ") && line.contains("server web2 10.0.2.2:80")),
        "the editor's gutter marks web2's line:\n{screen}"
    );
    assert!(
        pane(&screen)
            .iter()
            .any(|line| line.contains("> web1 10.0.1.2:80 w1 ")),
        "web1 is untouched:\n{screen}"
    );

    let row = listed(lab, "web", "web2");
    assert_eq!(row["override"]["state"], "drain", "{row}");
    assert_eq!(row["override"]["note"], "kernel upgrade", "{row}");
    assert_eq!(row["override"]["by"], "alice", "{row}");
    assert_eq!(row["ipvs_weight"], 0, "{row}");
    assert_eq!(row["active_connections"], 1, "{row}");
    let other = listed(lab, "web", "web1");
    assert!(other["override"].is_null(), "{other}");
    assert_eq!(other["ipvs_weight"], 1, "{other}");
    let table = ipvsadm_table(lab);
    let web2 = table
        .iter()
        .flatten()
        .find(|line| line.starts_with("-> 10.0.2.2:80 "))
        .unwrap_or_else(|| panic!("web2 in IPVS: {table:?}"));
    assert!(
        web2.starts_with("-> 10.0.2.2:80 Masq 0 1 "),
        "weight 0, one active connection: {web2}"
    );
    drop(kept);
}
