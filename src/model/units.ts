/**
 * Branded units, so that mixing them does not compile: an absolute host TSC value is not a guest
 * TSC value (they differ by the vCPU's offset, and by its scaling), and ns are not cycles. The
 * brands cost nothing at run time; a value gets its brand where it is read or computed (a trace's
 * timestamp, a mapping's result), through the functions below.
 */
declare const unit: unique symbol;

/** An absolute host TSC value, in host cycles (exact: bigint). */
export type HostTsc = bigint & { readonly [unit]: 'host TSC' };
/** An absolute guest TSC value, in guest ticks (exact: bigint). */
export type GuestTsc = bigint & { readonly [unit]: 'guest TSC' };
/** A duration or time in nanoseconds. */
export type Ns = number & { readonly [unit]: 'ns' };

/** Brands a value read or computed as an absolute host TSC. */
export const hostTsc = (v: bigint): HostTsc => v as HostTsc;
/** Brands a value read or computed as an absolute guest TSC. */
export const guestTsc = (v: bigint): GuestTsc => v as GuestTsc;
/** Brands a number of nanoseconds. */
export const ns = (v: number): Ns => v as Ns;

/** Cycles of a clock running at `tscKhz` kHz as ns (not rounded). */
export function cyclesToNs(cycles: number, tscKhz: number): Ns {
  return ((cycles * 1e6) / tscKhz) as Ns;
}
