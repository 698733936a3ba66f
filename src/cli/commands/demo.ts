/**
 * `kvmtrace demo`: the main job on the bundled real capture (fixtures/pvm-1vcpu, recorded on a
 * kvm-pvm host with a 1-vCPU QEMU/KVM guest), so a newcomer sees a merged, validated timeline
 * with one command.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../../model/errors.js';
import { prepareMerge } from '../../merge/session.js';
import { exportMerge } from '../../export/export-merge.js';
import { mergeExitStatus, printMergeReport } from '../report.js';

/** The bundled capture, relative to the installed package (dist/cli/commands → package root). */
export const DEMO_CAPTURE = resolve(import.meta.dirname, '..', '..', '..', 'fixtures', 'pvm-1vcpu');

/** How this kvmtrace was started, as a command to type: `kvmtrace` when run by that name, else `node <path of main.js>`. */
export function selfCommand(argv1 = process.argv[1] ?? 'kvmtrace', cwd = process.cwd()): string {
  if (basename(argv1) === 'kvmtrace') return 'kvmtrace';
  const rel = relative(cwd, argv1);
  return `node ${rel.length < argv1.length && !rel.startsWith('..') ? rel : argv1}`;
}

/** A path as short as it can be said from `cwd`. */
function short(path: string, cwd = process.cwd()): string {
  const rel = relative(cwd, path);
  return rel.length < path.length ? rel : path;
}

/** What to run next on the bundled capture: the view, the exits, the clock check, as ready-to-run command lines. */
export function nextSteps(self: string, host: string, guest: string): string {
  const pair = `${short(host)} ${short(guest)}`;
  const lines: [string, string][] = [
    [`${self} view ${pair}`, 'the terminal timeline (q quits)'],
    [`${self} exits ${pair}`, 'VM exits per reason and vCPU'],
    [`${self} check ${pair}`, 'how far the clock mapping can be trusted'],
  ];
  const w = Math.max(...lines.map(([c]) => c.length));
  return 'next, on the same capture:\n' + lines.map(([c, what]) => `  ${c.padEnd(w)}  # ${what}\n`).join('');
}

/** Registers `kvmtrace demo`. */
export function register(program: Command): void {
  program
    .command('demo')
    .summary('merge the bundled real capture and show the result')
    .description(
      'Merge the capture bundled with kvmtrace (a QEMU/KVM guest and its host, traced on a real machine; see ' +
        'fixtures/pvm-1vcpu/README.md), validate it, and write a Perfetto trace, a Chrome JSON file and a text timeline; ' +
        'then say which commands to try next on it.',
    )
    .option('-o, --out-dir <dir>', 'where to write the outputs', 'kvmtrace-demo')
    .option('-q, --quiet', 'print only failures')
    .action(async (o: { outDir: string; quiet?: boolean }) => {
      const host = join(DEMO_CAPTURE, 'host');
      const guest = join(DEMO_CAPTURE, 'guest');
      if (!existsSync(host) || !existsSync(guest)) throw new UserError(`the bundled capture is missing at ${DEMO_CAPTURE}`);
      mkdirSync(o.outDir, { recursive: true });
      const out = { perfetto: join(o.outDir, 'demo.pftrace'), json: join(o.outDir, 'demo.json'), text: join(o.outDir, 'demo.txt'), summary: join(o.outDir, 'summary.json') };
      const say = (s: string): void => void (o.quiet || process.stderr.write(s));
      say(`kvmtrace demo: merging ${host} and ${guest}\n`);
      const prepared = await prepareMerge({ bundles: [host, guest], hostFiles: [], guestFiles: [], overrides: {} });
      const report = await exportMerge(prepared, out);
      printMergeReport(prepared, report, { quiet: o.quiet, outputs: [out.perfetto, out.json, out.text, out.summary] });
      say(`open ${out.perfetto} at ui.perfetto.dev (Open trace file): host and guest as two machines; ${out.json} opens there too, and in chrome://tracing\n`);
      say(nextSteps(selfCommand(), host, guest));
      if (mergeExitStatus(report, true) !== 0) process.exitCode = 1;
    });
}
