import { mkdirSync, readFileSync, readlinkSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Command } from 'commander';
import { checkInspectRoot, guestMetaFacts, inspectGuest, TSC_FLAGS } from '../src/capture/inspect/index.js';
import { formatInspection } from '../src/capture/inspect/report.js';
import { recordInspectTree } from '../src/capture/inspect/record.js';
import { parseFeatureBits, VIRTIO_BLK_FEATURES } from '../src/capture/inspect/virtio-features.js';
import { register as registerInspect } from '../src/cli/commands/inspect.js';
import { UserError } from '../src/model/errors.js';
import { tempDir } from './helpers/tmp.js';

const THIS_VM = 'fixtures/sysfs/this-vm';
const WCE = 'fixtures/sysfs/virtio-blk-wce';
const NOWCE = 'fixtures/sysfs/virtio-blk-nowce';
const read = (root: string, p: string): string => readFileSync(join(root, p), 'utf8');

describe('virtio feature bits', () => {
  it('reads sysfs bit strings with bit 0 first', () => {
    expect(parseFeatureBits('0010000001\n')).toEqual([2, 9]);
    expect(parseFeatureBits('01x')).toBeUndefined();
  });

  it('names the virtio-blk bits the issue lists, bit 9 being the write cache', () => {
    expect(VIRTIO_BLK_FEATURES[1]).toBe('VIRTIO_BLK_F_SIZE_MAX');
    expect(VIRTIO_BLK_FEATURES[9]).toBe('VIRTIO_BLK_F_WCE');
    expect(VIRTIO_BLK_FEATURES[11]).toBe('VIRTIO_BLK_F_CONFIG_WCE');
  });
});

describe('inspect on this machine, recorded (fixtures/sysfs/this-vm)', () => {
  const r = inspectGuest(THIS_VM);

  it('reports the clocksource and the TSC flags of the recorded files', () => {
    expect(r.clocksource).toBe(read(THIS_VM, 'sys/devices/system/clocksource/clocksource0/current_clocksource').trim());
    const flags = /^flags\s*:\s*(.*)$/m.exec(read(THIS_VM, 'proc/cpuinfo'))![1].split(' ');
    expect(r.tscFlags).toEqual(TSC_FLAGS.filter((f) => flags.includes(f)));
    expect([...r.tscFlags, ...r.tscFlagsMissing].sort()).toEqual([...TSC_FLAGS].sort());
    expect(r.kvmClock).toBe(read(THIS_VM, 'sys/devices/system/clocksource/clocksource0/available_clocksource').includes('kvm-clock'));
    expect(r.problems).toEqual([]);
  });

  it('decodes every virtio device: type, driver, the set bits of its features file', () => {
    const dir = join(THIS_VM, 'sys/bus/virtio/devices');
    const names = readdirSync(dir);
    expect(r.virtio.map((d) => d.name).sort()).toEqual(names.sort());
    for (const d of r.virtio) {
      const f = read(dir, `${d.name}/features`).trim();
      expect(d.features.map((b) => b.bit)).toEqual([...f].flatMap((c, i) => (c === '1' ? [i] : [])));
      expect(d.deviceId).toBe(Number.parseInt(read(dir, `${d.name}/device`), 16));
      expect(d.driver).toBe(basename(readlinkSync(join(dir, d.name, 'driver'))));
    }
  });

  it('finds the real virtio-blk disk with its write cache (bit 9) and cache_type', () => {
    const blk = r.virtio.filter((d) => d.type === 'block');
    expect(blk.length).toBe(1);
    const d = blk[0];
    const bits = read(join(THIS_VM, 'sys/bus/virtio/devices'), `${d.name}/features`);
    expect(d.block!.writeCache).toBe(bits[9] === '1');
    expect(d.block!.configWce).toBe(bits[11] === '1');
    expect(d.block!.cacheType).toBe(read(join(THIS_VM, 'sys/bus/virtio/devices'), `${d.name}/block/${d.block!.disk}/cache_type`).trim());
    expect(d.features.find((b) => b.bit === 9)?.name).toBe('VIRTIO_BLK_F_WCE');
  });

  it('gives the guest metadata its clocksource and TSC flags', () => {
    expect(guestMetaFacts(r)).toEqual({ clocksource: r.clocksource, tscFlags: r.tscFlags });
  });
});

describe('virtio-blk with and without write cache (constructed trees)', () => {
  const w = inspectGuest(WCE);
  const n = inspectGuest(NOWCE);
  const blk = (x: typeof w) => x.virtio.find((d) => d.type === 'block')!;

  it('with WCE: bit 9 and CONFIG_WCE negotiated, cache_type write back', () => {
    expect(blk(w).block).toEqual({ disk: 'vda', cacheType: 'write back', writeCache: true, configWce: true });
    expect(blk(w).features.map((f) => f.name)).toEqual(expect.arrayContaining(['VIRTIO_BLK_F_SIZE_MAX', 'VIRTIO_BLK_F_WCE', 'VIRTIO_BLK_F_CONFIG_WCE', 'VIRTIO_F_VERSION_1']));
    expect(w.notes.join('\n')).toMatch(/write cache.*write back/);
    expect(w.notes.join('\n')).toMatch(/cache_type is writable/);
  });

  it('without WCE: no bit 9, cache_type write through', () => {
    expect(blk(n).block).toEqual({ disk: 'vda', cacheType: 'write through', writeCache: false, configWce: false });
    expect(blk(n).features.some((f) => f.bit === 9)).toBe(false);
    expect(n.notes.join('\n')).toMatch(/no write cache bit \(9\)/);
  });

  it('tells trustworthy TSC flags from missing ones', () => {
    expect(w.notes.join('\n')).toMatch(/constant_tsc, nonstop_tsc\): x86-tsc timestamps are usable/);
    expect(n.tscFlagsMissing).toContain('nonstop_tsc');
    expect(n.notes.join('\n')).toMatch(/lacks nonstop_tsc/);
    expect(n.clocksource).toBe('kvm-clock');
  });

  it('prints the bits by name in the text report', () => {
    const t = formatInspection(w);
    expect(t).toContain('9 VIRTIO_BLK_F_WCE (write cache)');
    expect(t).toContain('cache_type: write back');
    expect(formatInspection(n)).toContain('cache_type: write through');
  });
});

describe('bad trees', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = tempDir('kvmtrace-inspect-');
  });

  it('reports unreadable or malformed files by path instead of guessing', () => {
    const d = join(tmp, 'sys/bus/virtio/devices/virtio0');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'device'), '0x0002\n');
    writeFileSync(join(d, 'features'), 'garbage\n');
    const r = inspectGuest(tmp);
    expect(r.problems).toEqual(
      expect.arrayContaining([
        `${join(tmp, 'proc/cpuinfo')}: cannot be read`,
        `${join(d, 'features')}: expected a string of 0 and 1, found "garbage"`,
      ]),
    );
    expect(r.virtio[0].block).toMatchObject({ writeCache: false });
  });

  it('refuses a root that is not a Linux root at all', async () => {
    const empty = join(tmp, 'empty');
    mkdirSync(empty);
    expect(() => checkInspectRoot(inspectGuest(empty))).toThrow(UserError);
    const p = new Command('kvmtrace').exitOverride();
    registerInspect(p);
    await expect(p.parseAsync(['node', 'kvmtrace', 'inspect', '--root', empty])).rejects.toThrow(/expected a Linux root/);
  });
});

describe('inspect on the live machine', () => {
  it('reads / without problems where /proc and /sys are there', () => {
    const r = inspectGuest('/');
    expect(r.problems).toEqual([]);
    expect(r.tscFlags.length).toBeGreaterThan(0);
    expect(r.clocksource).toBe(readFileSync('/sys/devices/system/clocksource/clocksource0/current_clocksource', 'utf8').trim());
  });
});

describe('recording a tree', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = tempDir('kvmtrace-record-');
  });

  it('copies exactly what inspect reads: the copy inspects the same as the original', () => {
    for (const src of [THIS_VM, WCE, NOWCE]) {
      const dest = join(tmp, basename(src));
      const files = recordInspectTree(src, dest);
      expect(files).toContain('proc/cpuinfo');
      const a = inspectGuest(src);
      const b = inspectGuest(dest);
      expect({ ...b, root: a.root }).toEqual(a);
    }
  });

  it('records the live machine and refuses to overwrite', () => {
    const dest = join(tmp, 'live');
    recordInspectTree('/', dest);
    const live = inspectGuest('/');
    expect({ ...inspectGuest(dest), root: '/' }).toEqual(live);
    expect(() => recordInspectTree('/', dest)).toThrow(/already exists/);
  });
});
