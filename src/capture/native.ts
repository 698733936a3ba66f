/**
 * Where kvmtrace's own files outside the compiled code live: the static helpers built by
 * `make -C native` and the guest capture script. Both `src/capture/` (run with tsx) and
 * `dist/capture/` (built) sit two levels below the package root.
 */
import { accessSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { UserError } from '../model/errors.js';

/** The package root (the folder holding package.json and native/). */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The native/ source folder. */
export const NATIVE_DIR = join(PACKAGE_ROOT, 'native');

/** The guest capture script (POSIX sh). */
export const GUEST_SCRIPT = join(NATIVE_DIR, 'kvmtrace-guest.sh');

/** Names of the static helpers `make -C native` builds. */
export type Helper = 'syncpt' | 'dbgout' | 'rdtsc';

/** Path of a built helper; a UserError saying how to build it when it is missing. */
export function helperPath(name: Helper): string {
  const p = join(NATIVE_DIR, 'build', name);
  try {
    accessSync(p, constants.X_OK);
  } catch {
    throw new UserError(`the helper ${p} is not built: run \`make -C ${NATIVE_DIR}\` (needs gcc and static glibc)`);
  }
  return p;
}
