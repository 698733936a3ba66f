/**
 * An ftrace instance of kvmtrace's own under tracefs `instances/`: the only place a capture
 * writes to. The top-level buffer and other tools' instances are never touched; `remove()` takes
 * the instance away again (it is called on every exit path by the capture).
 */
import { access, mkdir, readFile, readdir, rmdir, writeFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../model/errors.js';

/**
 * Where a filesystem type is mounted, from /proc/mounts (octal escapes such as \040 decoded);
 * the canonical mount point when it is among them, else the first. Undefined when not mounted.
 */
export async function findMount(fstype: string, canonical: string, mountsFile = '/proc/mounts'): Promise<string | undefined> {
  const text = await readFile(mountsFile, 'utf8').catch(() => '');
  const points = text
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[2] === fstype)
    .map((f) => f[1].replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))));
  return points.find((p) => p === canonical) ?? points[0];
}

/** Where tracefs is mounted (debugfs's automount at …/debug/tracing is the same filesystem). */
export function findTracefs(mountsFile?: string): Promise<string | undefined> {
  return findMount('tracefs', '/sys/kernel/tracing', mountsFile);
}

/** Per-CPU buffer statistics of an instance (per_cpu/cpuN/stats), summed over CPUs. */
export interface BufferStats {
  /** Events not yet read. */
  entries: number;
  /** Events overwritten before a reader took them. */
  overrun: number;
  /** Events dropped because the buffer was full (overwrite off). */
  dropped: number;
}

/** Parses and sums per_cpu stats files' text. */
export function sumStats(texts: string[]): BufferStats {
  const total: BufferStats = { entries: 0, overrun: 0, dropped: 0 };
  for (const t of texts) {
    const num = (key: string): number => Number(new RegExp(`^${key}: (\\d+)`, 'm').exec(t)?.[1] ?? 0);
    total.entries += num('entries');
    total.overrun += num('overrun');
    total.dropped += num('dropped events');
  }
  return total;
}

/** The name kvmtrace gives its instances: `kvmtrace-<pid>` (one per capturing process). */
export function instanceName(pid = process.pid): string {
  return `kvmtrace-${pid}`;
}

/** One ftrace instance this process created. */
export class TraceInstance {
  private removed = false;

  private constructor(
    /** The tracefs mount point. */
    readonly tracefs: string,
    /** The instance's folder. */
    readonly dir: string,
  ) {}

  /** Creates `instances/<name>`; refuses if it exists (it would be someone else's). */
  static async create(tracefs: string, name = instanceName()): Promise<TraceInstance> {
    const dir = join(tracefs, 'instances', name);
    const exists = await access(dir).then(
      () => true,
      () => false,
    );
    if (exists) throw new UserError(`${dir} exists already: another capture is running, or one left it behind (rmdir it if so)`);
    try {
      await mkdir(dir);
    } catch (e) {
      throw new UserError(`cannot create the ftrace instance ${dir}: ${(e as Error).message}`);
    }
    const inst = new TraceInstance(tracefs, dir);
    // A new instance records from birth; nothing should be kept before the capture is set up.
    await inst.write('tracing_on', '0');
    return inst;
  }

  /** Writes a control file of the instance (whole value, one write). */
  async write(file: string, value: string): Promise<void> {
    try {
      await writeFile(join(this.dir, file), value + '\n', { flag: 'w' });
    } catch (e) {
      throw new UserError(`cannot write "${value}" to ${join(this.dir, file)}: ${(e as Error).message}`);
    }
  }

  /** Appends to a control file (set_event, set_event_pid keep what is there). */
  async append(file: string, value: string): Promise<void> {
    try {
      await writeFile(join(this.dir, file), value + '\n', { flag: 'a' });
    } catch (e) {
      throw new UserError(`cannot add "${value}" to ${join(this.dir, file)}: ${(e as Error).message}`);
    }
  }

  /** Reads a control file. */
  async read(file: string): Promise<string> {
    return readFile(join(this.dir, file), 'utf8');
  }

  /** The clocks the kernel offers (trace_clock, brackets removed). */
  async availableClocks(): Promise<string[]> {
    return (await this.read('trace_clock')).replace(/[[\]]/g, '').trim().split(/\s+/);
  }

  /** Sets the trace clock; a UserError naming the clocks there are if it is not offered. */
  async setClock(clock: string): Promise<void> {
    const have = await this.availableClocks();
    if (!have.includes(clock)) throw new UserError(`trace clock ${clock} is not offered by this kernel (it has: ${have.join(' ')})`);
    await this.write('trace_clock', clock);
  }

  /** Enables events in set_event syntax (`kvm:*`, `sched:sched_switch`); UserError if unknown. */
  async enableEvent(spec: string): Promise<void> {
    const [sys, ev] = spec.includes(':') ? spec.split(':', 2) : ['*', spec];
    if (sys !== '*') {
      const path = ev === '*' || ev === '' ? join(this.dir, 'events', sys) : join(this.dir, 'events', sys, ev);
      const ok = await access(path, constants.F_OK).then(
        () => true,
        () => false,
      );
      if (!ok) throw new UserError(`event ${spec} does not exist on this kernel (no ${path})`);
    }
    await this.append('set_event', spec);
  }

  /** Writes a line into the instance's buffer (trace_marker; shown as tracing_mark_write). */
  async mark(text: string): Promise<void> {
    await this.write('trace_marker', text);
  }

  /** The event names of a subsystem (folders under events/SYS). */
  async eventsOf(sys: string): Promise<string[]> {
    const names = await readdir(join(this.dir, 'events', sys), { withFileTypes: true }).catch(() => {
      throw new UserError(`event system ${sys} does not exist on this kernel (no ${join(this.dir, 'events', sys)})`);
    });
    return names.filter((d) => d.isDirectory()).map((d) => d.name).sort();
  }

  /** Restricts all events to these threads (set_event_pid), following their children if `fork`. */
  async setEventPids(tids: number[], fork: boolean): Promise<void> {
    await this.write('options/event-fork', fork ? '1' : '0');
    // One write per tid: a write is parsed as a list, but a thread that exited meanwhile fails
    // the whole write with ESRCH on some kernels.
    await this.write('set_event_pid', String(tids[0]));
    for (const t of tids.slice(1)) await this.append('set_event_pid', String(t)).catch(() => undefined);
  }

  /** Sums the per-CPU buffer statistics. */
  async stats(): Promise<BufferStats> {
    const cpus = await readdir(join(this.dir, 'per_cpu')).catch(() => [] as string[]);
    const texts = await Promise.all(cpus.map((c) => readFile(join(this.dir, 'per_cpu', c, 'stats'), 'utf8').catch(() => '')));
    return sumStats(texts);
  }

  /** Stops recording and removes the instance; retries while a reader still holds a file (EBUSY). */
  async remove(): Promise<void> {
    if (this.removed) return;
    await this.write('tracing_on', '0').catch(() => undefined);
    let last: unknown;
    for (let i = 0; i < 50; i++) {
      try {
        await rmdir(this.dir);
        this.removed = true;
        return;
      } catch (e) {
        last = e;
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
          this.removed = true;
          return;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    throw new UserError(`could not remove the ftrace instance ${this.dir}: ${(last as Error).message}; remove it with rmdir`);
  }
}
