//! The IPVS backend on the real kernel, driven directly: what it adds is what
//! `ipvsadm -Ln` shows and what it observes (all of it, or some services),
//! refusals are clean and change nothing, a batch reports each operation on its
//! own, and it is fast on a big table.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::Instant;

use lbconsole::config::model::types::Family;
use lbconsole::kernel::ipvs::{IpvsNetlink, Timeouts};
use lbconsole::kernel::{IpvsBackend, IpvsObservation, KernelError};
use lbconsole::plan::ipvs::{
    DestKey, DestSettings, FLAG_ONEPACKET, FLAG_PERSISTENT, Forward, IpvsOp, IpvsState, Netmask,
    Service, ServiceKey, ServiceSettings, TCP, UDP,
};

use tokio::runtime::Runtime;

use crate::support::Lab;

/// A lab for one test, with the tokio runtime to drive the backend. The runtime
/// is built first, outside the lab's namespace: tokio's process-wide signal
/// handling (the `process` feature) creates a Unix socket pair with the first
/// runtime, which would keep that runtime's namespace, and the services in it,
/// alive until the test binary exits.
pub(crate) fn lab_and_runtime(name: &str) -> (Lab, Runtime) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    (Lab::new(name), runtime)
}

/// Runs `f` with a backend connected in the calling thread's namespace (the
/// lab's).
pub(crate) fn with_ipvs<T>(runtime: &Runtime, f: impl AsyncFnOnce(&mut IpvsNetlink) -> T) -> T {
    runtime.block_on(async {
        let mut ipvs = IpvsNetlink::connect().await.expect("connect to IPVS");
        f(&mut ipvs).await
    })
}

fn vip(protocol: u16, address: &str, port: u16) -> ServiceKey {
    ServiceKey::Vip {
        protocol,
        address: address.parse().expect("an address"),
        port,
    }
}

fn settings(scheduler: &str) -> ServiceSettings {
    ServiceSettings {
        scheduler: scheduler.to_owned(),
        flags: 0,
        timeout: 0,
        netmask: Netmask::Ipv4(Ipv4Addr::BROADCAST),
        fwmark_protocol: 0,
    }
}

fn dest(address: &str, port: u16) -> DestKey {
    DestKey {
        address: address.parse().expect("an address"),
        port,
    }
}

fn to(forward: Forward, weight: u32) -> DestSettings {
    DestSettings { forward, weight }
}

fn service(settings: ServiceSettings, destinations: &[(DestKey, DestSettings)]) -> Service {
    Service {
        settings,
        destinations: destinations.iter().copied().collect(),
    }
}

fn add(key: ServiceKey, service: &Service) -> IpvsOp {
    IpvsOp::AddService {
        key,
        service: service.clone(),
    }
}

fn state(services: &[(ServiceKey, &Service)]) -> IpvsState {
    IpvsState {
        services: services
            .iter()
            .map(|(key, service)| (*key, (*service).clone()))
            .collect(),
    }
}

pub(crate) fn ipvsadm(lab: &Lab) -> String {
    lab.sh("ipvsadm -Ln")
}

const HEADER: &str = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
";

/// Carries out `ops` and panics unless each one succeeded.
async fn execute_ok(ipvs: &mut IpvsNetlink, ops: &[IpvsOp]) {
    let results = ipvs.execute(ops).await;
    assert_eq!(results.len(), ops.len());
    for (op, result) in ops.iter().zip(&results) {
        assert!(result.is_ok(), "{op}: {result:?}");
    }
}

async fn observe(ipvs: &mut IpvsNetlink) -> IpvsObservation {
    ipvs.observe().await.expect("observe the IPVS table")
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn a_vip_service_with_every_forwarding_method_round_trips() {
    let (lab, runtime) = lab_and_runtime("ipvs-vip");
    let key = vip(TCP, "198.51.100.10", 80);
    let web = service(
        settings("wlc"),
        &[
            (dest("10.0.0.1", 8080), to(Forward::Masquerade, 1)),
            (dest("10.0.0.2", 80), to(Forward::Route, 3)),
            (dest("10.0.0.3", 80), to(Forward::Tunnel, 0)),
        ],
    );
    let observed = with_ipvs(&runtime, async |ipvs| {
        execute_ok(ipvs, &[add(key, &web)]).await;
        observe(ipvs).await
    });
    assert_eq!(
        ipvsadm(&lab),
        format!(
            "{HEADER}\
TCP  198.51.100.10:80 wlc
  -> 10.0.0.1:8080                Masq    1      0          0         
  -> 10.0.0.2:80                  Route   3      0          0         
  -> 10.0.0.3:80                  Tunnel  0      0          0         
"
        )
    );
    assert_eq!(observed.state, state(&[(key, &web)]));
    let [status] = &observed.services[..] else {
        panic!("one service: {observed:?}");
    };
    assert_eq!(status.key, key);
    assert_eq!(status.scheduler, "wlc");
    assert_eq!(status.flags, 0);
    let shown: Vec<_> = status
        .destinations
        .iter()
        .map(|d| {
            (
                d.address.to_string(),
                d.port,
                d.forward,
                d.weight,
                d.active_connections,
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("10.0.0.1".to_owned(), 8080, Forward::Masquerade, 1, 0),
            ("10.0.0.2".to_owned(), 80, Forward::Route, 3, 0),
            ("10.0.0.3".to_owned(), 80, Forward::Tunnel, 0, 0),
        ]
    );
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn fwmark_persistent_and_one_packet_services_round_trip() {
    let (lab, runtime) = lab_and_runtime("ipvs-kinds");
    let mark = ServiceKey::Fwmark {
        mark: 0x1_0001,
        family: Family::Ipv4,
    };
    let marked = service(
        ServiceSettings {
            fwmark_protocol: TCP,
            ..settings("rr")
        },
        &[
            (dest("10.0.1.1", 0), to(Forward::Route, 1)),
            (dest("10.0.1.2", 0), to(Forward::Route, 2)),
        ],
    );
    let https = vip(TCP, "198.51.100.20", 443);
    let sticky = service(
        ServiceSettings {
            flags: FLAG_PERSISTENT,
            timeout: 600,
            netmask: Netmask::Ipv4(Ipv4Addr::new(255, 255, 255, 0)),
            ..settings("sh")
        },
        &[(dest("10.0.2.1", 443), to(Forward::Masquerade, 5))],
    );
    let dns = vip(UDP, "198.51.100.53", 53);
    let one_packet = service(
        ServiceSettings {
            flags: FLAG_ONEPACKET,
            ..settings("rr")
        },
        &[(dest("10.0.3.1", 53), to(Forward::Masquerade, 1))],
    );
    let observed = with_ipvs(&runtime, async |ipvs| {
        execute_ok(
            ipvs,
            &[
                add(mark, &marked),
                add(https, &sticky),
                add(dns, &one_packet),
            ],
        )
        .await;
        // Two of the three, and one that is not there.
        let some = BTreeSet::from([mark, dns, vip(TCP, "198.51.100.99", 80)]);
        let part = ipvs
            .observe_services(&some)
            .await
            .expect("observe two services");
        assert_eq!(part, state(&[(mark, &marked), (dns, &one_packet)]));
        observe(ipvs).await
    });
    assert_eq!(
        ipvsadm(&lab),
        format!(
            "{HEADER}\
TCP  198.51.100.20:443 sh persistent 600 mask 255.255.255.0
  -> 10.0.2.1:443                 Masq    5      0          0         
UDP  198.51.100.53:53 rr ops
  -> 10.0.3.1:53                  Masq    1      0          0         
FWM  65537 rr
  -> 10.0.1.1:0                   Route   1      0          0         
  -> 10.0.1.2:0                   Route   2      0          0         
"
        )
    );
    assert_eq!(
        observed.state,
        state(&[(mark, &marked), (https, &sticky), (dns, &one_packet)])
    );
    let flags: BTreeMap<ServiceKey, (u32, u32)> = observed
        .services
        .iter()
        .map(|s| (s.key, (s.flags, s.timeout)))
        .collect();
    assert_eq!(flags[&https], (FLAG_PERSISTENT, 600));
    assert_eq!(flags[&dns], (FLAG_ONEPACKET, 0));
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn edits_and_deletions_change_exactly_what_they_say() {
    let (lab, runtime) = lab_and_runtime("ipvs-edit");
    let key = vip(TCP, "198.51.100.30", 80);
    let a = dest("10.0.4.1", 80);
    let b = dest("10.0.4.2", 80);
    let before = service(
        settings("rr"),
        &[
            (a, to(Forward::Masquerade, 1)),
            (b, to(Forward::Masquerade, 1)),
        ],
    );
    let other = vip(TCP, "198.51.100.31", 80);
    let untouched = service(settings("wrr"), &[(a, to(Forward::Route, 7))]);
    with_ipvs(&runtime, async |ipvs| {
        execute_ok(ipvs, &[add(key, &before), add(other, &untouched)]).await;

        let mut after = before.clone();
        after.settings.scheduler = "wlc".to_owned();
        after.destinations.insert(a, to(Forward::Masquerade, 4));
        after.destinations.remove(&b);
        execute_ok(
            ipvs,
            &[
                IpvsOp::EditService {
                    key,
                    from: before.settings.clone(),
                    to: after.settings.clone(),
                },
                IpvsOp::EditDest {
                    service: key,
                    dest: a,
                    from: to(Forward::Masquerade, 1),
                    to: to(Forward::Masquerade, 4),
                },
                IpvsOp::DeleteDest {
                    service: key,
                    dest: b,
                    settings: to(Forward::Masquerade, 1),
                },
            ],
        )
        .await;
        assert_eq!(
            observe(ipvs).await.state,
            state(&[(key, &after), (other, &untouched)])
        );
        assert_eq!(
            ipvsadm(&lab),
            format!(
                "{HEADER}\
TCP  198.51.100.30:80 wlc
  -> 10.0.4.1:80                  Masq    4      0          0         
TCP  198.51.100.31:80 wrr
  -> 10.0.4.1:80                  Route   7      0          0         
"
            )
        );

        execute_ok(
            ipvs,
            &[IpvsOp::DeleteService {
                key,
                service: after.clone(),
            }],
        )
        .await;
        assert_eq!(observe(ipvs).await.state, state(&[(other, &untouched)]));
    });
}

/// Every scheduler IPVS knows is accepted where the kernel has its module;
/// one it lacks is refused cleanly. (Debian's 6.1 kernel has no `twos`.)
#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn every_scheduler_the_kernel_has_is_accepted() {
    let (lab, runtime) = lab_and_runtime("ipvs-schedulers");
    let names = [
        "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf",
        "twos",
    ];
    let services: Vec<(ServiceKey, Service)> = names
        .iter()
        .zip(8000..)
        .map(|(name, port)| {
            (
                vip(TCP, "198.51.100.40", port),
                service(
                    settings(name),
                    &[(dest("10.0.5.1", port), to(Forward::Masquerade, 1))],
                ),
            )
        })
        .collect();
    let ops: Vec<IpvsOp> = services.iter().map(|(k, s)| add(*k, s)).collect();
    let (results, observed) = execute_and_observe(&runtime, &ops);
    let mut expected = IpvsState::default();
    for ((name, (key, service)), result) in names.iter().zip(&services).zip(&results) {
        let module = lab.try_sh(&format!("modinfo ip_vs_{name}")).success();
        if module {
            assert!(result.is_ok(), "{name}: {result:?}");
            expected.services.insert(*key, service.clone());
        } else {
            assert_eq!(
                reason(result),
                format!(
                    "unknown scheduler `{name}` (no ip_vs_{name} module): No such file or \
                     directory (os error 2)"
                )
            );
        }
    }
    assert_eq!(observed.state, expected);
    let shown = ipvsadm(&lab);
    for (key, service) in &expected.services {
        let ServiceKey::Vip { port, .. } = key else {
            unreachable!("VIP services only");
        };
        let line = format!("TCP  198.51.100.40:{port} {}\n", service.settings.scheduler);
        assert!(shown.contains(&line), "{line}{shown}");
    }
    println!(
        "schedulers accepted: {:?}",
        expected
            .services
            .values()
            .map(|s| s.settings.scheduler.as_str())
            .collect::<Vec<_>>()
    );
}

/// Carries out `ops` (whatever comes of them) and observes the table.
fn execute_and_observe(
    runtime: &Runtime,
    ops: &[IpvsOp],
) -> (Vec<Result<(), KernelError>>, IpvsObservation) {
    with_ipvs(runtime, async |ipvs| {
        let results = ipvs.execute(ops).await;
        (results, observe(ipvs).await)
    })
}

fn reason(result: &Result<(), KernelError>) -> String {
    match result {
        Err(KernelError::Operation { cause, .. }) => cause.to_string(),
        other => panic!("not a refused operation: {other:?}"),
    }
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn refused_operations_report_a_clean_error_and_change_nothing() {
    let (lab, runtime) = lab_and_runtime("ipvs-refused");
    let existing = vip(TCP, "198.51.100.50", 80);
    let there = service(
        settings("rr"),
        &[(dest("10.0.6.1", 80), to(Forward::Masquerade, 1))],
    );
    let fresh = vip(TCP, "198.51.100.51", 80);
    // A weight the kernel keeps as a negative int: refused with ERANGE.
    let too_heavy = to(Forward::Masquerade, u32::MAX);
    // Enough real servers to span three writes, the refused one in the second.
    let many: Vec<(DestKey, DestSettings)> = (0..600u16)
        .map(|i| {
            let weight = if i == 400 {
                too_heavy
            } else {
                to(Forward::Route, 1)
            };
            (
                dest(&format!("10.1.{}.{}", i / 200, i % 200 + 1), 80),
                weight,
            )
        })
        .collect();
    with_ipvs(&runtime, async |ipvs| {
        execute_ok(ipvs, &[add(existing, &there)]).await;
        let before = observe(ipvs).await;
        let shown = ipvsadm(&lab);

        let ops = [
            add(fresh, &service(settings("nosuch"), &[])),
            IpvsOp::AddDest {
                service: fresh,
                dest: dest("10.0.6.2", 80),
                settings: to(Forward::Masquerade, 1),
            },
            add(
                fresh,
                &service(
                    settings("rr"),
                    &[
                        (dest("10.0.6.2", 80), to(Forward::Masquerade, 1)),
                        (dest("10.0.6.3", 80), too_heavy),
                    ],
                ),
            ),
            add(
                existing,
                &service(
                    settings("wlc"),
                    &[
                        (dest("10.0.6.1", 80), to(Forward::Masquerade, 1)),
                        (dest("10.0.6.9", 80), to(Forward::Masquerade, 1)),
                    ],
                ),
            ),
            add(fresh, &service(settings("rr"), &many)),
            IpvsOp::EditDest {
                service: existing,
                dest: dest("10.0.6.7", 80),
                from: to(Forward::Masquerade, 1),
                to: to(Forward::Masquerade, 2),
            },
        ];
        let results = ipvs.execute(&ops).await;
        let reasons: Vec<String> = results.iter().map(reason).collect();
        assert_eq!(
            reasons,
            [
                "unknown scheduler `nosuch` (no ip_vs_nosuch module): No such file or \
                 directory (os error 2)",
                "no such service: No such process (os error 3)",
                "real server 10.0.6.3:80: weight out of range: Numerical result out of range \
                 (os error 34) (the new service was deleted again)",
                "the service already exists: File exists (os error 17) (1 real server(s) it \
                 added to the existing service were removed again)",
                "real server 10.1.2.1:80: weight out of range: Numerical result out of range \
                 (os error 34) (the new service was deleted again)",
                "no such real server: No such file or directory (os error 2)",
            ]
        );
        match &results[1] {
            Err(KernelError::Operation { op, .. }) => {
                assert_eq!(op, &ops[1].to_string());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(observe(ipvs).await, before);
        assert_eq!(ipvsadm(&lab), shown);
    });
}

/// An `AddService` of a service that exists, with more real servers than one
/// write holds: its real servers that went into the existing service are
/// removed again before the next operation, which meets the table as it was.
#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn an_addition_refused_part_way_is_undone_before_the_next_operation() {
    let (_lab, runtime) = lab_and_runtime("ipvs-undo");
    let existing = vip(TCP, "198.51.100.70", 80);
    let there = service(
        settings("rr"),
        &[(dest("10.0.8.1", 80), to(Forward::Masquerade, 1))],
    );
    let mut again = there.clone();
    for i in 0..599u16 {
        let address = format!("10.3.{}.{}", i / 200, i % 200 + 1);
        again
            .destinations
            .insert(dest(&address, 80), to(Forward::Masquerade, 1));
    }
    let ops = [
        add(existing, &again),
        IpvsOp::DeleteDest {
            service: existing,
            dest: dest("10.3.0.1", 80),
            settings: to(Forward::Masquerade, 1),
        },
        IpvsOp::AddDest {
            service: existing,
            dest: dest("10.3.0.2", 80),
            settings: to(Forward::Masquerade, 1),
        },
    ];
    let (results, observed) = with_ipvs(&runtime, async |ipvs| {
        execute_ok(ipvs, &[add(existing, &there)]).await;
        let results = ipvs.execute(&ops).await;
        (results, observe(ipvs).await)
    });
    // The first write: the service (refused), 10.0.8.1 (refused: it is
    // there), 254 real servers added to the existing service.
    assert_eq!(
        reason(&results[0]),
        "the service already exists: File exists (os error 17) (254 real server(s) it added \
         to the existing service were removed again)"
    );
    assert_eq!(
        reason(&results[1]),
        "no such real server: No such file or directory (os error 2)"
    );
    assert!(results[2].is_ok(), "{:?}", results[2]);
    let mut expected = there.clone();
    expected
        .destinations
        .insert(dest("10.3.0.2", 80), to(Forward::Masquerade, 1));
    assert_eq!(observed.state, state(&[(existing, &expected)]));
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn a_batch_reports_each_operation_on_its_own() {
    let (_lab, runtime) = lab_and_runtime("ipvs-batch");
    let key = |i: u32| vip(TCP, &Ipv4Addr::from(0xc633_6400 + i).to_string(), 80);
    let real = |i: u32| dest(&format!("10.2.{}.{}", i / 200, i % 200 + 1), 80);
    let empty = service(settings("rr"), &[]);
    // 250 services, a real server for a service that is not there, then a real
    // server for each of the first 249 services (the first of those shares a
    // write with the services' own additions).
    let mut ops: Vec<IpvsOp> = (0..250).map(|i| add(key(i), &empty)).collect();
    ops.push(IpvsOp::AddDest {
        service: vip(TCP, "203.0.113.1", 80),
        dest: real(0),
        settings: to(Forward::Masquerade, 1),
    });
    ops.extend((0..249).map(|i| IpvsOp::AddDest {
        service: key(i),
        dest: real(i),
        settings: to(Forward::Masquerade, 1),
    }));
    assert_eq!(ops.len(), 500);
    let (results, observed, batch_limit) = with_ipvs(&runtime, async |ipvs| {
        let results = ipvs.execute(&ops).await;
        (results, observe(ipvs).await, ipvs.batch_limit())
    });
    assert_eq!(batch_limit, 256);
    let failed: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_err())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(failed, [250], "{:?}", results[250]);
    let mut expected = IpvsState::default();
    for i in 0..250 {
        let mut service = empty.clone();
        if i < 249 {
            service
                .destinations
                .insert(real(i), to(Forward::Masquerade, 1));
        }
        expected.services.insert(key(i), service);
    }
    assert_eq!(observed.state, expected);
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn info_timeouts_and_flush() {
    let (lab, runtime) = lab_and_runtime("ipvs-info");
    let web = service(
        settings("rr"),
        &[(dest("10.0.7.1", 80), to(Forward::Route, 1))],
    );
    with_ipvs(&runtime, async |ipvs| {
        let info = ipvs.info().await.expect("info");
        assert_eq!(
            format!(
                "IP Virtual Server version {} (size={})",
                info.version_text(),
                info.connection_table_size
            ),
            HEADER.lines().next().unwrap()
        );
        ipvs.set_timeouts(900, 120, 300)
            .await
            .expect("set timeouts");
        let timeouts = Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300,
        };
        assert_eq!(ipvs.timeouts().await.expect("timeouts"), timeouts);
        assert_eq!(
            lab.sh("ipvsadm -L --timeout"),
            "Timeout (tcp tcpfin udp): 900 120 300\n"
        );
        // 0 keeps a timeout as it is.
        ipvs.set_timeouts(0, 60, 0).await.expect("set timeouts");
        assert_eq!(
            ipvs.timeouts().await.expect("timeouts"),
            Timeouts {
                tcp_fin: 60,
                ..timeouts
            }
        );

        execute_ok(ipvs, &[add(vip(UDP, "198.51.100.60", 53), &web)]).await;
        assert_eq!(observe(ipvs).await.services.len(), 1);
        ipvs.flush().await.expect("flush");
        assert_eq!(observe(ipvs).await, IpvsObservation::default());
        assert_eq!(ipvsadm(&lab), HEADER);
    });
}

/// Timings, skipped by a plain `tests/lab/run`.
mod bench {
    use super::*;

    /// Not a check: prints how long 1,000 services × 50 real servers take to add
    /// from scratch and to observe, against `ipvsadm -R` of the same table in the
    /// same VM (`tests/lab/run ipvs_backend::bench --nocapture`; a plain `tests/lab/run` skips
    /// `bench::` tests).
    #[test]
    #[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
    fn timing_of_a_big_table_against_ipvsadm_restore() {
        let (lab, runtime) = lab_and_runtime("ipvs-big");
        let mut desired = IpvsState::default();
        let mut restore = String::new();
        for i in 0..1000u32 {
            let address = Ipv4Addr::from(0x0a00_0001 + (i << 8));
            let key = vip(TCP, &address.to_string(), 80);
            restore.push_str(&format!("-A -t {address}:80 -s wlc\n"));
            let mut service = service(settings("wlc"), &[]);
            for j in 0..50u32 {
                let real = Ipv4Addr::from(0xac10_0000 + j + 1);
                restore.push_str(&format!("-a -t {address}:80 -r {real}:8080 -m -w 1\n"));
                service.destinations.insert(
                    DestKey {
                        address: real.into(),
                        port: 8080,
                    },
                    to(Forward::Masquerade, 1),
                );
            }
            desired.services.insert(key, service);
        }
        let ops: Vec<IpvsOp> = desired
            .services
            .iter()
            .map(|(key, service)| add(*key, service))
            .collect();
        let file = lab.state_dir().join("restore.txt");
        std::fs::write(&file, &restore).expect("write the ipvsadm -R input");

        let (add_time, observe_time, observed) = with_ipvs(&runtime, async |ipvs| {
            let started = Instant::now();
            execute_ok(ipvs, &ops).await;
            let added = started.elapsed();
            let started = Instant::now();
            let observed = observe(ipvs).await;
            let observe_time = started.elapsed();
            ipvs.flush().await.expect("flush");
            (added, observe_time, observed)
        });
        assert_eq!(observed.state, desired);

        let started = Instant::now();
        lab.sh(&format!("ipvsadm -R < {}", file.display()));
        let restore_time = started.elapsed();
        let started = Instant::now();
        let listed = lab.sh("ipvsadm -Ln");
        let list_time = started.elapsed();
        assert_eq!(listed.lines().count(), 3 + 1000 * 51);
        let observed_after_restore = with_ipvs(&runtime, async |ipvs| observe(ipvs).await);
        assert_eq!(observed_after_restore.state, desired);
        println!(
            "1,000 services x 50 real servers: lbconsole adds in {:.2} s, observes in {:.2} s; \
             ipvsadm -R takes {:.2} s, ipvsadm -Ln {:.2} s",
            add_time.as_secs_f64(),
            observe_time.as_secs_f64(),
            restore_time.as_secs_f64(),
            list_time.as_secs_f64()
        );
    }
}
