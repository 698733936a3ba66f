#!/bin/sh
# Builds the lab guest's initramfs: an uncompressed newc cpio (gzip would cost emulated minutes)
# holding busybox (Debian's busybox-static), kvmtrace's guest capture script, the static helpers
# syncpt and dbgout, and an /init that captures a guest bundle and sends it out through
# isa-debugcon (port 0x5e9).
#
# usage: make-initramfs.sh OUT.cpio [SYNC_POINTS] [VM_NAME] [GUEST_SCRIPT_ARGS]
# Needs: native/build/{syncpt,dbgout} (make -C native), /bin/busybox (static).
set -eu
out=$1
nsync=${2:-20}
vm_name=${3:-kvmlab}
extra=${4:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
busybox=/bin/busybox
{ file "$busybox" 2>/dev/null | grep -q 'statically linked' || ldd "$busybox" 2>&1 | grep -q 'not a dynamic executable'; } ||
  { echo "make-initramfs: $busybox is not static (apt-get install busybox-static)" >&2; exit 2; }
for h in syncpt dbgout; do
  [ -x "$root/native/build/$h" ] || { echo "make-initramfs: build native/ first (make -C native)" >&2; exit 2; }
done
stage=$(mktemp -d /tmp/kvmtrace-initramfs.XXXXXX)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/proc" "$stage/sys" "$stage/dev" "$stage/tmp"
cp "$busybox" "$stage/bin/busybox"
cp "$root/native/build/syncpt" "$root/native/build/dbgout" "$stage/bin/"
cp "$root/native/kvmtrace-guest.sh" "$stage/bin/kvmtrace-guest.sh"
cat > "$stage/init" <<EOF
#!/bin/busybox sh
# Lab guest /init (written by scripts/lab/make-initramfs.sh).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
echo "KVMTRACE-GUEST-READY"
# The host arms its full capture when the script says "tracing started" on the console; -w 4
# gives it the time before the first sync points (the console itself moves ~50 bytes/s).
# The workload is one small command: under the emulator every exec costs seconds, and the host
# records everything while the guest traces.
kvmtrace-guest.sh -T -w 4 -N $vm_name -k pio -k cpuid -n $nsync -s /bin/syncpt $extra -- \\
  cp /proc/interrupts /tmp/workload.txt \\
  > /tmp/bundle.tar
echo "KVMTRACE-GUEST-DONE \$? \$(wc -c < /tmp/bundle.tar)"
dbgout /tmp/bundle.tar
echo "KVMTRACE-GUEST-SENT"
# With -no-reboot QEMU exits when the guest reboots (microvm has no ACPI power-off).
reboot -f
EOF
chmod +x "$stage/init"
(cd "$stage" && find . | sort | busybox cpio -o -H newc 2>/dev/null) > "$out.part"
mv "$out.part" "$out"
echo "make-initramfs: $out ($(wc -c < "$out") bytes)" >&2
