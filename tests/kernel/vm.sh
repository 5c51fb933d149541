#!/usr/bin/env bash
# The kernel tier: boot a stock Debian 12 kernel under qemu (virtme-ng) with this
# machine's root filesystem shared read-only, and run tests/kernel inside it.
# This VM's own kernel has no kprobes, sit or wireguard; users' routers do.
#
#   bash tests/kernel/vm.sh setup            # root; idempotent (~1.5 min cold)
#   bash tests/kernel/vm.sh pytest [ARGS]    # boot once, run tests/kernel in the guest
#   bash tests/kernel/vm.sh run -- CMD       # boot, run CMD as root, exit with its code
#
# Env: V6DIAG_VM_CACHE (/var/lib/v6diag-kernel), V6DIAG_VM_MEM (2G), V6DIAG_VM_TIMEOUT (3000 s),
#      V6DIAG_VM_ACCEL (auto|tcg|kvm).
# Facts behind the choices (measured on the 2-core dev VM): nested PVM KVM cannot boot a
# stock kernel, so TCG, 1 vCPU (faster than 2 there); without host udev the guest gets no
# virtio ports; never redirect vng's stdout into a file (qemu reopens fd 1 with O_TRUNC).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CACHE=${V6DIAG_VM_CACHE:-/var/lib/v6diag-kernel}
# not under /var/tmp or /var/cache: virtme-ng mounts empty tmpfs over those in the
# guest, which must see the kernel modules and headers kept here
VNG_VERSION=1.42

setup() {
    [ "$(id -u)" = 0 ] || { echo "vm.sh setup: run as root (apt-get, depmod)" >&2; exit 77; }
    export DEBIAN_FRONTEND=noninteractive
    local pkgs=(qemu-system-x86 udev kmod busybox-static python3-venv python3-bpfcc bpfcc-tools
                wireguard-tools conntrack iptables nftables iproute2 iputils-ping)
    local missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
        # udev on the host: without it the guest has no /dev/virtio-ports (no output, rc 255).
        apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    fi
    mkdir -p "$CACHE"/{debs,bin}
    if [ ! -x "$CACHE/vng-venv/bin/vng" ]; then
        /usr/bin/python3 -m venv "$CACHE/vng-venv"
        "$CACHE/vng-venv/bin/pip" install -q --disable-pip-version-check "virtme-ng==$VNG_VERSION"
    fi
    # The stock kernel that linux-image-amd64 points at today (old ABIs leave the mirror).
    local kver abi kroot
    kver=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: linux-image-\(6\..*-amd64\)$/\1/p' | head -n1)
    [ -n "$kver" ] || { echo "vm.sh setup: cannot resolve the linux-image-amd64 ABI" >&2; exit 69; }
    abi=${kver%-amd64}
    kroot="$CACHE/kroot-$kver"
    if [ ! -e "$kroot/boot/vmlinuz-$kver" ]; then
        local series; series=$(echo "$kver" | cut -d. -f1,2)   # 6.1.0-56-amd64 -> 6.1
        # apt's _apt user cannot write into root's cache dir: download as root, quietly
        (cd "$CACHE/debs" && apt-get download -q "linux-image-$kver" "linux-headers-$kver" \
            "linux-headers-$abi-common" "linux-kbuild-$series" 2>&1 | grep -v "unsandboxed" >&2 || true)
        rm -rf "$kroot.tmp"; mkdir -p "$kroot.tmp"
        for d in "$CACHE"/debs/linux-image-"$kver"_*.deb "$CACHE"/debs/linux-headers-"$kver"_*.deb \
                 "$CACHE"/debs/linux-headers-"$abi"-common_*.deb "$CACHE"/debs/linux-kbuild-*.deb; do
            dpkg -x "$d" "$kroot.tmp"
        done
        mv "$kroot.tmp" "$kroot"
    fi
    # bcc compiles against /lib/modules/$(uname -r)/build; in the guest that is this tree.
    ln -sfn "$kroot/usr/src/linux-headers-$kver" "$kroot/lib/modules/$kver/build"
    ln -sfn "$kroot/usr/src/linux-headers-$abi-common" "$kroot/lib/modules/$kver/source"
    depmod -b "$kroot" "$kver"
    # virtme-ng calls the Rust virtiofsd's CLI; bookworm ships qemu's C virtiofsd.
    # virtiofs makes bcc's import ~3x faster than 9p; if the shim fails vng uses 9p.
    install -m 0755 "$here/virtiofsd-shim" "$CACHE/bin/virtiofsd"
    echo "$kver" > "$CACHE/kver"   # written last: a half-done setup is redone
    echo "kernel tier ready: $kver in $kroot" >&2
}

not_ready() {
    # with CI=true a tier that cannot run is a failure; otherwise say so loudly and skip
    if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then echo "kernel tier: $1" >&2; exit 69; fi
    echo "kernel tier SKIPPED (not a pass): $1" >&2; exit 0
}

boot() {
    [ -s "$CACHE/kver" ] || { echo "vm.sh: run 'bash tests/kernel/vm.sh setup' first (as root)" >&2; exit 69; }
    local kver vngargs=()
    kver=$(cat "$CACHE/kver")
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do vngargs+=("$1"); shift; done
    [ "${1:-}" = "--" ] && shift
    export PATH="$CACHE/bin:$CACHE/vng-venv/bin:$PATH"
    local accel=${V6DIAG_VM_ACCEL:-auto}
    if [ "$accel" = auto ]; then
        # kvm_pvm (nested PVM) only boots PVM guests: a stock kernel hangs there.
        if [ -d /sys/module/kvm_pvm ] || [ ! -w /dev/kvm ]; then accel=tcg; else accel=kvm; fi
    fi
    local extra=()
    if [ "$accel" = tcg ]; then
        # one vCPU: TCG without MTTCG contention is faster; skip modules udev would
        # coldplug for emulated hardware nobody uses here (~9 s of boot).
        extra+=(--disable-kvm --cpus 1 --append "modprobe.blacklist=kvm_amd,kvm_intel,kvm,ahci,libahci,libata,ata_piix,ata_generic,sr_mod,cdrom,sg,i2c_i801,lpc_ich,iTCO_wdt,intel_pmc_bxt,i6300esb,psmouse,pcspkr,evdev,serio_raw,button,qemu_fw_cfg,floppy,intel_agp,drm,bochs,ccp,aesni_intel,crc32_pclmul,crct10dif_pclmul,ghash_clmulni_intel,sha1_ssse3,sha256_ssse3,sha512_ssse3")
    fi
    # qemu reopens fd 1/2 with O_TRUNC: never point them at a file, pipe through cat.
    local rc=0
    timeout --kill-after=30 "${V6DIAG_VM_TIMEOUT:-3000}" \
        vng --run "$CACHE/kroot-$kver/boot/vmlinuz-$kver" "${extra[@]}" --memory "${V6DIAG_VM_MEM:-2G}" \
            "${vngargs[@]}" --exec "$*" </dev/null 2> >(cat >&2) | cat || rc=${PIPESTATUS[0]}
    return "$rc"
}

run_pytest() {
    [ -x "$repo/.venv/bin/python" ] || not_ready "no .venv: run 'bash .ci/setup --tests' first"
    [ "$(id -u)" = 0 ] || not_ready "needs root (namespaces and BPF inside the guest run as the caller)"
    [ -s "$CACHE/kver" ] || not_ready "not set up: sudo bash tests/kernel/vm.sh setup"
    local results; results=$(mktemp -d /tmp/v6diag-kernel-results.XXXXXX)
    # The guest runs v6diag as users install it: a wheel built from this checkout, in a
    # venv of Debian's python3 that sees python3-bpfcc; the BPF C comes from the wheel.
    local wheels="$CACHE/wheel-dist" cli="$CACHE/wheel-venv/bin/v6diag"
    rm -rf "$wheels"
    "$repo/.venv/bin/python" -m pip wheel -q --disable-pip-version-check --no-deps -w "$wheels" "$repo" >&2 \
        || not_ready "cannot build the wheel"
    [ -x "$CACHE/wheel-venv/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$CACHE/wheel-venv"
    "$CACHE/wheel-venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps \
        "$wheels"/v6diag-*.whl >&2
    "$CACHE/wheel-venv/bin/pip" install -q --disable-pip-version-check "$(ls "$wheels"/v6diag-*.whl)" >&2
    # The guest sees the checkout read-only: no pytest cache, no bytecode writes.
    # (printf with no arguments still prints the format once: '' would be a path to
    # pytest, and it would collect the whole tree in the guest)
    local q=""; [ $# -eq 0 ] || printf -v q '%q ' "$@"
    # no test path given: the whole tier
    case " $* " in *" tests/"*) ;; *) q="tests/kernel $q" ;; esac
    local rc=0
    boot --rwdir="$results" -- "cd $repo && V6DIAG_IN_GUEST=1 V6DIAG_RESULTS=$results CI=${CI:-} \
        V6DIAG_CLI=$cli PYTHONDONTWRITEBYTECODE=1 $repo/.venv/bin/python -m pytest -p no:cacheprovider -o timeout=1800 $q" \
        || rc=$?
    if [ -d "$results/fixtures" ] && [ -n "$(ls -A "$results/fixtures")" ]; then
        echo "kernel tier: recorded fixtures in $results/fixtures" >&2
    fi
    [ "$rc" = 255 ] && echo "kernel tier: the guest crashed or never started (rc 255; is udev installed?)" >&2
    return "$rc"
}

case "${1:-}" in
    setup) setup ;;
    run) shift; boot "$@" ;;
    pytest) shift; run_pytest "$@" ;;
    *) echo "usage: $0 setup | pytest [pytest args] | run [vng args] -- CMD" >&2; exit 2 ;;
esac
