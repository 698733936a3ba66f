/**
 * The event printers that replace an event's print fmt in `trace-cmd report` (libtraceevent's
 * plugins: sched_switch, kvm, kmem, hrtimer, tlb, function). Each returns the text and whether the
 * print fmt is to be appended after it (libtraceevent: the handler's non-zero return).
 */
import type { EventFormat } from './format.js';
import { formatInt, parseDirective } from './cprintf.js';
import { readSmall, readU, type Rec, type RenderEnv } from './printfmt-eval.js';
import { hexOf } from './printfmt-fast.js';

/** What a plugin needs to print an event. */
export interface PluginCtx {
  env: RenderEnv;
  ev: EventFormat;
  r: Rec;
  /** Registers a pid → comm pair when none is known yet (tep_register_comm). */
  registerComm(pid: number, comm: string): void;
}

/** A plugin printer: text, and true when the print fmt follows. */
export type Plugin = (c: PluginCtx) => { text: string; pretty: boolean };

/** A field's unsigned value, or undefined when the event has no such field. */
function val(c: PluginCtx, name: string): bigint | undefined {
  const f = c.ev.byName.get(name);
  if (!f || f.common) return undefined;
  return readU(c.env, c.r, f.offset, f.size);
}

/**
 * A field's value as a number without bigint: fields of up to 4 bytes unsigned; for 8-byte
 * fields the low 32 bits (what an `(int)` cast or a `%u` of an int keeps). Undefined when absent.
 */
function low32(c: PluginCtx, name: string): number | undefined {
  const f = c.ev.byName.get(name);
  if (!f || f.common) return undefined;
  if (f.size <= 4) return readSmall(c.env, c.r, f.offset, f.size);
  if (f.size !== 8 || f.offset + 8 > c.r.len) return Number(readU(c.env, c.r, f.offset, f.size) & 0xffffffffn);
  const at = c.r.pos + f.offset;
  return c.env.le ? c.r.buf.readUInt32LE(at) : c.r.buf.readUInt32BE(at + 4);
}

/** A field's value in lower-case hex (u64), without bigint for 8-byte fields. */
function hexField(c: PluginCtx, name: string): string | undefined {
  const f = c.ev.byName.get(name);
  if (!f || f.common) return undefined;
  if (f.size !== 8 || f.offset + 8 > c.r.len) return readU(c.env, c.r, f.offset, f.size).toString(16);
  const at = c.r.pos + f.offset;
  const b = c.r.buf;
  const lo = c.env.le ? b.readUInt32LE(at) : b.readUInt32BE(at + 4);
  const hi = c.env.le ? b.readUInt32LE(at + 4) : b.readUInt32BE(at);
  return hi === 0 ? hexOf(lo) : hexOf(hi) + ((lo >>> 16) | 0x10000).toString(16).slice(1) + ((lo & 0xffff) | 0x10000).toString(16).slice(1);
}

/** `%lld` of a u64 (two's complement). */
const lld = (v: bigint): string => BigInt.asIntN(64, v).toString();
const hex = (v: bigint): string => v.toString(16);

function commField(c: PluginCtx, name: string, pid: number): string {
  const f = c.ev.byName.get(name);
  if (!f) return '';
  const start = c.r.pos + f.offset;
  let end = c.r.buf.indexOf(0, start);
  const lim = start + f.size;
  if (end < 0 || end > lim) end = lim;
  const comm = c.r.buf.toString('latin1', start, end);
  c.registerComm(pid | 0, comm);
  return comm + ':';
}

function writeState(v: number): string {
  const states = 'SDTtZXxW';
  const out: string[] = [];
  for (let i = 0; i < states.length; i++) if (v & (1 << i)) out.push(states[i]);
  return out.length ? out.join('|') : 'R';
}

// Fields read as numbers: pids and prios are 4 bytes (read unsigned, as tep_get_field_val does;
// `%lld` of them is then their unsigned value, `(int)` casts take the sign back).
const schedSwitch: Plugin = (c) => {
  const prevPid = low32(c, 'prev_pid');
  if (prevPid === undefined) return { text: '<CANT FIND FIELD prev_pid>!', pretty: false };
  let s = commField(c, 'prev_comm', prevPid) + String(prevPid) + ' ';
  const prio = low32(c, 'prev_prio');
  if (prio !== undefined) s += `[${prio | 0}] `;
  const state = low32(c, 'prev_state');
  if (state !== undefined) s += writeState(state | 0);
  s += ' ==> ';
  const nextPid = low32(c, 'next_pid');
  if (nextPid === undefined) return { text: s + '<CANT FIND FIELD next_pid>!', pretty: false };
  s += commField(c, 'next_comm', nextPid) + String(nextPid);
  const np = low32(c, 'next_prio');
  if (np !== undefined) s += ` [${np | 0}]`;
  return { text: s, pretty: false };
};

const schedWakeup: Plugin = (c) => {
  const pid = c.ev.byName.get('pid');
  if (!pid || pid.size > 4) return legacyWakeup(c);
  const pv = low32(c, 'pid')!;
  let s = commField(c, 'comm', pv) + String(pv);
  for (const [name, pre, post] of [
    ['prio', ' [', ']'],
    ['success', ' success=', ''],
  ] as const) {
    const f = c.ev.byName.get(name);
    if (!f) continue;
    s += pre + (f.size <= 4 ? String(low32(c, name)) : lld(val(c, name)!)) + post;
  }
  const cpu = c.ev.byName.get('target_cpu');
  if (cpu) s += ` CPU:${(cpu.size <= 4 ? String(low32(c, 'target_cpu')) : val(c, 'target_cpu')!.toString()).padStart(3, '0')}`;
  return { text: s, pretty: false };
};

/** sched_wakeup with a pid wider than 4 bytes (not seen in practice): the bigint path. */
const legacyWakeup: Plugin = (c) => {
  const pid = val(c, 'pid');
  if (pid === undefined) return { text: '<CANT FIND FIELD pid>!', pretty: false };
  let s = commField(c, 'comm', Number(BigInt.asIntN(32, pid))) + lld(pid);
  const prio = val(c, 'prio');
  if (prio !== undefined) s += ` [${lld(prio)}]`;
  const success = val(c, 'success');
  if (success !== undefined) s += ` success=${lld(success)}`;
  const cpu = val(c, 'target_cpu');
  if (cpu !== undefined) s += ` CPU:${cpu.toString().padStart(3, '0')}`;
  return { text: s, pretty: false };
};

const VMX: Record<number, string> = {
  0: 'EXCEPTION_NMI', 1: 'EXTERNAL_INTERRUPT', 2: 'TRIPLE_FAULT', 7: 'PENDING_INTERRUPT', 8: 'NMI_WINDOW',
  9: 'TASK_SWITCH', 10: 'CPUID', 12: 'HLT', 13: 'INVD', 14: 'INVLPG', 15: 'RDPMC', 16: 'RDTSC', 18: 'VMCALL',
  19: 'VMCLEAR', 20: 'VMLAUNCH', 21: 'VMPTRLD', 22: 'VMPTRST', 23: 'VMREAD', 24: 'VMRESUME', 25: 'VMWRITE',
  26: 'VMOFF', 27: 'VMON', 28: 'CR_ACCESS', 29: 'DR_ACCESS', 30: 'IO_INSTRUCTION', 31: 'MSR_READ', 32: 'MSR_WRITE',
  36: 'MWAIT_INSTRUCTION', 39: 'MONITOR_INSTRUCTION', 40: 'PAUSE_INSTRUCTION', 41: 'MCE_DURING_VMENTRY',
  43: 'TPR_BELOW_THRESHOLD', 44: 'APIC_ACCESS', 45: 'EOI_INDUCED', 48: 'EPT_VIOLATION', 49: 'EPT_MISCONFIG',
  50: 'INVEPT', 52: 'PREEMPTION_TIMER', 54: 'WBINVD', 55: 'XSETBV', 56: 'APIC_WRITE', 58: 'INVPCID', 62: 'PML_FULL',
  63: 'XSAVES', 64: 'XRSTORS',
};

const SVM: Record<number, string> = {
  0x000: 'EXIT_READ_CR0', 0x003: 'EXIT_READ_CR3', 0x004: 'EXIT_READ_CR4', 0x008: 'EXIT_READ_CR8',
  0x010: 'EXIT_WRITE_CR0', 0x013: 'EXIT_WRITE_CR3', 0x014: 'EXIT_WRITE_CR4', 0x018: 'EXIT_WRITE_CR8',
  0x020: 'EXIT_READ_DR0', 0x021: 'EXIT_READ_DR1', 0x022: 'EXIT_READ_DR2', 0x023: 'EXIT_READ_DR3',
  0x024: 'EXIT_READ_DR4', 0x025: 'EXIT_READ_DR5', 0x026: 'EXIT_READ_DR6', 0x027: 'EXIT_READ_DR7',
  0x030: 'EXIT_WRITE_DR0', 0x031: 'EXIT_WRITE_DR1', 0x032: 'EXIT_WRITE_DR2', 0x033: 'EXIT_WRITE_DR3',
  0x034: 'EXIT_WRITE_DR4', 0x035: 'EXIT_WRITE_DR5', 0x036: 'EXIT_WRITE_DR6', 0x037: 'EXIT_WRITE_DR7',
  0x040: 'EXIT_EXCP_DE', 0x041: 'EXIT_EXCP_DB', 0x043: 'EXIT_EXCP_BP', 0x044: 'EXIT_EXCP_OF', 0x045: 'EXIT_EXCP_BR',
  0x046: 'EXIT_EXCP_UD', 0x047: 'EXIT_EXCP_NM', 0x048: 'EXIT_EXCP_DF', 0x04a: 'EXIT_EXCP_TS', 0x04b: 'EXIT_EXCP_NP',
  0x04c: 'EXIT_EXCP_SS', 0x04d: 'EXIT_EXCP_GP', 0x04e: 'EXIT_EXCP_PF', 0x050: 'EXIT_EXCP_MF', 0x051: 'EXIT_EXCP_AC',
  0x052: 'EXIT_EXCP_MC', 0x053: 'EXIT_EXCP_XF', 0x060: 'EXIT_INTR', 0x061: 'EXIT_NMI', 0x062: 'EXIT_SMI',
  0x063: 'EXIT_INIT', 0x064: 'EXIT_VINTR', 0x065: 'EXIT_CR0_SEL_WRITE', 0x066: 'EXIT_IDTR_READ',
  0x067: 'EXIT_GDTR_READ', 0x068: 'EXIT_LDTR_READ', 0x069: 'EXIT_TR_READ', 0x06a: 'EXIT_IDTR_WRITE',
  0x06b: 'EXIT_GDTR_WRITE', 0x06c: 'EXIT_LDTR_WRITE', 0x06d: 'EXIT_TR_WRITE', 0x06e: 'EXIT_RDTSC',
  0x06f: 'EXIT_RDPMC', 0x070: 'EXIT_PUSHF', 0x071: 'EXIT_POPF', 0x072: 'EXIT_CPUID', 0x073: 'EXIT_RSM',
  0x074: 'EXIT_IRET', 0x075: 'EXIT_SWINT', 0x076: 'EXIT_INVD', 0x077: 'EXIT_PAUSE', 0x078: 'EXIT_HLT',
  0x079: 'EXIT_INVLPG', 0x07a: 'EXIT_INVLPGA', 0x07b: 'EXIT_IOIO', 0x07c: 'EXIT_MSR', 0x07d: 'EXIT_TASK_SWITCH',
  0x07e: 'EXIT_FERR_FREEZE', 0x07f: 'EXIT_SHUTDOWN', 0x080: 'EXIT_VMRUN', 0x081: 'EXIT_VMMCALL',
  0x082: 'EXIT_VMLOAD', 0x083: 'EXIT_VMSAVE', 0x084: 'EXIT_STGI', 0x085: 'EXIT_CLGI', 0x086: 'EXIT_SKINIT',
  0x087: 'EXIT_RDTSCP', 0x088: 'EXIT_ICEBP', 0x089: 'EXIT_WBINVD', 0x08a: 'EXIT_MONITOR', 0x08b: 'EXIT_MWAIT',
  0x08c: 'EXIT_MWAIT_COND', 0x08d: 'EXIT_XSETBV', 0x400: 'EXIT_NPF', 0x401: 'EXIT_AVIC_INCOMPLETE_IPI',
  0x402: 'EXIT_AVIC_UNACCELERATED_ACCESS', [-1]: 'EXIT_ERR',
};

function exitReason(c: PluginCtx, field: string): string | undefined {
  const f = c.ev.byName.get(field);
  if (!f || f.common) return undefined;
  const isaF = c.ev.byName.get('isa');
  const isa = isaF ? low32(c, 'isa')! + (isaF.size > 4 ? Number(readU(c.env, c.r, isaF.offset, isaF.size) >> 32n) * 2 ** 32 : 0) : 1;
  // find_exit_reason takes an int: the low 32 bits, signed.
  const code = low32(c, field)! | 0;
  if (isa !== 1 && isa !== 2) return 'reason UNKNOWN-ISA';
  const name = (isa === 1 ? VMX : SVM)[code];
  return name ? `reason ${name}` : `reason UNKNOWN (${f.size <= 4 ? low32(c, field) : val(c, field)})`;
}

/** The kvm_exit reason of the current record as its plugin names it (`EPT_MISCONFIG`, `UNKNOWN (N)`), '' without the field. */
export function kvmExitReasonOf(c: PluginCtx): string {
  return exitReason(c, 'exit_reason')?.slice(7) ?? '';
}

const kvmExit: Plugin = (c) => {
  const reason = exitReason(c, 'exit_reason');
  if (reason === undefined) return { text: '<CANT FIND FIELD exit_reason>', pretty: true };
  const rip = hexField(c, 'guest_rip');
  if (rip === undefined) return { text: reason + '<CANT FIND FIELD guest_rip>', pretty: true };
  let s = `${reason} rip 0x${rip}`;
  const i1 = hexField(c, 'info1');
  const i2 = hexField(c, 'info2');
  if (i1 !== undefined && i2 !== undefined) s += ` info ${i1} ${i2}`;
  return { text: s, pretty: false };
};

const kvmEntry: Plugin = (c) => {
  let s = '';
  const vcpu = low32(c, 'vcpu_id');
  s += vcpu === undefined ? `CAN'T FIND FIELD "vcpu_id"` : ` vcpu ${vcpu}`;
  const rip = hexField(c, 'rip');
  if (rip === undefined) return { text: s + '<CANT FIND FIELD rip>', pretty: true };
  return { text: `${s} rip 0x${rip}`, pretty: false };
};

const kvmEmulateInsn: Plugin = (c) => {
  const rip = val(c, 'rip');
  const csbase = val(c, 'csbase');
  const len = val(c, 'len');
  const failed = val(c, 'failed');
  const insn = c.ev.byName.get('insn');
  if (rip === undefined || csbase === undefined || len === undefined || failed === undefined || !insn)
    return { text: '', pretty: true };
  // trace-cmd built without udis86 prints the instruction bytes.
  const n = Math.min(Number(len), 15);
  const bytes: string[] = [];
  for (let i = 0; i < n; i++) bytes.push((c.r.buf[c.r.pos + insn.offset + i] ?? 0).toString(16).padStart(2, '0'));
  return { text: `${hex(csbase)}:${hex(rip)}: ${bytes.join(' ')}${failed ? ' FAIL' : ''}`, pretty: false };
};

function numField(c: PluginCtx, fmt: string, name: string): string {
  const v = val(c, name);
  if (v === undefined) return `CAN'T FIND FIELD "${name}"`;
  const i = fmt.indexOf('%');
  const j = fmt.search(/[diuxX](?=[^%]*$)/);
  const d = parseDirective(fmt.slice(i, j + 1).replace(/l/g, ''));
  return fmt.slice(0, i) + formatInt(d, d.conv === 'd' ? BigInt.asIntN(64, v) : v) + fmt.slice(j + 1);
}

const kvmNestedInject: Plugin = (c) => {
  const reason = exitReason(c, 'exit_code');
  if (reason === undefined) return { text: '<CANT FIND FIELD exit_code>', pretty: true };
  const s =
    reason +
    numField(c, ' info1 %llx', 'exit_info1') +
    numField(c, ' info2 %llx', 'exit_info2') +
    numField(c, ' int_info %llx', 'exit_int_info') +
    numField(c, ' int_info_err %llx', 'exit_int_info_err');
  return { text: s, pretty: false };
};

const kvmNested: Plugin = (c) => {
  const rip = val(c, 'rip');
  if (rip === undefined) return { text: '<CANT FIND FIELD rip>', pretty: true };
  const rest = kvmNestedInject(c);
  return { text: ` rip ${hex(rip)}` + rest.text, pretty: rest.pretty };
};

const callSite: Plugin = (c) => {
  const v = val(c, 'call_site');
  if (v === undefined) return { text: '', pretty: true };
  const fn = c.env.kallsyms.find(v);
  if (!fn) return { text: '', pretty: true };
  return { text: `(${fn.name}+0x${BigInt.asUintN(32, v - fn.start).toString(16)}) `, pretty: true };
};

function funcField(c: PluginCtx, name: string): string | undefined {
  const v = val(c, name);
  if (v === undefined) return undefined;
  const fn = c.env.kallsyms.find(v);
  return fn ? `${fn.name}/0x${BigInt.asUintN(64, fn.start - v).toString(16)}` : '0x' + hex(v).padStart(8, '0');
}

function timerId(c: PluginCtx): string {
  const t = val(c, 'timer') ?? val(c, 'hrtimer');
  return t === undefined ? `CAN'T FIND FIELD "hrtimer"` : '0x' + hex(t);
}

const hrtimerExpire: Plugin = (c) => {
  let s = 'hrtimer=' + timerId(c) + ' now=';
  const now = val(c, 'now');
  s += now === undefined ? `CAN'T FIND FIELD "now"` : now.toString();
  const fn = funcField(c, 'function');
  if (fn !== undefined) s += ` function=${fn}`;
  return { text: s, pretty: false };
};

const hrtimerStart: Plugin = (c) => {
  let s = 'hrtimer=' + timerId(c);
  const fn = funcField(c, 'function');
  if (fn !== undefined) s += ` function=${fn}`;
  const e = val(c, 'expires');
  s += ' expires=' + (e === undefined ? `CAN'T FIND FIELD "expires"` : e.toString());
  const se = val(c, 'softexpires');
  s += ' softexpires=' + (se === undefined ? `CAN'T FIND FIELD "softexpires"` : se.toString());
  return { text: s, pretty: false };
};

const TLB = ['flush on task switch', 'remote shootdown', 'local shootdown', 'local mm shootdown'];
const tlbFlush: Plugin = (c) => {
  const pages = val(c, 'pages');
  let s = 'pages=' + (pages === undefined ? `CAN'T FIND FIELD "pages"` : BigInt.asIntN(64, pages).toString());
  const reason = val(c, 'reason');
  if (reason === undefined) return { text: s + '<CANT FIND FIELD reason>', pretty: true };
  s += ' reason=' + (TLB[Number(reason)] ?? '') + ` (${lld(reason)})`;
  return { text: s, pretty: false };
};

const fnName = (c: PluginCtx, v: bigint): string => c.env.kallsyms.find(v)?.name ?? '0x' + hex(v);

const functionEvent: Plugin = (c) => {
  const ip = val(c, 'ip');
  if (ip === undefined) return { text: '<CANT FIND FIELD ip>!', pretty: false };
  const pip = val(c, 'parent_ip');
  if (pip === undefined) return { text: '<CANT FIND FIELD parent_ip>!', pretty: false };
  return { text: `${fnName(c, ip)} <-- ${fnName(c, pip)}`, pretty: false };
};

const kernelStack: Plugin = (c) => {
  const f = c.ev.byName.get('caller');
  if (!f) return { text: '<CANT FIND FIELD caller>', pretty: false };
  let s = '<stack trace >\n';
  const ls = c.env.longSize;
  for (let off = f.offset; off < c.r.len; off += ls) {
    const addr = readU(c.env, c.r, off, ls);
    if ((ls === 8 && addr === (1n << 64n) - 1n) || BigInt.asUintN(32, addr) === 0xffffffffn) break;
    const fn = c.env.kallsyms.find(addr);
    s += fn ? `=> ${fn.name} (${hex(addr)})\n` : `=> ${hex(addr)}\n`;
  }
  return { text: s, pretty: false };
};

/**
 * ftrace:raw_data (a write to trace_marker_raw): libtraceevent's built-in handler prints `# ID`
 * in hex, then every byte of the record after the id, padding included, as ` %02x`.
 */
const rawData: Plugin = (c) => {
  const id = val(c, 'id');
  const buf = c.ev.byName.get('buf');
  if (id === undefined || !buf) return { text: '', pretty: true };
  let s = '# ' + hex(id);
  const b = c.r.buf;
  for (let at = c.r.pos + buf.offset, end = c.r.pos + c.r.len; at < end; at++) s += ' ' + HEX2[b[at]];
  return { text: s, pretty: false };
};

/** Two lower-case hex digits of each byte value. */
const HEX2 = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Plugins by `system:event`. */
export const PLUGINS: ReadonlyMap<string, Plugin> = new Map([
  ['sched:sched_switch', schedSwitch],
  ['sched:sched_wakeup', schedWakeup],
  ['sched:sched_wakeup_new', schedWakeup],
  ['kvm:kvm_exit', kvmExit],
  ['kvm:kvm_entry', kvmEntry],
  ['kvm:kvm_emulate_insn', kvmEmulateInsn],
  ['kvm:kvm_nested_vmexit', kvmNested],
  ['kvm:kvm_nested_vmexit_inject', kvmNestedInject],
  ['kmem:kfree', callSite],
  ['kmem:kmalloc', callSite],
  ['kmem:kmalloc_node', callSite],
  ['kmem:kmem_cache_alloc', callSite],
  ['kmem:kmem_cache_alloc_node', callSite],
  ['kmem:kmem_cache_free', callSite],
  ['timer:hrtimer_expire_entry', hrtimerExpire],
  ['timer:hrtimer_start', hrtimerStart],
  ['tlb:tlb_flush', tlbFlush],
  ['ftrace:function', functionEvent],
  ['ftrace:kernel_stack', kernelStack],
  ['ftrace:raw_data', rawData],
]);
