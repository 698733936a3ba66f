/**
 * VM exits per vCPU thread, like `perf kvm stat report`: each kvm_exit is paired with the next
 * kvm_entry on the same host thread, and the time between them (the host handling the exit) is
 * one sample of the exit's reason; guest mode is the time running guest code. Both come from the
 * KVM-run tracker's segments replayed in the merge (kvm/replay.ts) — the states validation judged
 * by — so a thread's guest time is exactly the length of its GUEST segments within the host trace.
 * One pass; per thread a few numbers plus one Float64Array of exit durations per reason (8 bytes
 * an exit).
 *
 * Hosts without kvm_entry/kvm_exit (kvm-pvm, see shared/kvm-lab.md) get a {@link KvmRunAnalyzer}
 * summary instead, from the same pass.
 */
import type { HostIndex } from '../host/index.js';
import type { MergedBatch } from '../merge/merged-event.js';
import type { MergeConsumer } from '../merge/consumer.js';
import { EXIT, GUEST } from '../kvm/states.js';
import { nameNumericReason, reasonVendor, type ExitVendor } from './exit-reasons.js';
import { SampleBuffer } from './samples.js';

const NONE = 0;

/** Exit bookkeeping of one host thread. Times are timeline cycles. */
export class ThreadExits {
  /** The tracker state of the thread's current segment (GUEST or EXIT; NONE before its first). */
  state = NONE;
  /** Start of the current segment. */
  since = 0;
  reason = '';
  guestCycles = 0;
  hostCycles = 0;
  exits = 0;
  guestWindows = 0;
  /** The thread was in guest mode when the trace began (its first run evidence is a kvm_exit). */
  startedInGuest = false;
  /** kvm_exit followed by kvm_exit (the entry between them is missing: lost events). */
  exitWithoutEntry = 0;
  /** kvm_entry followed by kvm_entry. */
  entryWithoutExit = 0;
  /** 'host' when the trace ends between a kvm_exit and its kvm_entry, 'guest' when in guest mode. */
  openAtEnd: 'host' | 'guest' | undefined;
  readonly byReason = new Map<string, SampleBuffer>();
  constructor(readonly tid: number) {}
}

/** The per-thread exit bookkeeping, fed the tracker's segments of entry-exit hosts in timeline order. */
export class ExitsAnalyzer implements MergeConsumer {
  readonly threads = new Map<number, ThreadExits>();
  private vendorVotes = { 'intel-vmx': 0, 'amd-svm': 0, unknown: 0 };

  constructor(private readonly index: HostIndex | undefined) {}

  /** Feeds one merged batch (its segment starts). */
  batch(mb: MergedBatch): void {
    const tr = mb.kvm;
    if (!tr || this.index?.kind !== 'entry-exit') return;
    for (let i = 0; i < tr.n; i++) {
      const row = tr.row[i];
      const tid = tr.tid[i];
      const state = tr.state[i];
      let th = this.threads.get(tid);
      if (!th) {
        // Threads appear with their first window or exit (not with the stretch before their first evidence).
        if (state !== GUEST && state !== EXIT) continue;
        this.threads.set(tid, (th = new ThreadExits(tid)));
        const blk = mb.blk[row];
        const r = mb.row[row];
        th.startedInGuest = state === GUEST && !(blk.pid[r] === tid && blk.nameOf(r) === 'kvm_entry');
      }
      this.segment(th, mb.t[row], state, tr.arg[i]);
    }
  }

  private segment(th: ThreadExits, t: number, state: number, arg: number): void {
    if (th.state === GUEST) {
      th.guestCycles += t - th.since;
      if (state === GUEST) th.entryWithoutExit++;
      else th.guestWindows++;
    } else if (th.state === EXIT) {
      if (state === GUEST) {
        const d = t - th.since;
        th.hostCycles += d;
        th.exits++;
        let b = th.byReason.get(th.reason);
        if (!b) th.byReason.set(th.reason, (b = new SampleBuffer()));
        b.push(d);
      } else if (state === EXIT) th.exitWithoutEntry++;
    }
    th.state = state;
    th.since = t;
    if (state === EXIT) {
      th.reason = this.index!.names[arg];
      if (this.vendorVotes.unknown + this.vendorVotes['amd-svm'] + this.vendorVotes['intel-vmx'] < 1000) this.vendorVotes[reasonVendor(th.reason)]++;
    }
  }

  /** The vendor whose reason names the trace uses. */
  vendor(): ExitVendor {
    const v = this.vendorVotes;
    return v['intel-vmx'] > v['amd-svm'] ? 'intel-vmx' : v['amd-svm'] > 0 ? 'amd-svm' : 'unknown';
  }

  /**
   * Closes the pass: guest mode open at the end counts up to the host trace's last event (as far as
   * validation accepts guest events); an exit open at the end is not a sample. Names numeric reasons by vendor.
   */
  end(): void {
    const vendor = this.vendor();
    const end = this.index?.lastT ?? 0;
    for (const th of this.threads.values()) {
      if (th.state === GUEST) th.guestCycles += end - th.since;
      th.openAtEnd = th.state === EXIT ? 'host' : th.state === GUEST ? 'guest' : undefined;
      for (const [r, b] of [...th.byReason]) {
        const named = nameNumericReason(r, vendor);
        if (named === r) continue;
        th.byReason.delete(r);
        const into = th.byReason.get(named);
        if (!into) th.byReason.set(named, b);
        else for (const v of b.view()) into.push(v);
      }
    }
  }
}
