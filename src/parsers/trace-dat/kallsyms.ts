/**
 * Kernel symbols from a trace.dat's `/proc/kallsyms` copy: address → function, looked up the way
 * libtraceevent does (so a `%ps` or a stack-trace line names the same function trace-cmd names).
 */

/** A kallsyms table: sorted addresses and their names (and modules). */
export class Kallsyms {
  private addrs: BigUint64Array;
  private names: string[];
  private mods: (string | undefined)[];
  /** Where the unparsed text comes from, when parsing is deferred to the first lookup. */
  private pending: (() => Buffer) | undefined;

  private constructor(addrs: BigUint64Array, names: string[], mods: (string | undefined)[]) {
    this.addrs = addrs;
    this.names = names;
    this.mods = mods;
  }

  /**
   * A table parsed on first use: most reports never look a symbol up, and the parsed table of a
   * full kernel (~120 k symbols) costs tens of MB.
   */
  static lazy(text: () => Buffer): Kallsyms {
    const k = Kallsyms.empty();
    k.pending = text;
    return k;
  }

  private ensure(): void {
    if (!this.pending) return;
    const p = Kallsyms.parse(this.pending());
    this.pending = undefined;
    this.addrs = p.addrs;
    this.names = p.names;
    this.mods = p.mods;
  }

  /** An empty table (files without kallsyms). */
  static empty(): Kallsyms {
    return new Kallsyms(new BigUint64Array(0), [], []);
  }

  /**
   * Parses kallsyms text (`/proc/kallsyms` bytes). Like libtraceevent: absolute symbols (`a`/`A`)
   * and `$`-names are skipped, entries are kept in reverse file order and sorted stably by
   * address (glibc's merge-sort qsort), so duplicate addresses resolve to the same name trace-cmd
   * prints. Scans the bytes directly: only the names become strings.
   */
  static parse(text: Buffer | string): Kallsyms {
    const b = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
    const n = b.length;
    const his: number[] = [];
    const los: number[] = [];
    const names: string[] = [];
    const mods: (string | undefined)[] = [];
    let i = 0;
    while (i < n) {
      let eol = b.indexOf(10, i);
      if (eol < 0) eol = n;
      // "ADDR T name[\t[module]]"
      let j = i;
      let hi = 0;
      let lo = 0;
      let digits = 0;
      for (; j < eol; j++) {
        const c = b[j];
        const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
        if (d < 0) break;
        hi = ((hi * 16) + Math.floor(lo / 0x10000000)) % 2 ** 32;
        lo = ((lo % 0x10000000) * 16 + d) >>> 0;
        digits++;
      }
      if (digits > 0 && digits <= 16 && b[j] === 32 && j + 3 < eol && b[j + 2] === 32) {
        const type = b[j + 1];
        const ns = j + 3;
        let ne = ns;
        while (ne < eol && b[ne] !== 9 && b[ne] !== 32) ne++;
        if (ne > ns && b[ns] !== 36 && type !== 97 && type !== 65) {
          his.push(hi);
          los.push(lo);
          names.push(b.toString('latin1', ns, ne));
          let mod: string | undefined;
          if (b[ne] === 9 && b[ne + 1] === 91) {
            const me = b.indexOf(93, ne + 2);
            if (me > 0 && me <= eol) mod = b.toString('latin1', ne + 2, me);
          }
          mods.push(mod);
        }
      }
      i = eol + 1;
    }
    const count = names.length;
    // Reverse file order, then a stable sort by address.
    const order = Array.from({ length: count }, (_, k) => count - 1 - k);
    order.sort((x, y) => his[x] - his[y] || los[x] - los[y]);
    const addrs = new BigUint64Array(count);
    const dv = new DataView(addrs.buffer);
    const le = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
    const sortedNames: string[] = new Array(count);
    const sortedMods: (string | undefined)[] = new Array(count);
    for (let k = 0; k < count; k++) {
      const x = order[k];
      dv.setUint32(k * 8 + (le ? 0 : 4), los[x], le);
      dv.setUint32(k * 8 + (le ? 4 : 0), his[x], le);
      sortedNames[k] = names[x];
      sortedMods[k] = mods[x];
    }
    return new Kallsyms(addrs, sortedNames, sortedMods);
  }

  /** Number of symbols. */
  get size(): number {
    this.ensure();
    return this.names.length;
  }

  /**
   * The symbol containing `addr` (start ≤ addr < next start), as glibc's bsearch with
   * libtraceevent's comparator finds it; undefined when none.
   */
  find(addr: bigint): { name: string; start: bigint; mod?: string } | undefined {
    this.ensure();
    const a = this.addrs;
    const n = a.length;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const i = (lo + hi) >>> 1;
      const s = a[i];
      // The last entry's "next" is libtraceevent's sentinel address 0: only an exact match hits it.
      const next = i + 1 < n ? a[i + 1] : 0n;
      if (addr === s || (addr > s && addr < next)) return { name: this.names[i], start: s, mod: this.mods[i] };
      if (addr < s) hi = i;
      else lo = i + 1;
    }
    return undefined;
  }

  /** The address of a symbol by name (first in address order), for print-fmt constants. */
  addressOf(name: string): bigint | undefined {
    this.ensure();
    const i = this.names.indexOf(name);
    return i < 0 ? undefined : this.addrs[i];
  }
}
