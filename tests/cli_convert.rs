//! `lbconsole convert` as a user runs it: the real binary, its output, its exit
//! status, and what it refuses to touch.

mod common;

use std::path::Path;

use common::Dirs;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const DUMP: &str = "-A -t 192.0.2.10:80 -s wlc\n-a -t 192.0.2.10:80 -r 10.0.9.1:80 -m -w 1\n";

#[test]
fn without_out_the_files_are_printed_and_the_report_goes_to_stderr() {
    let dirs = Dirs::new("convert-print");
    let dump = dirs.root.join("ipvsadm.txt");
    std::fs::write(&dump, DUMP).unwrap();
    let output = dirs.run(&["convert", "--from", "ipvsadm", &dump.display().to_string()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let shown = dump.display();
    assert_eq!(
        text(&output.stdout),
        format!(
            "==> lvs.conf <==\n\
             # lvs.conf converted by `lbconsole convert --from ipvsadm` from {shown}\n\
             \n\
             # {shown}:1: -A -t 192.0.2.10:80 -s wlc\n\
             director tcp-192.0.2.10-80 192.0.2.10:80 TCP\n    \
             balance leastconn\n    \
             mode nat\n    \
             server 10.0.9.1-80 10.0.9.1:80 weight 1\n"
        )
    );
    assert!(
        text(&output.stderr).ends_with("converted 1 director and 0 flows; check: valid\n"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn out_writes_a_new_directory_and_never_an_existing_one() {
    let dirs = Dirs::new("convert-out");
    let dump = dirs.root.join("ipvsadm.txt");
    std::fs::write(&dump, DUMP).unwrap();
    let out = dirs.root.join("converted");
    let args = [
        "convert",
        "--from",
        "ipvsadm",
        &dump.display().to_string(),
        "--out",
        &out.display().to_string(),
    ];
    let output = dirs.run(&args);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(output.stdout.is_empty());
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["lvs.conf", "report.txt"]);
    let lvs = std::fs::read(out.join("lvs.conf")).unwrap();

    // Again: the directory exists, and nothing in it changes.
    let again = dirs.run(&args);
    assert_eq!(again.status.code(), Some(2));
    assert_eq!(
        text(&again.stderr),
        format!(
            "lbconsole: {} already exists; convert writes a new directory, so that nothing is overwritten\n",
            out.display()
        )
    );
    assert_eq!(std::fs::read(out.join("lvs.conf")).unwrap(), lvs);
}

#[test]
fn an_unreadable_source_exits_2_with_one_sentence() {
    let dirs = Dirs::new("convert-unreadable");
    let output = dirs.run(&[
        "convert",
        "--from",
        "keepalived",
        "/nonexistent/keepalived.conf",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    assert_eq!(
        text(&output.stderr),
        "lbconsole: cannot read /nonexistent/keepalived.conf: No such file or directory (os error 2)\n"
    );
    // A directory, or a device, is not a configuration file.
    let device = dirs.run(&["convert", "--from", "ldirectord", "/dev/zero"]);
    assert_eq!(device.status.code(), Some(2));
    assert!(
        text(&device.stderr).contains("/dev/zero is a character device, not a regular file"),
        "{}",
        text(&device.stderr)
    );
    assert!(Path::new("/dev/zero").exists());
}

const KEEPALIVED_PAIR: &str = "\
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 150
    nopreempt
    virtual_ipaddress {
        192.0.2.100/24
    }
}
virtual_server 192.0.2.100 80 {
    lb_algo wlc
    lb_kind NAT
    protocol TCP
    real_server 10.0.9.1 80 {
        weight 1
    }
}
";

const BOX_NETWORK: &str = "\
# this appliance's own address
service network eth0
    ip address 192.0.2.2/24
";

#[test]
fn vrrp_instances_are_imported_into_the_saved_network_conf_and_never_over_its_own_lines() {
    let dirs = Dirs::new("convert-vrrp");
    dirs.write("network.conf", BOX_NETWORK);
    dirs.write("lvs.conf", "");
    dirs.write("flows.conf", "");
    let source = dirs.root.join("keepalived.conf");
    std::fs::write(&source, KEEPALIVED_PAIR).unwrap();
    let out = dirs.root.join("converted");
    let convert = dirs.run(&[
        "convert",
        "--from",
        "keepalived",
        &source.display().to_string(),
        "--out",
        &out.display().to_string(),
    ]);
    assert_eq!(convert.status.code(), Some(0), "{}", text(&convert.stderr));
    assert!(
        text(&convert.stderr).contains("with vrrp.conf's lines added to its interfaces"),
        "{}",
        text(&convert.stderr)
    );
    assert!(!out.join("network.conf").exists());

    let imported = dirs.run(&["import", &out.display().to_string()]);
    assert_eq!(
        imported.status.code(),
        Some(0),
        "{}",
        text(&imported.stderr)
    );
    let network = std::fs::read_to_string(dirs.config().join("network.conf")).unwrap();
    assert_eq!(
        network,
        "# this appliance's own address\n\
         service network eth0\n    \
         ip address 192.0.2.2/24\n    \
         vrrp id 51\n    \
         vrrp prio 150\n    \
         vrrp address 192.0.2.100/24\n\
         \n\
         service vrrp\n    \
         preempt off\n"
    );
    assert!(
        std::fs::read_to_string(dirs.config().join("lvs.conf"))
            .unwrap()
            .contains("director tcp-192.0.2.100-80 192.0.2.100:80 TCP")
    );
    dirs.ok(&["check"]);

    // Imported twice, the lines would be there twice: refused, nothing saved.
    let version = dirs.store().saved().unwrap().version;
    let again = dirs.run(&["import", &out.display().to_string()]);
    assert_ne!(again.status.code(), Some(0));
    assert!(
        text(&again.stderr).contains(&format!(
            "{}: line 7: network.conf already has `vrrp` lines for `eth0` (line 4); change them there",
            out.join("vrrp.conf").display()
        )),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(dirs.store().saved().unwrap().version, version);
    assert_eq!(
        std::fs::read_to_string(dirs.config().join("network.conf")).unwrap(),
        network
    );
}
