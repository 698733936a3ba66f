/**
 * Branded units (src/model/units.ts): a host TSC value cannot be passed where a guest TSC value is
 * wanted, nor the other way round — `tsc -p tsconfig.json` (run by `npm test`) fails if any line
 * marked @ts-expect-error below compiles. At run time the brands are the plain values.
 */
import { describe, expect, it } from 'vitest';
import { cyclesToNs, hostTsc, type GuestTsc, type HostTsc, type Ns } from '../src/model/units.js';
import { guestToHost, hostToGuest, VcpuMapping, type TscPiece } from '../src/merge/tsc-mapping.js';
import { syncMarker } from '../src/parsers/event-fields.js';

const DOCA_OFFSET = -63430235715905n;
const piece: TscPiece = { fromHostTsc: hostTsc(-1n), offset: DOCA_OFFSET, source: 'docA' };

describe('branded units', () => {
  it('keep host TSC, guest TSC and ns apart at compile time, and cost nothing at run time', () => {
    const h: HostTsc = hostTsc(64642412873143n); // docA host's first kvm_entry
    const g: GuestTsc = hostToGuest(piece, h);
    expect(g).toBe(64642412873143n + DOCA_OFFSET);
    expect(guestToHost(piece, g)).toBe(h);
    const m = new VcpuMapping([piece]);
    expect(m.toHost(g)).toBe(h);
    // @ts-expect-error a host TSC value is not a guest TSC value
    m.toHost(h);
    // @ts-expect-error nor the other way round
    hostToGuest(piece, g);
    // @ts-expect-error a bare bigint says nothing of its clock
    guestToHost(piece, 123n);
    const sp = syncMarker('kvmsync seq=1 cpu=0 kind=pio t0=1210327320966 t1=1210327321966')!;
    // A sync point's bracket is guest TSC: it maps to the host, and is not host TSC itself.
    expect(m.toHost(sp.t0)).toBe(1210327320966n - DOCA_OFFSET);
    // @ts-expect-error
    const wrong: HostTsc = sp.t1;
    void wrong;
    const d: Ns = cyclesToNs(2_918_400, 2_918_400); // one ms of docA's 2,918,400 kHz TSC
    expect(d).toBe(1_000_000);
    // @ts-expect-error cycles are not ns
    const cycles: Ns = 2_918_400;
    void cycles;
  });
});
