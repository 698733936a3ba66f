/**
 * The encodings of recently seen event bodies. Traces repeat themselves: in the docA guest, 77 %
 * of the events have the name and body of one of the last few thousand events ("Start context
 * switch", the same timer re-armed, the same irq or wakeup, …), so an event found here is copied
 * as the bytes made last time instead of being read and encoded again (typed and generic alike:
 * an encoding depends only on the name and the body, and on what the machine has sent before,
 * which a copy keeps valid). A direct-mapped table of SLOTS entries, each
 * holding at most WIDTH bytes of body and of encoding in two fixed arenas: memory stays at
 * 2 × SLOTS × WIDTH bytes.
 */

const SLOTS = 4096;
const WIDTH = 128;

/** Recent (name, body) → encoded message, and the value the encoder returned with it. */
export class RecentBodies<T> {
  private readonly bodies = new Uint8Array(SLOTS * WIDTH);
  private readonly encs = new Uint8Array(SLOTS * WIDTH);
  private readonly bodyLen = new Int32Array(SLOTS).fill(-1);
  private readonly encLen = new Int32Array(SLOTS);
  private readonly names: (string | undefined)[] = new Array(SLOTS);
  private readonly values: (T | undefined)[] = new Array(SLOTS);

  /** The slot of body s[a, z) (FNV-1a over its bytes). */
  slot(s: Uint8Array, a: number, z: number): number {
    let h = 0x811c9dc5;
    for (let i = a; i < z; i++) h = Math.imul(h ^ s[i], 0x01000193);
    return (h >>> 0) & (SLOTS - 1);
  }

  /** When `slot` holds event `name` with body s[a, z): appends its encoding to `out` at `at` and returns the value kept with it. */
  find(slot: number, name: string, s: Uint8Array, a: number, z: number, out: Uint8Array, at: number): T | undefined {
    const n = z - a;
    if (this.bodyLen[slot] !== n || this.names[slot] !== name) return undefined;
    const b = this.bodies;
    const o = slot * WIDTH;
    for (let i = 0; i < n; i++) if (b[o + i] !== s[a + i]) return undefined;
    const e = this.encs;
    for (let i = 0, m = this.encLen[slot]; i < m; i++) out[at + i] = e[o + i];
    return this.values[slot];
  }

  /** Bytes of the encoding {@link find} would append for `slot`. */
  encodedLength(slot: number): number {
    return this.encLen[slot];
  }

  /** Keeps event `name` with body s[a, z), encoded as enc[p, q), and its value (when both fit). */
  keep(slot: number, name: string, s: Uint8Array, a: number, z: number, enc: Uint8Array, p: number, q: number, value: T): void {
    if (z - a > WIDTH || q - p > WIDTH) return;
    const o = slot * WIDTH;
    // By hand: a subarray (to copy with set) per event would cost more than these short copies.
    const b = this.bodies;
    for (let i = a; i < z; i++) b[o + i - a] = s[i];
    const e = this.encs;
    for (let i = p; i < q; i++) e[o + i - p] = enc[i];
    this.bodyLen[slot] = z - a;
    this.encLen[slot] = q - p;
    this.names[slot] = name;
    this.values[slot] = value;
  }
}
