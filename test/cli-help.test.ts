/**
 * The help texts and usage errors of every command, as a user meets them: `--help` through the
 * built CLI at two terminal widths (no line longer than the width, no default said twice), the
 * texts themselves from the program (one capitalisation style, no hard line breaks for commander
 * to wrap around), an unknown option as one line with a pointer to --help, trace-cmd habits
 * explained, and `-q` wherever a report is printed.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { Command } from 'commander';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../src/cli/program.js';
import { commandPath } from '../src/cli/help.js';
import { GUEST_SCRIPT } from '../src/capture/native.js';
import { kvmtrace } from './helpers/cli.js';

/** Every command below `c`, depth first. */
function allCommands(c: Command): Command[] {
  return c.commands.flatMap((s) => [s, ...allCommands(s)]);
}

let program: Command;
let paths: string[][];
beforeAll(async () => {
  program = await buildProgram();
  paths = [[], ...allCommands(program).map((c) => commandPath(c).split(' ').slice(1))];
});

describe('--help of every command', () => {
  it('fits the terminal width given and says each default once', () => {
    expect(paths.length).toBeGreaterThan(15);
    for (const width of [80, 100]) {
      for (const p of paths) {
        const r = kvmtrace([...p, '--help'], { env: { COLUMNS: String(width) } });
        const what = `kvmtrace ${p.join(' ')} --help at ${width} columns`;
        expect(r.status, what).toBe(0);
        expect(r.stderr, what).toBe('');
        for (const line of r.stdout.split('\n')) expect([...line].length, `${what}: ${line}`).toBeLessThanOrEqual(width);
        // An option's entry (its first line and the indented lines under it) says "(default" once at most.
        const entries = r.stdout.split(/\n(?=  \S)/);
        for (const e of entries) expect(e.match(/\(default/g)?.length ?? 0, `${what}: ${e}`).toBeLessThanOrEqual(1);
        expect(r.stdout, what).not.toMatch(/default: \[\]|default: ""|\(default [^:]/);
      }
    }
  });

  it('uses one style: summaries and option texts start lower-case, descriptions are sentences, no hard line breaks', () => {
    for (const c of [program, ...allCommands(program)]) {
      const name = commandPath(c);
      const description = c.description();
      expect(description, name).not.toContain('\n');
      expect(description, name).toMatch(/^[A-Z].*[.)]$/s);
      if (c !== program) {
        expect(c.summary(), `${name} has a summary for its parent's list`).not.toBe('');
        expect(c.summary(), name).toMatch(/^[^A-Z]|^[A-Z]{2}/);
        expect(c.summary(), name).not.toMatch(/\.$/);
      }
      for (const o of c.options) {
        expect(o.description, `${name} ${o.flags}`).not.toContain('\n');
        // Lower-case, or a word in capitals (TSC, QEMU's).
        expect(o.description, `${name} ${o.flags}`).toMatch(/^[^A-Z]|^[A-Z]{2}/);
      }
      for (const a of c.registeredArguments) expect(a.description, `${name} <${a.name()}>`).toMatch(/^[^A-Z\n][^\n]*$/);
    }
  });

  it('-q is there on every command that prints a report', () => {
    const reporting = ['demo', 'merge', 'check', 'exits', 'latency', 'view', 'capture host', 'bench overhead'];
    for (const p of reporting) {
      const c = allCommands(program).find((x) => commandPath(x) === `kvmtrace ${p}`)!;
      expect(c, p).toBeDefined();
      expect(c.options.some((o) => o.short === '-q' && o.long === '--quiet'), p).toBe(true);
    }
  });
});

describe('usage errors', () => {
  it('an unknown option is one line naming the command, with a pointer to its --help, and status 2', () => {
    for (const p of paths.filter((x) => x.length)) {
      const r = kvmtrace([...p, '--no-such-option']);
      const cmd = `kvmtrace ${p.join(' ')}`;
      expect(r.status, cmd).toBe(2);
      expect(r.stdout, cmd).toBe('');
      // (Commander checks required options first: `capture host` says --vm is missing, in one line all the same.)
      const said = r.stderr.startsWith(`${cmd}: required option`) ? /required option '[^']+' not specified/ : /unknown option '--no-such-option'/;
      expect(r.stderr, cmd).toMatch(new RegExp(`^${cmd}: ${said.source}; see ${cmd} --help\n$`));
    }
    const top = kvmtrace(['mrege']);
    expect(top.status).toBe(2);
    expect(top.stderr).toBe("kvmtrace: unknown command 'mrege' (did you mean merge?); see kvmtrace --help\n");
    const missing = kvmtrace(['check']);
    expect(missing.stderr).toBe("kvmtrace check: missing required argument 'host'; see kvmtrace check --help\n");
  });

  it("trace-cmd's --ts-offset gets the nearest option and a line saying how their meanings differ", () => {
    const r = kvmtrace(['merge', '--ts-offset', '5', 'fixtures/pvm-1vcpu/host']);
    expect(r.status).toBe(2);
    const [first, hint, ...rest] = r.stderr.split('\n');
    expect(first).toBe("kvmtrace merge: unknown option '--ts-offset' (did you mean --tsc-offset?); see kvmtrace merge --help");
    expect(hint).toMatch(/^hint: trace-cmd report's --ts-offset N adds N to the timestamps .*kvmtrace's --tsc-offset N is the guest's TSC offset as KVM applies it \(guest TSC = host TSC \+ N/);
    expect(rest).toEqual(['']);
    // Given as --ts-offset=N too; and -i, trace-cmd's input flag, on a merge.
    expect(kvmtrace(['exits', '--ts-offset=5']).stderr).toMatch(/\nhint: trace-cmd report's --ts-offset/);
    expect(kvmtrace(['merge', '-i', 'x.dat']).stderr).toMatch(/^kvmtrace merge: unknown option '-i'; .*\nhint: trace-cmd report -i FILE names an input; kvmtrace takes its inputs as arguments/);
  });
});

describe('the guest script says how it is used', () => {
  it('-h prints the whole usage on stdout and exits 0, also when piped into sh; a wrong option prints it on stderr with status 1', () => {
    const h = spawnSync('sh', [GUEST_SCRIPT, '-h'], { encoding: 'utf8' });
    expect(h.status).toBe(0);
    expect(h.stdout).toMatch(/^usage: kvmtrace-guest\.sh \[options\]/);
    // The last sentence is whole.
    expect(h.stdout).toMatch(/Exit status: 0 bundle written; 1 usage; 2 cannot capture .*with\nCOMMAND, its non-zero status is reported but the bundle is still written\.\n$/s);
    const script = kvmtrace(['guest-script']).stdout;
    const piped = spawnSync('sh', ['-s', '--', '-h'], { input: script, encoding: 'utf8' });
    expect(piped.status).toBe(0);
    expect(piped.stdout).toBe(h.stdout);
    const bad = spawnSync('sh', [GUEST_SCRIPT, '-Z'], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain(h.stdout);
    // kvmtrace guest-script -h is kvmtrace's help, and says how to get the script's own.
    const k = kvmtrace(['guest-script', '-h']);
    expect(k.status).toBe(0);
    expect(k.stdout.replace(/\s+/g, ' ')).toContain('`sh capture.sh -h` lists its options.');
  });
});

describe('report reads its file as trace-cmd report does', () => {
  const dat = join('fixtures', 'tracedat', 'v7-kvm.dat');
  it('-i FILE is the same as FILE; two files are refused with a pointer to merge', () => {
    const a = kvmtrace(['report', '-t', dat]);
    const b = kvmtrace(['report', '-t', '-i', dat]);
    expect(a.status).toBe(0);
    expect(b.status).toBe(0);
    expect(b.stdout).toBe(a.stdout);
    expect(a.stdout.split('\n').length).toBeGreaterThan(100);
    const two = kvmtrace(['report', '-i', dat, dat]);
    expect(two.status).toBe(2);
    expect(two.stderr).toMatch(/^kvmtrace: report prints one trace\.dat, and was given 2 .*use kvmtrace merge HOST GUEST…\n$/);
  });
});
