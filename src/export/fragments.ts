/**
 * A small table of byte fragments the exporters make once and copy for every event that shares
 * them (a task's columns, say). Consecutive events mostly come from the same few tasks, so one
 * entry per slot — the last fragment made for it — is enough; a miss only costs remaking it.
 */

interface Entry {
  a: number;
  b: number;
  c: number;
  text: string;
  bytes: Uint8Array;
}

const SLOTS = 1024;
const slot = (a: number, b: number, c: number): number => (a * 7 + b * 31 + c) & (SLOTS - 1);

/** Fragments keyed by three numbers and a string (e.g. machine, CPU, pid and task name). */
export class FragmentTable {
  private readonly slots: (Entry | undefined)[] = new Array(SLOTS);

  /** The fragment held for the key, or undefined. */
  find(a: number, b: number, c: number, text: string): Uint8Array | undefined {
    const e = this.slots[slot(a, b, c)];
    return e !== undefined && e.a === a && e.b === b && e.c === c && e.text === text ? e.bytes : undefined;
  }

  /** Holds `fragment` (as UTF-8 bytes) for the key; returns the bytes. */
  put(a: number, b: number, c: number, text: string, fragment: string): Uint8Array {
    const bytes = Buffer.from(fragment);
    this.slots[slot(a, b, c)] = { a, b, c, text, bytes };
    return bytes;
  }
}
