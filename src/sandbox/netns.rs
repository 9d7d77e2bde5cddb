//! Network namespaces the sandbox makes, held by a descriptor: one lives as
//! long as its [`Netns`] or a thread or process inside it, so all of them
//! vanish with the console, however it ends. Commands (`ip`, `bridge`) run in
//! one through [`Netns::command`]; a thread enters one with [`Netns::enter`].

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::Arc;

use super::{SandboxError, sys};

#[derive(Debug)]
pub struct Netns(Arc<OwnedFd>);

impl Netns {
    /// The calling thread's namespace.
    pub fn current() -> io::Result<Netns> {
        Ok(Netns(Arc::new(
            File::open("/proc/thread-self/ns/net")?.into(),
        )))
    }

    /// A new, empty namespace. The calling thread stays where it was.
    pub fn create() -> io::Result<Netns> {
        let home = Netns::current()?;
        sys::unshare_network(false)?;
        let created = Netns::current();
        home.enter()?;
        created
    }

    /// A second handle on the same namespace (for a thread to enter it).
    pub fn try_clone(&self) -> io::Result<Netns> {
        Ok(Netns(Arc::new(self.0.try_clone()?)))
    }

    /// Moves the calling thread into this namespace.
    pub fn enter(&self) -> io::Result<()> {
        sys::enter_network(self.0.as_fd())
    }

    /// `program` to run inside this namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        sys::enter_network_on_exec(&mut command, Arc::clone(&self.0));
        command
    }

    /// Runs `ip -batch -` (or `bridge -batch -`) in this namespace with one
    /// command per line of `script`. `other` is a second namespace the script
    /// names as `OTHER` (e.g. `link add a type veth peer name b netns OTHER`).
    pub fn batch(
        &self,
        tool: &str,
        script: &str,
        other: Option<&Netns>,
    ) -> Result<(), SandboxError> {
        let mut command = self.command(tool);
        let script = match other {
            Some(other) => {
                // The tool inherits the descriptor, to open it by path.
                let fd = sys::inherit_on_exec(&mut command, Arc::clone(&other.0));
                script.replace("OTHER", &format!("/proc/self/fd/{fd}"))
            }
            None => script.to_owned(),
        };
        let mut child = command
            .args(["-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| SandboxError::Setup(format!("cannot run {tool} (iproute2): {e}")))?;
        let written = child
            .stdin
            .take()
            .map(|mut stdin| stdin.write_all(script.as_bytes()));
        let output = child
            .wait_with_output()
            .map_err(|e| SandboxError::Setup(format!("{tool}: {e}")))?;
        match written {
            Some(Ok(())) if output.status.success() => Ok(()),
            _ => Err(SandboxError::Setup(format!(
                "{tool}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ))),
        }
    }

    /// Writes `value` to `/proc/sys/KEY` of this namespace (`net/...` keys
    /// belong to the namespace of the thread that opens them).
    pub fn sysctl(&self, key: &str, value: &str) -> Result<(), SandboxError> {
        let home = Netns::current().map_err(setup)?;
        self.enter().map_err(setup)?;
        let written = std::fs::write(format!("/proc/sys/{key}"), value);
        home.enter().map_err(setup)?;
        written.map_err(|e| SandboxError::Setup(format!("/proc/sys/{key}: {e}")))
    }
}

fn setup(error: io::Error) -> SandboxError {
    SandboxError::Setup(error.to_string())
}
