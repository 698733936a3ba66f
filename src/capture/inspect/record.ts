/**
 * Records the files `inspectGuest` reads into a folder, keeping their paths, so that a guest's
 * facts can be stored with its capture (or kept as a test fixture) and inspected later with
 * `kvmtrace inspect --root DIR`. Symlinks (a virtio device's `driver`) are recorded as symlinks.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { UserError } from '../../model/errors.js';

/** Files read per virtio device, relative to its sysfs folder. */
const DEVICE_FILES = ['device', 'vendor', 'features', 'status', 'modalias'];
/** Files read per virtio-blk disk, relative to `block/<disk>/`. */
const DISK_FILES = ['cache_type', 'size', 'queue/write_cache'];

/**
 * Copies what inspect reads from `root` to `dest` (which must not exist yet); returns the relative
 * paths written. A recording is whole or not there: when a file cannot be copied, `dest` (and any
 * folder made for it) is removed and the error names that file.
 */
export function recordInspectTree(root: string, dest: string): string[] {
  if (existsSync(dest)) throw new UserError(`${dest} already exists: give a new folder to record into`);
  let made: string | undefined;
  try {
    made = mkdirSync(dest, { recursive: true });
  } catch (e) {
    throw new UserError(`cannot record into ${dest}: ${(e as Error).message}`);
  }
  try {
    return copyTree(root, dest);
  } catch (e) {
    rmSync(made ?? dest, { recursive: true, force: true });
    throw e;
  }
}

/** Reads a file of the tree; a UserError naming it when it cannot be read. */
function readTreeFile(from: string): Buffer {
  try {
    return readFileSync(from);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`cannot record ${from}: ${code === 'EISDIR' ? 'it is a folder, where a file was expected' : (e as Error).message}`);
  }
}

function copyTree(root: string, dest: string): string[] {
  const written: string[] = [];
  const copy = (rel: string): void => {
    const from = join(root, rel);
    if (!existsSync(from)) return;
    mkdirSync(dirname(join(dest, rel)), { recursive: true });
    // read + write, not copyFile: sysfs files claim a size of 4096 and the kernel's copy paths
    // (copy_file_range/sendfile) loop on them.
    const data = readTreeFile(from);
    try {
      writeFileSync(join(dest, rel), data);
    } catch (e) {
      throw new UserError(`cannot write ${join(dest, rel)}: ${(e as Error).message}`);
    }
    written.push(rel);
  };
  const list = (rel: string): string[] => {
    try {
      return readdirSync(join(root, rel)).sort();
    } catch {
      return [];
    }
  };
  copy('proc/cpuinfo');
  copy('sys/devices/system/clocksource/clocksource0/current_clocksource');
  copy('sys/devices/system/clocksource/clocksource0/available_clocksource');
  for (const dev of list('sys/bus/virtio/devices')) {
    const d = `sys/bus/virtio/devices/${dev}`;
    for (const f of DEVICE_FILES) copy(`${d}/${f}`);
    try {
      const target = readlinkSync(join(root, d, 'driver'));
      mkdirSync(join(dest, d), { recursive: true });
      symlinkSync(target, join(dest, d, 'driver'));
      written.push(`${d}/driver`);
    } catch {
      // no driver bound: nothing to record
    }
    for (const disk of list(`${d}/block`)) for (const f of DISK_FILES) copy(`${d}/block/${disk}/${f}`);
    for (const ifname of list(`${d}/net`)) {
      mkdirSync(join(dest, d, 'net', ifname), { recursive: true });
      copy(`${d}/net/${ifname}/mtu`);
    }
  }
  return written;
}
