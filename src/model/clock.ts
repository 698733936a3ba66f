/**
 * Trace clocks as tracefs names them (`/sys/kernel/tracing/trace_clock`).
 * Counter clocks print integers (cycles or counts); time clocks print seconds with
 * 6 or 9 decimals, which kvmtrace keeps as integer nanoseconds.
 */
export type TraceClock =
  | 'x86-tsc'
  | 'counter'
  | 'local'
  | 'global'
  | 'mono'
  | 'mono_raw'
  | 'boot'
  | 'tai'
  | 'perf'
  | 'uptime'
  | 'tsc2nsec'
  | 'unknown';

const KNOWN: ReadonlySet<string> = new Set([
  'x86-tsc', 'counter', 'local', 'global', 'mono', 'mono_raw', 'boot', 'tai', 'perf', 'uptime', 'tsc2nsec',
]);

/** Parses a clock name; returns undefined for names kvmtrace does not know. */
export function parseClock(name: string): TraceClock | undefined {
  const n = name.trim().replace(/^\[|\]$/g, '');
  return KNOWN.has(n) ? (n as TraceClock) : undefined;
}

/** True when the clock prints raw counter values (integers) rather than seconds. */
export function isCounterClock(c: TraceClock): boolean {
  return c === 'x86-tsc' || c === 'counter';
}

/** True when timestamps of this clock are host/guest TSC cycles (trace-cmd's tsc2nsec records raw TSC too). */
export function isTscClock(c: TraceClock): boolean {
  return c === 'x86-tsc' || c === 'tsc2nsec';
}

/** The unit a clock's timestamps are kept in by kvmtrace. */
export function clockUnit(c: TraceClock): 'cycles' | 'ns' | 'unknown' {
  if (c === 'x86-tsc' || c === 'counter' || c === 'tsc2nsec') return 'cycles';
  if (c === 'unknown') return 'unknown';
  return 'ns';
}
