/**
 * Splits what a terminal sends into keys: CSI sequences (`ESC [ … final`), SS3 (`ESC O x`), and
 * single characters — a fast typist or a paste delivers several in one chunk.
 */

/** The keys in one chunk of terminal input. */
export function splitKeys(data: string): string[] {
  const keys: string[] = [];
  let i = 0;
  while (i < data.length) {
    if (data[i] === '\x1b' && (data[i + 1] === '[' || data[i + 1] === 'O')) {
      let j = i + 2;
      while (j < data.length && !/[A-Za-z~]/.test(data[j])) j++;
      // SS3 keys (ESC O H) are mapped to their CSI form so one table serves both.
      const seq = data.slice(i, j + 1);
      keys.push(seq[1] === 'O' ? '\x1b[' + seq.slice(2) : seq);
      i = j + 1;
    } else {
      keys.push(data[i]);
      i++;
    }
  }
  return keys;
}

/** Parses a time like `12.5ms`, `300us`, `2s`, `1500ns` into ns; a bare number is ns. Undefined when unreadable. */
export function parseTimeNs(s: string): number | undefined {
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s)?\s*$/.exec(s);
  if (!m) return undefined;
  const mult = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9 }[(m[2] ?? 'ns') as 'ns'];
  return Number(m[1]) * mult;
}
