//! `lbconsole --sandbox`: the console in a network namespace of its own, with
//! demo interfaces eth0-eth3 (veth pairs whose peers sit in a second namespace
//! and answer on the example configuration's gateways) and a throwaway config
//! and state dir seeded from `examples/`. Nothing it does reaches the host's
//! interfaces: the namespace is entered before any interface is created.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::config::ConfigFile;

const EXAMPLES: [(ConfigFile, &str); 3] = [
    (
        ConfigFile::Network,
        include_str!("../examples/network.conf"),
    ),
    (ConfigFile::Flows, include_str!("../examples/flows.conf")),
    (ConfigFile::Lvs, include_str!("../examples/lvs.conf")),
];

/// What each demo interface's peer answers as: the example configuration's
/// gateways, so that its routes and pings work.
const PEERS: [(&str, Option<&str>); 4] = [
    ("eth0", Some("192.168.0.254/24")),
    ("eth1", Some("192.168.161.1/24")),
    ("eth2", Some("172.16.100.254/24")),
    ("eth3", None),
];

pub struct Sandbox {
    /// Holds `config/` and `state/`; removed when the sandbox is dropped.
    pub dir: PathBuf,
    pub config_dir: PathBuf,
    pub state_dir: PathBuf,
    /// One line for the console's tab bar and Setup tab.
    pub description: String,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "cannot create a network namespace: {0} (as a user this needs unprivileged user \
         namespaces: sysctl kernel.unprivileged_userns_clone=1; or run as root)"
    )]
    Unshare(std::io::Error),
    #[error("cannot set up the sandbox: {0}")]
    Setup(String),
}

/// Moves this process into a fresh network namespace (through a user namespace
/// when not root) with the demo interfaces. Must run before any thread starts:
/// the kernel refuses a user namespace to a threaded process.
pub fn enter(seed: Option<&Path>) -> Result<Sandbox, SandboxError> {
    // SAFETY: plain libc calls on this single-threaded process.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let flags = if uid == 0 {
        libc::CLONE_NEWNET
    } else {
        libc::CLONE_NEWUSER | libc::CLONE_NEWNET
    };
    // SAFETY: unshare has no memory effects.
    if unsafe { libc::unshare(flags) } != 0 {
        return Err(SandboxError::Unshare(std::io::Error::last_os_error()));
    }
    if uid != 0 {
        // Root inside, mapped to the caller outside: what creating links needs.
        let write = |file: &str, text: String| {
            std::fs::write(format!("/proc/self/{file}"), text)
                .map_err(|e| SandboxError::Setup(format!("/proc/self/{file}: {e}")))
        };
        write("setgroups", "deny".to_owned())?;
        write("uid_map", format!("0 {uid} 1"))?;
        write("gid_map", format!("0 {gid} 1"))?;
    }
    ip(&["link", "set", "lo", "up"])?;
    spawn_peer_namespace()?;
    remove_abandoned_dirs();
    let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}", std::process::id()));
    let sandbox = Sandbox {
        config_dir: dir.join("config"),
        state_dir: dir.join("state"),
        dir,
        description: String::new(),
    };
    seed_dirs(&sandbox, seed)?;
    let mut sandbox = sandbox;
    sandbox.description = format!(
        "own network namespace; eth0-eth3 are veths whose peers answer at {}; {}; {}",
        PEERS
            .iter()
            .filter_map(|(_, address)| address.map(|a| a.split('/').next().unwrap_or(a)))
            .collect::<Vec<_>>()
            .join(", "),
        module("ip_vs", "IPVS"),
        module("bonding", "bonding"),
    );
    Ok(sandbox)
}

const DIR_PREFIX: &str = "lbconsole-sandbox-";

/// The dirs of sandboxes whose console is gone: one killed by a signal (a
/// closed terminal) never reaches its own clean-up.
fn remove_abandoned_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX));
        if let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok())
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn module(name: &str, what: &str) -> String {
    if Path::new("/sys/module").join(name).exists() {
        format!("{what} available")
    } else {
        format!("no {what} in this kernel (module {name} not loaded)")
    }
}

fn seed_dirs(sandbox: &Sandbox, seed: Option<&Path>) -> Result<(), SandboxError> {
    let setup = |e: std::io::Error| SandboxError::Setup(e.to_string());
    std::fs::create_dir_all(&sandbox.config_dir).map_err(setup)?;
    std::fs::create_dir_all(&sandbox.state_dir).map_err(setup)?;
    for (file, example) in EXAMPLES {
        let target = sandbox.config_dir.join(file.file_name());
        match seed {
            Some(dir) if dir.join(file.file_name()).exists() => {
                std::fs::copy(dir.join(file.file_name()), &target).map_err(setup)?;
            }
            Some(_) => {}
            None => std::fs::write(&target, example).map_err(setup)?,
        }
    }
    Ok(())
}

fn ip(args: &[&str]) -> Result<(), SandboxError> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| SandboxError::Setup(format!("cannot run ip (iproute2): {e}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(SandboxError::Setup(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

fn pipe() -> Result<(std::fs::File, std::fs::File), SandboxError> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(SandboxError::Setup(
            std::io::Error::last_os_error().to_string(),
        ));
    }
    // SAFETY: both descriptors were just opened and are owned by nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((read.into(), write.into()))
}

/// Starts a child process in a second namespace that holds the veths' peers
/// for as long as the console lives (it dies with it); returns once they are up.
fn spawn_peer_namespace() -> Result<(), SandboxError> {
    let (mut from_child, mut child_writes) = pipe()?;
    let (mut child_reads, mut to_child) = pipe()?;
    // SAFETY: this process is single-threaded, so the child may run any code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(SandboxError::Setup(
            std::io::Error::last_os_error().to_string(),
        ));
    }
    if pid == 0 {
        let status = peer_child(&mut child_writes, &mut child_reads);
        let _ = child_writes.write_all(status.as_bytes());
        // SAFETY: the child leaves without running the parent's destructors.
        unsafe { libc::_exit(1) };
    }
    drop((child_writes, child_reads));
    let mut answer = [0u8; 1];
    let child_failed = |from_child: &mut std::fs::File| {
        let mut why = String::new();
        let _ = from_child.read_to_string(&mut why);
        SandboxError::Setup(format!("the peer namespace: {why}"))
    };
    if from_child.read_exact(&mut answer).is_err() || answer[0] != b'R' {
        return Err(child_failed(&mut from_child));
    }
    for (name, _) in PEERS {
        let peer = format!("peer-{name}");
        ip(&[
            "link",
            "add",
            name,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
            "netns",
            &pid.to_string(),
        ])?;
        ip(&["link", "set", name, "up"])?;
    }
    to_child
        .write_all(b"G")
        .map_err(|e| SandboxError::Setup(e.to_string()))?;
    if from_child.read_exact(&mut answer).is_err() || answer[0] != b'D' {
        return Err(child_failed(&mut from_child));
    }
    Ok(())
}

/// The peer side: its own namespace, then, once the veths exist, addresses on
/// the peers; then it waits to die with the console. Returns only on failure.
fn peer_child(to_parent: &mut std::fs::File, from_parent: &mut std::fs::File) -> String {
    // SAFETY: prctl and unshare have no memory effects.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::unshare(libc::CLONE_NEWNET) != 0 {
            return std::io::Error::last_os_error().to_string();
        }
    }
    let mut go = [0u8; 1];
    if to_parent.write_all(b"R").is_err() || from_parent.read_exact(&mut go).is_err() {
        return "the console went away".to_owned();
    }
    for (name, address) in PEERS {
        let peer = format!("peer-{name}");
        if let Some(address) = address
            && let Err(error) = ip(&["address", "add", address, "dev", &peer])
        {
            return error.to_string();
        }
        if let Err(error) = ip(&["link", "set", &peer, "up"]) {
            return error.to_string();
        }
    }
    if let Err(error) = ip(&["link", "set", "lo", "up"]) {
        return error.to_string();
    }
    if to_parent.write_all(b"D").is_err() {
        return "the console went away".to_owned();
    }
    loop {
        // SAFETY: pause only waits for a signal; SIGKILL comes with the parent's death.
        unsafe { libc::pause() };
    }
}
