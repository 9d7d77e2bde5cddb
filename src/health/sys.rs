//! The checkers' raw sockets and interface list: every `unsafe` block of the
//! health checker, behind safe functions that no argument can make unsound.
//! Socket addresses are C structures of a sealed set ([`SocketAddress`]), and
//! a socket registered with tokio never lets its descriptor out.

use std::ffi::CStr;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

/// A non-blocking socket of `domain`, `kind` and `protocol`, as socket(2) takes them.
pub(super) fn socket(
    domain: libc::c_int,
    kind: libc::c_int,
    protocol: libc::c_int,
) -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes plain integers and touches no memory of ours.
    let fd = unsafe {
        libc::socket(
            domain,
            kind | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            protocol,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor socket(2) just opened: valid, and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sets socket option `name` of `level` on `fd` to `value`, the option's bytes
/// as setsockopt(2) takes them (an integer option: its `to_ne_bytes()`).
pub(super) fn set_option(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: &[u8],
) -> io::Result<()> {
    let len = libc::socklen_t::try_from(value.len())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: setsockopt(2) reads `value.len()` bytes from `value`, borrowed for
    // the call, on a descriptor borrowed for the call; it only reads them, and
    // fails on an option or a length it does not take.
    let result =
        unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, value.as_ptr().cast(), len) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets `SO_MARK` of socket `fd` to `mark`.
pub(super) fn set_mark(fd: BorrowedFd<'_>, mark: u32) -> io::Result<()> {
    set_option(fd, libc::SOL_SOCKET, libc::SO_MARK, &mark.to_ne_bytes())
}

mod sealed {
    /// A C socket address structure. Sealed: implemented here only, for
    /// `repr(C)` structs of integers and integer arrays, which every bit
    /// pattern (all zeroes, whatever the kernel writes) leaves valid. Over
    /// any other type, `bind`, `send_datagram` and `receive_datagram` would
    /// hand the kernel a pointer to something that is not an address, and
    /// `receive_datagram` would conjure a value (a reference, an enum) out of
    /// zeroes.
    pub trait SocketAddress: Copy {}
    impl SocketAddress for libc::sockaddr_in {}
    impl SocketAddress for libc::sockaddr_in6 {}
    impl SocketAddress for libc::sockaddr_ll {}
}
pub(super) use sealed::SocketAddress;

/// Binds `fd` to `address`, a socket address structure of the socket's family.
pub(super) fn bind<A: SocketAddress>(fd: &OwnedFd, address: &A) -> io::Result<()> {
    // SAFETY: `address` is a C socket address structure (`SocketAddress`) of
    // `size_of::<A>()` bytes, borrowed for the call; bind(2) only reads it.
    let result = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const *address).cast(),
            size_of::<A>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A datagram socket registered with tokio. Its descriptor is private: an
/// `AsyncFd` handed out would let a caller swap the descriptor under tokio's
/// registration (`get_mut`), which `AsyncFd::register` forbids.
pub(super) struct DatagramSocket(AsyncFd<OwnedFd>);

/// A datagram socket, registered with tokio.
pub(super) fn register(fd: OwnedFd) -> io::Result<DatagramSocket> {
    // SAFETY: the OwnedFd is moved in, and `DatagramSocket` never lets it out
    // nor replaces it, so it stays open and the same descriptor as long as the
    // AsyncFd.
    unsafe { AsyncFd::register(fd) }
        .map(DatagramSocket)
        .map_err(|error| error.into_parts().1)
}

/// Sends `packet` to `address`, a socket address structure of the socket's family.
pub(super) async fn send_datagram<A: SocketAddress>(
    socket: &DatagramSocket,
    packet: &[u8],
    address: &A,
) -> io::Result<()> {
    loop {
        let mut guard = socket.0.writable().await?;
        let sent = guard.try_io(|fd| {
            // SAFETY: sendto(2) reads `packet.len()` bytes of `packet` and
            // `size_of::<A>()` bytes of `address`, a C socket address structure
            // (`SocketAddress`); both are borrowed for the call.
            let n = unsafe {
                libc::sendto(
                    fd.as_raw_fd(),
                    packet.as_ptr().cast(),
                    packet.len(),
                    0,
                    (&raw const *address).cast(),
                    size_of::<A>() as libc::socklen_t,
                )
            };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        });
        if let Ok(result) = sent {
            return result;
        }
    }
}

/// Receives one datagram into `buffer`: its length and its sender's address.
/// `A` is the plain C address structure of the socket's family.
pub(super) async fn receive_datagram<A: SocketAddress>(
    socket: &DatagramSocket,
    buffer: &mut [u8],
) -> io::Result<(usize, A)> {
    loop {
        let mut guard = socket.0.readable().await?;
        // SAFETY: `A` is a C socket address structure (`SocketAddress`): integers
        // and integer arrays, for which all zeroes is a valid value.
        let mut from: A = unsafe { std::mem::zeroed() };
        let received = guard.try_io(|fd| {
            let mut from_len = size_of::<A>() as libc::socklen_t;
            // SAFETY: recvfrom(2) writes at most `buffer.len()` bytes into
            // `buffer` and at most `from_len` (`size_of::<A>()`) bytes into
            // `from`, whose every bit pattern is valid (`SocketAddress`); both
            // are borrowed mutably for the call.
            let n = unsafe {
                libc::recvfrom(
                    fd.as_raw_fd(),
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                    0,
                    (&raw mut from).cast(),
                    &mut from_len,
                )
            };
            usize::try_from(n).map_err(|_| io::Error::last_os_error())
        });
        if let Ok(result) = received {
            return result.map(|len| (len, from));
        }
    }
}

/// What the IPv6 stack says of a received packet, when the socket asked for it
/// (`IPV6_RECVHOPLIMIT`, `IPV6_RECVPKTINFO`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Ancillary {
    /// The hop limit the packet arrived with.
    pub hop_limit: Option<u8>,
    /// The index of the interface it arrived on.
    pub index: Option<u32>,
}

/// Room for one hop limit and one packet info, with their headers; the
/// kernel truncates (`MSG_CTRUNC`) rather than overflow it.
const CONTROL_LEN: usize = 128;

/// Receives one datagram into `buffer`, as [`receive_datagram`], with the
/// hop limit and interface the IPv6 stack reports for it.
pub(super) async fn receive_message<A: SocketAddress>(
    socket: &DatagramSocket,
    buffer: &mut [u8],
) -> io::Result<(usize, A, Ancillary)> {
    loop {
        let mut guard = socket.0.readable().await?;
        // SAFETY: `A` is a C socket address structure (`SocketAddress`) for which
        // all zeroes is a valid value.
        let mut from: A = unsafe { std::mem::zeroed() };
        // u64s: cmsghdr's alignment (its `cmsg_len` is a size_t).
        let mut control = [0u64; CONTROL_LEN / 8];
        let received = guard.try_io(|fd| {
            let mut iov = libc::iovec {
                iov_base: buffer.as_mut_ptr().cast(),
                iov_len: buffer.len(),
            };
            // SAFETY: msghdr is a C structure of integers and pointers, for
            // which all zeroes (null pointers, zero lengths) is valid.
            let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
            message.msg_name = (&raw mut from).cast();
            message.msg_namelen = size_of::<A>() as libc::socklen_t;
            message.msg_iov = &raw mut iov;
            message.msg_iovlen = 1;
            message.msg_control = control.as_mut_ptr().cast();
            message.msg_controllen = CONTROL_LEN as _;
            // SAFETY: recvmsg(2) writes at most `iov_len` bytes into `buffer`,
            // at most `msg_namelen` (`size_of::<A>()`) bytes into `from`, whose
            // every bit pattern is valid, and at most `msg_controllen` bytes into
            // `control`; all three are borrowed mutably for the call and outlive it.
            let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &raw mut message, 0) };
            let len = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
            let mut ancillary = Ancillary::default();
            // SAFETY: `message` is the header recvmsg just filled: its control
            // pointer and length (set by the kernel to what it wrote, at most
            // CONTROL_LEN) describe `control`, alive and unborrowed here, so
            // CMSG_FIRSTHDR/CMSG_NXTHDR walk headers inside it and return null
            // past its end.
            let mut header = unsafe { libc::CMSG_FIRSTHDR(&raw const message) };
            while !header.is_null() {
                // SAFETY: a non-null header inside `control` (above), aligned as
                // the kernel and the CMSG macros align them.
                let cmsg = unsafe { &*header };
                // SAFETY: the data of a header inside `control`.
                let data = unsafe { libc::CMSG_DATA(header) };
                let has = |wanted: usize| {
                    // SAFETY: CMSG_LEN only computes a length.
                    let needed = unsafe { libc::CMSG_LEN(wanted as libc::c_uint) };
                    cmsg.cmsg_len as usize >= needed as usize
                };
                if cmsg.cmsg_level == libc::IPPROTO_IPV6 {
                    if cmsg.cmsg_type == libc::IPV6_HOPLIMIT && has(size_of::<libc::c_int>()) {
                        // SAFETY: the header says it holds a c_int; it may be
                        // unaligned, hence read_unaligned.
                        let hops = unsafe { data.cast::<libc::c_int>().read_unaligned() };
                        ancillary.hop_limit = u8::try_from(hops).ok();
                    } else if cmsg.cmsg_type == libc::IPV6_PKTINFO
                        && has(size_of::<libc::in6_pktinfo>())
                    {
                        // SAFETY: the header says it holds an in6_pktinfo, a C
                        // structure of integers; read_unaligned for alignment.
                        let info = unsafe { data.cast::<libc::in6_pktinfo>().read_unaligned() };
                        ancillary.index = Some(info.ipi6_ifindex as u32);
                    }
                }
                // SAFETY: `header` is inside `control`, which `message` describes.
                header = unsafe { libc::CMSG_NXTHDR(&raw const message, header) };
            }
            Ok((len, ancillary))
        });
        if let Ok(result) = received {
            return result.map(|(len, ancillary)| (len, from, ancillary));
        }
    }
}

/// One address of one interface, as getifaddrs(3) lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct InterfaceAddress {
    pub name: String,
    pub address: Family,
}

/// What an [`InterfaceAddress`] holds, by its family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Family {
    /// AF_PACKET: the interface's index and hardware address (`length` bytes
    /// of `hardware`).
    Link {
        index: u32,
        length: u8,
        hardware: [u8; 8],
    },
    /// AF_INET: an address and its netmask, when the list gives one.
    Ipv4 {
        address: Ipv4Addr,
        netmask: Option<Ipv4Addr>,
    },
    /// AF_INET6: an address, its prefix length when the list gives a netmask,
    /// and its scope (the interface's index for a link-local address).
    Ipv6 {
        address: Ipv6Addr,
        prefix: Option<u8>,
        scope: u32,
    },
    /// Any other family.
    Other,
}

fn ipv4(address: &libc::sockaddr_in) -> Ipv4Addr {
    Ipv4Addr::from(u32::from_be(address.sin_addr.s_addr))
}

/// The machine's interface addresses, in getifaddrs(3)'s order; entries
/// without an address are left out.
pub(super) fn interface_addresses() -> io::Result<Vec<InterfaceAddress>> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs(3) writes the head of a list it allocates into `list`,
    // borrowed mutably for the call; it is freed below with freeifaddrs(3).
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut addresses = Vec::new();
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: a non-null node of the list getifaddrs returned (its head or
        // an `ifa_next`), alive until freeifaddrs below; read only.
        let ifaddr = unsafe { &*entry };
        entry = ifaddr.ifa_next;
        if ifaddr.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: `ifa_name` of a node is a NUL-terminated string in the same
        // allocation; it is copied out before the list is freed.
        let name = unsafe { CStr::from_ptr(ifaddr.ifa_name) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: `ifa_addr` is non-null (above) and points to a socket address
        // in the list's allocation, whose first field is `sa_family`.
        let address = match i32::from(unsafe { (*ifaddr.ifa_addr).sa_family }) {
            libc::AF_PACKET => {
                // SAFETY: Linux's getifaddrs gives an AF_PACKET address as a
                // whole, aligned `sockaddr_ll`.
                let link = unsafe { &*ifaddr.ifa_addr.cast::<libc::sockaddr_ll>() };
                Family::Link {
                    index: link.sll_ifindex as u32,
                    length: link.sll_halen,
                    hardware: link.sll_addr,
                }
            }
            libc::AF_INET => {
                // SAFETY: Linux's getifaddrs gives an AF_INET address as a
                // whole, aligned `sockaddr_in`.
                let address = unsafe { &*ifaddr.ifa_addr.cast::<libc::sockaddr_in>() };
                let netmask = (!ifaddr.ifa_netmask.is_null()).then(|| {
                    // SAFETY: non-null (checked), and an AF_INET address's
                    // netmask is a whole, aligned `sockaddr_in` too.
                    unsafe { &*ifaddr.ifa_netmask.cast::<libc::sockaddr_in>() }
                });
                Family::Ipv4 {
                    address: ipv4(address),
                    netmask: netmask.map(ipv4),
                }
            }
            libc::AF_INET6 => {
                // SAFETY: Linux's getifaddrs gives an AF_INET6 address as a
                // whole, aligned `sockaddr_in6`.
                let address = unsafe { &*ifaddr.ifa_addr.cast::<libc::sockaddr_in6>() };
                let prefix = (!ifaddr.ifa_netmask.is_null()).then(|| {
                    // SAFETY: non-null (checked), and an AF_INET6 address's
                    // netmask is a whole, aligned `sockaddr_in6` too.
                    let mask = unsafe { &*ifaddr.ifa_netmask.cast::<libc::sockaddr_in6>() };
                    u128::from_be_bytes(mask.sin6_addr.s6_addr).count_ones() as u8
                });
                Family::Ipv6 {
                    address: Ipv6Addr::from(address.sin6_addr.s6_addr),
                    prefix,
                    scope: address.sin6_scope_id,
                }
            }
            _ => Family::Other,
        };
        addresses.push(InterfaceAddress { name, address });
    }
    // SAFETY: the list getifaddrs returned, freed once; nothing borrowed from it
    // outlives this (names and addresses were copied out).
    unsafe { libc::freeifaddrs(list) };
    Ok(addresses)
}
