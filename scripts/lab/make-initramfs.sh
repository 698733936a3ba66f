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
file "$busybox" 2>/dev/null | grep -q 'statically linked' ||
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
# Give the host time to arm its capture (it watches the console for the line above).
sleep 5
kvmtrace-guest.sh -T -N $vm_name -k pio -k cpuid -n $nsync -s /bin/syncpt $extra -- \\
  sh -c 'i=0; while [ \$i -lt 50 ]; do i=\$((i+1)); done; ls /proc > /dev/null; cat /proc/interrupts > /dev/null; sleep 1; echo workload done' \\
  > /tmp/bundle.tar
echo "KVMTRACE-GUEST-DONE \$? \$(wc -c < /tmp/bundle.tar)"
# The host takes its end snapshot on the line above; give it a moment before the dump.
sleep 2
dbgout /tmp/bundle.tar
echo "KVMTRACE-GUEST-SENT"
poweroff -f
EOF
chmod +x "$stage/init"
(cd "$stage" && find . | sort | busybox cpio -o -H newc 2>/dev/null) > "$out.part"
mv "$out.part" "$out"
echo "make-initramfs: $out ($(wc -c < "$out") bytes)" >&2
