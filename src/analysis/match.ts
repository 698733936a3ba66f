/**
 * Event matchers for `latency` and `--flows`:
 *
 *   [SIDE:]EVENT[~TEXT][[FIELD OP VALUE,…]]
 *
 * - SIDE: `host`, `guest` (any guest), or `guest=NAME` (the guest machine NAME); omitted = any.
 * - EVENT: an event name; `*` matches any run of characters (`kvm_*`); `marker` (and either of
 *   `tracing_mark_write` / `print`) matches trace_marker writes under both names.
 * - `~TEXT`: the event's printed fields contain TEXT (case-sensitive; up to a `[`).
 * - `[…]`: comma-separated conditions, all of which must hold. OP is `=`, `!=` or `~` (contains).
 *   FIELD is a `key=value` field of the event's text (`next_comm`, `seq`, `vcpu_id`…) or one of:
 *   `reason` (kvm_exit's exit reason as printed — `HLT`, `npf`, `PF excp`; kvm_userspace_exit's
 *   `KVM_EXIT_IO`), `port` (kvm_pio), `comm`, `pid`, `cpu`, `vcpu`, `text` (all the fields).
 *   Values that are both numbers (decimal or 0x hex) compare as numbers.
 *
 * Examples: `guest:marker~kvmsync`, `host:kvm_exit[reason=HLT]`, `host:kvm_pio[port=0xe9]`,
 * `guest:sched_switch[next_comm=netperf]`.
 */
import { UserError } from '../model/errors.js';
import { fieldOf } from '../model/event.js';
import type { MergedEvent } from '../merge/merged-event.js';
import { fieldsOfEvent, isMarkerEvent } from '../parsers/event-fields.js';

/** One `[FIELD OP VALUE]` condition. */
export interface Condition {
  field: string;
  op: '=' | '!=' | '~';
  value: string;
}

/** A parsed matcher. */
export interface Match {
  /** The text it was parsed from. */
  text: string;
  side: 'host' | 'guest' | 'any';
  /** Guest machine name for `guest=NAME`. */
  machine?: string;
  /** The event name pattern; undefined for `*`. */
  name?: RegExp;
  marker: boolean;
  contains?: string;
  conditions: Condition[];
}

const NAME_RE = /^[A-Za-z0-9_*.\-]+$/;

/** Parses a matcher; throws a UserError naming the problem. */
export function parseMatch(text: string, flag = 'match'): Match {
  const bad = (why: string): never => {
    throw new UserError(`${flag} ${JSON.stringify(text)}: ${why} (syntax: [host:|guest:|guest=NAME:]EVENT[~TEXT][[FIELD=VALUE,…]], e.g. host:kvm_exit[reason=HLT])`);
  };
  let rest = text.trim();
  let side: Match['side'] = 'any';
  let machine: string | undefined;
  const sm = /^(host|guest(?:=([^:\[\]~]+))?|\*):/.exec(rest);
  if (sm) {
    side = sm[1] === '*' ? 'any' : sm[1] === 'host' ? 'host' : 'guest';
    machine = sm[2];
    rest = rest.slice(sm[0].length);
  }
  const conditions: Condition[] = [];
  if (rest.endsWith(']')) {
    const open = rest.indexOf('[');
    if (open < 0) bad('a "]" without "["');
    for (const c of rest.slice(open + 1, -1).split(',')) {
      const m = /^\s*([A-Za-z0-9_.]+)\s*(!=|=|~)\s*(.*?)\s*$/.exec(c);
      if (!m) bad(`cannot read the condition ${JSON.stringify(c)}; expected FIELD=VALUE, FIELD!=VALUE or FIELD~TEXT`);
      conditions.push({ field: m![1], op: m![2] as Condition['op'], value: m![3] });
    }
    rest = rest.slice(0, open);
  } else if (rest.includes('[')) bad('a "[" without a closing "]" at the end');
  let contains: string | undefined;
  const tilde = rest.indexOf('~');
  if (tilde >= 0) {
    contains = rest.slice(tilde + 1);
    rest = rest.slice(0, tilde);
    if (!contains) bad('nothing after "~"');
  }
  if (!rest) bad('no event name');
  if (!NAME_RE.test(rest)) bad(`${JSON.stringify(rest)} is not an event name`);
  const marker = rest === 'marker' || isMarkerEvent(rest);
  const name = rest === '*' || marker ? undefined : new RegExp('^' + rest.replace(/[.+?^${}()|\\-]/g, '\\$&').replace(/\*/g, '.*') + '$');
  return { text, side, machine, name, marker, contains, conditions };
}

/** What a matcher needs to know about the merge an event comes from. */
export interface MatchContext {
  /** True for events of a guest source. */
  isGuest(m: MergedEvent): boolean;
  /** The machine name of an event's source. */
  machine(m: MergedEvent): string;
  /** The vCPU a host thread runs, -1 when unknown. */
  hostVcpu(tid: number): number;
}

/** Looks up a field (pseudo fields first) of an event; undefined when it has none. */
export function eventField(m: MergedEvent, field: string, cx: MatchContext): string | undefined {
  const ev = m.ev;
  switch (field) {
    case 'reason': {
      const f = fieldsOfEvent(ev);
      if (f?.kind === 'kvm_exit' || f?.kind === 'kvm_userspace_exit') return f.reason;
      break;
    }
    case 'port': {
      const f = fieldsOfEvent(ev);
      if (f?.kind === 'kvm_pio') return String(f.port);
      break;
    }
    case 'comm':
      return ev.comm;
    case 'pid':
      return String(ev.pid);
    case 'cpu':
      return String(ev.cpu);
    case 'vcpu':
      if (cx.isGuest(m)) return String(m.vcpu >= 0 ? m.vcpu : ev.cpu);
      {
        const v = cx.hostVcpu(ev.pid);
        if (v >= 0) return String(v);
      }
      break;
    case 'text':
      return ev.body;
  }
  return fieldOf(ev.body, field);
}

const NUM = /^(0x[0-9a-f]+|-?\d+)$/i;

function holds(actual: string | undefined, c: Condition): boolean {
  if (actual === undefined) return c.op === '!=';
  if (c.op === '~') return actual.includes(c.value);
  const eq = NUM.test(actual) && NUM.test(c.value) ? Number(actual) === Number(c.value) : actual === c.value;
  return c.op === '=' ? eq : !eq;
}

/** True when the merged event matches. */
export function matches(mt: Match, m: MergedEvent, cx: MatchContext): boolean {
  const guest = cx.isGuest(m);
  if (mt.side === 'host' && guest) return false;
  if (mt.side === 'guest' && !guest) return false;
  if (mt.marker ? !isMarkerEvent(m.ev.name) : mt.name && !mt.name.test(m.ev.name)) return false;
  if (mt.machine !== undefined && cx.machine(m) !== mt.machine) return false;
  if (mt.contains !== undefined && !m.ev.body.includes(mt.contains)) return false;
  for (const c of mt.conditions) if (!holds(eventField(m, c.field, cx), c)) return false;
  return true;
}
