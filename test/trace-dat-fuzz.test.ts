/**
 * Damaged trace.dat files: cut at random offsets and with flipped bytes. Each must give either a
 * clean read (bad pages reported as diagnostics with a byte offset) or one UserError naming the
 * file and byte offset — never another exception, never a hang.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Diagnostics } from '../src/model/diagnostics.js';
import { isUserError } from '../src/model/errors.js';
import { openTraceDat, readTraceDatEvents, reportChunks } from '../src/parsers/trace-dat/index.js';
import { ROOT } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';
import { rng } from './helpers/rng.js';

const FIX = join(ROOT, 'fixtures', 'tracedat');
let dir: string;
beforeAll(() => {
  dir = tempDir('kvmtrace-fuzz-');
});

type Outcome = { kind: 'ok'; events: number; diags: number } | { kind: 'error'; message: string };

/** Reads a file fully (report and events API); returns what happened. Other exceptions propagate. */
async function readAll(file: string): Promise<Outcome> {
  const diags = new Diagnostics();
  try {
    const t = openTraceDat(file, diags);
    try {
      let lines = 0;
      for (const c of reportChunks(t, { nsec: true, raw: false, rawTs: false }, diags)) lines += c.split('\n').length;
      const s = readTraceDatEvents(t, { diags, fields: true });
      let events = 0;
      for await (const b of s.batches) events += b.length;
      return { kind: 'ok', events: events + lines * 0, diags: diags.count };
    } finally {
      t.close();
    }
  } catch (e) {
    if (isUserError(e)) return { kind: 'error', message: e.message };
    throw e;
  }
}

const SOURCES = ['v7-zstd-counter', 'v6-x86tsc', 'v7-none-x86tsc', 'v7-two-buffers'];

describe('damaged trace.dat files', () => {
  for (const name of SOURCES) {
    const orig = readFileSync(join(FIX, name + '.dat'));
    // Offsets that matter most: the data (CPU pages / chunks) sits at the end of the file.
    const dataStart = Math.max(0, orig.length - 128 * 1024);

    it(`${name}: cut at random offsets → a UserError with a byte offset, or a clean partial read`, { timeout: 120_000 }, async () => {
      const r = rng(name.length * 7919);
      const cuts = [0, 5, 11, 20, 40, ...Array.from({ length: 6 }, () => Math.floor(r() * orig.length))];
      cuts.push(...Array.from({ length: 6 }, () => dataStart + Math.floor(r() * (orig.length - dataStart))));
      for (const cut of cuts) {
        const f = join(dir, `${name}-cut-${cut}.dat`);
        writeFileSync(f, orig.subarray(0, cut));
        const out = await readAll(f);
        if (out.kind === 'error') expect(out.message, `cut at ${cut}`).toMatch(/at byte \d+|not a trace\.dat/);
        rmSync(f);
      }
    });

    it(`${name}: flipped bytes → a UserError with a byte offset, or a read with diagnostics`, { timeout: 120_000 }, async () => {
      const r = rng(name.length * 104729);
      let errors = 0;
      let clean = 0;
      for (let round = 0; round < 12; round++) {
        const buf = Buffer.from(orig);
        const inData = round % 3 !== 0;
        for (let k = 0; k < 4; k++) {
          const at = inData ? dataStart + Math.floor(r() * (buf.length - dataStart)) : Math.floor(r() * buf.length);
          buf[at] ^= 1 << Math.floor(r() * 8);
        }
        const f = join(dir, `${name}-flip-${round}.dat`);
        writeFileSync(f, buf);
        const out = await readAll(f);
        if (out.kind === 'error') {
          errors++;
          expect(out.message, `round ${round}`).toMatch(/at byte \d+/);
        } else clean++;
        rmSync(f);
      }
      expect(errors + clean).toBe(12);
    });
  }

  it('a damaged page is a diagnostic naming the byte offset, and reading goes on', async () => {
    const orig = readFileSync(join(FIX, 'v7-none-x86tsc.dat'));
    const t0 = openTraceDat(join(FIX, 'v7-none-x86tsc.dat'), new Diagnostics());
    const b = t0.buffers.find((x) => x.cpus.some((c) => c.size > 8192))!;
    const cd = b.cpus.find((c) => c.size > 8192)!;
    t0.close();
    const buf = Buffer.from(orig);
    // Second page of that CPU: set its commit to an impossible size.
    buf.writeUInt32LE(0x7ffffff, cd.offset + 4096 + 8);
    const f = join(dir, 'bad-commit.dat');
    writeFileSync(f, buf);
    const diags = new Diagnostics();
    const t = openTraceDat(f, diags);
    let events = 0;
    for await (const batch of readTraceDatEvents(t, { diags, buffer: b.name }).batches) events += batch.length;
    t.close();
    expect(events).toBeGreaterThan(0);
    expect(diags.count).toBe(1);
    expect(diags.list[0].byteOffset).toBe(cd.offset + 4096 + 8);
    expect(diags.list[0].message).toMatch(/commit/);
    const strict = new Diagnostics(true);
    const t2 = openTraceDat(f, strict);
    await expect(async () => {
      for await (const _ of readTraceDatEvents(t2, { diags: strict, buffer: b.name }).batches) void _;
    }).rejects.toThrow(/at byte \d+/);
    t2.close();
  });
});
