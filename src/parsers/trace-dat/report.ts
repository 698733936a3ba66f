/**
 * `trace-cmd report` text of a trace.dat (trace-cmd 3.1.6 with libtraceevent 1.7.1 and its
 * plugins): the `cpus=N` line, then one line per event of every buffer in timestamp order, with
 * the `buffer:` column of multi-buffer files. Produced as chunks of text so the caller can write
 * them with back-pressure.
 */
import type { Diagnostics } from '../../model/diagnostics.js';
import { bufferBase, StreamMerger, type Stream } from './merge-cpus.js';
import type { TraceDat } from './open.js';
import { EventPrinter } from './printer.js';
import { TimeConverter } from './timefmt.js';
import { chunkSource } from './pages.js';
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

const SPACES = ' '.repeat(64);

/** Lines of the report, in chunks of about `chunkBytes` characters. */
export function* reportChunks(t: TraceDat, o: ReportOptions, diags: Diagnostics, chunkBytes = 64 * 1024): Generator<string> {
  yield `cpus=${t.cpus}\n`;
  const top = t.buffers.find((b) => b.name === '');
  if (top?.latency) {
    yield* latencyText(t, top);
    return;
  }
  const instances = t.buffers.filter((b) => b.name !== '' && !b.latency);
  const maxName = Math.max(0, ...instances.map((b) => b.name.length));
  const bufs: { buffer: (typeof t.buffers)[number]; base: bigint; conv: TimeConverter; prefix: string; keyOff: number }[] = [];
  let globalBase: bigint | undefined;
  for (const b of t.buffers) {
    if (b.latency) continue;
    const base = bufferBase(t, b);
    if (base === undefined) continue;
    const prefix = instances.length === 0 ? '' : b.name === '' ? SPACES.slice(0, maxName + 2).padEnd(maxName + 2) : b.name.padStart(maxName) + ': ';
    bufs.push({ buffer: b, base, conv: new TimeConverter(t, base, { nsec: o.nsec, rawTs: o.rawTs }), prefix, keyOff: 0 });
    if (globalBase === undefined || base < globalBase) globalBase = base;
  }
  if (bufs.length === 0) return;
  const anyConverts = bufs.some((b) => b.conv.converts);
  const keyBase = anyConverts ? bufs[0].conv.value(Number(globalBase! - bufs[0].base), 0) : globalBase!;
  for (const b of bufs) b.keyOff = Number(b.base - globalBase!);
  const key = anyConverts
    ? (s: Stream) => Number(bufs[s.bufferIndex].conv.value(s.reader.ts, s.reader.cpu) - keyBase)
    : (s: Stream) => bufs[s.bufferIndex].keyOff + s.reader.ts;

  const p = new EventPrinter(t);
  const inSeconds = bufs[0].conv.inSeconds;
  // Per-pid, per-cpu and per-event-id column texts, built once. A pid's column changes only when
  // the sched plugin registers its comm, which drops the cached text.
  const pidCol = new Map<number, string>();
  p.onRegister = (pid) => pidCol.delete(pid);
  const cpuCol: string[] = [];
  const nameCol = new Map<number, string>();
  const unknown = new Set<number>();
  // Pieces are collected and joined once per chunk: no intermediate concatenated strings.
  let parts: string[] = [];
  let size = 0;
  const merger = new StreamMerger(t, bufs, diags, key);
  for (let s = merger.next(); s; s = merger.next()) {
    const r = s.reader;
    const b = bufs[s.bufferIndex];
    p.at(r.buf, r.dataPos, r.dataLen);
    const id = p.type();
    const pid = p.pid();
    if (b.prefix) parts.push(b.prefix);
    if (r.missed > 0) parts.push(`CPU:${r.cpu} [${r.missed} EVENTS DROPPED]\n`);
    else if (r.missed < 0) parts.push(`CPU:${r.cpu} [EVENTS DROPPED]\n`);
    let pc = pidCol.get(pid);
    if (pc === undefined) {
      const comm = p.comm(pid);
      const ps = String(pid);
      pc = (comm.length >= 16 ? comm : SPACES.slice(0, 16 - comm.length) + comm) + '-' + (ps.length >= 5 ? ps : ps + SPACES.slice(0, 5 - ps.length));
      pidCol.set(pid, pc);
    }
    let cc = cpuCol[r.cpu];
    if (cc === undefined) {
      const cs = String(r.cpu);
      cc = cpuCol[r.cpu] = ' [' + (cs.length >= 3 ? cs : '000'.slice(cs.length) + cs) + ']' + (inSeconds ? ' ' : '');
    }
    let nc = nameCol.get(id);
    if (nc === undefined) {
      const ev = p.event(id);
      const name = ev ? ev.name : '(NULL)';
      nc = ': ' + name + ': ' + (name.length < 20 ? SPACES.slice(0, 20 - name.length) : '');
      nameCol.set(id, nc);
      if (!ev) unknown.add(id);
    }
    if (unknown.size > 0 && unknown.has(id))
      diags.add({ file: t.file, byteOffset: r.fileOffset, message: `CPU ${r.cpu}: event id ${id} has no format in the file` });
    const time = b.conv.format(r.ts, r.cpu);
    const body = p.body(id, o.raw);
    parts.push(pc, cc, time, nc, body, '\n');
    size += pc.length + time.length + body.length + 40;
    if (size >= chunkBytes) {
      yield parts.join('');
      parts = [];
      size = 0;
    }
  }
  if (parts.length) yield parts.join('');
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
