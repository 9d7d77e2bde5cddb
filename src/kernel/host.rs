//! What the machine offers an apply, read from `/sys` and `/proc`: the real
//! backends answer [`NetworkBackend::module_loaded`] and
//! [`NetworkBackend::may_change`] from here.
//!
//! [`NetworkBackend::module_loaded`]: super::NetworkBackend::module_loaded
//! [`NetworkBackend::may_change`]: super::NetworkBackend::may_change

use std::path::Path;

/// `CAP_NET_ADMIN` (linux/capability.h): links, addresses, routes, IPVS and
/// nftables all need it.
const CAP_NET_ADMIN: u32 = 12;

/// Whether the running kernel has module `name` loaded (or built in).
pub fn module_loaded(name: &str) -> bool {
    Path::new("/sys/module").join(name).exists()
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
    fn the_effective_mask_is_read_from_status() {
        let status = "Name:\tlbconsole\nCapInh:\t0000000000000000\nCapEff:\t0000000000001000\n";
        assert_eq!(effective_capabilities(status), Some(1 << CAP_NET_ADMIN));
        assert_eq!(effective_capabilities("Name:\tx\n"), None);
        assert_eq!(effective_capabilities("CapEff:\tzz\n"), None);
    }
}
