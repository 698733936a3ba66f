/**
 * Event `format` files (tracefs `events/<system>/<event>/format`): the field layout of an event's
 * binary record and its `print fmt`. Decoding is generic, driven by these descriptions, like
 * libtraceevent's.
 */

/** One field of an event record. */
export interface FieldFormat {
  name: string;
  /** The C type as written (`unsigned int`, `char[16]`, `__data_loc char[]`, …). */
  type: string;
  /** Byte offset in the record. */
  offset: number;
  /** Size in bytes (for arrays: of the whole array; 0 = the rest of the record). */
  size: number;
  signed: boolean;
  /** A fixed array (`name[N]`) or a dynamic one (`__data_loc`/`__rel_loc`). */
  isArray: boolean;
  /** `__data_loc` / `__rel_loc`: the field holds (length << 16 | offset) of the data. */
  isDynamic: boolean;
  /** `__rel_loc`: the offset is relative to the end of the field. */
  isRelative: boolean;
  /** A char array or dynamic char array: printable as a string. */
  isString: boolean;
  isPointer: boolean;
  /** The type is `long` (printed in hex in raw mode). */
  isLong: boolean;
  /** Size of one element for arrays (size for scalars). */
  elementSize: number;
  /** True for the `common_*` fields. */
  common: boolean;
}

/** One event's format. */
export interface EventFormat {
  /** Event system (`sched`, `kvm`, `ftrace`, …). */
  system: string;
  name: string;
  id: number;
  /** Common fields then event fields, in file order. */
  fields: FieldFormat[];
  /** The event's own fields (without `common_*`). */
  eventFields: FieldFormat[];
  /** The `print fmt:` text after the colon (format string literal and arguments). */
  printFmt: string;
  /** Field by name. */
  byName: Map<string, FieldFormat>;
}

const FIELD_RE = /^\s*field:(.*?);\s*offset:(\d+);\s*size:(\d+);(?:\s*signed:(\d+);)?/;

function parseField(decl: string, offset: number, size: number, signed: boolean, common: boolean): FieldFormat {
  let d = decl.trim();
  let isDynamic = false;
  let isRelative = false;
  if (d.startsWith('__data_loc ')) {
    isDynamic = true;
    d = d.slice('__data_loc '.length);
  } else if (d.startsWith('__rel_loc ')) {
    isDynamic = true;
    isRelative = true;
    d = d.slice('__rel_loc '.length);
  }
  let isArray = isDynamic;
  let count = 0;
  // `char comm[16]`, `unsigned long args[6]`, `char[] name` (old dynamic style), `char name[]`
  const arr = /^(.*?)\s*([A-Za-z_][A-Za-z0-9_]*)\s*\[(\w*)\]\s*$/.exec(d);
  let type: string;
  let name: string;
  if (arr) {
    type = arr[1].trim();
    name = arr[2];
    isArray = true;
    count = arr[3] === '' ? 0 : Number(arr[3]);
  } else {
    const m = /^(.*?)([A-Za-z_][A-Za-z0-9_]*)\s*$/.exec(d);
    type = m ? m[1].trim() : d;
    name = m ? m[2] : d;
    if (/\[\]$/.test(type)) {
      // `__data_loc char[] name`
      type = type.slice(0, -2).trim();
      isArray = true;
    }
  }
  // libtraceevent's rules (event-parse.c: field_is_string, field_is_long, type_size)
  const isPointer = type.endsWith('*');
  const isString = isArray && /char|u8|s8/.test(decl);
  const isLong = /long/.test(decl);
  let elementSize = size;
  if (isArray) {
    if (count > 0) elementSize = Math.floor(size / count);
    else if (isDynamic) elementSize = DYN_SIZES[lastWord(type)] ?? 0;
    else if (isString) elementSize = 1;
    else if (isLong) elementSize = 8;
    else elementSize = 0;
  }
  return {
    name,
    type: decl.trim(),
    offset,
    size,
    signed,
    isArray,
    isDynamic,
    isRelative,
    isString,
    isPointer,
    isLong,
    elementSize,
    common,
  };
}

const DYN_SIZES: Record<string, number> = { u8: 1, u16: 2, u32: 4, u64: 8, s8: 1, s16: 2, s32: 4, s64: 8, char: 1 };

function lastWord(t: string): string {
  const m = /([A-Za-z0-9_]+)\s*(\[\])?\s*$/.exec(t);
  return m ? m[1] : t;
}

/**
 * Parses one event format text. `system` comes from the file structure. Returns an error message
 * (string) when the text is not a format.
 */
export function parseEventFormat(text: string, system: string): EventFormat | string {
  const nameM = /^name:\s*(\S+)/m.exec(text);
  const idM = /^ID:\s*(\d+)/m.exec(text);
  if (!nameM || !idM) return 'event format without name or ID';
  const fields: FieldFormat[] = [];
  const lines = text.split('\n');
  let common = true;
  let inFormat = false;
  let printFmt = '';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith('format:')) {
      inFormat = true;
      continue;
    }
    if (line.startsWith('print fmt:')) {
      printFmt = lines.slice(i).join('\n').slice('print fmt:'.length).trim();
      break;
    }
    if (!inFormat) continue;
    if (line.trim() === '') {
      if (fields.length > 0) common = false;
      continue;
    }
    const m = FIELD_RE.exec(line);
    if (!m) continue;
    const f = parseField(m[1], Number(m[2]), Number(m[3]), m[4] === '1', common);
    if (!f.name.startsWith('common_')) f.common = false;
    fields.push(f);
  }
  const byName = new Map<string, FieldFormat>();
  for (const f of fields) if (!byName.has(f.name)) byName.set(f.name, f);
  return {
    system,
    name: nameM[1],
    id: Number(idM[1]),
    fields,
    eventFields: fields.filter((f) => !f.common),
    printFmt,
    byName,
  };
}

/** The ring-buffer layout facts read from `header_page`: commit size and data offset. */
export function parseHeaderPage(text: string, longSize: number): { commitSize: number; dataOffset: number } {
  let commitSize = longSize;
  let dataOffset = 8 + longSize;
  for (const line of text.split('\n')) {
    const m = FIELD_RE.exec(line);
    if (!m) continue;
    const decl = m[1];
    if (/\bcommit$/.test(decl.trim())) commitSize = Number(m[3]);
    if (/\bdata\b/.test(decl)) dataOffset = Number(m[2]);
  }
  return { commitSize, dataOffset };
}
