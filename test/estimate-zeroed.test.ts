/**
 * The stap method as a mapping source: a host whose systemtap script made KVM write offset 0
 * (`tsc_offset_zeroed` lines) needs no offset at all — the guest reads the host's TSC.
 *
 * No stap run is possible on these machines (stap/README.md), so the pair is what the method would
 * have recorded for the real docA run: every docA event as a stap line (the tapset's format), host
 * lines at their host TSC, guest lines at guest TSC − offset (= host TSC, as with offset 0), and
 * the zeroing script's line for vCPU 0 first.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exportMerge } from '../src/export/export-merge.js';
import { prepareMerge } from '../src/merge/session.js';
import { clockCheck } from '../src/merge/estimate/verdict.js';
import { DOCA, externalMissing, reference } from './helpers/external.js';
import { tempDir } from './helpers/tmp.js';

/** `trace-cmd report --raw-ts` lines → stap lines (TSC, CPU, TID, PID, COMM, EVENT, BODY), TSC shifted. */
function toStap(rawts: string, side: string, shift: bigint, first: string[] = []): string {
  const out = [`# kvmtrace-stap 1 side=${side} script=converted clock=get_cycles`, ...first];
  for (const l of readFileSync(rawts, 'utf8').split('\n')) {
    const m = /^\s*(.+)-(\d+)\s+\[(\d+)\](\d+): (\S+):\s+(.*)$/.exec(l);
    if (m) out.push([BigInt(m[4]) + shift, Number(m[3]), m[2], m[2], m[1], m[5], m[6]].join('\t'));
  }
  return out.join('\n') + '\n';
}

describe.skipIf(externalMissing)('a zeroed TSC offset (the stap method)', () => {
  if (externalMissing) console.log(`skipped: ${externalMissing}`);

  it('maps with offset 0, EXACT, and puts the 89,827 docA guest events inside their windows', async () => {
    const dir = tempDir('kvmtrace-zeroed-');
    const hostRaw = reference('docA-host-trace.dat.report-rawts.txt');
    const firstTsc = /\](\d+):/.exec(readFileSync(hostRaw, 'utf8'))![1];
    const zeroLine = [firstTsc, 7, DOCA.vcpuThread, DOCA.vcpuThread, 'qemu-system-x86', 'tsc_offset_zeroed', 'vcpu=0 hook=write was=18446680643473835711'].join('\t');
    writeFileSync(join(dir, 'host.stap'), toStap(hostRaw, 'host', 0n, [zeroLine]));
    writeFileSync(join(dir, 'guest.stap'), toStap(reference('docA-guest-trace-Salamander4.dat.report-rawts.txt'), 'guest', -DOCA.tscOffset));
    const p = await prepareMerge({ bundles: [], hostFiles: [join(dir, 'host.stap')], guestFiles: [join(dir, 'guest.stap')], overrides: {} });
    const v = p.guests[0].plan!.vcpu(0);
    expect(v.mappingFrom).toBe('zeroed offset (1 tsc_offset_zeroed event(s) on the host: the stap method)');
    expect(v.mapping.pieces.map((x) => x.offset)).toEqual([0n]);
    expect(v.bound).toEqual({ low: 0n, high: 0n });
    const r = await exportMerge(p, {});
    expect(r.result.guests[0].vcpus[0]).toMatchObject({ vcpu: 0, hostTid: DOCA.vcpuThread, checked: 89827, inside: 89827 });
    expect(clockCheck(p, r.result).guests[0]).toMatchObject({ verdict: 'EXACT' });
  });
});
