/**
 * `kvmtrace guest-script`: prints the guest capture script (POSIX sh) for guests without Node.js.
 */
import type { Command } from 'commander';
import { guestScript } from '../../capture/guest-capture.js';

/** Adds `guest-script` to the program. */
export function register(program: Command): void {
  program
    .command('guest-script')
    .summary('print the guest capture script (POSIX sh, for guests without Node.js)')
    .description(
      'Print the guest capture script (POSIX sh) for guests without Node.js. Copy it and native/build/syncpt into the ' +
        'guest and run it there as root: `sh capture.sh -o guest/ -k pio -- COMMAND`; `sh capture.sh -h` lists its options. ' +
        'Where Node.js runs in the guest, `kvmtrace capture guest` runs the same script.',
    )
    .action(async () => {
      process.stdout.write(await guestScript());
    });
}
