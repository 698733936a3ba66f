/**
 * Guest inspection: what decides whether a guest's timestamps can be trusted (clocksource, TSC
 * flags, kvm-clock) and how its disks behave (virtio feature bits, virtio-blk write cache).
 * Everything is read below a root folder — `/` in a guest, a recorded sysfs tree in tests.
 * Sources: /proc/cpuinfo, /sys/devices/system/clocksource/clocksource0/, /sys/bus/virtio/devices/.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { GuestMeta } from '../../model/bundle.js';
import { UserError } from '../../model/errors.js';
import { nameFeatures, parseFeatureBits, VIRTIO_BLK_NOTES, VIRTIO_DEVICE_TYPES, type FeatureBit } from './virtio-features.js';

/** The /proc/cpuinfo flags that decide whether TSC timestamps can be trusted, in report order. */
export const TSC_FLAGS = ['tsc', 'constant_tsc', 'nonstop_tsc', 'tsc_known_freq', 'tsc_reliable', 'rdtscp', 'tsc_adjust', 'tsc_deadline_timer'] as const;

/** A virtio-blk disk's write behaviour. */
export interface VirtioBlockInfo {
  /** Block device name (`vda`). */
  disk?: string;
  /** `cache_type` as the kernel reports it ("write back" / "write through"); undefined when absent. */
  cacheType?: string;
  /** Bit 9 negotiated: the device has a volatile write cache and takes flushes. */
  writeCache: boolean;
  /** Bit 11 negotiated: the guest may switch the cache mode through cache_type. */
  configWce: boolean;
}

/** One virtio device as sysfs shows it. */
export interface VirtioDevice {
  /** sysfs name, `virtio1`. */
  name: string;
  deviceId: number;
  /** Type name from the device id ('block', 'net', …), or `id N`. */
  type: string;
  vendor?: string;
  driver?: string;
  /** Negotiated feature bits (device ∩ driver), named where kvmtrace knows the name. */
  features: FeatureBit[];
  /** Device status byte (ACKNOWLEDGE 1, DRIVER 2, DRIVER_OK 4, FEATURES_OK 8, …). */
  status?: number;
  block?: VirtioBlockInfo;
  /** Network interface or other child names (`eth0`). */
  children?: string[];
}

/** Everything `kvmtrace inspect` reports about one guest. */
export interface GuestInspection {
  root: string;
  clocksource?: string;
  availableClocksources?: string[];
  /** TSC-related CPU flags present (of {@link TSC_FLAGS}). */
  tscFlags: string[];
  /** TSC-related CPU flags absent. */
  tscFlagsMissing: string[];
  hypervisor: boolean;
  /** kvm-clock is available as a clocksource (the guest runs on KVM with the pvclock). */
  kvmClock: boolean;
  virtio: VirtioDevice[];
  /** Plain sentences: what the findings mean for timestamps and disks. */
  notes: string[];
  /** Files that could not be read or parsed (the report says so instead of guessing). */
  problems: string[];
}

/** Inspects the guest whose filesystem is at `root`. */
export function inspectGuest(root = '/'): GuestInspection {
  const problems: string[] = [];
  const read = (p: string): string | undefined => {
    try {
      return readFileSync(join(root, p), 'utf8');
    } catch {
      return undefined;
    }
  };
  const cpuinfo = read('proc/cpuinfo');
  if (cpuinfo === undefined) problems.push(`${join(root, 'proc/cpuinfo')}: cannot be read`);
  const flagsLine = cpuinfo ? /^flags\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] : undefined;
  if (cpuinfo !== undefined && flagsLine === undefined) problems.push(`${join(root, 'proc/cpuinfo')}: no "flags" line`);
  const flags = new Set((flagsLine ?? '').trim().split(/\s+/).filter(Boolean));

  const csDir = 'sys/devices/system/clocksource/clocksource0';
  const clocksource = read(`${csDir}/current_clocksource`)?.trim();
  const available = read(`${csDir}/available_clocksource`)?.trim().split(/\s+/).filter(Boolean);
  if (clocksource === undefined) problems.push(`${join(root, csDir, 'current_clocksource')}: cannot be read`);

  const r: GuestInspection = {
    root,
    clocksource,
    availableClocksources: available,
    tscFlags: TSC_FLAGS.filter((f) => flags.has(f)),
    tscFlagsMissing: flagsLine === undefined ? [] : TSC_FLAGS.filter((f) => !flags.has(f)),
    hypervisor: flags.has('hypervisor'),
    kvmClock: clocksource === 'kvm-clock' || (available ?? []).includes('kvm-clock'),
    virtio: readVirtio(root, problems),
    notes: [],
    problems,
  };
  r.notes = notesFor(r, flagsLine !== undefined);
  return r;
}

function readVirtio(root: string, problems: string[]): VirtioDevice[] {
  const base = join(root, 'sys/bus/virtio/devices');
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return []; // no virtio bus: not a problem, just no devices
  }
  const out: VirtioDevice[] = [];
  for (const name of names.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))) {
    const dir = join(base, name);
    const rd = (f: string): string | undefined => {
      try {
        return readFileSync(join(dir, f), 'utf8').trim();
      } catch {
        return undefined;
      }
    };
    const idText = rd('device');
    const deviceId = idText !== undefined && /^0x[0-9a-f]+$/i.test(idText) ? Number.parseInt(idText, 16) : NaN;
    if (Number.isNaN(deviceId)) {
      problems.push(`${join(dir, 'device')}: expected a hex device id, found ${idText === undefined ? 'nothing' : JSON.stringify(idText)}`);
      continue;
    }
    const featText = rd('features');
    const bits = featText === undefined ? undefined : parseFeatureBits(featText);
    if (bits === undefined) problems.push(`${join(dir, 'features')}: expected a string of 0 and 1, found ${featText === undefined ? 'nothing' : JSON.stringify(featText.slice(0, 40))}`);
    const statusText = rd('status');
    let driver: string | undefined;
    try {
      driver = basename(readlinkSync(join(dir, 'driver')));
    } catch {
      driver = undefined;
    }
    const dev: VirtioDevice = {
      name,
      deviceId,
      type: VIRTIO_DEVICE_TYPES[deviceId] ?? `id ${deviceId}`,
      vendor: rd('vendor'),
      driver,
      features: nameFeatures(deviceId, bits ?? []),
      status: statusText !== undefined && /^0x[0-9a-f]+$/i.test(statusText) ? Number.parseInt(statusText, 16) : undefined,
    };
    const set = new Set(bits ?? []);
    if (deviceId === 2) {
      const disk = listDir(join(dir, 'block'))[0];
      dev.block = {
        disk,
        cacheType: disk ? rd(`block/${disk}/cache_type`) : undefined,
        writeCache: set.has(9),
        configWce: set.has(11),
      };
    } else {
      const kids = deviceId === 1 ? listDir(join(dir, 'net')) : [];
      if (kids.length) dev.children = kids;
    }
    out.push(dev);
  }
  return out;
}

function listDir(p: string): string[] {
  try {
    return readdirSync(p).sort();
  } catch {
    return [];
  }
}

/** What the findings mean, in sentences for the report. */
function notesFor(r: GuestInspection, haveFlags: boolean): string[] {
  const n: string[] = [];
  const has = (f: string): boolean => r.tscFlags.includes(f);
  if (haveFlags) {
    if (!has('tsc')) n.push('no TSC: x86-tsc timestamps are impossible in this guest');
    else if (has('constant_tsc') && has('nonstop_tsc')) n.push('TSC runs at a constant rate and does not stop in idle states (constant_tsc, nonstop_tsc): x86-tsc timestamps are usable');
    else n.push(`TSC lacks ${['constant_tsc', 'nonstop_tsc'].filter((f) => !has(f)).join(' and ')}: its rate may change or it may stop in idle — do not trust x86-tsc timestamps across such periods`);
    if (has('tsc_known_freq')) n.push('TSC frequency comes from CPUID (tsc_known_freq), not from a calibration');
  }
  if (r.clocksource === 'tsc') n.push('the kernel clocksource is tsc: kernel time (local/global/mono trace clocks) follows the TSC');
  else if (r.clocksource === 'kvm-clock') n.push('the kernel clocksource is kvm-clock: kernel time is the host-provided pvclock (scaled TSC); only the x86-tsc trace clock gives raw TSC values');
  else if (r.clocksource) n.push(`the kernel clocksource is ${r.clocksource}: the kernel does not use the TSC for time (it may have found it unstable); trace with x86-tsc and check the TSC flags`);
  for (const d of r.virtio) {
    if (!d.block) continue;
    const b = d.block;
    const name = `${d.name}${b.disk ? ` (${b.disk})` : ''}`;
    if (b.writeCache) {
      n.push(`${name}: ${VIRTIO_BLK_NOTES[9]}; writes complete before they are on stable storage unless flushed${b.cacheType ? ` (cache_type: ${b.cacheType})` : ''}`);
    } else {
      n.push(`${name}: no write cache bit (9): writes complete when stored (write through)${b.cacheType ? ` (cache_type: ${b.cacheType})` : ''}`);
    }
    if (b.configWce) n.push(`${name}: ${VIRTIO_BLK_NOTES[11]}`);
  }
  return n;
}

/** The parts of an inspection that the bundle's guest metadata holds (docs/bundle.md). */
export function guestMetaFacts(r: GuestInspection): Pick<GuestMeta, 'clocksource' | 'tscFlags'> {
  return { clocksource: r.clocksource, tscFlags: r.tscFlags };
}

/** A UserError when `root` does not look like a Linux root at all (neither /proc nor /sys readable). */
export function checkInspectRoot(r: GuestInspection): void {
  if (r.clocksource === undefined && r.tscFlags.length === 0 && r.virtio.length === 0) {
    throw new UserError(`${r.root}: found neither proc/cpuinfo, the clocksource files nor virtio devices — expected a Linux root (/) or a recorded sysfs tree`);
  }
}
