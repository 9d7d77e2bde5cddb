//! The kernel's IPVS connection sync, started over lbconsole's IPVS module: two
//! boxes each running a master and a backup sync daemon on the link between
//! them, as an HA pair runs them, and a connection through one box appears in
//! the other's connection table.
//!
//! Box A is the test's namespace: a client on eth1, a server on eth2 (NAT, the
//! server routes back through A), box B on sync0. Box B is a namespace with
//! sync0 alone and the same virtual service.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lbconsole::kernel::ipvs::IpvsNetlink;
use lbconsole::kernel::{IpvsBackend, KernelError, SyncDaemon, SyncRole, ensure_sync_daemons};
use lbconsole::plan::ipvs::{
    DestKey, DestSettings, Forward, IpvsOp, Netmask, Service, ServiceKey, ServiceSettings, TCP,
};
use tokio::runtime::Runtime;

use crate::ipvs_backend::lab_and_runtime;
use crate::support::{Netns, wait_until};

const VIP: &str = "198.51.100.10";
const SERVER: &str = "10.0.1.2";

fn virtual_service() -> IpvsOp {
    let server = DestKey {
        address: SERVER.parse().expect("an address"),
        port: 80,
    };
    let masquerade = DestSettings {
        forward: Forward::Masquerade,
        weight: 1,
    };
    IpvsOp::AddService {
        key: ServiceKey::Vip {
            protocol: TCP,
            address: VIP.parse().expect("an address"),
            port: 80,
        },
        service: Service {
            settings: ServiceSettings {
                scheduler: "rr".to_owned(),
                flags: 0,
                timeout: 0,
                netmask: Netmask::Ipv4(std::net::Ipv4Addr::BROADCAST),
                fwmark_protocol: 0,
            },
            destinations: [(server, masquerade)].into_iter().collect(),
        },
    }
}

/// The line of `ipvsadm -Lnc` whose client, virtual and real addresses are
/// `entry`.
fn connection_line<'a>(table: &'a str, entry: &[String; 3]) -> Option<&'a str> {
    table.lines().find(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        words.windows(3).any(|three| three == entry)
    })
}

fn both_on_sync0() -> Vec<SyncDaemon> {
    [SyncRole::Master, SyncRole::Backup]
        .into_iter()
        .map(|role| SyncDaemon {
            role,
            interface: "sync0".to_owned(),
            sync_id: 51,
        })
        .collect()
}

/// Runs `f` with an IPVS connection of the namespace the calling thread is in.
async fn with_ipvs<T>(f: impl AsyncFnOnce(&mut IpvsNetlink) -> T) -> T {
    let mut ipvs = IpvsNetlink::connect().await.expect("connect to IPVS");
    f(&mut ipvs).await
}

/// Runs `f` with an IPVS connection in `netns`, on the shared runtime.
fn in_box<T: Send + 'static>(
    netns: &Netns,
    runtime: &Arc<Runtime>,
    f: impl AsyncFnOnce(&mut IpvsNetlink) -> T + Send + 'static,
) -> T {
    let runtime = Arc::clone(runtime);
    netns
        .thread(move || runtime.block_on(with_ipvs(f)))
        .join()
        .expect("the box's thread")
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn a_connection_through_one_box_is_in_the_peers_table_within_seconds() {
    let started = Instant::now();
    let (lab, runtime) = lab_and_runtime("ipvs-sync");
    let runtime = Arc::new(runtime);
    lab.sysctl("net/ipv4/ip_forward", "1");
    let client = lab.netns("client");
    let server = lab.netns("server");
    let peer = lab.netns("b");
    lab.veth("eth1", "c1", &client);
    lab.veth("eth2", "s1", &server);
    lab.veth("sync0", "sync0", &peer);
    for (link, address) in [
        ("eth1", "198.51.100.1/24"),
        ("eth1", "198.51.100.10/24"),
        ("eth2", "10.0.1.1/24"),
        ("sync0", "10.255.0.1/24"),
    ] {
        lab.ip(&["addr", "add", address, "dev", link]);
        lab.ip(&["link", "set", link, "up"]);
    }
    client.ip(&["addr", "add", "198.51.100.2/24", "dev", "c1"]);
    server.ip(&["addr", "add", "10.0.1.2/24", "dev", "s1"]);
    server.ip(&["route", "add", "default", "via", "10.0.1.1"]);
    peer.ip(&["addr", "add", "10.255.0.2/24", "dev", "sync0"]);

    // Both boxes: the same service, a master and a backup on sync0.
    let wanted = both_on_sync0();
    let in_a = runtime.block_on(with_ipvs(async |ipvs| {
        assert!(ipvs.execute(&[virtual_service()]).await[0].is_ok());
        ensure_sync_daemons(ipvs, &wanted).await?;
        // Twice is nothing more.
        ensure_sync_daemons(ipvs, &wanted).await?;
        ipvs.sync_daemons().await
    }));
    assert_eq!(in_a, Ok(wanted.clone()));
    let wanted_in_b = wanted.clone();
    let in_b = in_box(&peer, &runtime, async move |ipvs| {
        assert!(ipvs.execute(&[virtual_service()]).await[0].is_ok());
        ensure_sync_daemons(ipvs, &wanted_in_b).await?;
        ipvs.sync_daemons().await
    });
    assert_eq!(in_b, Ok(wanted.clone()));
    // ipvsadm reads them as started.
    for table in [
        lab.sh("ipvsadm -L --daemon"),
        peer.sh("ipvsadm -L --daemon"),
    ] {
        for role in ["master", "backup"] {
            assert!(
                table.contains(&format!("{role} sync daemon (mcast=sync0, syncid=51")),
                "{table}"
            );
        }
    }

    // `status` shows them, in words and in JSON.
    lab.write_config("", "", "");
    let status = lab.lbconsole(&["status"]).expect_success();
    assert!(
        status.contains("\n  connection sync: master and backup on sync0, sync id 51\n"),
        "{status}"
    );
    let json = lab.lbconsole(&["status", "--json"]).expect_success();
    let report: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(
        report["sync_daemons"],
        serde_json::json!([
            {"role": "master", "interface": "sync0", "sync_id": 51},
            {"role": "backup", "interface": "sync0", "sync_id": 51},
        ])
    );

    // The kernel's refusals, in words.
    let refusals: Vec<String> = runtime.block_on(with_ipvs(async |ipvs| {
        let mut again = wanted[0].clone();
        again.sync_id = 52;
        let missing = SyncDaemon {
            interface: "nosuch0".to_owned(),
            ..wanted[0].clone()
        };
        let mut refusals = vec![ipvs.start_sync_daemon(&again).await];
        ipvs.stop_sync_daemon(SyncRole::Master).await.expect("stop");
        refusals.push(ipvs.start_sync_daemon(&missing).await);
        refusals.push(ipvs.stop_sync_daemon(SyncRole::Master).await);
        ipvs.start_sync_daemon(&wanted[0]).await.expect("restart");
        refusals
            .into_iter()
            .map(|r: Result<(), KernelError>| r.expect_err("refused").to_string())
            .collect()
    }));
    assert_eq!(
        refusals,
        [
            "start the IPVS master sync daemon on sync0 (sync id 52): a master sync daemon is \
             already running: File exists (os error 17)",
            "start the IPVS master sync daemon on nosuch0 (sync id 51): no interface named \
             nosuch0: No such device (os error 19)",
            "stop the IPVS master sync daemon: no master sync daemon is running: No such \
             process (os error 3)",
        ]
    );

    // A connection from the client through A's VIP to the server.
    let listener = server
        .thread(|| TcpListener::bind((SERVER, 80)))
        .join()
        .expect("the server's thread")
        .expect("listen");
    let to_vip: SocketAddr = format!("{VIP}:80").parse().expect("an address");
    let mut connection = client
        .thread(move || TcpStream::connect_timeout(&to_vip, Duration::from_secs(5)))
        .join()
        .expect("the client's thread")
        .expect("connect to the VIP");
    let (mut accepted, _) = listener.accept().expect("accept");
    let timeout = Some(Duration::from_secs(5));
    accepted.set_read_timeout(timeout).expect("a timeout");
    connection.set_read_timeout(timeout).expect("a timeout");
    // A few exchanges: the kernel syncs a TCP connection once established,
    // at its third packet in.
    for round in 0..3u8 {
        connection.write_all(&[round]).expect("the client writes");
        let mut byte = [0];
        accepted.read_exact(&mut byte).expect("the server reads");
        accepted.write_all(&byte).expect("the server answers");
        connection.read_exact(&mut byte).expect("the client reads");
    }
    let client_end = connection.local_addr().expect("the client's address");
    let entry = [
        client_end.to_string(),
        format!("{VIP}:80"),
        format!("{SERVER}:80"),
    ];
    let in_a = lab.sh("ipvsadm -Lnc");
    assert!(
        connection_line(&in_a, &entry).is_some(),
        "A has no {entry:?}:\n{in_a}"
    );
    let synced = Instant::now();
    let learned = wait_until(Duration::from_secs(10), || {
        connection_line(&peer.sh("ipvsadm -Lnc"), &entry).is_some()
    });
    let sync_time = synced.elapsed();
    let in_b = peer.sh("ipvsadm -Lnc");
    assert!(learned, "B did not learn {entry:?} in 10 s:\n{in_b}");
    let line = connection_line(&in_b, &entry).unwrap_or_default();
    assert!(line.contains("ESTABLISHED"), "{in_b}");
    drop((connection, accepted, listener));

    // Nothing wanted: both stop, in both boxes.
    let left_in_a = runtime.block_on(with_ipvs(async |ipvs| {
        ensure_sync_daemons(ipvs, &[]).await?;
        ipvs.sync_daemons().await
    }));
    assert_eq!(left_in_a, Ok(Vec::new()));
    let left_in_b = in_box(&peer, &runtime, async |ipvs| {
        ensure_sync_daemons(ipvs, &[]).await?;
        ipvs.sync_daemons().await
    });
    assert_eq!(left_in_b, Ok(Vec::new()));
    assert_eq!(lab.sh("ipvsadm -L --daemon").trim(), "");
    let status = lab.lbconsole(&["status"]).expect_success();
    assert!(status.contains("\n  connection sync: off\n"), "{status}");
    eprintln!(
        "ipvs sync: B learned A's connection {:.2} s after it was established; the test took {:.1} s",
        sync_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
