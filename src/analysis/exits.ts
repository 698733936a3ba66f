/**
 * VM exits per vCPU thread, like `perf kvm stat report`: each kvm_exit is paired with the next
 * kvm_entry on the same host thread, and the time between them (the host handling the exit) is
 * one sample of the exit's reason. The time from kvm_entry to kvm_exit is guest mode. One pass;
 * per thread a few numbers plus one Float64Array of exit durations per reason (8 bytes an exit).
 *
 * Hosts without kvm_entry/kvm_exit (kvm-pvm, see shared/kvm-lab.md) get a {@link KvmRunAnalyzer}
 * summary instead, from the same pass.
 */
import type { MergedEvent } from '../merge/merged-event.js';
import { exitReasonText, nameNumericReason, reasonVendor, type ExitVendor } from './exit-reasons.js';
import { SampleBuffer } from './samples.js';

const UNKNOWN = 0;
const GUEST = 1;
const HOST = 2;

/** Exit bookkeeping of one host thread. Times are timeline cycles. */
export class ThreadExits {
  state = UNKNOWN;
  /** Time of the last kvm_entry (in guest) or kvm_exit (in host). */
  since = 0;
  reason = '';
  guestCycles = 0;
  hostCycles = 0;
  exits = 0;
  guestWindows = 0;
  /** The thread was in guest mode when the trace began (its first event is a kvm_exit). */
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

/** The per-thread exit state machine, fed every host kvm_entry/kvm_exit in timeline order. */
export class ExitsAnalyzer {
  readonly threads = new Map<number, ThreadExits>();
  private vendorVotes = { 'intel-vmx': 0, 'amd-svm': 0, unknown: 0 };

  /** Feeds one batch of merged events. */
  handle(batch: MergedEvent[]): void {
    for (const m of batch) {
      if (m.vcpu >= 0) continue;
      const name = m.ev.name;
      if (name !== 'kvm_exit' && name !== 'kvm_entry') continue;
      let th = this.threads.get(m.ev.pid);
      if (!th) this.threads.set(m.ev.pid, (th = new ThreadExits(m.ev.pid)));
      if (name === 'kvm_exit') this.exit(th, m.t, exitReasonText(m.ev.body));
      else this.entry(th, m.t);
    }
  }

  private exit(th: ThreadExits, t: number, reason: string): void {
    if (th.state === GUEST) {
      th.guestCycles += t - th.since;
      th.guestWindows++;
    } else if (th.state === HOST) th.exitWithoutEntry++;
    else th.startedInGuest = true;
    th.state = HOST;
    th.since = t;
    th.reason = reason;
    if (this.vendorVotes.unknown + this.vendorVotes['amd-svm'] + this.vendorVotes['intel-vmx'] < 1000) this.vendorVotes[reasonVendor(reason)]++;
  }

  private entry(th: ThreadExits, t: number): void {
    if (th.state === HOST) {
      const d = t - th.since;
      th.hostCycles += d;
      th.exits++;
      let b = th.byReason.get(th.reason);
      if (!b) th.byReason.set(th.reason, (b = new SampleBuffer()));
      b.push(d);
    } else if (th.state === GUEST) th.entryWithoutExit++;
    th.state = GUEST;
    th.since = t;
  }

  /** The vendor whose reason names the trace uses. */
  vendor(): ExitVendor {
    const v = this.vendorVotes;
    return v['intel-vmx'] > v['amd-svm'] ? 'intel-vmx' : v['amd-svm'] > 0 ? 'amd-svm' : 'unknown';
  }

  /** Closes the pass: marks windows still open at the end, names numeric reasons by vendor. */
  finish(): void {
    const vendor = this.vendor();
    for (const th of this.threads.values()) {
      th.openAtEnd = th.state === HOST ? 'host' : th.state === GUEST ? 'guest' : undefined;
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
