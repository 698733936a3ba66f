/**
 * The host's event blocks kept from the index pass, so that the merge need not read the host file
 * again: while they fit a fixed budget (HOST_KEEP_BYTES), the index pass keeps every block it reads
 * and the merge replays them as its host sources; past the budget it keeps none and the merge reads
 * the host a second time. Memory stays bounded either way (the budget, or nothing). Text files
 * larger than half the budget are not kept from the start (their blocks would only be dropped
 * later, having raised the peak).
 */
import type { EventBlock } from '../model/event-block.js';
import type { TraceEvent } from '../model/event.js';
import type { OpenSource } from '../merge/source.js';

/** Bytes of host blocks the index pass may keep for the merge. */
export const HOST_KEEP_BYTES = 16 << 20;

/** Bytes per event of a block beyond its text: typed-array columns, and the bodies the index reads as text. */
const TEXT_EVENT_BYTES = 112;
/** Bytes per event of a block made from event objects (trace.dat, stap). */
const OBJECT_EVENT_BYTES = 240;

/** Host blocks kept, per host source, while they fit the budget. */
export class RetainedHost {
  private bytes = 0;
  private readonly seen = new Set<ArrayBufferLike>();
  private kept: EventBlock[][] | undefined;

  constructor(
    sources: number,
    private readonly budget = HOST_KEEP_BYTES,
  ) {
    this.kept = budget > 0 ? Array.from({ length: sources }, () => []) : undefined;
  }

  /** True when every block of every host source was kept. */
  get complete(): boolean {
    return this.kept !== undefined;
  }

  /** Passes source i's blocks through, keeping them while the budget lasts. */
  async *wrap(i: number, blocks: AsyncIterable<EventBlock>): AsyncGenerator<EventBlock> {
    for await (const b of blocks) {
      if (this.kept) this.keep(i, b);
      yield b;
    }
  }

  private keep(i: number, b: EventBlock): void {
    let n = b.n * (b.bodyText ? OBJECT_EVENT_BYTES : TEXT_EVENT_BYTES);
    // Chunks of text are shared by the blocks cut from them: count each once.
    if (!this.seen.has(b.bytes.buffer)) (this.seen.add(b.bytes.buffer), (n += b.bytes.byteLength));
    this.bytes += n;
    if (this.bytes > this.budget) {
      this.kept = undefined;
      this.seen.clear();
    } else this.kept![i].push(b);
  }

  /** Host source i replayed from its kept blocks, as opened by the index pass (its header and stats). */
  replay(i: number, opened: OpenSource): OpenSource {
    const blocks = this.kept![i];
    const each = async function* (): AsyncGenerator<EventBlock> {
      yield* blocks;
    };
    const events = async function* (): AsyncGenerator<TraceEvent[]> {
      for (const b of blocks) yield b.events();
    };
    return { ...opened, blocks: each(), batches: events(), close: async () => {} };
  }
}
