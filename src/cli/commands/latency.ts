/**
 * `kvmtrace latency --from <match> --to <match>`: latency statistics between paired events, as
 * netperf's omni test names them.
 */
import type { Command } from 'commander';
import { UserError } from '../../model/errors.js';
import { prepareMerge } from '../../merge/session.js';
import { analyse, needTscKhz } from '../../analysis/run.js';
import { parseMatch } from '../../analysis/match.js';
import { Pairer, parsePairKey } from '../../analysis/pairing.js';
import { buildLatencyReport, histogramText, LATENCY_KEYS, LatencyAnalyzer, latencyKeysText, NETPERF_KEYS, COUNT_KEYS, type LatencyKey } from '../../analysis/latency.js';
import { mergeInputOptions, mergeRequest, type MergeFlags } from './merge.js';
import { printAnalysisWarnings } from './exits.js';

interface LatencyFlags extends MergeFlags {
  from: string;
  to: string;
  key: string;
  k?: string;
  histogram?: boolean;
  json?: boolean;
}

/** The `<match>` syntax, for the help texts. */
export const MATCH_HELP =
  'A <match> is [SIDE:]EVENT[~TEXT][[FIELD=VALUE,…]]:\n' +
  '  SIDE   host, guest (any guest) or guest=NAME; omitted: either side\n' +
  '  EVENT  event name, * as a wildcard (kvm_*); marker = tracing_mark_write/print\n' +
  '  ~TEXT  the event text contains TEXT\n' +
  '  [..]   conditions FIELD=VALUE, FIELD!=VALUE, FIELD~TEXT (all must hold). FIELD is a key=value\n' +
  '         field of the event, or reason (kvm_exit/kvm_userspace_exit), port (kvm_pio), comm, pid,\n' +
  '         cpu, vcpu, text. Numbers compare as numbers (0xe9 = 233).\n' +
  'Examples: guest:marker~kvmsync  host:kvm_exit[reason=HLT]  host:kvm_pio[port=0xe9]';

/** Parses `-k` selectors (comma-separated, repeatable through commas). */
function parseSelectors(k: string | undefined): LatencyKey[] {
  if (!k) return [...NETPERF_KEYS, ...COUNT_KEYS];
  const out: LatencyKey[] = [];
  for (const s of k.split(',').map((x) => x.trim().toUpperCase()).filter(Boolean)) {
    if (!(LATENCY_KEYS as readonly string[]).includes(s)) throw new UserError(`-k ${s}: unknown output selector; choose from ${LATENCY_KEYS.join(', ')}`);
    out.push(s as LatencyKey);
  }
  return out;
}

/** Registers `kvmtrace latency`. */
export function register(program: Command): void {
  mergeInputOptions(
    program
      .command('latency')
      .summary('latency from one kind of event to the next of another (netperf-style statistics)')
      .description(
        'Pair each --from event with the next --to event of the same vCPU (a guest event and the host\n' +
          'thread running that vCPU share a key), on the merged timeline, in either direction, and print\n' +
          "the latencies as netperf's omni output selectors name them, in µs (KEY=VALUE lines like netperf -k).\n" +
          'One --from is pending per key: a second --from before a --to leaves the first unpaired. Unpaired\n' +
          'and unmatched events are counted (UNPAIRED_FROM, UNMATCHED_TO…), never dropped silently.\n\n' +
          MATCH_HELP,
      )
      .argument('[bundles...]', 'capture bundle folders (one host, any number of guests)'),
  )
    .requiredOption('--from <match>', 'the events latencies start at')
    .requiredOption('--to <match>', 'the events latencies end at')
    .option('--key <key>', 'pair by vcpu, cpu (guest CPU), field:NAME (e.g. field:seq) or none', 'vcpu')
    .option('-k <selectors>', `output selectors, comma-separated: ${LATENCY_KEYS.join(',')}`)
    .option('--histogram', "add netperf's decade histogram of the latencies")
    .option('--json', 'print the report as JSON')
    .action(async (bundles: string[], o: LatencyFlags) => {
      const from = parseMatch(o.from, '--from');
      const to = parseMatch(o.to, '--to');
      const key = parsePairKey(o.key);
      const keys = parseSelectors(o.k);
      const prepared = await prepareMerge(mergeRequest(bundles, o));
      const khz = needTscKhz(prepared, 'kvmtrace latency');
      const run = await analyse(prepared, (vt) => new LatencyAnalyzer(new Pairer(from, to, key, vt)));
      const r = buildLatencyReport(run.analyzer, khz, o.key);
      if (o.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else {
        process.stdout.write(latencyKeysText(r, keys));
        if (o.histogram) process.stdout.write('\n' + histogramText(r.histogram, `${o.from} → ${o.to} latencies (µs)`));
      }
      const c = r.counts;
      if (c.paired === 0) process.stderr.write(`warning: no ${o.from} event was followed by a ${o.to} event on the same ${o.key} (${c.fromEvents} from, ${c.toEvents} to events)\n`);
      else if (c.superseded + c.openAtEnd > 0)
        process.stderr.write(`note: ${c.superseded + c.openAtEnd} of ${c.fromEvents} --from events are unpaired (${c.superseded} followed by another --from first, ${c.openAtEnd} still open at the end)\n`);
      printAnalysisWarnings(prepared, run.validation);
    });
}
