/**
 * The one contract of everything that reads the merged columns — validation, the Chrome JSON and
 * text exporters, the analyses, the view's index: `begin` once the timeline is known, `batch` for
 * every batch in timeline order (its columns, and the KVM-run segments starting in it, `mb.kvm`),
 * `end` once after the last, with the validation. runMerge (session.ts) drives them in the order
 * given, validation first; a batch is refilled after every consumer has returned from it.
 */
import type { MergedBatch } from './merged-event.js';
import type { Timeline } from './merge.js';
import type { GuestPlan } from './plan.js';
import type { ValidationResult } from './validate.js';

/** How a merge's run ended, handed to every consumer's `end`. */
export interface MergeDone {
  result: ValidationResult;
  timeline: Timeline;
  /** Events merged. */
  events: number;
}

/**
 * A sync point validation matched: the host's sync exit (kvm_pio on the sync port, or a CPUID
 * exit) at timeline time `hostT` lies inside the mapped bracket of the guest's kvmsync marker at
 * `guestT`, on vCPU `vcpu` of guest source `src`, run by host thread `tid`.
 */
export interface SyncMatch {
  hostT: number;
  guestT: number;
  src: number;
  vcpu: number;
  tid: number;
  kind: 'pio' | 'cpuid';
  seq: number;
}

/** A reader of the merged stream. */
export interface MergeConsumer {
  /** The timeline and each source's clock plan (undefined for the host); before the first batch. */
  begin?(tl: Timeline, plans: (GuestPlan | undefined)[]): void | Promise<void>;
  /** One batch in timeline order; read it (or copy from it) before returning. */
  batch(mb: MergedBatch): void | Promise<void>;
  /** Told each sync point as validation matches it (before the batch holding the marker is handed on). */
  syncPoint?(m: SyncMatch): void;
  /** After the last batch. */
  end?(done: MergeDone): void | Promise<void>;
}
