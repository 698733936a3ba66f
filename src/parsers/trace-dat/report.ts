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
    for (const text of latencyText(t, top)) {
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
  p.onRegister = (pid) => {
    for (const k of pidKeys.get(pid) ?? []) pidCol.delete(k);
    pidKeys.delete(pid);
  };
  const nameCol = new Map<number, Buffer>();
  const unknown = new Set<number>();
  const merger = new StreamMerger(t, bufs, diags, key);
  for (let s = merger.next(); s; s = merger.next()) {
    const r = s.reader;
    const b = bufs[s.bufferIndex];
    p.at(r.buf, r.dataPos, r.dataLen);
    const id = p.type();
    const pid = p.pid();
    if (r.missed !== 0) {
      if (b.prefix.length) out.bytes(b.prefix, 0, b.prefix.length);
      out.str(r.missed > 0 ? `CPU:${r.cpu} [${r.missed} EVENTS DROPPED]\n` : `CPU:${r.cpu} [EVENTS DROPPED]\n`);
    }
    // `buffer: comm-pid [cpu]` for this buffer, pid and CPU, as bytes (the buffer prefix is left
    // out when a dropped-events line already carried it).
    const k = ((pid * 4096 + r.cpu) * 64 + s.bufferIndex) * 2 + (r.missed !== 0 ? 1 : 0);
    let pc = pidCol.get(k);
    if (pc === undefined) {
      const comm = p.comm(pid);
      const cs = String(r.cpu).padStart(3, '0');
      const pre = r.missed !== 0 ? '' : b.prefix.toString('latin1');
      pc = Buffer.from(pre + comm.padStart(16) + '-' + String(pid).padEnd(5) + ' [' + cs + ']' + (inSeconds ? ' ' : ''), 'latin1');
      pidCol.set(k, pc);
      (pidKeys.get(pid) ?? pidKeys.set(pid, []).get(pid)!).push(k);
    }
    out.bytes(pc, 0, pc.length);
    b.conv.writeTo(out, r.ts, r.cpu);
    let nc = nameCol.get(id);
    if (nc === undefined) {
      const ev = p.event(id);
      const name = ev ? ev.name : '(NULL)';
      nc = Buffer.from(': ' + name + ': ' + (name.length < 20 ? ' '.repeat(20 - name.length) : ''), 'latin1');
      nameCol.set(id, nc);
      if (!ev) unknown.add(id);
    }
    if (unknown.size > 0 && unknown.has(id))
      diags.add({ file: t.file, byteOffset: r.fileOffset, message: `CPU ${r.cpu}: event id ${id} has no format in the file` });
    out.bytes(nc, 0, nc.length);
    p.bodyTo(out, id, o.raw);
    out.byte(10);
    if (out.pos >= chunkBytes) yield out;
  }
  if (out.pos > 0) yield out;
}

/** A latency file's text, as `trace-cmd report` prints it (unchanged, then a newline). */
function* latencyText(t: TraceDat, b: TraceDatBuffer): Generator<string> {
  const text = b.text;
  if (text && b.compressed) {
    // v7: the text is compressed in chunks, like CPU data (u32 count, then size-prefixed chunks).
    const src = chunkSource(t, { cpu: 0, offset: text.offset, size: text.size - 4 });
    for (let c = src.next(); c; c = src.next()) yield c.buf.toString('latin1');
  } else if (text) {
    const end = text.size < 0 ? t.dat.size : text.offset + text.size;
    for (let pos = text.offset; pos < end; pos += 1 << 20) {
      yield t.dat.readUpTo(pos, Math.min(1 << 20, end - pos)).toString('latin1');
    }
  }
  yield '\n';
}
