/**
 * The encodings of recently seen event bodies. Traces repeat themselves ("Start context switch",
 * the same timer re-armed, the same irq or wakeup, …), so an event whose name and body are among
 * the last few thousand is copied as the bytes made last time instead of being read and encoded
 * again (typed and generic alike: an encoding depends only on the name and the body, and on what
 * the machine has sent before, which a copy keeps valid). A table of SLOTS entries in pairs
 * (two-way set-associative: a body may sit in either slot of its pair, and a new one replaces the
 * one used less recently), each holding a body and its encoding in WIDTH bytes of one fixed arena
 * (the encoding at the next whole word after the body, so a long body with a short encoding
 * fits: kmalloc's ~150-byte bodies): memory stays at SLOTS × WIDTH bytes.
 *
 * The pair hashes the name's id with the body: pairs such as local_timer_entry/_exit print the
 * same body in turn and would evict each other. Bodies are read and compared four bytes at a time.
 * Some events never repeat (sched_stat_runtime's runtimes, x86_fpu's addresses): a name whose
 * events are seldom found is not looked up (nor kept, which would evict bodies that do repeat)
 * but for one event in PROBE, which tells when it starts repeating.
 *
 * docA ×20 (2.04 M events), events encoded anew: 650 k with one slot per body hashed without the
 * name, 430 k with the name, 396 k skipping names seldom found, 378 k with long bodies kept,
 * 337 k with two ways (83 % copied).
 */

const SLOTS = 4096;
const WIDTH = 256;
/** A name's score: +HIT_GAIN per event found, −1 per event not found, within ±SCORE_MAX; below −SKIP_BELOW it is not looked up. */
const HIT_GAIN = 8;
const SCORE_MAX = 64;
const SKIP_BELOW = 16;
/** Of a skipped name's events, one in PROBE is looked up all the same. */
const PROBE = 64;
/** Bytes {@link RecentBodies.find} may write past where it is told to: an encoding rounded up to whole words. */
export const FOUND_ROOM = WIDTH;

/** Recent (name, body) → encoded message, and the value the encoder returned with it. */
export class RecentBodies<T> {
  /** Slot k's body at k × WIDTH, its encoding at the next multiple of 4 after the body. */
  private readonly data = new Uint8Array(SLOTS * WIDTH);
  /** `data` by 32-bit word (read and copied out a word at a time; slots start at multiples of WIDTH). */
  private readonly words = new Int32Array(this.data.buffer);
  private readonly bodyLen = new Int32Array(SLOTS).fill(-1);
  private readonly encLen = new Int32Array(SLOTS);
  private readonly names: (string | undefined)[] = new Array(SLOTS);
  private readonly values: (T | undefined)[] = new Array(SLOTS);
  /** A view of the bytes last hashed, to read them by words (bodies of one block share their bytes). */
  private view: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));
  private viewOf: Uint8Array | undefined;

  /** By name id: its score (see HIT_GAIN), and its events seen. */
  private scores = new Int32Array(64);
  private seen = new Int32Array(64);

  /** Whether to look up an event of name `nameId` (a small number, the same for every event of the name). */
  worth(nameId: number): boolean {
    if (nameId >= this.scores.length) this.grow(nameId);
    return this.scores[nameId] >= -SKIP_BELOW || (++this.seen[nameId] & (PROBE - 1)) === 0;
  }

  /** Notes whether a looked-up event of name `nameId` was found. */
  found(nameId: number, hit: boolean): void {
    const s = this.scores[nameId] + (hit ? HIT_GAIN : -1);
    this.scores[nameId] = s > SCORE_MAX ? SCORE_MAX : s < -SCORE_MAX ? -SCORE_MAX : s;
  }

  private grow(nameId: number): void {
    const n = Math.max(nameId + 1, this.scores.length * 2);
    const scores = new Int32Array(n);
    const seen = new Int32Array(n);
    scores.set(this.scores);
    seen.set(this.seen);
    this.scores = scores;
    this.seen = seen;
  }

  /** The pair of slots (its first) where event name `nameId` (any number that differs between names) with body s[a, z) is kept. */
  pair(nameId: number, s: Uint8Array, a: number, z: number): number {
    if (s !== this.viewOf) {
      this.viewOf = s;
      this.view = new DataView(s.buffer, s.byteOffset, s.byteLength);
    }
    const v = this.view;
    // FNV-1a's multiplier over 32-bit words, each step folding high bits down (the slot is the low bits).
    let h = Math.imul(0x811c9dc5 ^ nameId, 0x01000193) ^ (z - a);
    let i = a;
    for (; i + 4 <= z; i += 4) {
      h = Math.imul(h ^ v.getInt32(i, true), 0x01000193);
      h ^= h >>> 15;
    }
    for (; i < z; i++) h = Math.imul(h ^ s[i], 0x01000193);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    return h & (SLOTS - 2);
  }

  /**
   * When pair `pair` holds event `name` with body s[a, z) (the bytes {@link pair} was last given):
   * writes its encoding into `out` at `at`, sets {@link length} to its bytes, and returns the value
   * kept with it. `out` must have room for FOUND_ROOM bytes at `at` (whole words are copied).
   */
  find(pair: number, name: string, s: Uint8Array, a: number, z: number, out: DataView<ArrayBufferLike>, at: number): T | undefined {
    if (this.same(pair, name, s, a, z)) return this.copyOut(pair, out, at);
    if (this.same(pair + 1, name, s, a, z)) return this.copyOut(pair + 1, out, at);
    return undefined;
  }
  /** Bytes of the encoding the last {@link find} wrote. */
  length = 0;

  /** True when `slot` holds event `name` with body s[a, z). */
  private same(slot: number, name: string, s: Uint8Array, a: number, z: number): boolean {
    const n = z - a;
    if (this.bodyLen[slot] !== n || this.names[slot] !== name) return false;
    const o = slot * WIDTH;
    const w = this.words;
    const v = this.view;
    let i = 0;
    for (const ow = o >> 2; i + 4 <= n; i += 4) if (w[ow + (i >> 2)] !== v.getInt32(a + i, true)) return false;
    const b = this.data;
    for (; i < n; i++) if (b[o + i] !== s[a + i]) return false;
    return true;
  }

  /** Writes the encoding kept in `slot` into `out` at `at`; marks the slot the more recently used of its pair. */
  private copyOut(slot: number, out: DataView<ArrayBufferLike>, at: number): T | undefined {
    const w = this.words;
    const m = this.encLen[slot];
    // Whole words: the bytes past the encoding land in room the caller made and are written over next.
    for (let k = 0, ow = (slot * WIDTH + ((this.bodyLen[slot] + 3) & ~3)) >> 2; k < m; k += 4) out.setInt32(at + k, w[ow + (k >> 2)], true);
    this.length = m;
    this.older[slot >> 1] = (slot & 1) ^ 1;
    return this.values[slot];
  }
  /** By pair: which of its two slots was used less recently (0 or 1). */
  private readonly older = new Uint8Array(SLOTS / 2);

  /** Keeps event `name` with body s[a, z), encoded as enc[p, q), and its value in pair `pair` (when both fit in a slot). */
  keep(pair: number, name: string, s: Uint8Array, a: number, z: number, enc: Uint8Array, p: number, q: number, value: T): void {
    const e0 = (z - a + 3) & ~3;
    if (e0 + ((q - p + 3) & ~3) > WIDTH) return;
    const slot = pair + this.older[pair >> 1];
    this.older[pair >> 1] ^= 1;
    const o = slot * WIDTH;
    // By hand: a subarray (to copy with set) per event would cost more than these short copies.
    const b = this.data;
    for (let i = a; i < z; i++) b[o + i - a] = s[i];
    for (let i = p; i < q; i++) b[o + e0 + i - p] = enc[i];
    this.bodyLen[slot] = z - a;
    this.encLen[slot] = q - p;
    this.names[slot] = name;
    this.values[slot] = value;
  }
}
