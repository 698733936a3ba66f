/**
 * `kvmtrace merge`: bundles or bare files → one validated timeline (Chrome JSON and/or text).
 */
import { existsSync, statSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { UserError } from '../../model/errors.js';
import { checkTid, checkTscKhz, checkTscOffset, checkTscScaling, checkVcpu } from '../../model/mapping-values.js';
import { clockFlag } from '../../merge/inputs.js';
import { prepareMerge, type MergeRequest } from '../../merge/session.js';
import { DEFAULT_LISTED } from '../../merge/validate.js';
import type { GuestOverrides } from '../../merge/plan.js';
import { exportMerge } from '../../export/export-merge.js';
import { flowHook } from '../../analysis/flows.js';
import { mergeExitStatus, printMergeReport } from '../report.js';
import { progress } from '../progress.js';

const collect = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v];

/** Options shared by merge-like commands. */
export interface MergeFlags {
  host?: string[];
  guest?: string[];
  hostClock?: string;
  guestClock?: string;
  guestName?: string;
  tscOffset?: string[];
  tscScaling?: string;
  vcpuThread?: string[];
  tscKhz?: string;
  strict?: boolean;
  fileOffsets?: boolean;
}

/** A UserError `FLAG VALUE: what was expected` when `problem` (from a mapping-values check) says so. */
function need(problem: string | undefined, flag: string, value: string): void {
  if (problem !== undefined) throw new UserError(`${flag} ${value}: ${problem}`);
}

/** Sets `key` to `v` in `m`; a repeated flag that says something else for the same key is refused. */
function setOnce<K, V>(m: Map<K, V>, key: K, v: V, flag: string, what: string): void {
  const had = m.get(key);
  if (had !== undefined && had !== v) throw new UserError(`${flag} is given twice for ${what} (${had} and ${v}): give one`);
  m.set(key, v);
}

/**
 * Sorts the command's arguments into bundles and files, as `check` always did: a folder is a
 * bundle (its meta.json says host or guest); a file given first is the host's trace unless --host
 * names one, and any other file is a guest's.
 */
export function positionalInputs(args: string[], o: MergeFlags): { bundles: string[]; hostFiles: string[]; guestFiles: string[] } {
  const out = { bundles: [] as string[], hostFiles: [...(o.host ?? [])], guestFiles: [...(o.guest ?? [])] };
  for (const [i, a] of args.entries()) {
    let dir: boolean;
    try {
      dir = statSync(a).isDirectory();
    } catch {
      throw new UserError(`${a}: no such file or folder`);
    }
    if (dir) out.bundles.push(a);
    else if (i === 0 && !o.host?.length) out.hostFiles.push(a);
    else out.guestFiles.push(a);
  }
  return out;
}

/** Turns the arguments (bundle folders, trace files) and flags into a merge request (bigints for offsets; clear errors for bad or conflicting values). */
export function mergeRequest(args: string[], o: MergeFlags): MergeRequest {
  const over: GuestOverrides = {};
  const offsets = new Map<number | 'all', bigint>();
  for (const t of o.tscOffset ?? []) {
    const m = /^(?:(\d+)=)?(-?\d+)$/.exec(t);
    if (!m) throw new UserError(`--tsc-offset ${t}: expected a signed integer, or VCPU=OFFSET`);
    const off = BigInt(m[2]);
    need(checkTscOffset(off), '--tsc-offset', t);
    if (m[1] === undefined) setOnce(offsets, 'all', off, '--tsc-offset', 'every vCPU');
    else {
      need(checkVcpu(Number(m[1])), '--tsc-offset', t);
      setOnce(offsets, Number(m[1]), off, '--tsc-offset', `vCPU ${m[1]}`);
    }
  }
  for (const [k, off] of offsets) {
    if (k === 'all') over.tscOffset = off;
    else (over.tscOffsetByVcpu ??= new Map()).set(k, off);
  }
  if (o.tscScaling) {
    const m = /^(\d+)(?:\/(\d+))?$/.exec(o.tscScaling);
    if (!m) throw new UserError(`--tsc-scaling ${o.tscScaling}: expected RATIO or RATIO/FRACBITS (e.g. 281474976710656/48)`);
    over.tscScalingRatio = BigInt(m[1]);
    over.tscScalingFracBits = m[2] ? Number(m[2]) : 48;
    need(checkTscScaling({ ratio: over.tscScalingRatio, fracBits: over.tscScalingFracBits }), '--tsc-scaling', o.tscScaling);
  }
  for (const t of o.vcpuThread ?? []) {
    const m = /^(\d+)=(\d+)$/.exec(t);
    if (!m) throw new UserError(`--vcpu-thread ${t}: expected VCPU=TID, e.g. 0=483882`);
    need(checkVcpu(Number(m[1])) ?? checkTid(Number(m[2])), '--vcpu-thread', t);
    setOnce((over.vcpuThreads ??= new Map()), Number(m[1]), Number(m[2]), '--vcpu-thread', `vCPU ${m[1]}`);
  }
  if (o.fileOffsets === false) over.noFileOffsets = true;
  let tscKhz: number | undefined;
  if (o.tscKhz !== undefined) {
    tscKhz = Number(o.tscKhz);
    need(checkTscKhz(tscKhz), '--tsc-khz', o.tscKhz);
  }
  return {
    ...positionalInputs(args, o),
    hostClock: clockFlag(o.hostClock, '--host-clock'),
    guestClock: clockFlag(o.guestClock, '--guest-clock'),
    guestName: o.guestName,
    overrides: over,
    tscKhz,
    strict: o.strict,
  };
}

/** The arguments of every merge-like command, for its help. */
export const INPUTS_HELP = 'trace files or capture bundle folders: the host first, then any number of guests (a bundle says which it is)';

/** Adds the input flags of a merge to a command. */
export function mergeInputOptions(c: Command): Command {
  return c
    .option('--host <file>', 'host trace file (instead of a first argument)', collect)
    .option('--guest <file>', 'guest trace file; repeatable', collect)
    .option('--host-clock <clock>', 'trace clock of the host file (default: read from the data, and said so)')
    .option('--guest-clock <clock>', 'trace clock of the guest files')
    .option('--guest-name <name>', 'machine name of the guest files (default: from the host trace.dat, else guest)')
    .option('--tsc-offset <n>', "guest TSC offset (signed: guest TSC = host TSC + n), or VCPU=OFFSET; repeatable (not trace-cmd's --ts-offset)", collect)
    .option('--tsc-scaling <ratio[/frac]>', 'TSC scaling ratio and fraction bits (48 Intel, 32 AMD)')
    .option('--vcpu-thread <v=tid>', 'host thread of a vCPU; repeatable', collect)
    .option('--tsc-khz <khz>', 'TSC frequency in kHz')
    .option('--no-file-offsets', 'ignore the clock mapping and pairing ids written in trace.dat files (TIME_SHIFT, GUEST, TRACEID)')
    .option('--strict', 'stop at the first unparsable line');
}

/** The quiet flag of every command that prints a report. */
export const QUIET_FLAG = ['-q, --quiet', 'print only warnings and failures on stderr (no notes, no progress)'] as const;

/** The `--violations [n]` flag of the commands that print the clock check; `alwaysIn`: the JSON output that always has the lists. */
export function violationsOption(alwaysIn: string): [string, string] {
  return [
    '--violations [n]',
    `list each guest event outside its windows, and each not checkable, with the rule that judged it and the host events at the nearest windows' edges: the first N per vCPU (default: ${DEFAULT_LISTED}; ${alwaysIn} always has them)`,
  ];
}

/**
 * Reads `--violations [n]` (merge, check): whether to list, and how many events per vCPU (undefined:
 * DEFAULT_LISTED). Its optional N takes the word after the flag, which may be an input
 * (`--violations HOST GUEST`, `HOST --violations GUEST`): a word that is no number but a file or
 * folder goes back among the inputs where it was typed, as the first file is the host's — after
 * the inputs that `argv` (the command line) has, in order, before the flag.
 */
export function violationsFlag(n: string | true | undefined, inputs: string[], argv: readonly string[]): { list: boolean; listEvents: number | undefined; inputs: string[] } {
  if (typeof n === 'string' && !/^\d+$/.test(n) && existsSync(n)) {
    const at = argv.findIndex((a, i) => a === '--violations' && argv[i + 1] === n);
    let before = 0;
    for (const a of argv.slice(0, Math.max(at, 0))) if (a === inputs[before]) before++;
    return { list: true, listEvents: undefined, inputs: [...inputs.slice(0, before), n, ...inputs.slice(before)] };
  }
  const listEvents = n === undefined || n === true ? undefined : Number(n);
  if (listEvents !== undefined && !(Number.isSafeInteger(listEvents) && listEvents >= 0))
    throw new UserError(`--violations ${n}: expected how many events to list per vCPU (an integer ≥ 0)`);
  return { list: n !== undefined, listEvents, inputs };
}

/** Registers `kvmtrace merge`. */
export function register(program: Command): void {
  mergeInputOptions(
    program
      .command('merge')
      .summary('merge host and guest traces into one validated timeline')
      .description(
        'Merge a host trace and guest traces onto one timeline in host TSC cycles, validate the mapping (every guest ' +
          'event must fall inside a guest-mode window of its vCPU), and write Chrome trace JSON or a Perfetto trace ' +
          '(.pftrace; both open in Perfetto UI) and/or a text timeline. Give bundle folders written by `kvmtrace capture`, ' +
          'or trace files (the host first) and the mapping flags. Inputs: ftrace text, trace.dat, systemtap output. ' +
          "Times in the text and the JSON count from the merge's first event (its host TSC is stated in each).",
      )
      .argument('[inputs...]', INPUTS_HELP),
  )
    .option('-o, --output <file>', 'write Chrome trace event JSON, or a Perfetto trace when FILE ends in .pftrace')
    .addOption(new Option('--format <format>', 'format of -o (default: from the extension)').choices(['json', 'perfetto']))
    .option('--text <file>', 'write the text timeline (- for stdout; the default when no output is given)')
    .option('--summary <file.json>', 'write the validation summary as JSON')
    .option('--check', 'exit with status 1 when validation fails (a timeline out of time order always exits 1)')
    .option(QUIET_FLAG[0], 'print only failures')
    .option(...violationsOption('--summary'))
    .option(
      '--flows <from:to>',
      'in the JSON, draw flow arrows from each FROM event to the TO event it pairs with (same vCPU; see kvmtrace latency --help for the matcher syntax), e.g. guest:marker~kvmsync:host:kvm_pio',
    )
    .action(async (args: string[], o: MergeFlags & { output?: string; format?: string; text?: string; summary?: string; check?: boolean; quiet?: boolean; flows?: string; violations?: string | true }) => {
      if (o.flows && !o.output) throw new UserError('--flows draws arrows in the trace: give -o FILE.json or -o FILE.pftrace');
      const perfetto = o.format === 'perfetto' || (o.format === undefined && /\.pftrace$/i.test(o.output ?? ''));
      const flows = o.flows ? flowHook(o.flows) : undefined;
      const { list, listEvents, inputs } = violationsFlag(o.violations, args, process.argv);
      const req = mergeRequest(inputs, o);
      const prepared = await prepareMerge({ ...req, listEvents });
      const text = o.text ?? (o.output ? undefined : '-');
      const prog = progress('merging', o.quiet);
      const out = perfetto ? { perfetto: o.output } : { json: o.output };
      const report = await exportMerge(prepared, { ...out, text, summary: o.summary, flows: flows?.make, onProgress: prog.tick });
      prog.done();
      const fc = flows?.counts();
      if (fc) process.stderr.write(`flows: ${fc.paired} arrow(s) drawn; ${fc.superseded + fc.openAtEnd} of ${fc.fromEvents} FROM events found no TO event\n`);
      printMergeReport(prepared, report, { quiet: o.quiet, violations: list, outputs: [o.output, text !== '-' ? text : undefined, o.summary] });
      if (mergeExitStatus(report, o.check) !== 0) process.exitCode = 1;
    });
}
