/**
 * `kvmtrace demo`: the main job on the bundled real capture (fixtures/pvm-1vcpu, recorded on a
 * kvm-pvm host with a 1-vCPU QEMU/KVM guest), so a newcomer sees a merged, validated timeline
 * with one command.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../../model/errors.js';
import { prepareMerge } from '../../merge/session.js';
import { exportMerge } from '../../export/export-merge.js';
import { mergeExitStatus, printMergeReport } from '../report.js';

/** The bundled capture, relative to the installed package (dist/cli/commands → package root). */
export const DEMO_CAPTURE = resolve(import.meta.dirname, '..', '..', '..', 'fixtures', 'pvm-1vcpu');

/** Registers `kvmtrace demo`. */
export function register(program: Command): void {
  program
    .command('demo')
    .summary('merge the bundled real capture and show the result')
    .description(
      'Merge the capture bundled with kvmtrace (a QEMU/KVM guest and its host, traced on a real machine;\n' +
        'see fixtures/pvm-1vcpu/README.md), validate it, and write a Perfetto trace, a Chrome JSON file and a text timeline.',
    )
    .option('-o, --out-dir <dir>', 'where to write the outputs', 'kvmtrace-demo')
    .action(async (o: { outDir: string }) => {
      const host = join(DEMO_CAPTURE, 'host');
      const guest = join(DEMO_CAPTURE, 'guest');
      if (!existsSync(host) || !existsSync(guest)) throw new UserError(`the bundled capture is missing at ${DEMO_CAPTURE}`);
      mkdirSync(o.outDir, { recursive: true });
      const out = { perfetto: join(o.outDir, 'demo.pftrace'), json: join(o.outDir, 'demo.json'), text: join(o.outDir, 'demo.txt'), summary: join(o.outDir, 'summary.json') };
      process.stderr.write(`kvmtrace demo: merging ${host} and ${guest}\n`);
      const prepared = await prepareMerge({ bundles: [host, guest], hostFiles: [], guestFiles: [], overrides: {} });
      const report = await exportMerge(prepared, out);
      printMergeReport(prepared, report, { outputs: [out.perfetto, out.json, out.text, out.summary] });
      process.stderr.write(`open ${out.perfetto} at ui.perfetto.dev (Open trace file): host and guest as two machines; ${out.json} opens there too, and in chrome://tracing\n`);
      if (mergeExitStatus(report, true) !== 0) process.exitCode = 1;
    });
}
