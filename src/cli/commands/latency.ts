/**
 * `kvmtrace latency --from <match> --to <match>`: latency statistics between paired events, as
 * netperf's omni test names them.
 */
import { Help, type Command } from 'commander';
import { UserError } from '../../model/errors.js';
import { prepareMerge } from '../../merge/session.js';
import { analyse, needTscKhz } from '../../analysis/run.js';
import { parseMatch } from '../../analysis/match.js';
import { Pairer, parsePairKey } from '../../analysis/pairing.js';
import { buildLatencyReport, histogramText, LATENCY_KEYS, LatencyAnalyzer, latencyKeysText, NETPERF_KEYS, COUNT_KEYS, type LatencyKey } from '../../analysis/latency.js';
import { INPUTS_HELP, mergeInputOptions, mergeRequest } from './merge.js';
import { analysisOptions, printAnalysisWarnings, vmChoice, type AnalysisFlags } from '../analysis-flags.js';
import { eventsOfVm } from '../../analysis/vm-select.js';
import { vmLabel } from '../../host/vms.js';
import { helpWidth } from '../help.js';

interface LatencyFlags extends AnalysisFlags {
  from: string;
  to: string;
  key: string;
  k?: string;
  histogram?: boolean;
  json?: boolean;
}

/** The `<match>` syntax, for the help texts: what each part is. */
const MATCH_PARTS: [string, string][] = [
  ['SIDE', 'host, guest (any guest) or guest=NAME; omitted: either side'],
  ['EVENT', 'event name, * as a wildcard (kvm_*); marker = tracing_mark_write/print'],
  ['~TEXT', 'the event text contains TEXT'],
  [
    '[..]',
    'conditions FIELD=VALUE, FIELD!=VALUE, FIELD~TEXT (all must hold). FIELD is a key=value field of the event, or reason ' +
      '(kvm_exit/kvm_userspace_exit), port (kvm_pio), comm, pid, cpu, vcpu, text. Numbers compare as numbers (0xe9 = 233).',
  ],
];

/** The `<match>` syntax as help text, wrapped to `width` with the descriptions indented (commander's own item layout). */
export function matchHelp(width = helpWidth()): string {
  const h = new Help();
  h.helpWidth = width;
  const termW = Math.max(...MATCH_PARTS.map(([t]) => t.length));
  return (
    'A <match> is [SIDE:]EVENT[~TEXT][[FIELD=VALUE,…]]:\n' +
    MATCH_PARTS.map(([t, d]) => h.formatItem(t, termW, d, h)).join('\n') +
    '\n' +
    h.boxWrap('Examples: guest:marker~kvmsync, host:kvm_exit[reason=HLT], host:kvm_pio[port=0xe9]', width) +
    '\n'
  );
}

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
  analysisOptions(
    mergeInputOptions(
      program
        .command('latency')
        .summary('latency from one kind of event to the next of another (netperf-style statistics)')
        .description(
          'Pair each --from event with the next --to event of the same vCPU (a guest event and the host thread running ' +
            'that vCPU share a key), on the merged timeline, in either direction, and print the latencies as netperf\'s ' +
            'omni output selectors name them, in µs (KEY=VALUE lines like netperf -k). One --from is pending per key: a ' +
            'second --from before a --to leaves the first unpaired. Unpaired and unmatched events are counted ' +
            '(UNPAIRED_FROM, UNMATCHED_TO…), never dropped silently. With --vm, only the events of that VM count: its ' +
            "guests' events and the host events of its threads. The <match> syntax is below.",
        )
        .argument('[inputs...]', INPUTS_HELP),
    ),
  )
    .requiredOption('--from <match>', 'the events latencies start at')
    .requiredOption('--to <match>', 'the events latencies end at')
    .option('--key <key>', 'pair by vcpu, cpu (guest CPU), field:NAME (e.g. field:seq) or none', 'vcpu')
    .option('-k <selectors>', `output selectors, comma-separated: ${LATENCY_KEYS.join(', ')}`)
    .option('--histogram', "add netperf's decade histogram of the latencies")
    .option('--json', 'print the report as JSON')
    .addHelpText('after', () => '\n' + matchHelp())
    .action(async (inputs: string[], o: LatencyFlags) => {
      const from = parseMatch(o.from, '--from');
      const to = parseMatch(o.to, '--to');
      const key = parsePairKey(o.key);
      const keys = parseSelectors(o.k);
      const prepared = await prepareMerge(mergeRequest(inputs, o));
      const khz = needTscKhz(prepared, 'kvmtrace latency');
      const sel = vmChoice(prepared, o);
      const run = await analyse(prepared, (vt) => new LatencyAnalyzer(new Pairer(from, to, key, vt), sel && eventsOfVm(sel, vt)));
      const r = buildLatencyReport(run.analyzer, khz, o.key, sel ? vmLabel(sel.vm) : null);
      if (o.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else {
        process.stdout.write(latencyKeysText(r, keys));
        if (o.histogram) process.stdout.write('\n' + histogramText(r.histogram, `${o.from} → ${o.to} latencies (µs)`));
      }
      const c = r.counts;
      const of = sel ? ` of VM ${vmLabel(sel.vm)}` : '';
      if (c.paired === 0) process.stderr.write(`warning: no ${o.from} event${of} was followed by a ${o.to} event on the same ${o.key} (${c.fromEvents} from, ${c.toEvents} to events)\n`);
      else if (!o.quiet && c.superseded + c.openAtEnd > 0)
        process.stderr.write(`note: ${c.superseded + c.openAtEnd} of ${c.fromEvents} --from events are unpaired (${c.superseded} followed by another --from first, ${c.openAtEnd} still open at the end)\n`);
      printAnalysisWarnings(prepared, run.validation, o);
    });
}
