/**
 * How a run ends early: on SIGINT, SIGTERM or SIGHUP, or when standard output fails (stdout.ts).
 * What a run would leave half done (temporary output files, a terminal in the alternate screen)
 * is undone by the cleanups registered here, synchronously, before the process goes.
 *
 * A signal ends the process by that same signal once the cleanups ran (the handler removes itself
 * and raises the signal again), so a shell sees 130 for SIGINT, 143 for SIGTERM and 129 for
 * SIGHUP, and a script loop stops as it does for any Unix tool. A command that handles a signal
 * itself (`capture`: the first Ctrl-C ends the capture and still writes the bundle) adds its own
 * listener; while one is there, the default here stands aside.
 */

const cleanups = new Set<() => void>();

/** Registers `fn` (synchronous) to run if the run ends early; returns a function that unregisters it. */
export function onEarlyExit(fn: () => void): () => void {
  cleanups.add(fn);
  return () => void cleanups.delete(fn);
}

function runCleanups(): void {
  for (const fn of [...cleanups].reverse()) {
    try {
      fn();
    } catch {
      // The process is ending: one failed cleanup must not keep the others from running.
    }
  }
  cleanups.clear();
}

/** Ends the process now with exit status `code`, after the cleanups. */
export function exitNow(code: number): never {
  runCleanups();
  process.exit(code);
}

/** The signals that end a run, as a terminal or a supervisor sends them. */
const ENDING_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Installs the default handling of SIGINT, SIGTERM and SIGHUP: run the cleanups, then die of the signal. */
export function endOnSignals(): void {
  for (const sig of ENDING_SIGNALS) {
    const onSignal = (): void => {
      if (process.listenerCount(sig) > 1) return; // a command handles this signal itself
      runCleanups();
      process.off(sig, onSignal); // the disposition goes back to the default: terminate
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}
