import { describe, expect, it } from 'vitest';
import { guestTsc, hostTsc } from '../src/model/units.js';
import { guestToHost, hostToGuest, VcpuMapping, type TscPiece } from '../src/merge/tsc-mapping.js';

// A deterministic generator (xorshift) so failures are reproducible.
function* u64s(seed: bigint, n: number): Generator<bigint> {
  let x = seed;
  const m = (1n << 64n) - 1n;
  for (let i = 0; i < n; i++) {
    x ^= (x << 13n) & m;
    x ^= x >> 7n;
    x ^= (x << 17n) & m;
    yield x;
  }
}

describe('TSC scaling inverse', () => {
  const cases: [string, bigint, number][] = [
    ['Intel 1.0', 1n << 48n, 48],
    ['Intel 1.5', 3n << 47n, 48],
    ['Intel near 0 (slow guest)', 1n, 48],
    ['Intel max ratio (KVM caps at 0xff.ffff...)', (1n << 56n) - 1n, 48],
    ['AMD 0.75', 3n << 30n, 32],
    ['AMD max', (1n << 40n) - 1n, 32],
    ['AMD ratio 2.5', 5n << 31n, 32],
  ];
  for (const [label, ratio, fracBits] of cases) {
    it(`is the exact floor inverse of the kernel formula (${label})`, () => {
      const p: TscPiece = { fromHostTsc: hostTsc(-1n), offset: -63430235715905n, ratio, fracBits, source: 'test' };
      for (const host of u64s(0x9e3779b97f4a7c15n, 300)) {
        // Keep (host × ratio) >> frac within u64, as the kernel's mul_u64_u64_shr result must be.
        const h = host >> BigInt(Math.max(0, ratio.toString(2).length - fracBits));
        const g = hostToGuest(p, hostTsc(h));
        const back = guestToHost(p, guestTsc(g));
        expect(hostToGuest(p, hostTsc(back))).toBeLessThanOrEqual(g);
        expect(hostToGuest(p, hostTsc(back + 1n))).toBeGreaterThan(g);
        if (ratio >= 1n << BigInt(fracBits)) expect(back).toBe(h); // non-slowing ratios are injective
      }
    });
  }

  it('without scaling is guest − offset, past 2^53 and at the u64 limits', () => {
    const p: TscPiece = { fromHostTsc: hostTsc(-1n), offset: 5n, source: 't' };
    for (const g of [0n, 5n, (1n << 53n) + 1n, (1n << 63n) + 12345n, (1n << 64n) - 1n]) {
      const h = guestToHost(p, guestTsc(g));
      expect(h).toBe((g - 5n) & ((1n << 64n) - 1n)); // u64 arithmetic, as in the kernel
      expect(hostToGuest(p, hostTsc(h))).toBe(g & ((1n << 64n) - 1n));
    }
  });
});

describe('piecewise mapping', () => {
  it('uses the offset in force at the host time of each event', () => {
    const m = new VcpuMapping([
      { fromHostTsc: hostTsc(-1n), offset: 1000n, source: 'a' },
      { fromHostTsc: hostTsc(10_000n), offset: -500n, source: 'b' },
    ]);
    expect(m.toHost(guestTsc(2000n))).toBe(1000n); // host 1000 < 10000: first piece
    expect(m.toHost(guestTsc(20_000n))).toBe(20_500n); // second piece
    expect(m.toHost(guestTsc(5000n))).toBe(4000n); // back in time: cursor walks back
  });
});
