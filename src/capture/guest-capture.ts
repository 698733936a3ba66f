/**
 * The guest side: `kvmtrace guest-script` prints native/kvmtrace-guest.sh (for guests without
 * Node.js), and `kvmtrace capture guest` runs that same script here with the built syncpt helper,
 * so there is one implementation of the guest capture.
 */
import { spawn } from 'node:child_process';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inspectGuest } from './inspect/index.js';
import { UserError } from '../model/errors.js';
import { GUEST_SCRIPT, helperPath } from './native.js';

/** The guest capture script's text (POSIX sh). */
export async function guestScript(): Promise<string> {
  return readFile(GUEST_SCRIPT, 'utf8').catch((e: Error) => {
    throw new UserError(`cannot read the guest capture script ${GUEST_SCRIPT}: ${e.message}`);
  });
}

/** What `capture guest` is asked to do (each maps to a script option). */
export interface GuestCaptureOptions {
  outDir: string;
  durationS?: number;
  events?: string[];
  noDefaultEvents?: boolean;
  syncKinds?: ('pio' | 'cpuid')[];
  syncPoints?: number;
  name?: string;
  vm?: string;
  bufferKb?: number;
  clock?: string;
  force?: boolean;
  /** Command to capture around. */
  command?: string[];
}

/** The script's argument list for these options. */
export function guestScriptArgs(o: GuestCaptureOptions, syncpt: string): string[] {
  const a = ['-o', o.outDir, '-s', syncpt];
  if (o.durationS !== undefined) a.push('-d', String(o.durationS));
  for (const e of o.events ?? []) a.push('-e', e);
  if (o.noDefaultEvents) a.push('-E');
  for (const k of o.syncKinds ?? []) a.push('-k', k);
  if (o.syncPoints !== undefined) a.push('-n', String(o.syncPoints));
  if (o.name !== undefined) a.push('-N', o.name);
  if (o.vm !== undefined) a.push('-V', o.vm);
  if (o.bufferKb !== undefined) a.push('-b', String(o.bufferKb));
  if (o.clock !== undefined) a.push('-c', o.clock);
  if (o.force) a.push('-f');
  if (o.command && o.command.length > 0) a.push('--', ...o.command);
  return a;
}

/**
 * Runs the guest capture script with this terminal; resolves with its exit code. Ctrl-C reaches
 * the script (same process group), which ends the capture and still writes the bundle.
 */
export async function captureGuest(o: GuestCaptureOptions): Promise<number> {
  const syncpt = helperPath('syncpt');
  const args = guestScriptArgs(o, syncpt);
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn('sh', [GUEST_SCRIPT, ...args], { stdio: 'inherit' });
    child.on('error', (e) => reject(new UserError(`cannot run sh ${GUEST_SCRIPT}: ${e.message}`)));
    child.on('close', (c, signal) => resolve(c ?? (signal === 'SIGINT' ? 130 : 143)));
  });
  if (code === 0 && o.outDir !== '-') await addInspection(o.outDir);
  return code;
}

/**
 * Where Node runs in the guest, the bundle also gets what `kvmtrace inspect` finds (clocksource,
 * TSC flags, kvm-clock, virtio devices) as `guest.inspect`; meta.json is replaced whole.
 */
async function addInspection(dir: string): Promise<void> {
  const path = join(dir, 'meta.json');
  const meta = JSON.parse(await readFile(path, 'utf8')) as { guest?: Record<string, unknown> };
  meta.guest = { ...(meta.guest ?? {}), inspect: inspectGuest('/') };
  const tmp = join(dir, `.meta.json.${process.pid}.tmp`);
  await writeFile(tmp, JSON.stringify(meta, null, 2) + '\n');
  await rename(tmp, path);
}
