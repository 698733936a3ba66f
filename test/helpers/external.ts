/**
 * The real recordings in ../shared/external/masterarbeit/, used in place (never copied into the
 * repository). Their reference texts are xz-compressed; they are decompressed once per run into
 * a temporary folder.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The folder of the real recordings (next to the repository, as on the developers' machines and CI). */
export const MASTERARBEIT = resolve(import.meta.dirname, '../../../shared/external/masterarbeit');

/** Why tests on the real recordings must skip, or undefined when they can run. */
export const externalMissing: string | undefined = existsSync(join(MASTERARBEIT, 'README.md'))
  ? undefined
  : `the real recordings are not at ${MASTERARBEIT}`;

const cache = join(tmpdir(), `kvmtrace-test-${process.getuid?.() ?? 0}`);

/** Decompresses `reference/NAME.xz` once and returns the path of the text. */
export function reference(name: string): string {
  mkdirSync(cache, { recursive: true });
  const out = join(cache, name);
  if (!existsSync(out)) {
    const text = execFileSync('xz', ['-dc', join(MASTERARBEIT, 'reference', name + '.xz')], { maxBuffer: 1 << 30 });
    writeFileSync(out + '.part', text);
    execFileSync('mv', [out + '.part', out]);
  }
  return out;
}

/** The docA pair's facts, as the README of the recordings gives them (read from the files' options). */
export const DOCA = {
  tscOffset: -63430235715905n,
  vcpuThread: 483882,
  tscKhz: 2918400,
  tsc2nsecMult: 735842807n,
  tsc2nsecShift: 31n,
};
