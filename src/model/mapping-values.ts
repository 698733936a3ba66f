/**
 * The rules for the values that state a clock mapping and its vCPU threads, in one place for both
 * ways of giving them: the merge's flags (`--tsc-khz`, `--tsc-offset`, `--tsc-scaling`,
 * `--vcpu-thread`) and a bundle's meta.json. Each check returns undefined when the value holds,
 * else what was expected, for the caller to put after the flag or the field that gave it.
 */

/** A rule: undefined when `v` holds, else what was expected. */
export type ValueCheck<T> = (v: T) => string | undefined;

const TWO_63 = 1n << 63n;
/** Linux's PID_MAX_LIMIT: no thread id reaches it. */
const TID_LIMIT = 4_194_304;

/** The TSC frequency, kHz: a positive integer. */
export const checkTscKhz: ValueCheck<number> = (v) => (Number.isSafeInteger(v) && v > 0 ? undefined : 'expected a positive integer (kHz)');

/** A TSC offset, cycles: what KVM adds to the host TSC, a signed 64-bit integer. */
export const checkTscOffset: ValueCheck<bigint> = (v) =>
  v >= -TWO_63 && v < TWO_63 ? undefined : 'expected a signed 64-bit integer (the guest TSC minus the host TSC, in cycles)';

/** A TSC scaling ratio with its fraction bits: guest = (host × ratio) >> fracBits. */
export const checkTscScaling: ValueCheck<{ ratio: bigint; fracBits: number }> = ({ ratio, fracBits }) =>
  ratio > 0n && Number.isInteger(fracBits) && fracBits >= 0 && fracBits <= 63
    ? undefined
    : 'the ratio must be positive and the fraction bits at most 63 (48 on Intel, 32 on AMD)';

/** A vCPU index: a non-negative integer. */
export const checkVcpu: ValueCheck<number> = (v) => (Number.isSafeInteger(v) && v >= 0 ? undefined : 'expected a vCPU index (an integer ≥ 0)');

/** A host thread id: a positive integer below Linux's PID_MAX_LIMIT (0 is the idle task, never a vCPU thread). */
export const checkTid: ValueCheck<number> = (v) =>
  Number.isSafeInteger(v) && v > 0 && v < TID_LIMIT ? undefined : `expected a thread id (an integer from 1 to ${TID_LIMIT - 1})`;

/** A count (CPUs, lost events): a non-negative integer. */
export const checkCount: ValueCheck<number> = (v) => (Number.isSafeInteger(v) && v >= 0 ? undefined : 'expected an integer ≥ 0');
