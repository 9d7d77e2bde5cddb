//! PURE: the numbers of `linux/ip_vs.h` that the IPVS messages are made of,
//! shared by the code that writes the requests and the code that reads the
//! answers.

/// `IPVS_GENL_NAME`: the generic netlink family to resolve.
pub const FAMILY_NAME: &str = "IPVS";
/// `IPVS_GENL_VERSION`.
pub const IPVS_VERSION: u8 = 1;
/// The version of the generic netlink controller's own messages.
pub const CTRL_VERSION: u8 = 2;
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;
/// `IP_VS_SVC_F_HASHED`: the kernel's own bookkeeping, reported with the flags.
pub const FLAG_HASHED: u32 = 0x0002;

/// `IPVS_CMD_*`.
pub mod cmd {
    pub const NEW_SERVICE: u8 = 1;
    pub const SET_SERVICE: u8 = 2;
    pub const DEL_SERVICE: u8 = 3;
    pub const GET_SERVICE: u8 = 4;
    pub const NEW_DEST: u8 = 5;
    pub const SET_DEST: u8 = 6;
    pub const DEL_DEST: u8 = 7;
    pub const GET_DEST: u8 = 8;
    pub const SET_CONFIG: u8 = 12;
    pub const GET_CONFIG: u8 = 13;
    pub const NEW_DAEMON: u8 = 9;
    pub const DEL_DAEMON: u8 = 10;
    pub const GET_DAEMON: u8 = 11;
    pub const GET_INFO: u8 = 15;
    pub const FLUSH: u8 = 17;
}

/// `IPVS_CMD_ATTR_*`: the top level of a message.
pub mod cmd_attr {
    pub const SERVICE: u16 = 1;
    pub const DEST: u16 = 2;
    pub const DAEMON: u16 = 3;
    pub const TIMEOUT_TCP: u16 = 4;
    pub const TIMEOUT_TCP_FIN: u16 = 5;
    pub const TIMEOUT_UDP: u16 = 6;
}

/// `IPVS_SVC_ATTR_*`, nested in `IPVS_CMD_ATTR_SERVICE`.
pub mod svc_attr {
    pub const AF: u16 = 1;
    pub const PROTOCOL: u16 = 2;
    pub const ADDR: u16 = 3;
    pub const PORT: u16 = 4;
    pub const FWMARK: u16 = 5;
    pub const SCHED_NAME: u16 = 6;
    pub const FLAGS: u16 = 7;
    pub const TIMEOUT: u16 = 8;
    pub const NETMASK: u16 = 9;
    pub const STATS: u16 = 10;
    pub const STATS64: u16 = 12;
    pub const MAX: usize = 13;
}

/// `IPVS_DEST_ATTR_*`, nested in `IPVS_CMD_ATTR_DEST`.
pub mod dest_attr {
    pub const ADDR: u16 = 1;
    pub const PORT: u16 = 2;
    pub const FWD_METHOD: u16 = 3;
    pub const WEIGHT: u16 = 4;
    pub const U_THRESH: u16 = 5;
    pub const L_THRESH: u16 = 6;
    pub const ACTIVE_CONNS: u16 = 7;
    pub const INACT_CONNS: u16 = 8;
    pub const PERSIST_CONNS: u16 = 9;
    pub const STATS: u16 = 10;
    pub const ADDR_FAMILY: u16 = 11;
    pub const STATS64: u16 = 12;
    pub const MAX: usize = 13;
}

/// `IPVS_STATS_ATTR_*`, nested in the `STATS` and `STATS64` attributes.
pub mod stats_attr {
    pub const CONNS: u16 = 1;
    pub const INPKTS: u16 = 2;
    pub const OUTPKTS: u16 = 3;
    pub const INBYTES: u16 = 4;
    pub const OUTBYTES: u16 = 5;
    pub const CPS: u16 = 6;
    pub const INPPS: u16 = 7;
    pub const OUTPPS: u16 = 8;
    pub const INBPS: u16 = 9;
    pub const OUTBPS: u16 = 10;
    pub const MAX: usize = 11;
}

/// `IPVS_INFO_ATTR_*`, in the answer to `IPVS_CMD_GET_INFO`.
pub mod info_attr {
    pub const VERSION: u16 = 1;
    pub const CONN_TAB_SIZE: u16 = 2;
    pub const MAX: usize = 3;
}

/// `IP_VS_STATE_*`: a sync daemon's role.
pub mod sync_state {
    pub const MASTER: u32 = 0x0001;
    pub const BACKUP: u32 = 0x0002;
}

/// `IPVS_DAEMON_ATTR_*`, nested in `IPVS_CMD_ATTR_DAEMON`. The kernel sends
/// more (the UDP payload size, the multicast group, port and TTL); lbconsole
/// keeps the kernel's defaults for them and reads none.
pub mod daemon_attr {
    pub const STATE: u16 = 1;
    pub const MCAST_IFN: u16 = 2;
    pub const SYNC_ID: u16 = 3;
    pub const MAX: usize = 4;
}
