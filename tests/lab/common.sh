# shellcheck shell=bash
# What the lab's scripts share (tests/lab/run, tests/lab/console, screenshots/make):
# installing what the VM needs and finding the kernel it boots. Source it from the
# repository's root, in a script that has `set -euo pipefail`:
#
#   source tests/lab/common.sh
#   lab_install tmux          # the VM's packages, these too, and virtme-ng
#   kernel=$(lab_kernel)      # Debian's kernel image, not the host's
#
# The VM sees the host's files read-only (its /usr too): a tool the guest runs is
# installed on the host.

say() { printf 'lab: %s\n' "$*" >&2; }

as_root() {
    if [[ $EUID -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# Installs the Debian packages the lab needs, and PACKAGE... too, when missing, and
# virtme-ng from PyPI when `vng` is missing. A second run installs nothing.
# qemu-system-x86: the VM (software emulation: KVM is present here but fails);
# linux-image-amd64: the kernel and its modules (bonding, 8021q, ip_vs…);
# busybox-static: virtme-ng's initramfs; the rest are the tools that run inside
# the VM (the guest uses the host's /usr): keepalived is the HA pair's VRRP engine;
# openssh: `lbconsole sync` between two appliances (sshd runs in a namespace).
lab_install() {
    local packages=(qemu-system-x86 linux-image-amd64 busybox-static iproute2 iputils-ping
        nftables ipvsadm curl keepalived openssh-server openssh-client "$@")
    local missing=() package status
    for package in "${packages[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
        [[ $status == installed ]] || missing+=("$package")
    done
    if ((${#missing[@]})); then
        say "installing ${missing[*]}"
        as_root apt-get update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    fi
    if ! command -v vng >/dev/null; then
        # The version this lab was verified with.
        say "installing virtme-ng"
        python3 -m pip install --quiet --disable-pip-version-check virtme-ng==1.42
        # pip may put its scripts where PATH does not look (a pyenv not yet rehashed),
        # and vng runs its sibling `virtme-run` through PATH.
        PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
        hash -r
        command -v vng >/dev/null || { say "virtme-ng installed no vng command"; return 1; }
    fi
}

# Prints the directory of `prometheus` and `promtool` from Debian's prometheus
# package, unpacked under target/ rather than installed: installing it would
# start a Prometheus server (and, recommended, a node exporter) on this machine.
lab_prometheus() {
    local dir=$PWD/target/lab-prometheus download
    if [[ ! -x $dir/usr/bin/promtool || ! -x $dir/usr/bin/prometheus ]]; then
        say "unpacking Debian's prometheus package"
        download=$(mktemp -d)
        (cd "$download" && apt-get download -q prometheus >&2) ||
            { as_root apt-get update -q >&2 && (cd "$download" && apt-get download -q prometheus >&2); } ||
            { rm -rf "$download"; say "cannot download Debian's prometheus package"; return 1; }
        rm -rf "$dir"
        dpkg-deb -x "$download"/prometheus_*.deb "$dir"
        rm -rf "$download"
    fi
    printf '%s\n' "$dir/usr/bin"
}

# Prints the newest kernel of Debian's linux-image-amd64 (a metapackage: its
# dependency is the real image package), not the host's running kernel.
lab_kernel() {
    local image package kernel
    image=$(dpkg-query -W -f='${Depends}' linux-image-amd64 | grep -o 'linux-image-[^ ,|]*')
    kernel=$(for package in $image; do dpkg-query -L "$package"; done |
        grep '^/boot/vmlinuz-' | sort -V | tail -n 1) || true
    [[ -n $kernel && -r $kernel ]] || { say "no kernel of linux-image-amd64 in /boot"; return 1; }
    printf '%s\n' "$kernel"
}
