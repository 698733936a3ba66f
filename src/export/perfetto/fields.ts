/**
 * Field numbers of the Perfetto trace messages kvmtrace writes: facts from Perfetto's public
 * `.proto` files (protos/perfetto/trace/…, as of v58), named message by message. Only the subset
 * used is listed; test/data/perfetto-subset.proto declares the same subset for the tests' decoder.
 */

/** trace.proto: Trace. */
export const TRACE_PACKET = 1;

/** trace_packet.proto: TracePacket. */
export const PACKET = {
  ftraceEvents: 1,
  processTree: 2,
  timestamp: 8,
  trustedPacketSequenceId: 10,
  trackEvent: 11,
  internedData: 12,
  sequenceFlags: 13,
  systemInfo: 45,
  trackDescriptor: 60,
  firstPacketOnSequence: 87,
  machineId: 98,
  traceAttributes: 126,
} as const;

/** TracePacket.SequenceFlags. */
export const SEQ_INCREMENTAL_STATE_CLEARED = 1;
export const SEQ_NEEDS_INCREMENTAL_STATE = 2;

/** common/system_info.proto: SystemInfo and Utsname. */
export const SYSTEM_INFO = { utsname: 1, numCpus: 8, machineName: 17 } as const;
export const UTSNAME = { sysname: 1, version: 2, release: 3, machine: 4 } as const;

/** common/trace_attributes.proto: TraceAttributes, Attribute. */
export const ATTRIBUTES = { attribute: 1 } as const;
export const ATTRIBUTE = { key: 1, longValue: 2, stringValue: 3 } as const;

/** ps/process_tree.proto: ProcessTree, ProcessTree.Thread. */
export const PROCESS_TREE = { threads: 2 } as const;
export const PT_THREAD = { tid: 1, name: 2, tgid: 3 } as const;

/** ftrace/ftrace_event_bundle.proto: FtraceEventBundle and its GenericEventDescriptor. */
export const BUNDLE = { cpu: 1, event: 2, ftraceClock: 5, ftraceTimestamp: 6, bootTimestamp: 7, genericEventDescriptors: 11 } as const;
/** FtraceClock.FTRACE_CLOCK_GLOBAL: the importer maps it to boot time through the bundle's timestamp pair. */
export const FTRACE_CLOCK_GLOBAL = 2;
export const GENERIC_DESCRIPTOR = { fieldId: 1, eventDescriptor: 2, groupName: 3 } as const;

/** ftrace/ftrace_event.proto: FtraceEvent common fields and the typed events' ids. */
export const FTRACE_EVENT = { timestamp: 1, pid: 2 } as const;
export const EVENT_ID = {
  print: 3,
  sched_switch: 4,
  cpu_idle: 13,
  sched_wakeup: 17,
  sched_waking: 20,
  softirq_entry: 24,
  softirq_exit: 25,
  softirq_raise: 26,
  irq_handler_entry: 36,
  irq_handler_exit: 37,
  sched_wakeup_new: 114,
  task_newtask: 235,
  task_rename: 236,
  sched_process_exit: 238,
  sched_process_fork: 239,
  sched_process_free: 240,
} as const;
/** FtraceEvent ids from here on are self-described by a GenericEventDescriptor (Perfetto v50+). */
export const FIRST_GENERIC_ID = 65536;

/** ftrace/sched.proto, task.proto, irq.proto, power.proto, ftrace.proto: the typed events' fields. */
export const SCHED_SWITCH = { prevComm: 1, prevPid: 2, prevPrio: 3, prevState: 4, nextComm: 5, nextPid: 6, nextPrio: 7 } as const;
/** SchedWakeup, SchedWaking and SchedWakeupNew share these. */
export const SCHED_WAKE = { comm: 1, pid: 2, prio: 3, success: 4, targetCpu: 5 } as const;
export const SCHED_PROCESS_EXIT = { comm: 1, pid: 2, tgid: 3, prio: 4 } as const;
export const SCHED_PROCESS_FREE = { comm: 1, pid: 2, prio: 3 } as const;
export const SCHED_PROCESS_FORK = { parentComm: 1, parentPid: 2, childComm: 3, childPid: 4 } as const;
export const TASK_NEWTASK = { pid: 1, comm: 2, cloneFlags: 3, oomScoreAdj: 4 } as const;
export const TASK_RENAME = { pid: 1, oldcomm: 2, newcomm: 3, oomScoreAdj: 4 } as const;
export const IRQ_HANDLER_ENTRY = { irq: 1, name: 2 } as const;
export const IRQ_HANDLER_EXIT = { irq: 1, ret: 2 } as const;
/** SoftirqEntry, SoftirqExit and SoftirqRaise. */
export const SOFTIRQ = { vec: 1 } as const;
export const CPU_IDLE = { state: 1, cpuId: 2 } as const;
export const PRINT = { buf: 2 } as const;

/** google/protobuf/descriptor.proto: DescriptorProto, FieldDescriptorProto and its types. */
export const DESCRIPTOR = { name: 1, field: 2 } as const;
export const FIELD_DESCRIPTOR = { name: 1, number: 3, label: 4, type: 5 } as const;
export const LABEL_OPTIONAL = 1;
export const TYPE_INT64 = 3;
export const TYPE_UINT64 = 4;
export const TYPE_FIXED64 = 6;
export const TYPE_STRING = 9;

/** track_event/track_descriptor.proto, thread_descriptor.proto. */
export const TRACK_DESCRIPTOR = { uuid: 1, name: 2, thread: 4, parentUuid: 5, childOrdering: 11, siblingOrderRank: 12, description: 14 } as const;
export const THREAD_DESCRIPTOR = { pid: 1, tid: 2, threadName: 5 } as const;
/** TrackDescriptor.ChildTracksOrdering.EXPLICIT: children ordered by sibling_order_rank. */
export const CHILD_ORDERING_EXPLICIT = 3;

/** track_event/track_event.proto: TrackEvent, its Type, EventName; debug_annotation.proto. */
export const TRACK_EVENT = {
  debugAnnotations: 4,
  type: 9,
  nameIid: 10,
  trackUuid: 11,
  name: 23,
  flowIds: 47,
  terminatingFlowIds: 48,
} as const;
export const TYPE_SLICE_BEGIN = 1;
export const TYPE_SLICE_END = 2;
export const TYPE_INSTANT = 3;
export const DEBUG_ANNOTATION = { nameIid: 1, uintValue: 3, intValue: 4, stringValue: 6, name: 10 } as const;

/** interned_data/interned_data.proto: InternedData; EventName and DebugAnnotationName share {iid, name}. */
export const INTERNED = { eventNames: 2, debugAnnotationNames: 3 } as const;
export const INTERNED_STRING = { iid: 1, name: 2 } as const;
