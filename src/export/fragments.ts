/**
 * A small table of byte fragments the exporters make once and copy for every event that shares
 * them (a task's columns, say). Consecutive events mostly come from the same few tasks, so one
 * entry per slot — the last fragment made for it — is enough; a miss only costs remaking it.
 */
import type { StringTable } from '../model/event-block.js';

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

/**
 * Fragments made from one string of a source's table (an event name, say), found by the
 * string's id: an array lookup per event instead of a map lookup by text. Each source has its
 * table; consecutive events mostly share one, so the last table's list is kept at hand.
 */
export class IdFragments {
  private table: StringTable | undefined;
  private list: (Uint8Array | undefined)[] = [];
  private readonly byTable = new Map<StringTable, (Uint8Array | undefined)[]>();

  constructor(
    /** The fragment's text for a string of the table. */
    private readonly make: (s: string) => string,
  ) {}

  /** The fragment (UTF-8 bytes) for string `id` of `table`. */
  get(table: StringTable, id: number): Uint8Array {
    if (table !== this.table) {
      let l = this.byTable.get(table);
      if (l === undefined) this.byTable.set(table, (l = []));
      this.table = table;
      this.list = l;
    }
    let b = this.list[id];
    if (b === undefined) this.list[id] = b = Buffer.from(this.make(table.list[id]));
    return b;
  }
}
