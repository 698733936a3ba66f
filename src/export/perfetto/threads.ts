/**
 * Thread names and thread groups of one machine, sent as ProcessTree packets as tasks appear.
 *
 * Perfetto's importer names a thread from a ProcessTree `Thread {tid, tgid, name}` and files it
 * under process `tgid`. The group comes from the trace's TGID column, or for a vCPU thread from
 * the capture's QEMU pid; when neither says, the thread is filed as its own process (tgid = tid),
 * since a named thread needs a process there and the trace does not tell which one. The first
 * decision for a tid holds for the whole trace, so every packet (and the vCPU track's
 * ThreadDescriptor) agrees on it. Memory grows with the distinct tasks, not the events.
 */
import { PACKET, PROCESS_TREE, PT_THREAD } from './fields.js';
import type { PacketOut } from './packets.js';

/** The threads of one machine. */
export class MachineThreads {
  private readonly tgids = new Map<number, number>();
  private readonly names = new Map<number, string>();
  /** Threads named since the last {@link flush}. */
  private fresh: number[] = [];
  private freshNs: number | bigint = 0;
  private lastTid = -1;
  private lastComm = '';

  constructor(
    private readonly out: PacketOut,
    readonly machineId: number,
    private readonly seq: number,
    /** Known thread groups (vCPU thread → QEMU pid). */
    private readonly known: Map<number, number> = new Map(),
  ) {}

  /** The thread group of `tid` (decided on first use: `tgid` when ≥ 0, the known group, else tid). */
  tgidOf(tid: number, tgid = -1): number {
    let g = this.tgids.get(tid);
    if (g === undefined) this.tgids.set(tid, (g = tgid >= 0 ? tgid : (this.known.get(tid) ?? tid)));
    return g;
  }

  /** The name a thread was last seen with. */
  nameOf(tid: number): string | undefined {
    return this.names.get(tid);
  }

  /** Notes that thread `tid` (group `tgid`, -1 unknown) ran as `comm` at `ns`. */
  see(tid: number, tgid: number, comm: string, ns: number | bigint): void {
    // Consecutive events mostly come from one task: skip the map then.
    if (tid === this.lastTid && comm === this.lastComm) return;
    this.lastTid = tid;
    this.lastComm = comm;
    if (tid <= 0 || this.names.get(tid) === comm || comm === '<...>' || comm === '') return;
    this.names.set(tid, comm);
    this.tgidOf(tid, tgid);
    if (!this.fresh.length) this.freshNs = ns;
    this.fresh.push(tid);
  }

  /** Sends the threads named since the last flush as one ProcessTree packet. */
  flush(): void {
    if (!this.fresh.length) return;
    const pb = this.out.start(this.machineId, this.seq);
    if (typeof this.freshNs === 'number') pb.uint(PACKET.timestamp, this.freshNs);
    else pb.big(PACKET.timestamp, this.freshNs);
    const tree = pb.begin(PACKET.processTree);
    for (const tid of this.fresh) {
      const m = pb.begin(PROCESS_TREE.threads);
      pb.int(PT_THREAD.tid, tid);
      pb.string(PT_THREAD.name, this.names.get(tid)!);
      pb.int(PT_THREAD.tgid, this.tgids.get(tid)!);
      pb.end(m);
    }
    pb.end(tree);
    this.out.emit();
    this.fresh = [];
  }
}
