/**
 * The ftrace events Perfetto has typed messages for (so that its importer builds CPU scheduling
 * tracks, thread states, irq and idle tracks from them), written from kvmtrace's events. Each
 * writer reads the fields it needs from the printed body and returns false when the text does not
 * have them; the event then goes out as a generic event with the fields it does have.
 */
import { decimalEnd, decimalNumber, FieldSpans, hexNumber, scanFields, spanKind } from '../../parsers/body-fields.js';
import { isMarkerEvent, schedSwitchText } from '../../parsers/event-fields.js';
import {
  CPU_IDLE,
  EVENT_ID,
  IRQ_HANDLER_ENTRY,
  IRQ_HANDLER_EXIT,
  PRINT,
  SCHED_PROCESS_EXIT,
  SCHED_PROCESS_FORK,
  SCHED_PROCESS_FREE,
  SCHED_SWITCH,
  SCHED_WAKE,
  SOFTIRQ,
  TASK_NEWTASK,
  TASK_RENAME,
} from './fields.js';
import type { ProtoBuf } from './proto-writer.js';
import { prevStateBits, type TaskStateLayout } from './task-state.js';

/** Writes one typed event's message (field `EVENT_ID[name]` of FtraceEvent) into `pb`; false when the body lacks its fields. */
type TypedWriter = (pb: ProtoBuf, body: string, layout: TaskStateLayout) => boolean;

/**
 * The fields of one body, read through the shared scanner into a reused buffer; values are made
 * into strings or numbers only when asked for.
 */
class Fields {
  private buf = Buffer.allocUnsafe(256);
  private len = 0;
  private readonly sp = new FieldSpans();

  /** Reads `body`'s fields. */
  load(body: string): this {
    if (body.length * 3 > this.buf.length) this.buf = Buffer.allocUnsafe(body.length * 3);
    this.len = this.buf.write(body, 0, 'utf8');
    scanFields(this.buf, 0, this.len, this.sp);
    return this;
  }

  /** Index of the first field named `key`, or -1. */
  private find(key: string): number {
    const sp = this.sp;
    const b = this.buf;
    outer: for (let i = 0; i < sp.n; i++) {
      if (sp.ke[i] - sp.ks[i] !== key.length) continue;
      for (let k = 0; k < key.length; k++) if (b[sp.ks[i] + k] !== key.charCodeAt(k)) continue outer;
      return i;
    }
    return -1;
  }

  /** Field `key` as printed, or undefined. */
  get(key: string): string | undefined {
    const i = this.find(key);
    return i < 0 ? undefined : this.buf.toString('utf8', this.sp.vs[i], this.sp.ve[i]);
  }

  /** Field `key` as an integer (decimal, or 0x… hex; at most 13 hex or 15 decimal digits), or undefined. */
  num(key: string): number | undefined {
    const i = this.find(key);
    if (i < 0) return undefined;
    const a = this.sp.vs[i];
    const z = this.sp.ve[i];
    const kind = spanKind(this.buf, a, z);
    const d = kind === 'int' ? decimalEnd(this.buf, a, z) : -1;
    if (d >= 0 && d - a <= 15) return decimalNumber(this.buf, a, d);
    if (kind === 'uint' && this.buf[a + 1] === 120 && z - a <= 15) return hexNumber(this.buf, a + 2, z);
    return undefined;
  }
}

const fields = new Fields();
/** The body's fields. */
const kv = (body: string): Fields => fields.load(body);
/** An integer field. */
const num = (m: Fields, key: string): number | undefined => m.num(key);

/** Writes a signed field when the value is known. */
function opt(pb: ProtoBuf, field: number, v: number | undefined): void {
  if (v !== undefined && Number.isFinite(v)) pb.int(field, v);
}

/** sched_process_exit and _free: `comm=… pid=… prio=…` (their messages number these fields alike). */
function commPidPrio(id: number, f: { comm: number; pid: number; prio: number }): [number, TypedWriter] {
  return [
    id,
    (pb, body) => {
      const m = kv(body);
      const comm = m.get('comm');
      const pid = num(m, 'pid');
      if (comm === undefined || pid === undefined) return false;
      pb.string(f.comm, comm);
      pb.int(f.pid, pid);
      opt(pb, f.prio, num(m, 'prio'));
      return true;
    },
  ];
}

/** trace-cmd's sched_wakeup plugin form: `comm:pid [prio]( success=1)? CPU:003`. */
const PLUGIN_WAKE = /^(.*):(\d+) \[(-?\d+)\](?: success=(\d+))? CPU:(\d+)$/;

const wake = (id: number): [number, TypedWriter] => [
  id,
  (pb, body) => {
    const p = PLUGIN_WAKE.exec(body.trim());
    const m = p ? undefined : kv(body);
    const comm = p ? p[1] : m!.get('comm');
    const pid = p ? Number(p[2]) : num(m!, 'pid');
    if (comm === undefined || pid === undefined) return false;
    pb.string(SCHED_WAKE.comm, comm);
    pb.int(SCHED_WAKE.pid, pid);
    opt(pb, SCHED_WAKE.prio, p ? Number(p[3]) : num(m!, 'prio'));
    opt(pb, SCHED_WAKE.success, p ? (p[4] === undefined ? undefined : Number(p[4])) : num(m!, 'success'));
    opt(pb, SCHED_WAKE.targetCpu, p ? Number(p[5]) : num(m!, 'target_cpu'));
    return true;
  },
];

/** Typed writers by event name (ftrace names; trace-cmd names markers `print`, tracefs `tracing_mark_write`). */
const WRITERS = new Map<string, [number, TypedWriter]>([
  [
    'sched_switch',
    [
      EVENT_ID.sched_switch,
      (pb, body, layout) => {
        const s = schedSwitchText(body);
        if (!s) return false;
        pb.string(SCHED_SWITCH.prevComm, s.prevComm);
        pb.int(SCHED_SWITCH.prevPid, s.prevPid);
        opt(pb, SCHED_SWITCH.prevPrio, s.prevPrio);
        pb.int(SCHED_SWITCH.prevState, prevStateBits(s.prevState, layout));
        pb.string(SCHED_SWITCH.nextComm, s.nextComm);
        pb.int(SCHED_SWITCH.nextPid, s.nextPid);
        opt(pb, SCHED_SWITCH.nextPrio, s.nextPrio);
        return true;
      },
    ],
  ],
  ['sched_wakeup', wake(EVENT_ID.sched_wakeup)],
  ['sched_waking', wake(EVENT_ID.sched_waking)],
  ['sched_wakeup_new', wake(EVENT_ID.sched_wakeup_new)],
  ['sched_process_exit', commPidPrio(EVENT_ID.sched_process_exit, SCHED_PROCESS_EXIT)],
  ['sched_process_free', commPidPrio(EVENT_ID.sched_process_free, SCHED_PROCESS_FREE)],
  [
    'sched_process_fork',
    [
      EVENT_ID.sched_process_fork,
      (pb, body) => {
        const m = kv(body);
        const pid = num(m, 'pid');
        const child = num(m, 'child_pid');
        if (pid === undefined || child === undefined) return false;
        pb.string(SCHED_PROCESS_FORK.parentComm, m.get('comm') ?? '');
        pb.int(SCHED_PROCESS_FORK.parentPid, pid);
        pb.string(SCHED_PROCESS_FORK.childComm, m.get('child_comm') ?? '');
        pb.int(SCHED_PROCESS_FORK.childPid, child);
        return true;
      },
    ],
  ],
  [
    'task_newtask',
    [
      EVENT_ID.task_newtask,
      (pb, body) => {
        const m = kv(body);
        const pid = num(m, 'pid');
        const comm = m.get('comm');
        if (pid === undefined || comm === undefined) return false;
        pb.int(TASK_NEWTASK.pid, pid);
        pb.string(TASK_NEWTASK.comm, comm);
        const flags = m.get('clone_flags');
        // Printed as %lx without 0x.
        if (flags !== undefined && /^[0-9a-fA-F]{1,13}$/.test(flags)) pb.uint(TASK_NEWTASK.cloneFlags, parseInt(flags, 16));
        opt(pb, TASK_NEWTASK.oomScoreAdj, num(m, 'oom_score_adj'));
        return true;
      },
    ],
  ],
  [
    'task_rename',
    [
      EVENT_ID.task_rename,
      (pb, body) => {
        const m = kv(body);
        const pid = num(m, 'pid');
        const newcomm = m.get('newcomm');
        if (pid === undefined || newcomm === undefined) return false;
        pb.int(TASK_RENAME.pid, pid);
        pb.string(TASK_RENAME.oldcomm, m.get('oldcomm') ?? '');
        pb.string(TASK_RENAME.newcomm, newcomm);
        opt(pb, TASK_RENAME.oomScoreAdj, num(m, 'oom_score_adj'));
        return true;
      },
    ],
  ],
  [
    'irq_handler_entry',
    [
      EVENT_ID.irq_handler_entry,
      (pb, body) => {
        const m = kv(body);
        const irq = num(m, 'irq');
        if (irq === undefined) return false;
        pb.int(IRQ_HANDLER_ENTRY.irq, irq);
        pb.string(IRQ_HANDLER_ENTRY.name, m.get('name') ?? '');
        return true;
      },
    ],
  ],
  [
    'irq_handler_exit',
    [
      EVENT_ID.irq_handler_exit,
      (pb, body) => {
        const m = kv(body);
        const irq = num(m, 'irq');
        // The kernel prints IRQ_HANDLED (1) as "handled" and IRQ_NONE (0) as "unhandled".
        const r = m.get('ret');
        const ret = r === 'handled' ? 1 : r === 'unhandled' ? 0 : num(m, 'ret');
        if (irq === undefined || ret === undefined) return false;
        pb.int(IRQ_HANDLER_EXIT.irq, irq);
        pb.int(IRQ_HANDLER_EXIT.ret, ret);
        return true;
      },
    ],
  ],
  ...(['softirq_entry', 'softirq_exit', 'softirq_raise'] as const).map((n): [string, [number, TypedWriter]] => [
    n,
    [
      EVENT_ID[n],
      (pb, body) => {
        const vec = num(kv(body), 'vec');
        if (vec === undefined || vec < 0) return false;
        pb.uint(SOFTIRQ.vec, vec);
        return true;
      },
    ],
  ]),
  [
    'cpu_idle',
    [
      EVENT_ID.cpu_idle,
      (pb, body) => {
        const m = kv(body);
        const state = num(m, 'state');
        const cpu = num(m, 'cpu_id');
        if (state === undefined || cpu === undefined || state < 0 || cpu < 0) return false;
        // uint32 fields: PWR_EVENT_EXIT is printed as 4294967295.
        pb.uint(CPU_IDLE.state, state);
        pb.uint(CPU_IDLE.cpuId, cpu);
        return true;
      },
    ],
  ],
]);

/**
 * The systrace (atrace) lines Perfetto's importer reads from a marker: `B|pid|name`, `E`,
 * `C|pid|name|value`, `S|F|pid|name|cookie`, `I|pid|name`, `N|pid|track|name`, `G|pid|track|name|cookie`,
 * `H|pid|track|…`. Other marker text would count as a parse failure there: it goes out generic.
 */
const SYSTRACE = /^(E(\|.*)?|B\|\d+\|.*|[CSF]\|\d+\|[^|]+\|-?\d+(\|.*)?|I\|\d+\|[^|]+|N\|\d+\|[^|]+\|[^|]+|G\|\d+\|[^|]+\|[^|]+\|-?\d+|H\|\d+\|[^|]+\|(?:[^|]*\|)?-?\d+)\n?$/;

/** A marker's text: trace-cmd prints `print` events as `SYMBOL: text` (the writer's ip, then the buffer). */
export function markerText(name: string, body: string): string {
  if (name !== 'print') return body;
  const i = body.indexOf(': ');
  return i > 0 && body.lastIndexOf(' ', i) < 0 ? body.slice(i + 2) : body;
}

/** True when event `name` has a typed message (it may still go out generic when its text lacks the fields). */
export function hasTyped(name: string): boolean {
  return isMarkerEvent(name) || WRITERS.has(name);
}

/**
 * Writes the typed message of event `name` (its FtraceEvent field and content) into `pb`, after
 * the FtraceEvent's timestamp and pid. Returns false (with `pb` as it was) when the event has no
 * typed message or its text lacks the fields.
 */
export function writeTyped(pb: ProtoBuf, name: string, body: string, layout: TaskStateLayout): boolean {
  const start = pb.len;
  if (isMarkerEvent(name)) {
    const text = markerText(name, body);
    if (!SYSTRACE.test(text)) return false;
    const mark = pb.begin(EVENT_ID.print);
    pb.string(PRINT.buf, text);
    pb.end(mark);
    return true;
  }
  const w = WRITERS.get(name);
  if (!w) return false;
  const mark = pb.begin(w[0]);
  if (!w[1](pb, body, layout)) {
    pb.len = start;
    return false;
  }
  pb.end(mark);
  return true;
}
