#!/usr/bin/env bash
# Records a host+guest capture pair on this lab machine (fixtures/pvm-1vcpu was made with it):
# boots the lab guest kernel under QEMU/KVM, records the host with `kvmtrace capture host --wait
# --hold` (from QEMU's first thread on, so the TSC offset writes at vCPU creation are in the trace;
# everything else once the guest has booted and says so on its console), lets
# the guest's /init record its own bundle with native/kvmtrace-guest.sh and send it out through
# isa-debugcon, then stops the host capture with SIGINT when the guest says it is done.
#
# usage: sudo scripts/lab/pvm-fixture.sh OUTDIR [VCPUS] [SYNC_POINTS] [capture host options...]
# (e.g. -x kvm:kvm_apic to leave high-rate events out of a fixture)
# Needs: root, /dev/kvm, qemu-system-x86, busybox-static, xz, native/ built (make -C native),
# node_modules (npm ci). Writes OUTDIR/{host,guest}/ and OUTDIR/{serial.log,qemu.cmd,capture-host.log}.
set -euo pipefail
out=$1
vcpus=${2:-1}
nsync=${3:-20}
shift $(($# < 3 ? $# : 3))
root=$(cd "$(dirname "$0")/../.." && pwd)
kernel_xz=${KVMLAB_KERNEL:-/work/shared/kvm-guest/vmlinux-6.1-kvmlab.xz}
vm_name=kvmlab

[ "$(id -u)" = 0 ] || { echo "pvm-fixture: run as root" >&2; exit 2; }
[ -e "$out/host" ] || [ -e "$out/guest" ] && { echo "pvm-fixture: $out already holds a capture" >&2; exit 2; }
mkdir -p "$out/guest"
work=$(mktemp -d /tmp/kvmtrace-pvm.XXXXXX)
cap_pid=""; qemu_pid=""

cleanup() {
  set +e
  [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null
  [ -n "$cap_pid" ] && kill -INT "$cap_pid" 2>/dev/null && wait "$cap_pid"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

xz -dc "$kernel_xz" > "$work/vmlinux"
sh "$root/scripts/lab/make-initramfs.sh" "$work/initramfs.cpio" "$nsync"

# HOLD=0: record everything from QEMU's start (a much larger host trace, with every KVM_RUN whole).
hold=--hold; [ "${HOLD:-1}" = 0 ] && hold=""
node --import tsx "$root/src/cli/main.ts" capture host --vm "$vm_name" --wait $hold -o "$out/host" "$@" \
  > "$out/capture-host.log" 2>&1 &
cap_pid=$!
sleep 3 # capture host sets up its instance, then polls for QEMU

cmdline="console=ttyS0 quiet panic=-1 reboot=k init_on_alloc=0 mitigations=off nopku nofsgsbase noinvpcid nopcid clearcpuid=xsave,smap,cx16,rdrand,rdseed,popcnt,rdpid,clflushopt,clwb,bmi1,bmi2,adx,sha_ni,aes,pclmulqdq,avx,avx2,fma,f16c,vaes,vpclmulqdq,wbnoinvd"
cpu=host,-arch-capabilities
[ "$vcpus" -gt 1 ] && cpu="$cpu,-kvm-pv-ipi,-kvm-pv-sched-yield,-kvm-pv-unhalt"
qemu_args=(-name "$vm_name,debug-threads=on" -M microvm -enable-kvm -cpu "$cpu"
  -smp "$vcpus" -m 256 -nodefaults -no-user-config -display none -nic none -no-reboot
  -serial "file:$work/serial.log"
  -chardev "file,id=out,path=$work/debugcon.bin" -device "isa-debugcon,iobase=0x5e9,chardev=out"
  -kernel "$work/vmlinux" -initrd "$work/initramfs.cpio" -append "$cmdline")
echo "qemu-system-x86_64 ${qemu_args[*]}" > "$out/qemu.cmd"
qemu-system-x86_64 "${qemu_args[@]}" 2> "$work/qemu.err" &
qemu_pid=$!

wait_line() { # pattern timeout_s
  for _ in $(seq 1 $(($2 * 5))); do
    grep -q "$1" "$work/serial.log" 2>/dev/null && return 0
    kill -0 "$qemu_pid" 2>/dev/null || { echo "pvm-fixture: QEMU exited early" >&2; cat "$work/qemu.err" "$work/serial.log" >&2; exit 2; }
    [ -z "$cap_pid" ] || kill -0 "$cap_pid" 2>/dev/null || { echo "pvm-fixture: capture host exited early" >&2; cat "$out/capture-host.log" >&2; exit 2; }
    sleep 0.2
  done
  echo "pvm-fixture: timed out waiting for $1" >&2; cat "$work/serial.log" >&2; exit 2
}
echo "pvm-fixture: booting (about 2-3 minutes)..." >&2
wait_line KVMTRACE-GUEST-READY 900
echo "pvm-fixture: guest booted" >&2
# The guest script says when its tracing runs (and then waits 3 s, -w 3) and when it stops: the
# host records everything in between (before: only kvm_write_tsc_offset).
wait_line 'kvmtrace-guest: tracing started' 900
[ -n "$hold" ] && kill -USR1 "$cap_pid"
echo "pvm-fixture: guest tracing; host capture released from --hold" >&2
wait_line 'kvmtrace-guest: tracing stopped' 900
kill -INT "$cap_pid"
wait "$cap_pid" || { echo "pvm-fixture: capture host failed" >&2; cat "$out/capture-host.log" >&2; exit 2; }
cap_pid=""
echo "pvm-fixture: host bundle written; waiting for the guest's dump" >&2
wait_line KVMTRACE-GUEST-DONE 900
wait_line KVMTRACE-GUEST-SENT 900
# microvm has no ACPI power-off and no keyboard controller to reset through: end QEMU here.
sleep 3; kill "$qemu_pid" 2>/dev/null || true
wait "$qemu_pid" || true
qemu_pid=""
grep -q KVMTRACE-GUEST-SENT "$work/serial.log" || { echo "pvm-fixture: guest did not finish its dump" >&2; cat "$work/serial.log" >&2; exit 2; }
tar -x -f "$work/debugcon.bin" -C "$out/guest"
cp "$work/serial.log" "$out/serial.log"
cat "$out/capture-host.log" >&2
echo "pvm-fixture: done: $out" >&2
