/**
 * The KVM-run tracker driven by crafted input sequences (one host thread's inputs in the merge's
 * order, each at a time and a place), and what validation's cursor makes of its segments. Each case
 * is a situation seen, or possible, in real host traces: a missed switch-in, an unload before any
 * load, a double entry, an exit without entry, a trace that starts in guest mode, a thread that
 * migrates while switched out.
 */
import { describe, expect, it } from 'vitest';
import { BOUND, ENTER, KvmRunTracker, LEAVE, OWN, RUN_OFF, RUN_ON, SCHED_IN, SCHED_OUT, USER_EXIT, type TrackerMode } from '../src/kvm/tracker.js';
import { ThreadSegments } from '../src/kvm/segments.js';
import { INSIDE, NOT_CHECKABLE, OUTSIDE, SegmentCursor } from '../src/kvm/cursor.js';
import { STATE_NAMES } from '../src/kvm/states.js';

type Step = [code: number, t: number, arg?: number];

/** Runs a thread's inputs (places in input order, 2 apart) from a trace that starts at t = 0; returns its segments. */
function run(mode: TrackerMode, steps: Step[]): { segs: ThreadSegments; list: string[]; missed: number } {
  const segs = new ThreadSegments();
  const tr = new KvmRunTracker(mode, 0, 0, segs);
  // Inputs of one event share its place (an event's own-event proof and what it is).
  let ord = 0;
  let lastT = -1;
  for (const [code, t, arg] of steps) {
    if (t !== lastT || (code !== RUN_ON && code !== RUN_OFF && code !== USER_EXIT)) ord += 2;
    lastT = t;
    tr.step(code, t, ord, arg ?? -1);
  }
  tr.finish();
  const list: string[] = [];
  for (let i = 0; i < segs.n; i++) list.push(`${STATE_NAMES[segs.state(i)]}@${segs.time(i)}${segs.arg(i) >= 0 ? `(${segs.arg(i)})` : ''}`);
  return { segs, list, missed: tr.missedSwitchIns };
}

/** What the validator's cursor says at each time: inside, outside by N cycles, or not checkable. */
function judge(segs: ThreadSegments, times: number[]): string[] {
  const c = new SegmentCursor(segs);
  return times.map((t) => {
    const v = c.judge(t);
    return v === INSIDE ? 'in' : v === NOT_CHECKABLE ? 'nc' : v === OUTSIDE ? `out ${c.distance}` : '?';
  });
}

describe('kvm-run hosts (KVM_RUN on a CPU)', () => {
  it('a missed switch-in: switched out, woken, then seen running its own event with no switch-in traced', () => {
    const r = run('kvm-run', [
      [OWN, 10], [RUN_ON, 10], // load: KVM_RUN starts, on a CPU
      [SCHED_OUT, 20], // switched out
      [BOUND, 30], // sched_wakeup of the thread: it could run from here
      [OWN, 40], // its own event: it ran, though no sched_switch to it was traced
      [OWN, 50], [RUN_OFF, 50],
    ]);
    expect(r.list).toEqual(['out@0', 'guest@10', 'preempted@20', 'not checkable (switch-in not traced)@30', 'guest@40', 'userspace@50']);
    expect(r.missed).toBe(1);
    // Before the bound a guest event is a violation (measured to the nearest moment inside); after it, not checkable.
    expect(judge(r.segs, [5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55])).toEqual(['out 5', 'in', 'in', 'in', 'out 5', 'nc', 'nc', 'in', 'in', 'in', 'out 5']);
  });

  it('a second switch-out with no switch-in between is a missed switch-in too', () => {
    const r = run('kvm-run', [[OWN, 10], [RUN_ON, 10], [SCHED_OUT, 20], [SCHED_OUT, 30], [SCHED_IN, 50], [OWN, 60], [RUN_OFF, 60]]);
    // No lower bound after the first switch-out: all of it up to the second is not checkable; then
    // switched out again until the traced switch-in.
    expect(r.list).toEqual(['out@0', 'guest@10', 'not checkable (switch-in not traced)@20', 'preempted@30', 'guest@50', 'userspace@60']);
    expect(r.missed).toBe(1);
    expect(judge(r.segs, [25, 40, 55])).toEqual(['nc', 'out 10', 'in']);
  });

  it('a switch-in traced: the whole switched-out stretch is PREEMPTED, and no switch-in is missing', () => {
    const r = run('kvm-run', [[OWN, 10], [RUN_ON, 10], [SCHED_OUT, 20], [BOUND, 25], [SCHED_IN, 30], [OWN, 40], [RUN_OFF, 40]]);
    expect(r.list).toEqual(['out@0', 'guest@10', 'preempted@20', 'guest@30', 'userspace@40']);
    expect(r.missed).toBe(0);
  });

  it('a thread that migrates while switched out: sched_migrate_task is a later lower bound', () => {
    // The wakeup (BOUND at 25) and the migration to another CPU (BOUND at 35), then it runs there (OWN at 45).
    const r = run('kvm-run', [[OWN, 10], [RUN_ON, 10], [SCHED_OUT, 20], [BOUND, 25], [BOUND, 35], [OWN, 45], [OWN, 50], [RUN_OFF, 50]]);
    expect(r.list).toEqual(['out@0', 'guest@10', 'preempted@20', 'not checkable (switch-in not traced)@35', 'guest@45', 'userspace@50']);
    expect(judge(r.segs, [30, 40])).toEqual(['out 10', 'nc']);
  });

  it('an unload before any load: the thread was inside KVM_RUN since the trace began', () => {
    const r = run('kvm-run', [
      [SCHED_OUT, 5], [SCHED_IN, 8], // switched out and back before the first run evidence
      [OWN, 10], [RUN_OFF, 10],
      [OWN, 12], [USER_EXIT, 12, 0], // kvm_userspace_exit names the user-space stretch
      [OWN, 20], [RUN_ON, 20],
    ]);
    expect(r.list).toEqual(['guest@0', 'preempted@5', 'guest@8', 'userspace@10', 'userspace@12(0)', 'guest@20']);
    expect(judge(r.segs, [1, 6, 10, 11, 15])).toEqual(['in', 'out 1', 'in', 'out 1', 'out 5']);
  });

  it('a switch-out that never ends stays PREEMPTED; no run evidence at all leaves everything not checkable', () => {
    expect(run('kvm-run', [[OWN, 10], [RUN_ON, 10], [SCHED_OUT, 20]]).list).toEqual(['out@0', 'guest@10', 'preempted@20']);
    const none = run('kvm-run', [[SCHED_OUT, 20], [SCHED_IN, 30], [OWN, 40]]);
    expect(none.list).toEqual(['unknown@0']);
    expect(judge(none.segs, [25, 35])).toEqual(['nc', 'nc']);
  });
});

describe('entry-exit hosts (kvm_entry → kvm_exit)', () => {
  it('a double entry (the kvm_exit between was lost): each entry starts a window, guest mode throughout', () => {
    const r = run('entry-exit', [[ENTER, 10, 0], [ENTER, 20, 0], [LEAVE, 30, 7], [ENTER, 40, 0]]);
    expect(r.list).toEqual(['out@0', 'guest@10(0)', 'guest@20(0)', 'exit@30(7)', 'guest@40(0)']);
    // Events before the first entry were out of guest mode (a run cannot nest); the exit's own cycle is inside.
    expect(judge(r.segs, [4, 15, 25, 30, 33, 40])).toEqual(['out 6', 'in', 'in', 'in', 'out 3', 'in']);
  });

  it('an exit without an entry (the kvm_entry was lost): the host stretch goes on, a new exit starts', () => {
    const r = run('entry-exit', [[ENTER, 10, 1], [LEAVE, 20, 3], [LEAVE, 30, 4], [ENTER, 50, 1]]);
    expect(r.list).toEqual(['out@0', 'guest@10(1)', 'exit@20(3)', 'exit@30(4)', 'guest@50(1)']);
    expect(judge(r.segs, [25, 35, 45])).toEqual(['out 5', 'out 15', 'out 5']);
  });

  it('a trace that starts in guest mode: the first evidence is an exit, so the thread was in guest mode since the trace began', () => {
    const r = run('entry-exit', [[LEAVE, 10, 2], [ENTER, 20, 0]]);
    expect(r.list).toEqual(['guest@0', 'exit@10(2)', 'guest@20(0)']);
    expect(judge(r.segs, [0, 5, 10, 15, 20])).toEqual(['in', 'in', 'in', 'out 5', 'in']);
  });

  it('ignores sched and own events: only kvm_entry and kvm_exit say what runs', () => {
    const r = run('entry-exit', [[ENTER, 10, 0], [SCHED_OUT, 15], [OWN, 18], [LEAVE, 20, 5]]);
    expect(r.list).toEqual(['out@0', 'guest@10(0)', 'exit@20(5)']);
    expect(r.missed).toBe(0);
  });
});
