/**
 * Framing: a trace is a sequence of `Trace.packet` fields (field 1, length-delimited), so packets
 * can be appended to the output one by one as they are made.
 */
import type { AtomicWriter } from '../atomic-writer.js';
import { PACKET, TRACE_PACKET } from './fields.js';
import { LEN, ProtoBuf, varintSize } from './proto-writer.js';

/** Bytes kept free before a packet for its field key and length (1 + a varint of at most 5 bytes). */
const HEAD_ROOM = 6;

/** Writes packets to the output, each built in one reusable buffer. */
export class PacketOut {
  /** The packet being built (write its fields, then {@link emit}); it starts at HEAD_ROOM. */
  readonly pb = new ProtoBuf(1 << 16);
  /** Bytes written so far (for the report). */
  bytes = 0;

  constructor(readonly w: AtomicWriter) {}

  /** Starts a packet: empties the buffer and writes the fields every packet of the machine and sequence carries. */
  start(machineId: number, seq: number): ProtoBuf {
    const pb = this.pb;
    pb.len = HEAD_ROOM;
    if (machineId !== 0) pb.uint(PACKET.machineId, machineId);
    pb.uint(PACKET.trustedPacketSequenceId, seq);
    return pb;
  }

  /** Writes the packet built in {@link pb}: its key and length in the room left before it, then the packet, in one piece. */
  emit(): void {
    this.emitWith(undefined, undefined);
  }

  /** Writes the packet built in {@link pb} followed by `a` and `b` (bytes that belong to the packet's end). */
  emitWith(a: Uint8Array | undefined, b: Uint8Array | undefined): void {
    const pb = this.pb;
    const size = pb.len - HEAD_ROOM + (a?.length ?? 0) + (b?.length ?? 0);
    const at = HEAD_ROOM - 1 - varintSize(size);
    const end = pb.len;
    pb.len = at;
    pb.tag(TRACE_PACKET, LEN);
    pb.varint(size);
    // A range of the reused buffer: no view object per packet.
    this.w.range(pb.buf, at, end);
    if (a) this.w.bytes(a);
    if (b) this.w.bytes(b);
    pb.len = end;
    this.bytes += HEAD_ROOM - at + size;
  }
}
