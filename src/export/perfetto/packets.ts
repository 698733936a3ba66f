/**
 * Framing: a trace is a sequence of `Trace.packet` fields (field 1, length-delimited), so packets
 * can be appended to the output one by one as they are made.
 */
import type { AtomicWriter } from '../atomic-writer.js';
import { PACKET, TRACE_PACKET } from './fields.js';
import { LEN, ProtoBuf } from './proto-writer.js';

/** Writes packets to the output, each built in one reusable buffer. */
export class PacketOut {
  /** The packet being built (write its fields, then {@link emit}). */
  readonly pb = new ProtoBuf(1 << 16);
  private readonly head = new ProtoBuf(32);
  /** Bytes written so far (for the report). */
  bytes = 0;

  constructor(readonly w: AtomicWriter) {}

  /** Starts a packet: empties the buffer and writes the fields every packet of the machine and sequence carries. */
  start(machineId: number, seq: number): ProtoBuf {
    const pb = this.pb;
    pb.reset();
    if (machineId !== 0) pb.uint(PACKET.machineId, machineId);
    pb.uint(PACKET.trustedPacketSequenceId, seq);
    return pb;
  }

  /** Writes the packet built in {@link pb}, followed by `tail` (bytes that belong to the packet's end). */
  emit(...tail: Uint8Array[]): void {
    let size = this.pb.len;
    for (const t of tail) size += t.length;
    const h = this.head;
    h.reset();
    h.tag(TRACE_PACKET, LEN);
    h.varint(size);
    // Ranges of the reused buffers: no view object per packet.
    this.w.range(h.buf, 0, h.len);
    this.w.range(this.pb.buf, 0, this.pb.len);
    for (const t of tail) this.w.bytes(t);
    this.bytes += h.len + size;
  }
}
