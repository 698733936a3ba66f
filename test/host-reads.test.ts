/**
 * The host file is read once per command: the host index's pass (host/index.ts) is the only read —
 * planning, estimation, validation and `check`'s cross-check use the index, and the merge replays
 * the blocks that pass kept (host/retain.ts). A host too large for that budget is read a second
 * time by the merge, with the same output.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { prepareMerge, runMerge, type MergeRequest } from '../src/merge/session.js';
import { exportMerge } from '../src/export/export-merge.js';
import { clockCheck } from '../src/merge/estimate/verdict.js';
import { crossCheck } from '../src/merge/estimate/for-plan.js';
import { readsOf } from '../src/merge/source.js';
import { ROOT } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';
import { DOCA, externalMissing, MASTERARBEIT, reference } from './helpers/external.js';

/** How many times `file` is read while `f` runs. */
async function reads(file: string, f: () => Promise<unknown>): Promise<number> {
  const before = readsOf(file);
  await f();
  return readsOf(file) - before;
}

/** `kvmtrace check`'s flow: the guests merged on the indexed host, then the cross-check. */
async function check(req: MergeRequest): Promise<string> {
  const p = await prepareMerge({ ...req, hostStream: false });
  const run = await runMerge(p, []);
  const c = clockCheck(p, run.result);
  await crossCheck(p, c);
  return c.verdict;
}

const PVM = join(ROOT, 'fixtures', 'pvm-1vcpu');

describe('reads of the host file', () => {
  it('the demo capture: one per merge (Chrome JSON, text, summary), one per check', async () => {
    const host = join(PVM, 'host', 'trace.txt');
    const req: MergeRequest = { bundles: [join(PVM, 'host'), join(PVM, 'guest')], hostFiles: [], guestFiles: [], overrides: {} };
    const dir = tempDir('kvmtrace-reads-');
    expect(await reads(host, async () => exportMerge(await prepareMerge(req), { json: join(dir, 'm.json'), text: join(dir, 'm.txt'), summary: join(dir, 's.json') }))).toBe(1);
    let verdict = '';
    expect(await reads(host, async () => (verdict = await check(req)))).toBe(1);
    expect(verdict).toBe('EXACT');
  });
});

describe.skipIf(externalMissing)('reads of the host file (docA)', () => {
  if (externalMissing) console.log(`skipped: ${externalMissing}`);
  const text = (): MergeRequest => ({
    bundles: [],
    hostFiles: [reference('docA-host-trace.dat.report-rawts.txt')],
    guestFiles: [reference('docA-guest-trace-Salamander4.dat.report-rawts.txt')],
    hostClock: 'x86-tsc',
    guestClock: 'x86-tsc',
    overrides: { tscOffset: DOCA.tscOffset, vcpuThreads: new Map([[0, DOCA.vcpuThread]]) },
    tscKhz: DOCA.tscKhz,
  });

  it('as ftrace text: one per merge; a host beyond the kept budget is read twice, with the same bytes out', async () => {
    const host = reference('docA-host-trace.dat.report-rawts.txt');
    const dir = tempDir('kvmtrace-reads-');
    const out = (tag: string) => ({ json: join(dir, `${tag}.json`), text: join(dir, `${tag}.txt`) });
    expect(await reads(host, async () => exportMerge(await prepareMerge(text()), out('kept')))).toBe(1);
    expect(await reads(host, async () => exportMerge(await prepareMerge({ ...text(), hostKeepBytes: 0 }), out('read')))).toBe(2);
    for (const ext of ['json', 'txt']) expect(readFileSync(join(dir, `read.${ext}`)).equals(readFileSync(join(dir, `kept.${ext}`)))).toBe(true);
  });

  it('the guest as ftrace text stating 1 CPU (`cpus=1`): read once per merge, its CPU paired with vCPU 0 without a pass over it', async () => {
    const guest = reference('docA-guest-trace-Salamander4.dat.report-rawts.txt');
    let p: Awaited<ReturnType<typeof prepareMerge>> | undefined;
    expect(await reads(guest, async () => exportMerge((p = await prepareMerge(text())), {}))).toBe(1);
    expect(p!.guests[0].plan!.pairing).toEqual({ map: new Map([[0, 0]]), from: 'the guest has 1 CPU, its boot CPU: vCPU 0', assumed: false });
  });

  it('as trace.dat, the offset estimated from the traces (no stated mapping): one per merge, one per check with its cross-check', async () => {
    const host = join(MASTERARBEIT, 'docA-host-trace.dat');
    const req: MergeRequest = { bundles: [], hostFiles: [host], guestFiles: [join(MASTERARBEIT, 'docA-guest-trace-Salamander4.dat')], overrides: { noFileOffsets: true } };
    expect(await reads(host, async () => exportMerge(await prepareMerge(req), {}))).toBe(1);
    let verdict = '';
    expect(await reads(host, async () => (verdict = await check(req)))).toBe(1);
    expect(verdict).toBe('BOUNDED');
    // With the file's own mapping, the cross-check sets it against an estimate: still one read.
    expect(await reads(host, async () => (verdict = await check({ ...req, overrides: {} })))).toBe(1);
    expect(verdict).toBe('EXACT');
  });
});
