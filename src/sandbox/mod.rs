//! `lbconsole --sandbox`: the console in a network namespace of its own, with
//! demo interfaces eth0-eth3 (veth pairs whose peers sit in a second namespace
//! and answer on the example configuration's gateways) and a throwaway config
//! and state dir seeded from `examples/`, with the sandbox's IPv6 added
//! ([`example`]): the sandbox is dual stack. Nothing it does reaches the host's
//! interfaces: the namespace is entered before any interface is created.
//!
//! With the example configuration, on a kernel that has what it needs (IPVS,
//! bonding, VLANs), the sandbox is alive ([`demo`]): the example's real servers
//! answer in namespaces of their own, a demo client sends a few requests a
//! second through the VIPs, and `lbconsole daemon` applies the example and
//! checks the servers. Everything it starts ends with the console. `sys` holds
//! the namespace calls and what the children do before exec, the sandbox's only
//! `unsafe`.

mod demo;
mod example;
mod netns;
#[allow(unsafe_code)]
mod sys;

use std::path::{Path, PathBuf};

use netns::Netns;

/// A demo interface and what its peer answers as: the example configuration's
/// gateways, so that its routes and pings work, and on eth0 the demo client's
/// IPv6 address, on the appliance's IPv6 network.
struct Peer {
    name: &'static str,
    ipv4: Option<&'static str>,
    ipv6: Option<&'static str>,
}

const PEERS: [Peer; 4] = [
    Peer {
        name: "eth0",
        ipv4: Some("192.168.0.254/24"),
        ipv6: Some("2001:db8::fe/64"),
    },
    Peer {
        name: "eth1",
        ipv4: Some("192.168.161.1/24"),
        ipv6: None,
    },
    Peer {
        name: "eth2",
        ipv4: Some("172.16.100.254/24"),
        ipv6: None,
    },
    Peer {
        name: "eth3",
        ipv4: None,
        ipv6: None,
    },
];

/// The command of lbconsole's repository that runs this sandbox on a kernel
/// that has everything (Debian's, in a VM).
pub const LAB_CONSOLE: &str = "tests/lab/console";

pub struct Sandbox {
    /// Holds `config/` and `state/`; removed when the sandbox is dropped.
    pub dir: PathBuf,
    pub config_dir: PathBuf,
    pub state_dir: PathBuf,
    /// The namespace of the interfaces' peers (and of the demo client).
    peer: Netns,
    /// Started from a copy of the user's directory rather than the example.
    seeded: bool,
    /// What this kernel lacks of what the example needs.
    lacking: Vec<&'static str>,
    demo: Option<demo::Demo>,
    /// Why there is no demo, when there should be one.
    no_demo: Option<String>,
}

/// What the console shows of the sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notes {
    /// One short line for the tab bar.
    pub banner: String,
    /// The Setup tab's lines.
    pub details: Vec<String>,
    /// Where the kernel lacks what the example needs: what to run instead,
    /// on the first screen (the Network tab's live pane) and where IPVS is missing.
    pub elsewhere: Option<String>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Everything the demo started ends first: it writes into the dir.
        self.demo = None;
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
    let (uid, gid) = (crate::sys::user_id(), crate::sys::group_id());
    sys::unshare_network(uid != 0).map_err(SandboxError::Unshare)?;
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
    // An appliance forwards (a NAT director's replies are forwarded), both
    // families; the namespace is new, so these are the sandbox's own settings.
    for key in ["net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"] {
        std::fs::write(format!("/proc/sys/{key}"), "1")
            .map_err(|e| SandboxError::Setup(format!("{}: {e}", key.replace('/', "."))))?;
    }
    let here = Netns::current().map_err(|e| SandboxError::Setup(e.to_string()))?;
    let peer =
        Netns::create().map_err(|e| SandboxError::Setup(format!("the peer namespace: {e}")))?;
    here.batch("ip", &veths(), Some(&peer))?;
    peer.batch("ip", &peer_addresses(), None)?;
    let lacking = lacking();
    remove_abandoned_dirs();
    let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}", std::process::id()));
    let sandbox = Sandbox {
        config_dir: dir.join("config"),
        state_dir: dir.join("state"),
        dir,
        peer,
        seeded: seed.is_some(),
        lacking,
        demo: None,
        no_demo: None,
    };
    seed_dirs(&sandbox, seed)?;
    Ok(sandbox)
}

/// The demo interfaces, up, and their peers in the peer namespace (`OTHER`).
fn veths() -> String {
    let mut script = String::from("link set lo up\n");
    for Peer { name, .. } in PEERS {
        script.push_str(&format!(
            "link add {name} type veth peer name peer-{name} netns OTHER\nlink set {name} up\n"
        ));
    }
    script
}

/// The peers' addresses: the example's gateways, and the client's IPv6
/// address (`nodad`: usable at once, and nothing else claims it).
fn peer_addresses() -> String {
    let mut script = String::from("link set lo up\n");
    for Peer { name, ipv4, ipv6 } in PEERS {
        if let Some(address) = ipv4 {
            script.push_str(&format!("address add {address} dev peer-{name}\n"));
        }
        if let Some(address) = ipv6 {
            script.push_str(&format!("address add {address} dev peer-{name} nodad\n"));
        }
        script.push_str(&format!("link set peer-{name} up\n"));
    }
    script
}

/// What the example needs that this kernel cannot do: a module that is
/// neither loaded nor built in nor installed to be loaded on demand. Nothing
/// is loaded here; the example's apply does that, as on an appliance.
fn lacking() -> Vec<&'static str> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let modules = Path::new("/lib/modules").join(release.trim());
    let listed = |list: &str, module: &str| {
        std::fs::read_to_string(modules.join(list)).is_ok_and(|text| {
            text.lines().any(|line| {
                let path = line.split(':').next().unwrap_or(line);
                path.rsplit('/')
                    .next()
                    .is_some_and(|file| file.split('.').next() == Some(module))
            })
        })
    };
    [
        ("ip_vs", "IPVS"),
        ("bonding", "bonding"),
        ("8021q", "VLANs"),
    ]
    .into_iter()
    .filter(|(module, _)| {
        !Path::new("/sys/module").join(module).exists()
            && !listed("modules.builtin", module)
            && !listed("modules.dep", module)
    })
    .map(|(_, what)| what)
    .collect()
}

impl Sandbox {
    /// Starts the live demo when the sandbox runs the example on a kernel
    /// that can run it. Blocks until the health daemon has applied the example (seconds, in a
    /// slow VM), so that the console starts with it running. Without a demo,
    /// [`Sandbox::notes`] says why.
    pub fn start_demo(&mut self) {
        if !self.can_demo() {
            return;
        }
        match demo::Demo::start(&self.peer, &self.dir, &self.config_dir, &self.state_dir) {
            Ok(demo) => self.demo = Some(demo),
            Err(error) => self.no_demo = Some(error.to_string()),
        }
    }

    /// Whether [`Sandbox::start_demo`] starts one: with the example, on a
    /// kernel that has what it needs.
    pub fn can_demo(&self) -> bool {
        !self.seeded && self.lacking.is_empty()
    }

    /// What the console shows of the sandbox.
    pub fn notes(&self) -> Notes {
        let gateways = PEERS
            .iter()
            .flat_map(|peer| [peer.ipv4, peer.ipv6])
            .flatten()
            .map(|a| a.split('/').next().unwrap_or(a))
            .collect::<Vec<_>>()
            .join(", ");
        let mut details = vec![format!(
            "own network namespace; eth0-eth3 are veths whose peers answer at {gateways}"
        )];
        if !self.lacking.is_empty() {
            let lacking = self.lacking.join(", ");
            let elsewhere = format!(
                "No {lacking} in this kernel: the example cannot run here, so the sandbox \
                 has no demo. {LAB_CONSOLE} (in lbconsole's repository) runs it in a VM \
                 with Debian's kernel, which has them all."
            );
            details.push(elsewhere.clone());
            return Notes {
                banner: format!("sandbox: no {lacking} in this kernel"),
                details,
                elsewhere: Some(elsewhere),
            };
        }
        let banner = match (&self.demo, &self.no_demo) {
            (Some(demo), _) => {
                details.extend(demo.details());
                format!(
                    "sandbox: live demo, {} down on purpose",
                    demo::DOWN_ON_PURPOSE
                )
            }
            (None, Some(why)) => {
                details.push(format!("no demo: {why}"));
                "sandbox: the demo did not start (F4)".to_owned()
            }
            (None, None) => {
                details.push("your configuration: no demo servers or traffic".to_owned());
                "sandbox: own network namespace".to_owned()
            }
        };
        Notes {
            banner,
            details,
            elsewhere: None,
        }
    }
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

fn seed_dirs(sandbox: &Sandbox, seed: Option<&Path>) -> Result<(), SandboxError> {
    let setup = |e: std::io::Error| SandboxError::Setup(e.to_string());
    std::fs::create_dir_all(&sandbox.config_dir).map_err(setup)?;
    std::fs::create_dir_all(&sandbox.state_dir).map_err(setup)?;
    for (file, example) in example::files().map_err(SandboxError::Setup)? {
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
