/**
 * `kvmtrace exits`: VM exits per reason and per vCPU thread (like `perf kvm stat report`).
 */
import type { Command } from 'commander';
import { UserError } from '../../model/errors.js';
import { prepareMerge } from '../../merge/session.js';
import { analyse, needTscKhz } from '../../analysis/run.js';
import { ExitsAnalyzer } from '../../analysis/exits.js';
import { KvmRunAnalyzer } from '../../analysis/kvm-run.js';
import { buildExitsReport, exitsJson, exitsText, SORT_KEYS, type SortKey } from '../../analysis/exits-report.js';
import { mergeInputOptions, mergeRequest, type MergeFlags } from './merge.js';
import type { PreparedMerge } from '../../merge/session.js';
import type { ValidationResult } from '../../merge/validate.js';
import type { VcpuThreads } from '../../analysis/vcpu-threads.js';
import type { MergedBatch } from '../../merge/merged-event.js';

interface ExitsFlags extends MergeFlags {
  vcpu?: string;
  thread?: string;
  by: string;
  sort: string;
  json?: boolean;
}

const int = (v: string | undefined, flag: string): number | undefined => {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UserError(`${flag} ${v}: expected a non-negative integer`);
  return Number(v);
};

/** Refuses a --vcpu or --thread that names no vCPU thread of this merge, listing the ones there are. */
function checkFilter(filter: { vcpu?: number; tid?: number }, vt: VcpuThreads): void {
  const threads = [...vt.byTid.values()].sort((a, b) => a.vcpu - b.vcpu || a.tid - b.tid);
  const list = threads.length ? threads.map((t) => `${t.vcpu >= 0 ? `vCPU ${t.vcpu}` : 'vCPU ?'} on thread ${t.tid}`).join(', ') : 'none';
  if (filter.vcpu !== undefined && !threads.some((t) => t.vcpu === filter.vcpu))
    throw new UserError(`--vcpu ${filter.vcpu}: vCPU ${filter.vcpu} is not among the VM's vCPUs in these traces (${list})`);
  if (filter.tid !== undefined && !threads.some((t) => t.tid === filter.tid))
    throw new UserError(`--thread ${filter.tid}: thread ${filter.tid} runs no vCPU in these traces (${list})`);
}

/** Prints diagnostics and validation failures of the merge behind an analysis. */
export function printAnalysisWarnings(p: PreparedMerge, v: ValidationResult): void {
  if (p.diags.count) process.stderr.write(p.diags.summary(3) + '\n');
  if (!v.ok)
    process.stderr.write(
      `kvmtrace: warning: the merged timeline FAILED validation (${v.failures.length} failure(s), e.g. ${v.failures[0] ?? '?'}) — run kvmtrace merge for details; guest/host pairs may be wrong\n`,
    );
}

/** Registers `kvmtrace exits`. */
export function register(program: Command): void {
  mergeInputOptions(
    program
      .command('exits')
      .summary('VM exits per reason and per vCPU: count, time, min/mean/p50/p99/max')
      .description(
        'Pair each kvm_exit with the next kvm_entry on the same host vCPU thread and report, per exit reason,\n' +
          'the count, % of exits, total time in the host, % of time, and min / mean / p50 / p99 / max in ns;\n' +
          'then, per vCPU thread, the time in guest mode vs. in the host. Reasons are named as the host\n' +
          "kernel printed them (Intel VMX: HLT, EPT_MISCONFIG…; AMD SVM: hlt, npf, msr…). Takes the same inputs\n" +
          'as `kvmtrace merge`. On hosts without kvm_exit/kvm_entry (kvm-pvm) it says so and summarises KVM_RUN\n' +
          'spans and userspace exits instead.',
      )
      .argument('[bundles...]', 'capture bundle folders (one host, any number of guests)'),
  )
    .option('--vcpu <n>', 'only the host threads that run vCPU n')
    .option('--thread <tid>', 'only host thread tid')
    .option('--by <what>', 'reason (one table) or vcpu (a table per vCPU thread)', 'reason')
    .option('--sort <key>', `sort reasons by ${SORT_KEYS.join('|')}`, 'count')
    .option('--json', 'print the report as JSON')
    .action(async (bundles: string[], o: ExitsFlags) => {
      if (!(SORT_KEYS as readonly string[]).includes(o.sort)) throw new UserError(`--sort ${o.sort}: expected one of ${SORT_KEYS.join(', ')}`);
      if (o.by !== 'reason' && o.by !== 'vcpu') throw new UserError(`--by ${o.by}: expected reason or vcpu`);
      const filter = { vcpu: int(o.vcpu, '--vcpu'), tid: int(o.thread, '--thread') };
      const prepared = await prepareMerge(mergeRequest(bundles, o));
      const khz = needTscKhz(prepared, 'kvmtrace exits');
      const run = await analyse(prepared, () => {
        const ex = new ExitsAnalyzer(prepared.index);
        const kr = new KvmRunAnalyzer(prepared.index);
        return { ex, kr, batch: (b: MergedBatch) => (ex.batch(b), kr.batch(b)), end: () => (ex.end(), kr.end()) };
      });
      checkFilter(filter, run.vcpuThreads);
      const report = buildExitsReport(run.analyzer.ex, run.analyzer.kr, run.vcpuThreads, khz, { filter, sort: o.sort as SortKey, tscKhzFrom: prepared.tscKhzFrom });
      process.stdout.write(o.json ? exitsJson(report) : exitsText(report, { by: o.by }));
      printAnalysisWarnings(prepared, run.validation);
    });
}
