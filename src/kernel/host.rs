//! What the machine offers an apply, read from `/sys`, `/proc` and
//! `/lib/modules`: the real backends answer [`NetworkBackend::has_module`] and
//! [`NetworkBackend::may_change`] from here.
//!
//! [`NetworkBackend::has_module`]: super::NetworkBackend::has_module
//! [`NetworkBackend::may_change`]: super::NetworkBackend::may_change

use std::path::Path;

/// `CAP_NET_ADMIN` (linux/capability.h): links, addresses, routes, IPVS and
/// nftables all need it.
const CAP_NET_ADMIN: u32 = 12;

/// Whether the running kernel has module `name`: loaded, built in, or
/// installed for it, in which case the kernel loads it on demand (creating a
/// bond loads `bonding`).
pub fn has_module(name: &str) -> bool {
    Path::new("/sys/module").join(name).exists() || installed(name)
}

/// Whether `modules.dep` or `modules.builtin` of the running kernel lists `name`.
fn installed(name: &str) -> bool {
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else {
        return false;
    };
    let dir = Path::new("/lib/modules").join(release.trim());
    ["modules.dep", "modules.builtin"]
        .into_iter()
        .any(|list| std::fs::read_to_string(dir.join(list)).is_ok_and(|text| lists(&text, name)))
}

/// Whether a module list (`kernel/drivers/net/bonding/bonding.ko: deps…` per
/// line) has module `name`; `-` and `_` are the same in module names.
fn lists(text: &str, name: &str) -> bool {
    let wanted = name.replace('-', "_");
    text.lines()
        .filter_map(|line| line.split(':').next())
        .filter_map(|path| path.rsplit('/').next()?.split(".ko").next())
        .any(|module| module.replace('-', "_") == wanted)
}

/// Whether this process holds `CAP_NET_ADMIN`. When `/proc` cannot tell, the
/// kernel is left to answer: an apply it refuses is undone all the same.
pub fn has_net_admin() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| effective_capabilities(&status))
        .is_none_or(|caps| caps & (1 << CAP_NET_ADMIN) != 0)
}

/// The `CapEff:` mask of a `/proc/PID/status` text.
fn effective_capabilities(status: &str) -> Option<u64> {
    let mask = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))?;
    u64::from_str_radix(mask.trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_list_names_modules_by_file_name() {
        let dep = "kernel/drivers/net/bonding/bonding.ko: kernel/net/tls/tls.ko\n\
                   kernel/net/8021q/8021q.ko.xz: kernel/net/802/garp.ko\n\
                   kernel/net/netfilter/nf_tables.ko.zst:\n";
        for module in ["bonding", "8021q", "nf_tables", "nf-tables"] {
            assert!(lists(dep, module), "{module}");
        }
        for module in ["tls", "garp", "bond", "ip_vs"] {
            assert!(!lists(dep, module), "{module}");
        }
    }

    #[test]
    fn the_effective_mask_is_read_from_status() {
        let status = "Name:\tlbconsole\nCapInh:\t0000000000000000\nCapEff:\t0000000000001000\n";
        assert_eq!(effective_capabilities(status), Some(1 << CAP_NET_ADMIN));
        assert_eq!(effective_capabilities("Name:\tx\n"), None);
        assert_eq!(effective_capabilities("CapEff:\tzz\n"), None);
    }
}
