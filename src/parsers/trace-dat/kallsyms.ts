/**
 * Kernel symbols from a trace.dat's `/proc/kallsyms` copy: address → function, looked up the way
 * libtraceevent does (so a `%ps` or a stack-trace line names the same function trace-cmd names).
 */

/** A kallsyms table: sorted addresses and their names (and modules). */
export class Kallsyms {
  private addrs: BigUint64Array;
  private names: string[];
  private mods: (string | undefined)[];

  private constructor(addrs: BigUint64Array, names: string[], mods: (string | undefined)[]) {
    this.addrs = addrs;
    this.names = names;
    this.mods = mods;
  }

  /** An empty table (files without kallsyms). */
  static empty(): Kallsyms {
    return new Kallsyms(new BigUint64Array(0), [], []);
  }

  /**
   * Parses kallsyms text. Like libtraceevent: absolute symbols (`a`/`A`) and `$`-names are
   * skipped, entries are kept in reverse file order and sorted stably by address (glibc's
   * merge-sort qsort), so duplicate addresses resolve to the same name trace-cmd prints.
   */
  static parse(text: string): Kallsyms {
    const entries: { addr: bigint; name: string; mod?: string; seq: number }[] = [];
    let seq = 0;
    for (const line of text.split('\n')) {
      const m = /^([0-9a-fA-F]{1,16}) (\S) (\S+)(?:\t\[(\S+)\])?/.exec(line);
      if (!m) continue;
      if (m[3].startsWith('$') || m[2] === 'a' || m[2] === 'A') continue;
      entries.push({ addr: BigInt('0x' + m[1]), name: m[3], mod: m[4], seq: seq++ });
    }
    entries.sort((a, b) => (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : b.seq - a.seq));
    const addrs = new BigUint64Array(entries.length);
    entries.forEach((e, i) => (addrs[i] = e.addr));
    return new Kallsyms(
      addrs,
      entries.map((e) => e.name),
      entries.map((e) => e.mod),
    );
  }

  /** Number of symbols. */
  get size(): number {
    return this.names.length;
  }

  /**
   * The symbol containing `addr` (start ≤ addr < next start), as glibc's bsearch with
   * libtraceevent's comparator finds it; undefined when none.
   */
  find(addr: bigint): { name: string; start: bigint; mod?: string } | undefined {
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
    const i = this.names.indexOf(name);
    return i < 0 ? undefined : this.addrs[i];
  }
}
