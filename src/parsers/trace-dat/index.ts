/**
 * trace-cmd's trace.dat (v6 and v7; none/zstd/zlib; several buffers): the public API.
 *
 * - {@link openTraceDat}: the file's metadata and options (clock mapping for merge: TIME_SHIFT,
 *   GUEST, TRACEID, TSC2NSEC, DATE …) — see {@link TraceDatInfo}.
 * - {@link readTraceDatEvents}: one buffer's events in timestamp order, as batches of TraceEvent.
 * - {@link reportChunks}: the text of `trace-cmd report` (`-t`, `-R`, `--raw-ts`).
 */
export { openTraceDat, type TraceDat } from './open.js';
export { readTraceDatEvents, pickBuffer, buffersWithEvents, type TraceDatEvent, type TraceDatStream, type ReadEventsOptions } from './events.js';
export { reportBytes, reportChunks, type ReportOptions } from './report.js';
export { Out } from './out.js';
export { TraceDatError } from './bytes.js';
export { loadFastZstd } from './compress.js';
export { hostSync } from './timefmt.js';
export type { FieldValues } from './printer.js';
export type {
  TraceDatInfo,
  TraceDatBuffer,
  TraceDatOptions,
  TimeShift,
  TimeShiftSample,
  GuestInfo,
  Tsc2Nsec,
  CpuData,
} from './types.js';
export type { EventFormat, FieldFormat } from './format.js';
