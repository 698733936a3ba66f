import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers/tmp.js';
import { metaToJson, validateMeta, type BundleMeta } from '../src/model/bundle.js';
import { loadBundle } from '../src/merge/inputs.js';

const valid = {
  format: 'kvmtrace-bundle',
  version: 1,
  role: 'host',
  name: 'lab',
  traceClock: 'x86-tsc',
  tscKhz: 2918400,
  traces: [{ file: 'trace.txt', format: 'ftrace-text' }],
  vms: [
    {
      name: 'kvmlab',
      qemuPid: 100,
      vcpus: [{ vcpu: 0, tid: 101, snapshots: [{ when: 'start', hostTsc: '18446744073709551000', tscOffset: '-63430235715905' }] }],
    },
  ],
};

describe('meta.json validation', () => {
  it('reads a valid host meta with 64-bit values exactly', () => {
    const m = validateMeta(valid, 'meta.json');
    expect(m.vms![0].vcpus[0].snapshots[0]).toEqual({ when: 'start', hostTsc: 18446744073709551000n, tscOffset: -63430235715905n });
    // Round trip through the writer keeps every value.
    expect(validateMeta(JSON.parse(metaToJson(m as BundleMeta)), 'again')).toEqual(m);
  });

  const cases: [string, (m: any) => void, RegExp][] = [
    ['wrong format', (m) => (m.format = 'x'), /field "format" must be "kvmtrace-bundle"/],
    ['newer version', (m) => (m.version = 2), /field "version" is 2; this kvmtrace reads version 1/],
    ['bad role', (m) => (m.role = 'vm'), /field "role" must be "host" or "guest"/],
    ['unknown clock', (m) => (m.traceClock = 'tsc'), /field "traceClock" "tsc" is not a trace clock/],
    ['offset as a JSON number', (m) => (m.vms[0].vcpus[0].snapshots[0].tscOffset = -6343), /vms\[0\]\.vcpus\[0\]\.snapshots\[0\]\.tscOffset" must be a signed decimal string/],
    ['tid missing', (m) => delete m.vms[0].vcpus[0].tid, /vms\[0\]\.vcpus\[0\]\.tid" must be an integer/],
    ['trace outside the bundle', (m) => (m.traces[0].file = '../x'), /traces\[0\]\.file" must be a path inside the bundle/],
    ['no traces', (m) => (m.traces = []), /field "traces" must name at least one trace file/],
    ['guest facts in a host bundle', (m) => (m.guest = {}), /field "guest" belongs in guest bundles only/],
  ];
  for (const [what, change, msg] of cases)
    it(`names the field and what was expected: ${what}`, () => {
      const m = structuredClone(valid);
      change(m);
      expect(() => validateMeta(m, 'b/meta.json')).toThrow(msg);
      expect(() => validateMeta(m, 'b/meta.json')).toThrow(/^b\/meta\.json: /);
    });
});

describe('loading bundles', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir('kvmtrace-bundle-');
  });
  it('says what is wrong with a folder that is not a bundle', async () => {
    mkdirSync(join(dir, 'empty'));
    await expect(loadBundle(join(dir, 'empty'))).rejects.toThrow(/is not a kvmtrace bundle: .*meta\.json is missing/);
    await expect(loadBundle(join(dir, 'nope'))).rejects.toThrow(/no such bundle folder/);
    mkdirSync(join(dir, 'badjson'));
    writeFileSync(join(dir, 'badjson', 'meta.json'), '{"format": ');
    await expect(loadBundle(join(dir, 'badjson'))).rejects.toThrow(/meta\.json: not valid JSON/);
  });
  it('turns a bundle into sources carrying its clock from the metadata', async () => {
    mkdirSync(join(dir, 'ok'));
    writeFileSync(join(dir, 'ok', 'meta.json'), JSON.stringify(valid));
    const b = await loadBundle(join(dir, 'ok'));
    expect(b.specs).toEqual([
      expect.objectContaining({ role: 'host', machine: 'lab', file: join(dir, 'ok', 'trace.txt'), clock: 'x86-tsc', clockFrom: 'metadata' }),
    ]);
  });
});
