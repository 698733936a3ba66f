/**
 * Progress on a TTY: a single rewritten stderr line with events done and the rate; silent when
 * stderr is not a terminal (pipes, CI), and with -q.
 */
export interface Progress {
  tick: (n: number) => void;
  done: () => void;
}

/** Starts a progress line labelled `what` (none when `quiet`). */
export function progress(what: string, quiet = false): Progress {
  const tty = process.stderr.isTTY === true && !quiet;
  const t0 = performance.now();
  let total = 0;
  let shown = false;
  return {
    tick: (n) => {
      total += n;
      if (!tty) return;
      const s = (performance.now() - t0) / 1000;
      process.stderr.write(`\r${what}: ${total.toLocaleString('en-US')} events, ${Math.round(total / Math.max(s, 1e-3)).toLocaleString('en-US')}/s   `);
      shown = true;
    },
    done: () => {
      if (shown) process.stderr.write('\r\x1b[K');
    },
  };
}
