/**
 * `kvmtrace exits`: VM exits per reason and per vCPU thread (like `perf kvm stat report`).
 */
import type { Command } from 'commander';
import { UserError } from '../../model/errors.js';
import { prepareMerge } from '../../merge/session.js';
import { analyse, needTscKhz } from '../../analysis/run.js';
import { ExitsAnalyzer } from '../../analysis/exits.js';
import { KvmRunAnalyzer } from '../../analysis/kvm-run.js';
import { buildExitsReport, exitsJson, exitsText, SORT_KEYS, type ExitsFilter, type SortKey } from '../../analysis/exits-report.js';
import { INPUTS_HELP, mergeInputOptions, mergeRequest } from './merge.js';
import type { VcpuThreads } from '../../analysis/vcpu-threads.js';
import { vmLabel } from '../../host/vms.js';
import { analysisOptions, printAnalysisWarnings, vmChoice, type AnalysisFlags } from '../analysis-flags.js';
import type { MergedBatch } from '../../merge/merged-event.js';

interface ExitsFlags extends AnalysisFlags {
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

/** Refuses a --vcpu or --thread that names no vCPU thread of this merge (of the --vm chosen), listing the ones there are. */
function checkFilter(filter: ExitsFilter, vt: VcpuThreads): void {
  const inVm = (tid: number): boolean => !filter.vm || filter.vm.hostThread(tid);
  const threads = [...vt.byTid.values()].filter((t) => inVm(t.tid)).sort((a, b) => a.vcpu - b.vcpu || a.tid - b.tid);
  const of = filter.vm ? ` of VM ${vmLabel(filter.vm.vm)}` : '';
  const list = threads.length ? threads.map((t) => `${t.vcpu >= 0 ? `vCPU ${t.vcpu}` : 'vCPU ?'} on thread ${t.tid} (VM ${vt.vmLabel(t.tid)})`).join(', ') : 'none';
  if (filter.vcpu !== undefined && !threads.some((t) => t.vcpu === filter.vcpu))
    throw new UserError(`--vcpu ${filter.vcpu}: no host thread${of} runs vCPU ${filter.vcpu} in these traces; there are: ${list}`);
  if (filter.tid !== undefined && !threads.some((t) => t.tid === filter.tid))
    throw new UserError(`--thread ${filter.tid}: thread ${filter.tid} runs no vCPU${of} in these traces; there are: ${list}`);
}

/** Registers `kvmtrace exits`. */
export function register(program: Command): void {
  analysisOptions(
    mergeInputOptions(
      program
        .command('exits')
        .summary('VM exits per reason and per vCPU: count, time, min/mean/p50/p99/max')
        .description(
          'Pair each kvm_exit with the next kvm_entry on the same host vCPU thread and report, per exit reason, the count, ' +
            '% of exits, total time in the host, % of time, and min / mean / p50 / p99 / max in ns; then, per vCPU thread ' +
            'and labelled with its VM, the time in guest mode vs. in the host. Reasons are named as the host kernel printed ' +
            'them (Intel VMX: HLT, EPT_MISCONFIG…; AMD SVM: hlt, npf, msr…). On a host that runs several VMs the reason table ' +
            'sums all of them unless --vm picks one. Takes the same inputs as `kvmtrace merge`. On hosts without ' +
            'kvm_exit/kvm_entry (kvm-pvm) it says so and summarises KVM_RUN spans and userspace exits instead.',
        )
        .argument('[inputs...]', INPUTS_HELP),
    ),
  )
    .option('--vcpu <n>', 'only the host threads that run vCPU n')
    .option('--thread <tid>', 'only host thread tid')
    .option('--by <what>', 'reason (one table) or vcpu (a table per vCPU thread)', 'reason')
    .option('--sort <key>', `sort reasons by ${SORT_KEYS.join(', ')}`, 'count')
    .option('--json', 'print the report as JSON')
    .action(async (inputs: string[], o: ExitsFlags) => {
      if (!(SORT_KEYS as readonly string[]).includes(o.sort)) throw new UserError(`--sort ${o.sort}: expected one of ${SORT_KEYS.join(', ')}`);
      if (o.by !== 'reason' && o.by !== 'vcpu') throw new UserError(`--by ${o.by}: expected reason or vcpu`);
      const vcpu = int(o.vcpu, '--vcpu');
      const tid = int(o.thread, '--thread');
      const prepared = await prepareMerge(mergeRequest(inputs, o));
      const khz = needTscKhz(prepared, 'kvmtrace exits');
      const filter: ExitsFilter = { vm: vmChoice(prepared, o), vcpu, tid };
      const run = await analyse(prepared, () => {
        const ex = new ExitsAnalyzer(prepared.index);
        const kr = new KvmRunAnalyzer(prepared.index);
        return { ex, kr, batch: (b: MergedBatch) => (ex.batch(b), kr.batch(b)), end: () => (ex.end(), kr.end()) };
      });
      checkFilter(filter, run.vcpuThreads);
      const report = buildExitsReport(run.analyzer.ex, run.analyzer.kr, run.vcpuThreads, khz, { filter, sort: o.sort as SortKey, tscKhzFrom: prepared.tscKhzFrom });
      process.stdout.write(o.json ? exitsJson(report) : exitsText(report, { by: o.by }));
      printAnalysisWarnings(prepared, run.validation, o);
    });
}
