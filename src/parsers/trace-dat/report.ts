/**
 * `trace-cmd report` text of a trace.dat (trace-cmd 3.1.6 with libtraceevent 1.7.1 and its
 * plugins): the `cpus=N` line, then one line per event of every buffer in timestamp order, with
 * the `buffer:` column of multi-buffer files. Produced in chunks (bytes or text) so the caller can
 * write them with back-pressure.
 */
import type { Diagnostics } from '../../model/diagnostics.js';
import { bufferBase, StreamMerger, type Stream } from './merge-cpus.js';
import type { TraceDat } from './open.js';
import { EventPrinter } from './printer.js';
import { TimeConverter } from './timefmt.js';
import { chunkSource } from './pages.js';
import { Out } from './out.js';
import type { TraceDatBuffer } from './types.js';

/** `trace-cmd report` switches kvmtrace reproduces. */
export interface ReportOptions {
  /** `-t`: nanosecond timestamps. */
  nsec: boolean;
  /** `-R`: raw `name=value` fields instead of the print format. */
  raw: boolean;
  /** `--raw-ts`: raw ring-buffer timestamps. */
  rawTs: boolean;
}

/** Lines of the report as text, in chunks of about `chunkBytes` characters. */
export function* reportChunks(t: TraceDat, o: ReportOptions, diags: Diagnostics, chunkBytes = 64 * 1024): Generator<string> {
  for (const out of reportBytes(t, o, diags, chunkBytes)) {
    yield out.buf.toString('latin1', 0, out.pos);
    out.pos = 0;
  }
}

/**
 * Lines of the report as bytes (the file's own bytes for its strings): yields the same {@link Out}
 * each time it holds about `chunkBytes` bytes; the consumer writes `buf[0, pos)` and sets `pos` to 0.
 */
export function* reportBytes(t: TraceDat, o: ReportOptions, diags: Diagnostics, chunkBytes = 256 * 1024): Generator<Out> {
  const out = new Out(chunkBytes * 2);
  out.str(`cpus=${t.cpus}\n`);
  const top = t.buffers.find((b) => b.name === '');
  if (top?.latency) {
    for (const text of latencyText(t, top, diags)) {
      out.str(text);
      yield out;
    }
    return;
  }
  const instances = t.buffers.filter((b) => b.name !== '' && !b.latency);
  const maxName = Math.max(0, ...instances.map((b) => b.name.length));
  const bufs: { buffer: TraceDatBuffer; base: bigint; conv: TimeConverter; prefix: Buffer; keyOff: number }[] = [];
  let globalBase: bigint | undefined;
  for (const b of t.buffers) {
    if (b.latency) continue;
    const base = bufferBase(t, b);
    if (base === undefined) continue;
    const prefix = instances.length === 0 ? '' : b.name === '' ? ' '.repeat(maxName + 2) : b.name.padStart(maxName) + ': ';
    const conv = new TimeConverter(t, base, { nsec: o.nsec, rawTs: o.rawTs });
    bufs.push({ buffer: b, base, conv, prefix: Buffer.from(prefix, 'latin1'), keyOff: 0 });
    if (globalBase === undefined || base < globalBase) globalBase = base;
  }
  if (bufs.length === 0) {
    yield out;
    return;
  }
  const anyConverts = bufs.some((b) => b.conv.converts);
  const keyBase = anyConverts ? bufs[0].conv.value(Number(globalBase! - bufs[0].base), 0) : globalBase!;
  for (const b of bufs) b.keyOff = Number(b.base - globalBase!);
  const key = anyConverts
    ? (s: Stream) => Number(bufs[s.bufferIndex].conv.value(s.reader.ts, s.reader.cpu) - keyBase)
    : (s: Stream) => bufs[s.bufferIndex].keyOff + s.reader.ts;

  const p = new EventPrinter(t);
  const inSeconds = bufs[0].conv.inSeconds;
  // Per-pid, per-cpu and per-event-id column bytes, built once. A pid's column changes only when
  // the sched plugin registers its comm, which drops the cached bytes.
  const pidCol = new Map<number, Buffer>();
  const pidKeys = new Map<number, number[]>();
  // Each stream remembers the pid of its last event and that column (most events on a CPU come
  // from the task that ran before); `generation` moves on when a comm is registered.
  let generation = 0;
  p.onRegister = (pid) => {
    for (const k of pidKeys.get(pid) ?? []) pidCol.delete(k);
    pidKeys.delete(pid);
    generation++;
  };
  const column = (pid: number, cpu: number, bi: number, missed: boolean): Buffer => {
    const k = ((pid * 4096 + cpu) * 64 + bi) * 2 + (missed ? 1 : 0);
    let pc = pidCol.get(k);
    if (pc === undefined) {
      const comm = p.comm(pid);
      const cs = String(cpu).padStart(3, '0');
      const pre = missed ? '' : bufs[bi].prefix.toString('latin1');
      pc = Buffer.from(pre + comm.padStart(16) + '-' + String(pid).padEnd(5) + ' [' + cs + ']' + (inSeconds ? ' ' : ''), 'latin1');
      pidCol.set(k, pc);
      (pidKeys.get(pid) ?? pidKeys.set(pid, []).get(pid)!).push(k);
    }
    return pc;
  };
  // Per event id: the name column.
  const nameCol: (Buffer | undefined)[] = [];
  const unknown = new Set<number>();
  const merger = new StreamMerger(t, bufs, diags, key);
  const lastPid = new Float64Array(merger.count).fill(-1);
  const lastGen = new Float64Array(merger.count).fill(-1);
  const lastCol: Buffer[] = new Array<Buffer>(merger.count);
  const raw = o.raw;
  for (let s = merger.next(); s; s = merger.next()) {
    const r = s.reader;
    p.at(r.buf, r.dataPos, r.dataLen, r.pageEnd);
    const id = p.type();
    const pid = p.pid();
    let pc: Buffer;
    if (r.missed !== 0) {
      const b = bufs[s.bufferIndex];
      if (b.prefix.length) out.bytes(b.prefix, 0, b.prefix.length);
      out.str(r.missed > 0 ? `CPU:${r.cpu} [${r.missed} EVENTS DROPPED]\n` : `CPU:${r.cpu} [EVENTS DROPPED]\n`);
      // The buffer prefix is left out when the dropped-events line already carried it.
      pc = column(pid, r.cpu, s.bufferIndex, true);
    } else {
      const si = s.index;
      if (lastPid[si] === pid && lastGen[si] === generation) pc = lastCol[si];
      else {
        pc = lastCol[si] = column(pid, r.cpu, s.bufferIndex, false);
        lastPid[si] = pid;
        lastGen[si] = generation;
      }
    }
    out.put(pc);
    bufs[s.bufferIndex].conv.writeTo(out, r.ts, r.cpu);
    let nc = nameCol[id];
    if (nc === undefined) {
      const ev = p.event(id);
      const name = ev ? ev.name : '(NULL)';
      nc = nameCol[id] = Buffer.from(': ' + name + ': ' + (name.length < 20 ? ' '.repeat(20 - name.length) : ''), 'latin1');
      if (!ev) unknown.add(id);
    }
    if (unknown.size > 0 && unknown.has(id))
      diags.add({ file: t.file, byteOffset: r.fileOffset, message: `CPU ${r.cpu}: event id ${id} has no format in the file` });
    out.put(nc);
    p.bodyTo(out, id, raw);
    out.byte(10);
    if (out.pos >= chunkBytes) yield out;
  }
  if (out.pos > 0) yield out;
}

/** A latency file's text, as `trace-cmd report` prints it (unchanged, then a newline). */
function* latencyText(t: TraceDat, b: TraceDatBuffer, diags: Diagnostics): Generator<string> {
  const text = b.text;
  if (text && b.compressed) {
    // v7: the text is compressed in chunks, like CPU data (u32 count, then size-prefixed chunks).
    const bad = (at: number, message: string): void => diags.add({ file: t.file, byteOffset: at, message: `latency text: ${message}` });
    const src = chunkSource(t, { cpu: 0, offset: text.offset, size: text.size - 4 }, bad);
    for (let c = src.next(); c; c = src.next()) yield c.buf.toString('latin1');
  } else if (text) {
    const end = text.size < 0 ? t.dat.size : text.offset + text.size;
    for (let pos = text.offset; pos < end; pos += 1 << 20) {
      yield t.dat.readUpTo(pos, Math.min(1 << 20, end - pos)).toString('latin1');
    }
  }
  yield '\n';
}
