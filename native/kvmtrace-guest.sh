#!/bin/sh
# kvmtrace guest capture: records a guest-side trace bundle (docs/bundle.md) for `kvmtrace merge`.
#
# Runs inside a KVM guest that has no Node.js: POSIX sh (busybox ash, dash, bash) plus the static
# `syncpt` helper from kvmtrace's native/ folder. It does in the guest what `kvmtrace capture host`
# does on the host: an ftrace instance of its own (never the top-level buffer, never another tool's
# instance, removed on every exit), the x86-tsc clock (or another clock, said loudly), a small set
# of events, kvmsync sync points on every CPU at start and end, then the guest's facts in meta.json.
#
# Options: run it with -h (the text is usage_text below, so that it prints also when the script is
# piped into sh, as in `kvmtrace guest-script | sh -s -- -h`).

set -u

VERSION="0.1.0"
DEFAULT_EVENTS="sched:sched_switch sched:sched_wakeup irq:irq_handler_entry irq:irq_handler_exit"
TSC_FLAGS="tsc rdtscp constant_tsc nonstop_tsc tsc_known_freq tsc_reliable tsc_deadline_timer tsc_adjust"

say() { printf 'kvmtrace-guest: %s\n' "$*" >&2; }

# -I: the files `kvmtrace inspect` reads, copied with their paths under $1 (no Node.js needed here).
copy_rel() { # copy_rel DEST REL
  [ -r "/$2" ] || return 0
  mkdir -p "$1/${2%/*}" && cat "/$2" > "$1/$2" 2>/dev/null
  return 0
}
record_sysfs() {
  copy_rel "$1" proc/cpuinfo
  copy_rel "$1" sys/devices/system/clocksource/clocksource0/current_clocksource
  copy_rel "$1" sys/devices/system/clocksource/clocksource0/available_clocksource
  for d in /sys/bus/virtio/devices/*; do
    [ -d "$d" ] || continue
    r=${d#/}
    for f in device vendor features status modalias; do copy_rel "$1" "$r/$f"; done
    if [ -L "$d/driver" ]; then mkdir -p "$1/$r" && ln -s "$(readlink "$d/driver")" "$1/$r/driver"; fi
    for b in "$d"/block/*; do
      [ -d "$b" ] || continue
      for f in cache_type size queue/write_cache; do copy_rel "$1" "${b#/}/$f"; done
    done
    for n in "$d"/net/*; do [ -d "$n" ] && copy_rel "$1" "${n#/}/mtu"; done
  done
}
die() { say "$*"; exit 2; }
usage_text() {
  cat <<'EOF'
usage: kvmtrace-guest.sh [options] [-- COMMAND [ARG...]]
  -o DIR      write the bundle to DIR (refused if DIR holds anything, unless -f)
  -T          write the bundle as a tar to stdout instead (for copying out over any channel)
  -d SECONDS  capture for this long (default: around COMMAND, or until Ctrl-C)
  -e EVENT    also enable EVENT (tracefs set_event syntax: sched:sched_switch, irq:*); repeatable
  -E          do not enable the default events (sched_switch, sched_wakeup, irq_handler_entry/exit)
  -k KIND     sync exit: pio (OUT to port 0xe9) or cpuid; repeat for both (the first is syncKind)
  -n N        sync points per CPU at start and at end (default 20)
  -s PATH     the syncpt helper (default: next to this script, then $PATH)
  -N NAME     this machine's name in the bundle (default: hostname)
  -V VM       the host's name for this VM (meta guest.vm; default: NAME)
  -b KB       per-CPU buffer size in KiB (default 1024)
  -c CLOCK    trace clock to use instead of x86-tsc
  -w SECONDS  pause after tracing starts, before the first sync points (time for a host capture
              that watches this script's "tracing started" line to arm itself)
  -I          also record, under sysfs/, the files `kvmtrace inspect --root BUNDLE/sysfs` decodes
              (clocksource, CPU flags, virtio devices and their feature bits, disk cache mode)
  -f          write into a non-empty DIR
  -h          print this help and exit
Exit status: 0 bundle written; 1 usage; 2 cannot capture (not root, no tracefs, ...); with
COMMAND, its non-zero status is reported but the bundle is still written.
EOF
}
usage() { usage_text >&2; exit 1; }

out=""; to_tar=0; duration=""; extra_events=""; defaults=1; kinds=""; nsync=20
syncpt=""; name=""; vm=""; buf_kb=1024; want_clock="x86-tsc"; force=0; pause=""; inspect=0
while getopts o:Td:e:Ek:n:s:N:V:b:c:w:fIh opt; do
  case "$opt" in
    o) out="$OPTARG" ;;
    T) to_tar=1 ;;
    d) duration="$OPTARG" ;;
    e) extra_events="$extra_events $OPTARG" ;;
    E) defaults=0 ;;
    k) case "$OPTARG" in
         pio|cpuid) case " $kinds " in *" $OPTARG "*) ;; *) kinds="$kinds $OPTARG" ;; esac ;;
         *) say "-k wants pio or cpuid, not $OPTARG"; exit 1 ;;
       esac ;;
    n) nsync="$OPTARG" ;;
    s) syncpt="$OPTARG" ;;
    N) name="$OPTARG" ;;
    V) vm="$OPTARG" ;;
    b) buf_kb="$OPTARG" ;;
    c) want_clock="$OPTARG" ;;
    f) force=1 ;;
    w) pause="$OPTARG" ;;
    I) inspect=1 ;;
    h) usage_text; exit 0 ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))

case "$nsync" in ''|*[!0-9]*) say "-n wants a count, not $nsync"; exit 1 ;; esac
case "$buf_kb" in ''|*[!0-9]*) say "-b wants KiB, not $buf_kb"; exit 1 ;; esac
case "$pause" in *[!0-9.]*) say "-w wants seconds, not $pause"; exit 1 ;; esac
if [ -n "$duration" ]; then
  case "$duration" in ''|*[!0-9.]*) say "-d wants seconds, not $duration"; exit 1 ;; esac
  [ $# -eq 0 ] || { say "give -d SECONDS or a COMMAND, not both"; exit 1; }
fi
if [ "$to_tar" = 1 ]; then
  [ -z "$out" ] || { say "give -o DIR or -T, not both"; exit 1; }
  [ -t 1 ] && { say "-T writes a tar to stdout: redirect it to a file or a pipe"; exit 1; }
elif [ -z "$out" ]; then
  say "say where the bundle goes: -o DIR, or -T for a tar on stdout"; exit 1
fi
[ -n "$kinds" ] || kinds="pio"
sync_kind=${kinds# }; sync_kind=${sync_kind%% *}
[ -n "$name" ] || name=$(hostname 2>/dev/null || cat /proc/sys/kernel/hostname)
[ -n "$vm" ] || vm="$name"
events=""
[ "$defaults" = 1 ] && events="$DEFAULT_EVENTS"
events="$events $extra_events"

[ "$(id -u)" = 0 ] || die "must run as root (tracefs instances and sync points need it)"

if [ -z "$syncpt" ]; then
  here=$(dirname "$0")
  if [ -x "$here/syncpt" ]; then syncpt="$here/syncpt"
  else syncpt=$(command -v syncpt 2>/dev/null) || syncpt=""
  fi
fi
if [ -z "$syncpt" ] || [ ! -x "$syncpt" ]; then
  die "cannot find the syncpt helper: build kvmtrace's native/ (make -C native) and pass -s PATH"
fi

# tracefs: use a mounted one, or mount it (and unmount it again at the end).
tracefs=""; mounted_tracefs=""
for t in /sys/kernel/tracing /sys/kernel/debug/tracing; do
  [ -d "$t/instances" ] && { tracefs="$t"; break; }
done
if [ -z "$tracefs" ]; then
  mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null ||
    die "tracefs is not mounted and cannot be mounted at /sys/kernel/tracing (kernel without CONFIG_TRACING?)"
  [ -d /sys/kernel/tracing/instances ] ||
    die "tracefs is not mounted and cannot be mounted at /sys/kernel/tracing (kernel without CONFIG_TRACING?)"
  tracefs=/sys/kernel/tracing; mounted_tracefs=$tracefs
fi

# Output: a folder of our own. Files are written as .part and renamed; meta.json comes last, so a
# bundle with a meta.json is complete.
tmpdir=""; made_dir=0
if [ "$to_tar" = 1 ]; then
  tmpdir=$(mktemp -d /tmp/kvmtrace-guest.XXXXXX) || die "cannot create a temporary folder"
  dir="$tmpdir"
else
  dir="$out"
  if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ] && [ "$force" != 1 ]; then
    die "$dir already holds files; not overwriting a bundle (use -f to write into it anyway)"
  fi
  [ -e "$dir" ] || made_dir=1
  mkdir -p "$dir" || die "cannot create $dir"
fi

# Guest facts, gathered before tracing starts (each command costs a fork and exec, which under an
# emulating hypervisor takes long enough to matter).
# JSON string; the sed (a fork) only for the rare value with a quote or backslash.
json() {
  case "$1" in
    *[\"\\]*) printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')" ;;
    *) printf '"%s"' "$1" ;;
  esac
}
json_list() {
  first=1; printf '['
  for x in "$@"; do [ $first = 1 ] || printf ', '; json "$x"; first=0; done
  printf ']'
}
kernel=$(uname -r)
cpus=$(grep -c '^processor' /proc/cpuinfo)
# Guest CPU -> vCPU: KVM names a vCPU (debugfs vcpuN, kvm_entry's vcpu) by its id, which QEMU makes
# the CPU's APIC id; the guest numbers its CPUs in its own order. Pair them from /proc/cpuinfo.
cpu_map=""; cpu_pairs=0; p=""
while read -r t n; do
  case $t in
    p) p=$n ;;
    a) [ -n "$p" ] && { cpu_map="$cpu_map${cpu_map:+, }\"$p\": $n"; cpu_pairs=$((cpu_pairs + 1)); p=""; } ;;
  esac
done <<EOF
$(sed -n -e 's/^processor[[:space:]]*: *\([0-9][0-9]*\)$/p \1/p' -e 's/^apicid[[:space:]]*: *\([0-9][0-9]*\)$/a \1/p' /proc/cpuinfo)
EOF
[ "$cpu_pairs" = "$cpus" ] || cpu_map=""
vendor=$(sed -n 's/^vendor_id[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
cpu_flags=" $(sed -n 's/^flags[[:space:]]*: //p' /proc/cpuinfo | head -n 1) "
tsc_flags=""
for f in $TSC_FLAGS; do case "$cpu_flags" in *" $f "*) tsc_flags="$tsc_flags $f" ;; esac; done
clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || echo unknown)
tsc_khz=""; tsc_from=""
# One read of the kernel log, tried twice: busybox dmesg was seen to crash once under the emulator.
klog=$(dmesg 2>/dev/null) || klog=$(dmesg 2>/dev/null) || { klog=""; say "cannot read the kernel log: no tscKhz in meta.json"; }
case "$klog" in
  *'tsc: Refined TSC clocksource calibration'*) pat='tsc: Refined TSC clocksource calibration' ;;
  *) pat='tsc: Detected [0-9.]* MHz' ;;
esac
line=$(printf '%s\n' "$klog" | grep -m 1 "$pat")
if [ -n "$line" ]; then
  mhz=$(printf '%s\n' "$line" | sed -n 's/.*[ :]\([0-9][0-9]*\.[0-9][0-9][0-9]\) MHz.*/\1/p')
  if [ -n "$mhz" ]; then
    tsc_khz=$(printf '%s' "$mhz" | tr -d . | sed 's/^0*//')
    tsc_from="kernel log: $(printf '%s' "$line" | sed 's/^\[[^]]*\] *//')"
  fi
fi

inst="$tracefs/instances/kvmtrace-$$"
cat_pid=""; finished=0; stopping=0; workload_pid=""

# shellcheck disable=SC2317 # called by trap
cleanup() {
  [ -d "$inst" ] && echo 0 > "$inst/tracing_on" 2>/dev/null
  if [ -n "$cat_pid" ]; then kill "$cat_pid" 2>/dev/null; wait "$cat_pid" 2>/dev/null; cat_pid=""; fi
  if [ -d "$inst" ]; then
    # rmdir fails with EBUSY while a reader still holds a file open: retry briefly.
    i=0
    while ! rmdir "$inst" 2>/dev/null; do
      i=$((i + 1)); [ "$i" -gt 50 ] && { say "could not remove $inst: remove it by hand (rmdir)"; break; }
      sleep 0.1
    done
  fi
  [ -n "$mounted_tracefs" ] && umount "$mounted_tracefs" 2>/dev/null
  if [ "$finished" != 1 ]; then
    rm -f "$dir/trace.txt.part" "$dir/meta.json.part"
    # A folder this run created is removed when the failed run left it empty.
    [ "$made_dir" = 1 ] && rmdir "$dir" 2>/dev/null
    say "capture aborted; no bundle written"
  fi
  [ -n "$tmpdir" ] && rm -rf "$tmpdir"
}
trap cleanup EXIT
# First INT/TERM ends the workload early and the bundle is still written; a second one aborts.
# shellcheck disable=SC2317 # called by trap
on_signal() {
  if [ "$stopping" = 1 ]; then exit "$1"; fi
  stopping=1
  say "stopping (again to abort)"
  [ -n "$workload_pid" ] && kill "$workload_pid" 2>/dev/null
}
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

[ -e "$inst" ] && die "$inst exists already"
mkdir "$inst" || die "cannot create the ftrace instance $inst"
echo 0 > "$inst/tracing_on"

available_clocks=$(cat "$inst/trace_clock")
if echo "$want_clock" > "$inst/trace_clock" 2>/dev/null; then :; else
  for c in global local; do
    if echo "$c" > "$inst/trace_clock" 2>/dev/null; then
      say "WARNING: trace clock $want_clock is not available here (have: $available_clocks); using $c." \
        "Timestamps will not be TSC cycles: merging needs sync points to map them."
      break
    fi
  done
fi
clock=$(sed 's/.*\[\([^]]*\)\].*/\1/' "$inst/trace_clock")
echo "$buf_kb" > "$inst/buffer_size_kb" || die "cannot set buffer_size_kb to $buf_kb"

for e in $events; do
  echo "$e" >> "$inst/set_event" 2>/dev/null || die "cannot enable event $e (not in $tracefs/available_events?)"
done

start_iso=$(date -u +%Y-%m-%dT%H:%M:%SZ)
cat "$inst/trace_pipe" > "$dir/trace.txt.part" &
cat_pid=$!
# The reader must not trace itself: each event wakes it, and its own switches would wake it
# again, for ever. Filtered events are discarded before they wake a reader.
[ -e "$inst/set_event_notrace_pid" ] && echo "$cat_pid" > "$inst/set_event_notrace_pid"
for ev in sched_switch:"prev_pid != $cat_pid && next_pid != $cat_pid" \
  sched_wakeup:"pid != $cat_pid" sched_waking:"pid != $cat_pid" sched_wakeup_new:"pid != $cat_pid"; do
  f="$inst/events/sched/${ev%%:*}/filter"
  [ -e "$f" ] && { echo "${ev#*:}" > "$f" || die "cannot set the filter of ${ev%%:*}"; }
done
echo 1 > "$inst/tracing_on"

# One syncpt run for all kinds (pio,cpuid): under an emulating hypervisor each exec costs seconds.
sync_arg=""
for k in $kinds; do sync_arg="${sync_arg:+$sync_arg,}$k"; done
run_sync() {
  "$syncpt" -n "$nsync" -k "$sync_arg" -m "$inst/trace_marker" || die "syncpt -k $sync_arg failed"
}

# Short: on a serial console under emulation every byte counts (~50 bytes/s).
say "tracing started"
[ -n "$pause" ] && sleep "$pause"
echo "kvmtrace capture start" > "$inst/trace_marker"
run_sync
cmd_status=0
if [ $# -gt 0 ]; then
  # With -T stdout carries the tar: the command's output goes to stderr instead.
  if [ "$to_tar" = 1 ]; then "$@" >&2 & else "$@" & fi
  workload_pid=$!
  wait "$workload_pid"; cmd_status=$?
  # wait returns early when a trapped signal arrives; wait again for the real status.
  if [ "$stopping" = 1 ]; then wait "$workload_pid" 2>/dev/null; cmd_status=$?; fi
  workload_pid=""
elif [ -n "$duration" ]; then
  sleep "$duration" &
  workload_pid=$!
  wait "$workload_pid" 2>/dev/null
  workload_pid=""
else
  say "capturing until Ctrl-C"
  while [ "$stopping" = 0 ]; do
    sleep 1 &
    workload_pid=$!
    wait "$workload_pid" 2>/dev/null
  done
  workload_pid=""
fi
run_sync
echo "kvmtrace capture end" > "$inst/trace_marker"
echo 0 > "$inst/tracing_on"
say "tracing stopped"
end_iso=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# Drain: trace_pipe still holds what was recorded; wait until every CPU buffer is empty. Few,
# long polls: each costs a fork and exec, slow under an emulating hypervisor.
# A reader that died (busybox applets were seen to crash under an emulating hypervisor) leaves
# its events in the ring buffer: a new reader takes them (tracing is off now, so it cannot trace
# itself). A live reader is never killed here, only waited for: under an emulator it formats
# slowly, and killing it would lose what it has read but not yet written.
reader_dead() {
  [ -r "/proc/$cat_pid/stat" ] || return 0
  read -r _ _ st _ < "/proc/$cat_pid/stat" || return 0
  [ "$st" = Z ]
}
i=0
while grep -q '^entries: [1-9]' "$inst"/per_cpu/cpu*/stats 2>/dev/null; do
  i=$((i + 1)); [ $i -gt 120 ] && { say "WARNING: trace_pipe did not drain in 60 s; the trace may miss its last events"; break; }
  if reader_dead; then
    say "WARNING: the trace reader died; starting a new one"
    wait "$cat_pid" 2>/dev/null
    cat "$inst/trace_pipe" >> "$dir/trace.txt.part" &
    cat_pid=$!
  fi
  sleep 0.5
done
lost=0
for s in "$inst"/per_cpu/cpu*/stats; do
  o=$(sed -n 's/^overrun: //p' "$s"); d=$(sed -n 's/^dropped events: //p' "$s")
  lost=$((lost + ${o:-0} + ${d:-0}))
done
# The buffer is empty, but the reader may still be writing its last read: give it a moment.
sleep 1
kill "$cat_pid" 2>/dev/null; wait "$cat_pid" 2>/dev/null; cat_pid=""
[ "$lost" -gt 0 ] && say "WARNING: the tracer lost $lost events (raise -b)"

avail=$available_clocks
case "$avail" in *\[*) avail_pre=${avail%%\[*}; avail_rest=${avail#*\[}; avail="$avail_pre${avail_rest%%\]*}${avail_rest#*\]}" ;; esac

{
  # Functions write straight into the file: no command substitution, so no fork per field.
  printf '{\n  "format": "kvmtrace-bundle",\n  "version": 1,\n  "role": "guest",\n'
  printf '  "name": '; json "$name"; printf ',\n'
  printf '  "traces": [{ "file": "trace.txt", "format": "ftrace-text" }],\n'
  printf '  "traceClock": '; json "$clock"; printf ',\n'
  if [ -n "$tsc_khz" ]; then printf '  "tscKhz": %s,\n  "tscKhzFrom": ' "$tsc_khz"; json "$tsc_from"; printf ',\n'; fi
  printf '  "kernel": '; json "$kernel"; printf ',\n'
  if [ -n "$vendor" ]; then printf '  "cpuVendor": '; json "$vendor"; printf ',\n'; fi
  printf '  "cpus": %s,\n' "$cpus"
  # shellcheck disable=SC2086 # word splitting of the clock list is intended
  { printf '  "availableClocks": '; json_list $avail; printf ',\n'; }
  printf '  "capturedAt": { "start": '; json "$start_iso"; printf ', "end": '; json "$end_iso"; printf ' },\n'
  printf '  "tool": '; json "kvmtrace $VERSION guest-script"; printf ',\n'
  printf '  "lostEvents": %s,\n' "$lost"
  printf '  "guest": {\n    "vm": '; json "$vm"; printf ',\n'
  printf '    "clocksource": '; json "$clocksource"; printf ',\n'
  [ -n "$cpu_map" ] && printf '    "cpuToVcpu": { %s },\n' "$cpu_map"
  # shellcheck disable=SC2086 # word splitting of the flag list is intended
  { printf '    "tscFlags": '; json_list $tsc_flags; printf ',\n'; }
  printf '    "syncKind": '; json "$sync_kind"; printf '\n  }\n}\n'
} > "$dir/meta.json.part" || die "cannot write $dir/meta.json"
mv "$dir/trace.txt.part" "$dir/trace.txt" || die "cannot write $dir/trace.txt"
[ "$inspect" = 1 ] && record_sysfs "$dir/sysfs"
mv "$dir/meta.json.part" "$dir/meta.json" || die "cannot write $dir/meta.json"
finished=1

if [ "$to_tar" = 1 ]; then
  if [ "$inspect" = 1 ]; then set -- meta.json trace.txt sysfs; else set -- meta.json trace.txt; fi
  tar -c -f - -C "$dir" "$@" || die "tar failed"
  say "bundle written as a tar to stdout ($(wc -c < "$dir/trace.txt") bytes of trace, clock $clock)"
else
  say "bundle written to $dir ($(wc -c < "$dir/trace.txt") bytes of trace, clock $clock)"
fi
[ "$cmd_status" = 0 ] || say "the command exited with status $cmd_status"
exit 0
