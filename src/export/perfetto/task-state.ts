/**
 * sched_switch's prev_state as the number Perfetto's importer decodes. Kernels print it as
 * letters (`S`, `D`, `R+`, `I`, …); the importer wants the kernel's bits, and decodes them by the
 * kernel version the trace states (SystemInfo utsname), or as 4.4 when none is stated
 * (src/trace_processor/types/task_state.cc). So the letters are turned into the bits of the
 * layout the importer will apply to this machine, and it shows exactly the printed state.
 */

/** Which bit layout the importer applies: kernels 4.14+ ('report'), 4.8–4.13 ('v48'), older ('v44', also its default). */
export type TaskStateLayout = 'report' | 'v48' | 'v44';

/** The layout for a kernel release such as `6.5.0-21-generic`; `v44` when unknown (the importer's default). */
export function layoutFor(release: string | undefined): TaskStateLayout {
  const m = /^(\d+)\.(\d+)/.exec(release ?? '');
  if (!m) return 'v44';
  const v = Number(m[1]) * 1000 + Number(m[2]);
  return v >= 4014 ? 'report' : v >= 4008 ? 'v48' : 'v44';
}

/** Bits shared by both layouts: S D T t X Z (include/linux/sched.h, unchanged up to EXIT_ZOMBIE). */
const COMMON: Record<string, number> = { S: 0x1, D: 0x2, T: 0x4, t: 0x8, X: 0x10, Z: 0x20 };
/** 4.14+: TASK_PARKED, TASK_REPORT_IDLE, and TASK_REPORT_MAX for preemption. */
const REPORT: Record<string, number> = { P: 0x40, I: 0x80, '+': 0x100 };
/** Before 4.14: I is D|NOLOAD, + is TASK_STATE_MAX (0x1000 from 4.8, 0x800 before). */
const V48: Record<string, number> = { x: 0x40, K: 0x80, W: 0x100, P: 0x200, N: 0x400, I: 0x2 | 0x400, '+': 0x1000 };
const V44: Record<string, number> = { ...V48, '+': 0x800 };

/** The bits of a printed prev_state (`R`, `R+`, `S`, `D|K`, …); unknown letters are left out. */
export function prevStateBits(printed: string, layout: TaskStateLayout): number {
  const extra = layout === 'report' ? REPORT : layout === 'v48' ? V48 : V44;
  let bits = 0;
  for (const c of printed) bits |= COMMON[c] ?? extra[c] ?? 0;
  return bits;
}
