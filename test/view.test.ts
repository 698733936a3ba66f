/**
 * `kvmtrace view` through a real terminal emulator (@xterm/headless): the screen the view renders is
 * written to a headless xterm of two sizes, keys are sent as a terminal sends them (its onData), and
 * the buffer is read back line by line — what a person would see. Data: the real docA pair and the
 * lts host-only trace (Intel VMX, ../shared/external/masterarbeit).
 */
import xterm from '@xterm/headless';
import { spawn, spawnSync } from 'node:child_process';
import { constants } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { prepareMerge } from '../src/merge/session.js';
import { mergeRequest } from '../src/cli/commands/merge.js';
import { analyse } from '../src/analysis/run.js';
import { IndexBuilder, type TimelineIndex } from '../src/view/timeline-index.js';
import { handleKey, initialState, type ScreenSize, type ViewState } from '../src/view/state.js';
import { renderLines, renderScreen } from '../src/view/render.js';
import { splitKeys } from '../src/view/keys.js';
import { kvmtrace, ROOT } from './helpers/cli.js';
import { DOCA, externalMissing, reference } from './helpers/external.js';
import { expectGolden } from './helpers/golden.js';

/** A headless terminal running the view: keys typed into it drive the view, which redraws. */
class ViewTerminal {
  readonly term: InstanceType<typeof xterm.Terminal>;
  st: ViewState;
  quit = false;
  private pending: Promise<void> = Promise.resolve();

  constructor(
    readonly ix: TimelineIndex,
    readonly cols: number,
    readonly rows: number,
    readonly color = true,
  ) {
    this.term = new xterm.Terminal({ cols, rows, allowProposedApi: true });
    this.st = initialState(ix);
    this.term.onData((data) => {
      for (const k of splitKeys(data)) {
        const next = handleKey(ix, this.st, k, this.size());
        if (next === null) this.quit = true;
        else this.st = next;
      }
      this.draw();
    });
    this.draw();
  }

  size(): ScreenSize {
    return { cols: this.cols, rows: this.rows, color: this.color };
  }

  private draw(): void {
    const screen = renderScreen(this.ix, this.st, this.size());
    this.pending = this.pending.then(() => new Promise<void>((r) => this.term.write(screen, r)));
  }

  /** Types keys as a user would (the terminal reports them through onData). */
  async type(keys: string): Promise<void> {
    this.term.input(keys, true);
    await this.pending;
  }

  /** The screen's lines as text. */
  async lines(): Promise<string[]> {
    await this.pending;
    const b = this.term.buffer.active;
    const out: string[] = [];
    for (let i = 0; i < this.rows; i++) out.push(b.getLine(b.viewportY + i)!.translateToString(true));
    return out;
  }
}

async function buildIndex(o: Parameters<typeof mergeRequest>[1], cap?: number): Promise<TimelineIndex> {
  const p = await prepareMerge(mergeRequest([], o));
  const run = await analyse(p, () => new IndexBuilder(p.tscKhz, p.index, cap));
  return run.analyzer.index;
}

describe.skipIf(externalMissing)('view in a headless terminal', () => {
  if (externalMissing) console.log(`skipped: ${externalMissing}`);
  let docA: TimelineIndex;
  let lts: TimelineIndex;
  const docFlags = (): Parameters<typeof mergeRequest>[1] => ({
    host: [reference('docA-host-trace.dat.report-rawts.txt')],
    guest: [reference('docA-guest-trace-Salamander4.dat.report-rawts.txt')],
    tscOffset: [String(DOCA.tscOffset)],
    vcpuThread: [`0=${DOCA.vcpuThread}`],
    tscKhz: String(DOCA.tscKhz),
  });

  beforeAll(async () => {
    docA = await buildIndex(docFlags());
    lts = await buildIndex({ host: [reference('lts-trace.dat.report-t.txt')], tscOffset: [], vcpuThread: [], tscKhz: String(DOCA.tscKhz) });
  });

  for (const [cols, rows] of [
    [80, 24],
    [132, 40],
  ] as const) {
    it(`docA at ${cols}x${rows}: lanes, axis with units, status line; zoom, pan and jumps change what is seen`, async () => {
      const vt = new ViewTerminal(docA, cols, rows);
      let screen = await vt.lines();
      expect(screen[0]).toMatch(/^kvmtrace view — 4 lane\(s\), 101,750 events — window/);
      // The whole trace, in seconds since the merge's first event (the text and JSON count from it too).
      expect(screen[1]).toMatch(/^since first event +(0(\.0)? s +)?(0\.5|1) s\b/);
      expect(screen[2]).toMatch(/\^/); // the cursor
      // The guest's own vCPU thread first (selected), named after its VM; other VMs' threads after it
      // (no input names their VM: ?), then the guest CPU.
      expect(screen[3]).toMatch(/^>guest vCPU 0 483882/);
      expect(screen[4]).toMatch(/^ \? vCPU 0 453724 /);
      expect(screen[5]).toMatch(/^ \? vCPU 1 453725 /);
      expect(screen[6]).toMatch(/^ guest CPU 0 +\|/);
      // The halted vCPU spends most of its time in the host: its lane is mostly '#'.
      const plot = (l: string): string => l.slice(l.indexOf('|') + 1);
      expect((plot(screen[3]).match(/#/g) ?? []).length).toBeGreaterThan(plot(screen[3]).length * 0.9);
      expect(screen[rows - 2]).toMatch(/^keys: /);
      expect(screen[rows - 1]).toMatch(/^@ -?\d/);
      for (const l of screen) expect(l.length).toBeLessThanOrEqual(cols);

      // Jump to the next exit on the selected lane: the status line names it.
      await vt.type('e');
      screen = await vt.lines();
      expect(screen[rows - 1]).toMatch(/^@ [\d.]+ m?s \| exit [A-Z_]+, [\d.]+ (ns|µs|ms|s) \[/);
      const reason = /exit ([A-Z_]+)/.exec(screen[rows - 1])![1];
      // z zooms onto it: the axis counts to the µs or finer (in the unit of the time since time 0,
      // e.g. 1.417 ms), and the exit's name is written in its lane.
      await vt.type('z');
      screen = await vt.lines();
      expect(screen[1]).toMatch(/\d\.\d{3,} ms|\d (ns|µs)/);
      expect(plot(screen[3])).toContain(reason);
      // Zoom out around the cursor: the exit shrinks to its first letter between guest-mode '='.
      await vt.type('-----');
      screen = await vt.lines();
      expect(plot(screen[3])).toMatch(/=/);
      // n: the next exit of the same kind; the cursor moves forward in time.
      const before = vt.st.cursor;
      await vt.type('n');
      expect(vt.st.cursor).toBeGreaterThan(before);
      expect((await vt.lines())[rows - 1]).toContain(`exit ${reason}`);
      // Down to the guest CPU lane (arrow keys as the terminal encodes them), then pan right.
      await vt.type('\x1b[B\x1b[B\x1b[B');
      screen = await vt.lines();
      expect(screen[6]).toMatch(/^>guest CPU 0/);
      expect(screen[rows - 1]).toMatch(/\| (idle|running \S+.*) \| on guest CPU 0/);
      const t0 = vt.st.t0;
      await vt.type(']');
      expect(vt.st.t0).toBeGreaterThan(t0);
      await vt.type('q');
      expect(vt.quit).toBe(true);
    });
  }

  it('/ finds the next interval or marker by name, on any lane', async () => {
    const vt = new ViewTerminal(docA, 100, 20, false);
    await vt.type('/EPT_MIS');
    expect((await vt.lines())[19]).toMatch(/^find .*: \/EPT_MIS_/);
    await vt.type('\r');
    let status = (await vt.lines())[19];
    expect(status).toMatch(/\| exit EPT_MISCONFIG, /);
    // A task name moves the selection to the guest CPU lane.
    await vt.type('/trace-cmd\r');
    status = (await vt.lines())[19];
    expect(status).toMatch(/\| running trace-cmd-\d+, .* \| on guest CPU 0 *$/);
    expect((await vt.lines())[6]).toMatch(/^>guest CPU 0/);
    await vt.type('/no such thing\r');
    expect((await vt.lines())[19]).toMatch(/^no "no such thing" after the cursor/);
    await vt.type('/x\x1b'); // Esc cancels
    expect(vt.st.prompt).toBeUndefined();
  });

  it('shows what the guest CPU ran: task names in the lane where a task starts', async () => {
    const vt = new ViewTerminal(docA, 132, 40);
    await vt.type('jjj'); // guest CPU 0
    // Find a running task and zoom onto it.
    for (let k = 0; k < 200 && !/running/.test((await vt.lines())[39]); k++) await vt.type('n');
    const status = (await vt.lines())[39];
    const task = /running (\S+)-\d+/.exec(status)![1];
    await vt.type('z');
    const lane = (await vt.lines())[6];
    expect(lane).toContain(task.slice(0, 3));
  });

  it('lts (host only) at both sizes: golden screens', async () => {
    for (const [cols, rows] of [
      [80, 24],
      [132, 40],
    ]) {
      const vt = new ViewTerminal(lts, cols, rows, false);
      await vt.type('e+++++++');
      expectGolden(`view/lts-${cols}x${rows}.txt`, (await vt.lines()).join('\n') + '\n');
    }
  });

  it('docC and salB (host only, ns timelines) at both sizes: golden screens', async () => {
    for (const name of ['docC-host-only-trace', 'salB-host-trace']) {
      const ix = await buildIndex({ host: [reference(`${name}.dat.report-t.txt`)], tscOffset: [], vcpuThread: [] });
      expect(ix.lanes.length).toBe(3);
      for (const [cols, rows] of [
        [80, 24],
        [132, 40],
      ]) {
        const vt = new ViewTerminal(ix, cols, rows, false);
        await vt.type('e++++++');
        const screen = await vt.lines();
        expect(screen[rows - 1]).toMatch(/\| exit [A-Z_]+, /);
        expectGolden(`view/${name}-${cols}x${rows}.txt`, screen.join('\n') + '\n');
      }
    }
  });

  it('docA golden screens at both sizes (whole trace, and zoomed onto an exit)', async () => {
    for (const [cols, rows] of [
      [80, 24],
      [132, 40],
    ]) {
      const vt = new ViewTerminal(docA, cols, rows, false);
      expectGolden(`view/docA-${cols}x${rows}-fit.txt`, (await vt.lines()).join('\n') + '\n');
      await vt.type('eeee++++++++++');
      expectGolden(`view/docA-${cols}x${rows}-zoom.txt`, (await vt.lines()).join('\n') + '\n');
    }
  });

  it('colour only adds: the coloured screen reads the same as the plain one', async () => {
    const a = new ViewTerminal(docA, 100, 20, true);
    const b = new ViewTerminal(docA, 100, 20, false);
    await a.type('e++++');
    await b.type('e++++');
    expect(await a.lines()).toEqual(await b.lines());
    expect(renderScreen(docA, a.st, a.size())).toMatch(/\x1b\[31m#/); // in the host: red
    expect(renderLines(docA, a.st, a.size()).join('')).not.toMatch(/\x1b/);
  });

  it('bounded memory: a small lane cap coarsens the index and says so', async () => {
    const small = await buildIndex(docFlags(), 1024);
    for (const l of small.lanes) expect(l.n).toBeLessThanOrEqual(1024);
    const big = small.lanes.find((l) => l.coarsening > 1)!;
    expect(big).toBeDefined();
    expect(small.bytes()).toBeLessThan(docA.bytes());
    const vt = new ViewTerminal(small, 100, 20, false);
    const i = small.lanes.indexOf(big);
    await vt.type('j'.repeat(i) + 'e');
    const screen = await vt.lines();
    expect(screen[3 + i]).toContain(`×${big.coarsening}`);
    expect(screen[19]).toMatch(/index coarsened/);
  });

  it('the kvm-pvm capture (KVM_RUN only) at both sizes: user-space spans named, markers, goldens', async () => {
    const dir = new URL('../fixtures/pvm-1vcpu/', import.meta.url).pathname;
    const p = await prepareMerge(mergeRequest([dir + 'host', dir + 'guest'], { tscOffset: [], vcpuThread: [] }));
    const pvm = (await analyse(p, () => new IndexBuilder(p.tscKhz, p.index))).analyzer.index;
    for (const [cols, rows] of [
      [80, 24],
      [132, 40],
    ] as const) {
      const vt = new ViewTerminal(pvm, cols, rows, false);
      let screen = await vt.lines();
      expect(screen[3]).toMatch(/^>kvmlab vCPU 0 26619/);
      expect(screen[4]).toMatch(/^ kvmlab CPU 0 +\|/);
      // m: the first marker (a sync point); the guest lane shows it as '*' once zoomed in.
      // (The guest script's own markers come first; the sync points' follow.)
      for (let k = 0; k < 10 && !/marker "kvmsync/.test((await vt.lines())[rows - 1]); k++) await vt.type('m');
      expect(vt.st.cursor).toBeGreaterThan(pvm.first);
      await vt.type('+'.repeat(16));
      screen = await vt.lines();
      expect(screen[4].slice(screen[4].indexOf('|'))).toContain('*');
      expect(screen[rows - 1]).toMatch(/marker "kvmsync seq=0 cpu=0 kind=pio/);
      // The sync points can also be found by name.
      const before = vt.st.cursor;
      await vt.type('/kind=pio\r');
      expect(vt.st.cursor).toBeGreaterThan(before);
      expect((await vt.lines())[rows - 1]).toMatch(/marker "kvmsync seq=1 cpu=0 kind=pio/);
      await vt.type('k'.repeat(4));
      // e on the vCPU lane: the next return to user space, named by kvm_userspace_exit.
      await vt.type('e');
      screen = await vt.lines();
      expect(screen[rows - 1]).toMatch(/\| in user space: KVM_EXIT_IO, [\d.]+ (ns|µs|ms) \[/);
      expectGolden(`view/pvm-1vcpu-${cols}x${rows}.txt`, screen.join('\n') + '\n');
    }
  });

  it('too small a terminal says so', () => {
    expect(renderLines(docA, initialState(docA), { cols: 30, rows: 6, color: false })[0]).toMatch(/terminal too small/);
  });

  it('the CLI prints a screen without a terminal (--print, --at, --span, --keys)', () => {
    const f = docFlags();
    const r = kvmtrace([
      'view', '--host', f.host![0], '--guest', f.guest![0], '--tsc-offset', f.tscOffset![0], '--vcpu-thread', f.vcpuThread![0], '--tsc-khz', f.tscKhz!,
      '--print', '--size', '100x14', '--at', '4800us', '--span', '40us', '--keys', 'j',
    ]);
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(14);
    expect(lines[0]).toMatch(/window 4\.780\d+ ms \+ 40\.00 µs/);
    expect(lines[4]).toMatch(/^>\? vCPU 0 453724/);
    expect(lines[13]).toMatch(/^@ 4\.800\d+ ms \| .* \| on \? vCPU 0 453724 CPU 0\/KVM$/);
    const bad = kvmtrace(['view', '--host', f.host![0], '--print', '--at', 'soon']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--at soon: expected a time like/);
  });
});

// The CLI driving a real pseudo-terminal: util-linux `script` gives it one (no native pty module here).
const scriptMissing = spawnSync('script', ['--version']).status === 0 ? undefined : 'util-linux script(1) is not installed';

/** `kvmtrace view` of the bundled capture on a 100x20 pseudo-terminal: its output so far, and a way to wait for some. */
function viewOnPty(): { child: ReturnType<typeof spawn>; out: () => string; seen: (re: RegExp) => Promise<void>; pid: Promise<number> } {
  const dir = join(ROOT, 'fixtures', 'pvm-1vcpu');
  // `exec`: the shell's pid, printed first, becomes the pid of kvmtrace.
  const cmd = `stty cols 100 rows 20; echo "pid $$"; exec ${process.execPath} ${join(ROOT, 'dist', 'cli', 'main.js')} view ${dir}/host ${dir}/guest`;
  const child = spawn('script', ['-qfec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => (out += d));
  const seen = (re: RegExp): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re}; got ${JSON.stringify(out.slice(-400))}`)), 60_000);
      const check = (): void => {
        if (re.test(out)) {
          clearTimeout(timer);
          child.stdout!.off('data', check);
          resolve();
        }
      };
      child.stdout!.on('data', check);
      check();
    });
  const pid = seen(/pid (\d+)/).then(() => Number(/pid (\d+)/.exec(out)![1]));
  return { child, out: () => out, seen, pid };
}

describe.skipIf(scriptMissing)('kvmtrace view on a pseudo-terminal', () => {
  if (scriptMissing) console.log(`skipped: ${scriptMissing}`);
  it('enters the alternate screen, answers keys, and restores the terminal on q', async () => {
    const { child, out, seen } = viewOnPty();
    await seen(/keys: /);
    child.stdin!.write('/kind=pio\r');
    await seen(/marker "kvmsync seq=0/);
    const upTo = out().length;
    child.stdin!.write('q');
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(code).toBe(0);
    expect(out()).toContain('\x1b[?1049h'); // alternate screen on …
    expect(out().slice(upTo)).toContain('\x1b[?1049l'); // … and off again after q
    // What the person saw last, replayed into a terminal emulator of the same size.
    const term = new xterm.Terminal({ cols: 100, rows: 20, allowProposedApi: true });
    await new Promise<void>((r) => term.write(out().slice(0, upTo), r));
    const b = term.buffer.active;
    const lines = Array.from({ length: 20 }, (_, i) => b.getLine(b.viewportY + i)!.translateToString(true));
    expect(lines[0]).toMatch(/^kvmtrace view — 2 lane\(s\)/);
    expect(lines[3]).toMatch(/^ kvmlab vCPU 0 26619 CPU 0/);
    expect(lines[4]).toMatch(/^>kvmlab CPU 0 .*\*/); // the search selected the marker's lane
    expect(lines[19]).toMatch(/^@ [\d.]+ s \| marker "kvmsync seq=0 cpu=0 kind=pio/);
  }, 90_000);

  it.each(['SIGINT', 'SIGTERM', 'SIGHUP'] as const)('restores the terminal when %s ends it (main screen, cursor shown), then dies of the signal', async (sig) => {
    const { child, out, seen, pid } = viewOnPty();
    await seen(/keys: /);
    const upTo = out().length;
    expect(out()).toContain('\x1b[?1049h\x1b[?25l'); // alternate screen, cursor hidden
    process.kill(await pid, sig);
    const code = await new Promise<number | null>((r) => child.on('close', r));
    const after = out().slice(upTo);
    expect(after).toContain('\x1b[?25h'); // cursor shown again
    expect(after).toContain('\x1b[?1049l'); // back on the main screen
    expect(after).not.toMatch(/\n\s+at /); // no stack trace
    // script(1) -e passes on the status of its child, which died of the signal: 128 + its number.
    expect(code).toBe(128 + constants.signals[sig]);
  }, 90_000);
});
