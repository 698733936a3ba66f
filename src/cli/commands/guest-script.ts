/**
 * `kvmtrace guest-script`: prints the guest capture script (POSIX sh) for guests without Node.js.
 */
import type { Command } from 'commander';
import { guestScript } from '../../capture/guest-capture.js';

/** Adds `guest-script` to the program. */
export function register(program: Command): void {
  program
    .command('guest-script')
    .description('print the guest capture script (POSIX sh; copy it and native/build/syncpt into the guest, run it as root; -h for its options)')
    .action(async () => {
      process.stdout.write(await guestScript());
    });
}
