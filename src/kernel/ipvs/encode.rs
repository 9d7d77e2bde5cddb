//! PURE: the IPVS family's requests (`linux/ip_vs.h`) as bytes.
//!
//! The IPVS family's own messages, tens of thousands for a big table, are
//! written here directly, and read in `decode.rs`: neli builds and parses
//! every attribute into an allocation of its own, which in the unoptimised
//! build the lab and the benchmark run costs several times a plain walk over
//! the bytes (on the host, 50,000 dumped destinations: 1.06 s through neli,
//! 0.08 s here; 51,000 requests: 0.47 s against 0.08 s; the lab VM is some
//! fifteen times slower). The bytes are those neli's builders make of the same
//! attributes (the unit tests compare them), nests without `NLA_F_NESTED`, as
//! ipvsadm sends them. The generic netlink controller's messages (resolving
//! the family) are neli's, in `family.rs`.
//!
//! Byte orders, as the kernel has them: ports and an IPv4 persistence netmask
//! are big endian (`nla_get_be16`, `nla_get_be32`), everything else, an IPv6
//! service's netmask (a prefix length) included, is host order. Addresses go
//! as 4 bytes for IPv4 and 16 for IPv6 (the kernel copies at most 16 into a
//! zeroed `nf_inet_addr`) and come back as 16.
//!
//! Families: a service's (`IPVS_SVC_ATTR_AF`) is its key's; a real server's
//! (`IPVS_DEST_ATTR_ADDR_FAMILY`) is its address's, which may differ from the
//! service's (the kernel takes that for tunnels only).

use std::net::IpAddr;

use super::consts::{IPVS_VERSION, cmd, cmd_attr, daemon_attr, dest_attr, svc_attr, sync_state};
use super::sync::{SyncDaemon, SyncRole};
use crate::kernel::nlwire::{EncodeError, NLM_F_ACK, NLM_F_DUMP, Writer};
use crate::plan::ipvs::{DestKey, DestSettings, ServiceKey, ServiceSettings};

/// One change to the IPVS table: one netlink message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    NewService(&'a ServiceKey, &'a ServiceSettings),
    SetService(&'a ServiceKey, &'a ServiceSettings),
    DelService(&'a ServiceKey),
    NewDest(&'a ServiceKey, &'a DestKey, &'a DestSettings),
    SetDest(&'a ServiceKey, &'a DestKey, &'a DestSettings),
    DelDest(&'a ServiceKey, &'a DestKey),
}

impl Message<'_> {
    /// The service the message changes (or changes a destination of).
    pub fn service(&self) -> &ServiceKey {
        match *self {
            Self::NewService(key, _)
            | Self::SetService(key, _)
            | Self::DelService(key)
            | Self::NewDest(key, ..)
            | Self::SetDest(key, ..)
            | Self::DelDest(key, _) => key,
        }
    }

    /// The destination the message changes, if it is about one.
    pub fn dest(&self) -> Option<&DestKey> {
        match *self {
            Self::NewDest(_, dest, _) | Self::SetDest(_, dest, _) | Self::DelDest(_, dest) => {
                Some(dest)
            }
            Self::NewService(..) | Self::SetService(..) | Self::DelService(_) => None,
        }
    }

    /// Appends the message to `out` with sequence number `seq`; `ack` asks the
    /// kernel to acknowledge it even when it succeeds.
    pub fn encode(
        &self,
        family: u16,
        seq: u32,
        ack: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let flags = if ack { NLM_F_ACK } else { 0 };
        let (command, service, settings, dest) = match *self {
            Self::NewService(key, settings) => (cmd::NEW_SERVICE, key, Some(settings), None),
            Self::SetService(key, settings) => (cmd::SET_SERVICE, key, Some(settings), None),
            Self::DelService(key) => (cmd::DEL_SERVICE, key, None, None),
            Self::NewDest(key, dest, to) => (cmd::NEW_DEST, key, None, Some((dest, Some(to)))),
            Self::SetDest(key, dest, to) => (cmd::SET_DEST, key, None, Some((dest, Some(to)))),
            Self::DelDest(key, dest) => (cmd::DEL_DEST, key, None, Some((dest, None))),
        };
        let mut message = ipvs_message(out, family, flags, seq, command);
        put_service(&mut message, service, settings)?;
        if let Some((dest, settings)) = dest {
            put_dest(&mut message, dest, settings)?;
        }
        message.finish()
    }
}

/// A request with no arguments: `GET_INFO`, `GET_CONFIG`, `FLUSH`.
pub fn request(out: &mut Vec<u8>, family: u16, seq: u32, command: u8) -> Result<(), EncodeError> {
    ipvs_message(out, family, NLM_F_ACK, seq, command).finish()
}

/// A dump: every service, or with a service key every destination of it.
pub fn dump_request(
    out: &mut Vec<u8>,
    family: u16,
    seq: u32,
    service: Option<&ServiceKey>,
) -> Result<(), EncodeError> {
    let command = if service.is_some() {
        cmd::GET_DEST
    } else {
        cmd::GET_SERVICE
    };
    let mut message = ipvs_message(out, family, NLM_F_DUMP, seq, command);
    if let Some(key) = service {
        put_service(&mut message, key, None)?;
    }
    message.finish()
}

/// `IPVS_CMD_SET_CONFIG`: the connection timeouts, in seconds (0 keeps one).
pub fn timeouts_request(
    out: &mut Vec<u8>,
    family: u16,
    seq: u32,
    (tcp, tcp_fin, udp): (u32, u32, u32),
) -> Result<(), EncodeError> {
    let mut message = ipvs_message(out, family, NLM_F_ACK, seq, cmd::SET_CONFIG);
    message.put(cmd_attr::TIMEOUT_TCP, &tcp.to_ne_bytes())?;
    message.put(cmd_attr::TIMEOUT_TCP_FIN, &tcp_fin.to_ne_bytes())?;
    message.put(cmd_attr::TIMEOUT_UDP, &udp.to_ne_bytes())?;
    message.finish()
}

/// `IPVS_CMD_GET_DAEMON`: a dump of the running sync daemons (the kernel
/// answers it only as a dump).
pub fn daemons_request(out: &mut Vec<u8>, family: u16, seq: u32) -> Result<(), EncodeError> {
    ipvs_message(out, family, NLM_F_DUMP, seq, cmd::GET_DAEMON).finish()
}

/// `IPVS_CMD_NEW_DAEMON`, as ipvsadm sends it: the role, the interface name
/// with its NUL and the sync id; the kernel's defaults for the rest (the
/// multicast group 224.0.0.81, port 8848, TTL 1, a payload sized to the MTU).
pub fn start_daemon_request(
    out: &mut Vec<u8>,
    family: u16,
    seq: u32,
    daemon: &SyncDaemon,
) -> Result<(), EncodeError> {
    let mut message = ipvs_message(out, family, NLM_F_ACK, seq, cmd::NEW_DAEMON);
    let nest = message.begin_nest(cmd_attr::DAEMON);
    message.put(daemon_attr::STATE, &state(daemon.role).to_ne_bytes())?;
    let mut name = daemon.interface.as_bytes().to_vec();
    name.push(0);
    message.put(daemon_attr::MCAST_IFN, &name)?;
    message.put(
        daemon_attr::SYNC_ID,
        &u32::from(daemon.sync_id).to_ne_bytes(),
    )?;
    message.end_nest(nest)?;
    message.finish()
}

/// `IPVS_CMD_DEL_DAEMON`: the role alone says which.
pub fn stop_daemon_request(
    out: &mut Vec<u8>,
    family: u16,
    seq: u32,
    role: SyncRole,
) -> Result<(), EncodeError> {
    let mut message = ipvs_message(out, family, NLM_F_ACK, seq, cmd::DEL_DAEMON);
    let nest = message.begin_nest(cmd_attr::DAEMON);
    message.put(daemon_attr::STATE, &state(role).to_ne_bytes())?;
    message.end_nest(nest)?;
    message.finish()
}

/// `IP_VS_STATE_MASTER` or `IP_VS_STATE_BACKUP`.
fn state(role: SyncRole) -> u32 {
    match role {
        SyncRole::Master => sync_state::MASTER,
        SyncRole::Backup => sync_state::BACKUP,
    }
}

/// A request to the IPVS family.
fn ipvs_message(out: &mut Vec<u8>, family: u16, flags: u16, seq: u32, command: u8) -> Writer<'_> {
    Writer::genl(out, family, flags, seq, command, IPVS_VERSION)
}

/// `IPVS_CMD_ATTR_SERVICE`: the key, and with `settings` the full entry
/// that `NEW_SERVICE` and `SET_SERVICE` require. The flags go with mask
/// `0xffffffff`: they replace the service's flags.
fn put_service(
    message: &mut Writer<'_>,
    key: &ServiceKey,
    settings: Option<&ServiceSettings>,
) -> Result<(), EncodeError> {
    let nest = message.begin_nest(cmd_attr::SERVICE);
    message.put(svc_attr::AF, &key.family().af().to_ne_bytes())?;
    match *key {
        ServiceKey::Vip {
            protocol,
            address,
            port,
        } => {
            message.put(svc_attr::PROTOCOL, &protocol.to_ne_bytes())?;
            put_address(message, svc_attr::ADDR, address)?;
            message.put(svc_attr::PORT, &port.to_be_bytes())?;
        }
        // The kernel keeps every firewall-mark service it is given over
        // netlink as TCP, and reports no protocol for it.
        ServiceKey::Fwmark { mark, .. } => {
            message.put(svc_attr::FWMARK, &mark.to_ne_bytes())?;
        }
    }
    if let Some(settings) = settings {
        let mut name = settings.scheduler.as_bytes().to_vec();
        name.push(0);
        let mut flags = [0u8; 8];
        flags[..4].copy_from_slice(&settings.flags.to_ne_bytes());
        flags[4..].copy_from_slice(&u32::MAX.to_ne_bytes());
        message.put(svc_attr::SCHED_NAME, &name)?;
        message.put(svc_attr::FLAGS, &flags)?;
        message.put(svc_attr::TIMEOUT, &settings.timeout.to_ne_bytes())?;
        message.put(svc_attr::NETMASK, &settings.netmask.kernel_value())?;
    }
    message.end_nest(nest)
}

/// An address: its 4 or 16 bytes.
fn put_address(message: &mut Writer<'_>, kind: u16, address: IpAddr) -> Result<(), EncodeError> {
    match address {
        IpAddr::V4(address) => message.put(kind, &address.octets()),
        IpAddr::V6(address) => message.put(kind, &address.octets()),
    }
}

/// `IPVS_CMD_ATTR_DEST`: the key, and with `settings` the full entry that
/// `NEW_DEST` and `SET_DEST` require (thresholds 0: none).
fn put_dest(
    message: &mut Writer<'_>,
    dest: &DestKey,
    settings: Option<&DestSettings>,
) -> Result<(), EncodeError> {
    let nest = message.begin_nest(cmd_attr::DEST);
    put_address(message, dest_attr::ADDR, dest.address)?;
    message.put(dest_attr::PORT, &dest.port.to_be_bytes())?;
    if let Some(settings) = settings {
        message.put(
            dest_attr::FWD_METHOD,
            &settings.forward.kernel_value().to_ne_bytes(),
        )?;
        message.put(dest_attr::WEIGHT, &settings.weight.to_ne_bytes())?;
        message.put(dest_attr::U_THRESH, &0u32.to_ne_bytes())?;
        message.put(dest_attr::L_THRESH, &0u32.to_ne_bytes())?;
    }
    message.put(dest_attr::ADDR_FAMILY, &dest.family().af().to_ne_bytes())?;
    message.end_nest(nest)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;
    use std::net::{Ipv4Addr, Ipv6Addr};

    use neli::ToBytes;
    use neli::consts::nl::NlmF;
    use neli::genl::{GenlmsghdrBuilder, Nlattr, NoUserHeader};
    use neli::nl::{NlPayload, NlmsghdrBuilder};
    use neli::types::{Buffer, GenlBuffer};

    use super::super::fixtures::{persistent, persistent6, vip, vip6};
    use super::*;
    use crate::kernel::samples::{FAMILY, neli_attr};
    use crate::plan::ipvs::Forward;

    fn real() -> (DestKey, DestSettings) {
        (
            DestKey {
                address: Ipv4Addr::new(10, 0, 0, 1).into(),
                port: 8080,
            },
            DestSettings {
                forward: Forward::Tunnel,
                weight: 5,
            },
        )
    }

    fn encoded(message: Message<'_>, seq: u32, ack: bool) -> Vec<u8> {
        let mut out = Vec::new();
        message.encode(FAMILY, seq, ack, &mut out).expect("encodes");
        out
    }

    /// A message spelt out: what `ipvsadm -A -t 198.51.100.10:80 -s wlc -p 300
    /// -M 255.255.255.0` sends (but for the address, 4 bytes instead of 16).
    #[test]
    #[cfg(target_endian = "little")]
    fn a_new_service_message_in_bytes() {
        let expected: &[u8] = &[
            92, 0, 0, 0, 0x20, 0, 1, 0, 7, 0, 0, 0, 0, 0, 0, 0, // nlmsghdr: REQUEST, seq 7
            1, 1, 0, 0, // genl: IPVS_CMD_NEW_SERVICE, version 1
            72, 0, 1, 0, // IPVS_CMD_ATTR_SERVICE
            6, 0, 1, 0, 2, 0, 0, 0, // AF_INET (u16, padded)
            6, 0, 2, 0, 6, 0, 0, 0, // IPPROTO_TCP (u16, padded)
            8, 0, 3, 0, 198, 51, 100, 10, // address
            6, 0, 4, 0, 0, 80, 0, 0, // port, big endian
            8, 0, 6, 0, b'w', b'l', b'c', 0, // scheduler
            12, 0, 7, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, // flags, mask
            8, 0, 8, 0, 44, 1, 0, 0, // timeout 300
            8, 0, 9, 0, 255, 255, 255, 0, // netmask, big endian
        ];
        let settings = persistent();
        assert_eq!(
            encoded(Message::NewService(&vip(), &settings), 7, false),
            expected
        );
    }

    /// The same for an IPv6 service: `ipvsadm -A -t [2001:db8::10]:80 -s wlc
    /// -p 300 -M 64`: AF_INET6, a 16-byte address, and the netmask a prefix
    /// length in host order.
    #[test]
    #[cfg(target_endian = "little")]
    fn a_new_ipv6_service_message_in_bytes() {
        let expected: &[u8] = &[
            104, 0, 0, 0, 0x20, 0, 1, 0, 7, 0, 0, 0, 0, 0, 0, 0, // nlmsghdr: REQUEST, seq 7
            1, 1, 0, 0, // genl: IPVS_CMD_NEW_SERVICE, version 1
            84, 0, 1, 0, // IPVS_CMD_ATTR_SERVICE
            6, 0, 1, 0, 10, 0, 0, 0, // AF_INET6 (u16, padded)
            6, 0, 2, 0, 6, 0, 0, 0, // IPPROTO_TCP (u16, padded)
            20, 0, 3, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 6, 0, 4, 0,
            0, 80, 0, 0, // port, big endian
            8, 0, 6, 0, b'w', b'l', b'c', 0, // scheduler
            12, 0, 7, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, // flags, mask
            8, 0, 8, 0, 44, 1, 0, 0, // timeout 300
            8, 0, 9, 0, 64, 0, 0, 0, // netmask: prefix length 64, host order
        ];
        let settings = persistent6();
        assert_eq!(
            encoded(Message::NewService(&vip6(), &settings), 7, false),
            expected
        );
    }

    /// An IPv6 real server behind an IPv4 service (tunnel mode, the one mode
    /// the kernel allows across families) says its own family.
    #[test]
    #[cfg(target_endian = "little")]
    fn a_real_server_says_its_own_family_which_may_differ_from_the_services() {
        let dest = DestKey {
            address: Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x11).into(),
            port: 80,
        };
        let tunnel = DestSettings {
            forward: Forward::Tunnel,
            weight: 1,
        };
        let message = encoded(Message::NewDest(&vip(), &dest, &tunnel), 3, true);
        let expected_dest: &[u8] = &[
            72, 0, 2, 0, // IPVS_CMD_ATTR_DEST
            20, 0, 1, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11, 6, 0, 2, 0,
            0, 80, 0, 0, // port, big endian
            8, 0, 3, 0, 2, 0, 0, 0, // IP_VS_CONN_F_TUNNEL
            8, 0, 4, 0, 1, 0, 0, 0, // weight
            8, 0, 5, 0, 0, 0, 0, 0, // upper threshold
            8, 0, 6, 0, 0, 0, 0, 0, // lower threshold
            6, 0, 11, 0, 10, 0, 0, 0, // IPVS_DEST_ATTR_ADDR_FAMILY: AF_INET6
        ];
        assert!(message.ends_with(expected_dest), "{message:?}");
        // The service part before it is the IPv4 service's key.
        let service: &[u8] = &[6, 0, 1, 0, 2, 0, 0, 0];
        assert_eq!(&message[24..32], service);
    }

    /// A nested attribute without `NLA_F_NESTED`, as ipvsadm sends it.
    fn neli_nest(kind: u16, children: Vec<Nlattr<u16, Buffer>>) -> Nlattr<u16, Buffer> {
        let children: GenlBuffer<u16, Buffer> = children.into_iter().collect();
        let mut bytes = Cursor::new(Vec::new());
        children.to_bytes(&mut bytes).unwrap();
        neli_attr(kind, bytes.get_ref())
    }

    fn neli_message(
        flags: NlmF,
        seq: u32,
        command: u8,
        attrs: Vec<Nlattr<u16, Buffer>>,
    ) -> Vec<u8> {
        let genl = GenlmsghdrBuilder::<u8, u16, NoUserHeader>::default()
            .cmd(command)
            .version(IPVS_VERSION)
            .attrs(attrs.into_iter().collect())
            .build()
            .unwrap();
        let message = NlmsghdrBuilder::default()
            .nl_type(FAMILY)
            .nl_flags(NlmF::REQUEST | flags)
            .nl_seq(seq)
            .nl_payload(NlPayload::Payload(genl))
            .build()
            .unwrap();
        let mut bytes = Cursor::new(Vec::new());
        message.to_bytes(&mut bytes).unwrap();
        bytes.into_inner()
    }

    fn neli_service(key: &ServiceKey, settings: Option<&ServiceSettings>) -> Nlattr<u16, Buffer> {
        let mut attrs = vec![neli_attr(svc_attr::AF, &key.family().af().to_ne_bytes())];
        match *key {
            ServiceKey::Vip {
                protocol,
                address,
                port,
            } => {
                attrs.push(neli_attr(svc_attr::PROTOCOL, &protocol.to_ne_bytes()));
                attrs.push(neli_attr(svc_attr::ADDR, &octets(address)));
                attrs.push(neli_attr(svc_attr::PORT, &port.to_be_bytes()));
            }
            ServiceKey::Fwmark { mark, .. } => {
                attrs.push(neli_attr(svc_attr::FWMARK, &mark.to_ne_bytes()));
            }
        }
        if let Some(s) = settings {
            let name = format!("{}\0", s.scheduler);
            let flags = [s.flags.to_ne_bytes(), u32::MAX.to_ne_bytes()].concat();
            attrs.push(neli_attr(svc_attr::SCHED_NAME, name.as_bytes()));
            attrs.push(neli_attr(svc_attr::FLAGS, &flags));
            attrs.push(neli_attr(svc_attr::TIMEOUT, &s.timeout.to_ne_bytes()));
            attrs.push(neli_attr(svc_attr::NETMASK, &s.netmask.kernel_value()));
        }
        neli_nest(cmd_attr::SERVICE, attrs)
    }

    fn neli_dest(dest: &DestKey, settings: Option<&DestSettings>) -> Nlattr<u16, Buffer> {
        let mut attrs = vec![
            neli_attr(dest_attr::ADDR, &octets(dest.address)),
            neli_attr(dest_attr::PORT, &dest.port.to_be_bytes()),
        ];
        if let Some(s) = settings {
            attrs.push(neli_attr(
                dest_attr::FWD_METHOD,
                &s.forward.kernel_value().to_ne_bytes(),
            ));
            attrs.push(neli_attr(dest_attr::WEIGHT, &s.weight.to_ne_bytes()));
            attrs.push(neli_attr(dest_attr::U_THRESH, &0u32.to_ne_bytes()));
            attrs.push(neli_attr(dest_attr::L_THRESH, &0u32.to_ne_bytes()));
        }
        attrs.push(neli_attr(
            dest_attr::ADDR_FAMILY,
            &dest.family().af().to_ne_bytes(),
        ));
        neli_nest(cmd_attr::DEST, attrs)
    }

    fn octets(address: std::net::IpAddr) -> Vec<u8> {
        match address {
            std::net::IpAddr::V4(a) => a.octets().to_vec(),
            std::net::IpAddr::V6(a) => a.octets().to_vec(),
        }
    }

    #[test]
    fn every_ipv6_request_is_the_bytes_neli_builds() {
        let vip = vip6();
        let mark = ServiceKey::Fwmark {
            mark: 0x1_0001,
            family: crate::config::model::types::Family::Ipv6,
        };
        let settings = persistent6();
        let dest = DestKey {
            address: Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x11).into(),
            port: 8080,
        };
        let to = DestSettings {
            forward: Forward::Masquerade,
            weight: 3,
        };
        let none = NlmF::empty();
        let cases = [
            (
                encoded(Message::NewService(&vip, &settings), 1, false),
                neli_message(
                    none,
                    1,
                    cmd::NEW_SERVICE,
                    vec![neli_service(&vip, Some(&settings))],
                ),
            ),
            (
                encoded(Message::SetService(&mark, &settings), 2, false),
                neli_message(
                    none,
                    2,
                    cmd::SET_SERVICE,
                    vec![neli_service(&mark, Some(&settings))],
                ),
            ),
            (
                encoded(Message::NewDest(&vip, &dest, &to), 3, false),
                neli_message(
                    none,
                    3,
                    cmd::NEW_DEST,
                    vec![neli_service(&vip, None), neli_dest(&dest, Some(&to))],
                ),
            ),
            (
                encoded(Message::DelDest(&mark, &dest), 4, false),
                neli_message(
                    none,
                    4,
                    cmd::DEL_DEST,
                    vec![neli_service(&mark, None), neli_dest(&dest, None)],
                ),
            ),
        ];
        for (ours, theirs) in cases {
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn every_request_is_the_bytes_neli_builds() {
        let vip = vip();
        let mark = ServiceKey::Fwmark {
            mark: 0x1_0001,
            family: crate::config::model::types::Family::Ipv4,
        };
        let settings = persistent();
        let (dest, to) = real();
        let ack = NlmF::ACK;
        let none = NlmF::empty();
        let cases = [
            (
                encoded(Message::NewService(&vip, &settings), 1, false),
                neli_message(
                    none,
                    1,
                    cmd::NEW_SERVICE,
                    vec![neli_service(&vip, Some(&settings))],
                ),
            ),
            (
                encoded(Message::SetService(&mark, &settings), 2, true),
                neli_message(
                    ack,
                    2,
                    cmd::SET_SERVICE,
                    vec![neli_service(&mark, Some(&settings))],
                ),
            ),
            (
                encoded(Message::DelService(&mark), 3, false),
                neli_message(none, 3, cmd::DEL_SERVICE, vec![neli_service(&mark, None)]),
            ),
            (
                encoded(Message::NewDest(&vip, &dest, &to), 4, true),
                neli_message(
                    ack,
                    4,
                    cmd::NEW_DEST,
                    vec![neli_service(&vip, None), neli_dest(&dest, Some(&to))],
                ),
            ),
            (
                encoded(Message::SetDest(&mark, &dest, &to), 5, false),
                neli_message(
                    none,
                    5,
                    cmd::SET_DEST,
                    vec![neli_service(&mark, None), neli_dest(&dest, Some(&to))],
                ),
            ),
            (
                encoded(Message::DelDest(&vip, &dest), 6, false),
                neli_message(
                    none,
                    6,
                    cmd::DEL_DEST,
                    vec![neli_service(&vip, None), neli_dest(&dest, None)],
                ),
            ),
        ];
        for (ours, theirs) in cases {
            assert_eq!(ours, theirs);
        }

        let mut out = Vec::new();
        dump_request(&mut out, FAMILY, 7, None).unwrap();
        assert_eq!(out, neli_message(NlmF::DUMP, 7, cmd::GET_SERVICE, vec![]));
        out.clear();
        dump_request(&mut out, FAMILY, 8, Some(&vip)).unwrap();
        assert_eq!(
            out,
            neli_message(NlmF::DUMP, 8, cmd::GET_DEST, vec![neli_service(&vip, None)])
        );
        out.clear();
        request(&mut out, FAMILY, 9, cmd::FLUSH).unwrap();
        assert_eq!(out, neli_message(ack, 9, cmd::FLUSH, vec![]));
        out.clear();
        timeouts_request(&mut out, FAMILY, 10, (900, 120, 300)).unwrap();
        assert_eq!(
            out,
            neli_message(
                ack,
                10,
                cmd::SET_CONFIG,
                vec![
                    neli_attr(cmd_attr::TIMEOUT_TCP, &900u32.to_ne_bytes()),
                    neli_attr(cmd_attr::TIMEOUT_TCP_FIN, &120u32.to_ne_bytes()),
                    neli_attr(cmd_attr::TIMEOUT_UDP, &300u32.to_ne_bytes()),
                ],
            )
        );
    }

    /// What `ipvsadm --start-daemon master --mcast-interface eth1 --syncid 51`
    /// sends, and `--stop-daemon backup`.
    #[test]
    #[cfg(target_endian = "little")]
    fn the_sync_daemon_requests_in_bytes() {
        let daemon = SyncDaemon {
            role: SyncRole::Master,
            interface: "eth1".to_owned(),
            sync_id: 51,
        };
        let mut out = Vec::new();
        start_daemon_request(&mut out, FAMILY, 3, &daemon).unwrap();
        let expected: &[u8] = &[
            52, 0, 0, 0, 0x20, 0, 5, 0, 3, 0, 0, 0, 0, 0, 0, 0, // nlmsghdr: ACK, seq 3
            9, 1, 0, 0, // genl: IPVS_CMD_NEW_DAEMON, version 1
            32, 0, 3, 0, // IPVS_CMD_ATTR_DAEMON
            8, 0, 1, 0, 1, 0, 0, 0, // IP_VS_STATE_MASTER
            9, 0, 2, 0, b'e', b't', b'h', b'1', 0, 0, 0, 0, // the interface, NUL, padding
            8, 0, 3, 0, 51, 0, 0, 0, // sync id
        ];
        assert_eq!(out, expected);
        out.clear();
        stop_daemon_request(&mut out, FAMILY, 4, SyncRole::Backup).unwrap();
        let expected: &[u8] = &[
            32, 0, 0, 0, 0x20, 0, 5, 0, 4, 0, 0, 0, 0, 0, 0, 0, // nlmsghdr: ACK, seq 4
            10, 1, 0, 0, // genl: IPVS_CMD_DEL_DAEMON, version 1
            12, 0, 3, 0, // IPVS_CMD_ATTR_DAEMON
            8, 0, 1, 0, 2, 0, 0, 0, // IP_VS_STATE_BACKUP
        ];
        assert_eq!(out, expected);
        out.clear();
        daemons_request(&mut out, FAMILY, 5).unwrap();
        assert_eq!(out, neli_message(NlmF::DUMP, 5, cmd::GET_DAEMON, vec![]));
    }

    #[test]
    fn a_batch_is_the_messages_back_to_back() {
        let vip = vip();
        let (dest, to) = real();
        let mut batch = Vec::new();
        Message::NewDest(&vip, &dest, &to)
            .encode(FAMILY, 1, false, &mut batch)
            .unwrap();
        Message::DelDest(&vip, &dest)
            .encode(FAMILY, 2, true, &mut batch)
            .unwrap();
        let first = encoded(Message::NewDest(&vip, &dest, &to), 1, false);
        assert_eq!(&batch[..first.len()], first);
        assert_eq!(
            &batch[first.len()..],
            encoded(Message::DelDest(&vip, &dest), 2, true)
        );
    }

    #[test]
    fn an_attribute_too_long_for_netlink_is_an_error_not_a_wrong_length() {
        let settings = ServiceSettings {
            scheduler: "x".repeat(70_000),
            ..persistent()
        };
        let mut out = Vec::new();
        let error = Message::NewService(&vip(), &settings)
            .encode(FAMILY, 1, false, &mut out)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot encode the request: an attribute of 70005 bytes (at most 65535)"
        );
    }
}
