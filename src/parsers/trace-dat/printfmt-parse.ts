/**
 * Parsing an event's `print fmt` (the TP_printk of the kernel's TRACE_EVENT): the format string
 * and its C argument expressions, into the same pieces libtraceevent builds (`parse_args`): literal
 * text, number, pointer and string conversions, each bound to an argument expression.
 */
import type { EventFormat, FieldFormat } from './format.js';

/** An argument expression of a print fmt. */
export type Node =
  | { k: 'num'; v: bigint }
  | { k: 'atom'; text: string }
  | { k: 'str'; s: string }
  | { k: 'field'; name: string; f: FieldFormat | undefined }
  | { k: 'op'; op: string; l: Node; r: Node; prio?: number }
  | { k: 'cond'; c: Node; t: Node; f: Node }
  | { k: 'cast'; type: string; x: Node }
  | { k: 'index'; a: Node; i: Node }
  | { k: 'flags'; x: Node; delim: string; list: { v: bigint; s: string }[] }
  | { k: 'symbolic'; x: Node; list: { v: bigint; s: string }[] }
  | { k: 'hex'; a: Node; len: Node; str: boolean }
  | { k: 'intarray'; a: Node; count: Node; el: Node }
  | { k: 'getstr'; f: FieldFormat | undefined }
  | { k: 'bitmask'; f: FieldFormat | undefined; cpu: boolean }
  | { k: 'dynarray'; f: FieldFormat | undefined }
  | { k: 'dynlen'; f: FieldFormat | undefined }
  | { k: 'func'; name: string; args: Node[] }
  | { k: 'null' };

/** One piece of the rendered text. */
export type Piece =
  | { t: 'text'; s: string }
  | { t: 'digit'; fmt: string; ls: number; arg: Node; len?: Node }
  | { t: 'pointer'; fmt: string; arg: Node; len?: Node }
  | { t: 'string'; fmt: string; arg: Node; len?: Node };

/** A parsed print fmt; `failed` names why parsing failed (trace-cmd then prints `[FAILED TO PARSE]`). */
export interface PrintFmt {
  pieces: Piece[];
  failed?: string;
}

type Tok = { t: 'id' | 'num' | 'str' | 'op'; v: string };

function tokenize(s: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  const n = s.length;
  while (i < n) {
    const ch = s[i];
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') {
      i++;
      continue;
    }
    if (ch === '"' || ch === "'") {
      let j = i + 1;
      let v = '';
      while (j < n && s[j] !== ch) {
        if (s[j] === '\\' && j + 1 < n) {
          v += s[j] + s[j + 1];
          j += 2;
        } else v += s[j++];
      }
      if (ch === "'") out.push({ t: 'num', v: String(charValue(v)) });
      else out.push({ t: 'str', v });
      i = j + 1;
      continue;
    }
    if (/[0-9]/.test(ch)) {
      const m = /^(0[xX][0-9a-fA-F]+|[0-9]+)[uUlL]*/.exec(s.slice(i));
      out.push({ t: 'num', v: m![1] });
      i += m![0].length;
      continue;
    }
    if (/[A-Za-z_]/.test(ch)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i));
      out.push({ t: 'id', v: m![0] });
      i += m![0].length;
      continue;
    }
    const three = s.slice(i, i + 3);
    if (three === '...') {
      out.push({ t: 'op', v: three });
      i += 3;
      continue;
    }
    const two = s.slice(i, i + 2);
    if (['->', '<<', '>>', '<=', '>=', '==', '!=', '&&', '||'].includes(two)) {
      out.push({ t: 'op', v: two });
      i += 2;
      continue;
    }
    out.push({ t: 'op', v: ch });
    i++;
  }
  return out;
}

function charValue(v: string): number {
  if (v.startsWith('\\')) {
    const e: Record<string, number> = { n: 10, t: 9, r: 13, '0': 0, '\\': 92, "'": 39 };
    return e[v[1]] ?? v.charCodeAt(1);
  }
  return v.charCodeAt(0);
}

class ParseError extends Error {}

/** libtraceevent's get_op_prio (lower binds tighter); -1 for tokens that are not operators. */
function opPrio(op: string): number {
  const p: Record<string, number> = {
    '~': 4, '!': 4, '*': 6, '/': 6, '%': 6, '+': 7, '-': 7, '<<': 8, '>>': 8, '<': 9, '>': 9, '<=': 9, '>=': 9,
    '==': 10, '!=': 10, '&': 11, '^': 12, '|': 13, '&&': 14, '||': 15, '?': 16, '++': 3, '--': 3,
  };
  return p[op] ?? -1;
}

/** Replaces a node's content in place (libtraceevent rewrites its arg structs the same way). */
function become(target: Node, src: Node): void {
  const t = target as unknown as Record<string, unknown>;
  const copy = { ...(src as unknown as Record<string, unknown>) };
  for (const k of Object.keys(t)) delete t[k];
  Object.assign(t, copy);
}

/** An atom: numbers and words (strtoull of the text, or a kernel symbol's address). */
function atom(text: string): Node {
  return { k: 'atom', text };
}

/** Recursive-descent parser of the argument list. */
class ArgParser {
  i = 0;
  constructor(
    readonly toks: Tok[],
    readonly ev: EventFormat,
    readonly longSize: number,
  ) {}

  peek(o = 0): Tok | undefined {
    return this.toks[this.i + o];
  }
  take(): Tok {
    const t = this.toks[this.i++];
    if (!t) throw new ParseError('unexpected end of print fmt');
    return t;
  }
  expect(v: string): void {
    const t = this.take();
    if (t.v !== v) throw new ParseError(`expected "${v}", found "${t.v}"`);
  }
  isOp(v: string, o = 0): boolean {
    const t = this.peek(o);
    return !!t && t.t === 'op' && t.v === v;
  }

  /** A whole argument: an operand and the operators after it (libtraceevent's process_field_arg). */
  expr(): Node {
    const a = this.operand();
    while (this.contOp()) this.processOp(a);
    return a;
  }

  /** True when the next token continues an expression (an operator other than `:` and `]`). */
  contOp(): boolean {
    const t = this.peek();
    return !!t && t.t === 'op' && t.v !== ':' && t.v !== ']' && t.v !== '(' && t.v !== ')' && t.v !== ',' && t.v !== '{' && t.v !== '}';
  }

  /**
   * One operand (libtraceevent's process_arg_token): a field, an atom (consecutive words and
   * numbers join), a string, a function call, a parenthesised expression or cast, or a unary
   * operator with its operand (which, as in libtraceevent, takes the following operators too).
   */
  operand(): Node {
    const t = this.take();
    if (t.t === 'id' && t.v === 'REC') {
      this.expect('->');
      const name = this.take().v;
      return { k: 'field', name, f: this.field(name) };
    }
    if (t.t === 'id' && this.isOp('(')) return this.call(t.v);
    if (t.t === 'id' || t.t === 'num') {
      let text = t.v;
      while (this.peek() && (this.peek()!.t === 'id' || this.peek()!.t === 'num')) text += ' ' + this.take().v;
      return atom(text);
    }
    if (t.t === 'str') {
      let s = t.v;
      while (this.peek()?.t === 'str') s += this.take().v;
      return { k: 'str', s };
    }
    if (t.v === '(') return this.paren();
    if (t.t === 'op' && ['~', '!', '+', '-'].includes(t.v)) {
      const node: Node = { k: 'op', op: t.v, l: { k: 'null' }, r: { k: 'null' }, prio: 0 };
      const right = this.operand();
      node.r = right;
      this.tail(node, right);
      return node;
    }
    throw new ParseError(`bad op token ${t.v}`);
  }

  /** `( … )`: a grouped expression (its grouping is not remembered) or a cast. */
  paren(): Node {
    const inner = this.operand();
    while (this.contOp()) this.processOp(inner);
    this.expect(')');
    const n = this.peek();
    if (n && (n.t === 'id' || n.t === 'num' || n.t === 'str' || (n.t === 'op' && n.v === '('))) {
      if (inner.k !== 'atom') throw new ParseError('previous needed to be an atom');
      return { k: 'cast', type: inner.text, x: this.operand() };
    }
    return inner;
  }

  /** libtraceevent's process_op: turns `arg` (in place) into an operation with what follows. */
  processOp(arg: Node): void {
    const t = this.take();
    let right: Node | undefined;
    if (t.v === '?') {
      const left = { ...arg } as Node;
      const a = this.operand();
      while (this.contOp()) this.processOp(a);
      this.expect(':');
      const b = this.operand();
      become(arg, { k: 'cond', c: left, t: a, f: b });
    } else if (opPrio(t.v) > 0 && !['~', '!'].includes(t.v)) {
      const left = { ...arg } as Node;
      become(arg, { k: 'op', op: t.v, l: left, r: { k: 'null' }, prio: opPrio(t.v) });
      if (t.v === '*' && this.isOp(')')) {
        if (left.k !== 'atom') throw new ParseError('bad pointer type');
        become(arg, atom(left.text + ' *'));
        return;
      }
      right = this.operand();
      const op = arg as Extract<Node, { k: 'op' }>;
      const rp = right.k === 'op' ? opPrio(right.op) : right.k === 'cond' ? 16 : -1;
      if (opPrio(op.op) < rp) {
        // libtraceevent rotates by priority without knowing about parentheses.
        op.r = (right as Extract<Node, { k: 'op' }>).l ?? { k: 'null' };
        if (right.k === 'cond') op.r = right.c;
        const tmp = { ...arg } as Node;
        become(arg, right);
        become(right, tmp);
        if (arg.k === 'op') arg.l = right;
        else if (arg.k === 'cond') arg.c = right;
      } else op.r = right;
    } else if (t.v === '[') {
      const left = { ...arg } as Node;
      const i = this.operand();
      this.expect(']');
      become(arg, { k: 'index', a: left, i });
    } else throw new ParseError(`unknown op '${t.v}'`);
    this.tail(arg, right);
  }

  /** The end of process_op: more operators go to the root or to the right operand by priority. */
  tail(arg: Node, right: Node | undefined): void {
    if (!this.contOp()) return;
    const p = opPrio(this.peek()!.v);
    const argPrio = arg.k === 'op' ? (arg.l.k === 'null' ? 0 : (arg.prio ?? 0)) : 0;
    if (p > argPrio) this.processOp(arg);
    else if (right) this.processOp(right);
    else throw new ParseError(`unknown op '${this.peek()!.v}'`);
  }

  field(name: string): FieldFormat | undefined {
    return this.ev.byName.get(name);
  }

  /** `REC->name` as an argument of a helper (`__get_str(name)` also accepts a bare name). */
  fieldArg(): FieldFormat | undefined {
    const t = this.take();
    if (t.v === 'REC' && this.isOp('->')) {
      this.take();
      return this.field(this.take().v);
    }
    return this.field(t.v);
  }

  call(name: string): Node {
    this.expect('(');
    switch (name) {
      case '__print_flags':
      case '__print_symbolic': {
        const x = this.expr();
        let delim = '';
        this.expect(',');
        if (name === '__print_flags') {
          const d = this.expr();
          delim = d.k === 'str' ? unescape(d.s) : '';
          if (this.isOp(',')) this.take();
        }
        const list: { v: bigint; s: string }[] = [];
        while (this.isOp('{')) {
          this.take();
          const v = this.expr();
          this.expect(',');
          const s = this.expr();
          this.expect('}');
          list.push({ v: flagValue(v, this.longSize), s: s.k === 'str' ? unescape(s.s) : '' });
          if (this.isOp(',')) this.take();
        }
        this.expect(')');
        return name === '__print_flags' ? { k: 'flags', x, delim, list } : { k: 'symbolic', x, list };
      }
      case '__print_hex':
      case '__print_hex_str': {
        const a = this.expr();
        this.expect(',');
        const len = this.expr();
        this.expect(')');
        return { k: 'hex', a, len, str: name === '__print_hex_str' };
      }
      case '__print_array': {
        const a = this.expr();
        this.expect(',');
        const count = this.expr();
        this.expect(',');
        const el = this.expr();
        this.expect(')');
        return { k: 'intarray', a, count, el };
      }
      case '__get_str':
      case '__get_rel_str': {
        const f = this.fieldArg();
        this.expect(')');
        return { k: 'getstr', f };
      }
      case '__get_bitmask':
      case '__get_rel_bitmask':
      case '__get_cpumask':
      case '__get_rel_cpumask': {
        const f = this.fieldArg();
        this.expect(')');
        return { k: 'bitmask', f, cpu: name.includes('cpumask') };
      }
      case '__get_dynamic_array':
      case '__get_rel_dynamic_array':
      case '__get_sockaddr':
      case '__get_sockaddr_rel': {
        const f = this.fieldArg();
        this.expect(')');
        return { k: 'dynarray', f };
      }
      case '__get_dynamic_array_len':
      case '__get_rel_dynamic_array_len': {
        const f = this.fieldArg();
        this.expect(')');
        return { k: 'dynlen', f };
      }
      case '__builtin_expect': {
        const x = this.expr();
        this.expect(',');
        this.expr();
        this.expect(')');
        return x;
      }
      case 'sizeof': {
        const words: string[] = [];
        let depth = 0;
        while (!(this.isOp(')') && depth === 0)) {
          const t = this.take();
          if (t.v === '(') depth++;
          if (t.v === ')') depth--;
          words.push(t.v);
        }
        this.take();
        return { k: 'num', v: BigInt(sizeofType(words, this.ev, this.longSize)) };
      }
      case 'is_writable_pte': {
        const x = this.expr();
        this.expect(')');
        return { k: 'func', name, args: [x] };
      }
      default:
        throw new ParseError(`function ${name} not defined`);
    }
  }
}

function sizeofType(words: string[], ev: EventFormat, longSize: number): number {
  if (words[0] === 'REC' && words[1] === '->') return ev.byName.get(words[2])?.size ?? 0;
  const t = words.join(' ');
  if (t.endsWith('*')) return longSize;
  if (/long long|u64|s64/.test(t)) return 8;
  if (/long/.test(t)) return longSize;
  if (/int|u32|s32/.test(t)) return 4;
  if (/short|u16|s16/.test(t)) return 2;
  if (/char|u8|s8|bool/.test(t)) return 1;
  return 0;
}

/** Well-known enum names libtraceevent resolves in symbol tables (`eval_flag`). */
const FLAG_NAMES: Record<string, bigint> = {
  HI_SOFTIRQ: 0n, TIMER_SOFTIRQ: 1n, NET_TX_SOFTIRQ: 2n, NET_RX_SOFTIRQ: 3n, BLOCK_SOFTIRQ: 4n, IRQ_POLL_SOFTIRQ: 5n,
  TASKLET_SOFTIRQ: 6n, SCHED_SOFTIRQ: 7n, HRTIMER_SOFTIRQ: 8n, RCU_SOFTIRQ: 9n, HRTIMER_NORESTART: 0n, HRTIMER_RESTART: 1n,
};

/** A symbol/flag value: a constant expression's value; -1 when it is negative or not constant. */
function flagValue(n: Node, longSize: number): bigint {
  if (n.k === 'atom') return /^[0-9]/.test(n.text) ? atomValue(n.text) : (FLAG_NAMES[n.text] ?? -1n);
  const v = constEval(n, longSize);
  if (v === undefined || v < 0n) return -1n;
  return BigInt.asUintN(64, v);
}

function constEval(n: Node, longSize: number): bigint | undefined {
  switch (n.k) {
    case 'num':
      return n.v;
    case 'atom':
      return BigInt.asIntN(64, atomValue(n.text));
    case 'cast': {
      const v = constEval(n.x, longSize);
      return v === undefined ? undefined : castValue(BigInt.asUintN(64, v), n.type, false);
    }
    case 'op': {
      const l = constEval(n.l, longSize);
      const r = constEval(n.r, longSize);
      if (l === undefined || r === undefined) return undefined;
      switch (n.op) {
        case '|': return l | r;
        case '&': return l & r;
        case '^': return l ^ r;
        case '<<': return l << r;
        case '>>': return l >> r;
        case '+': return l + r;
        case '-': return l - r;
        case '*': return l * r;
        case '/': return r === 0n ? undefined : l / r;
        case '~': return ~r;
        case '!': return r === 0n ? 1n : 0n;
        case '||': return l !== 0n || r !== 0n ? 1n : 0n;
        case '&&': return l !== 0n && r !== 0n ? 1n : 0n;
      }
      return undefined;
    }
  }
  return undefined;
}

/** strtoull(text, NULL, 0) of an atom (0 when it does not start with a number). */
export function atomValue(text: string): bigint {
  const m = /^\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)/.exec(text);
  if (!m) return 0n;
  const v = BigInt(/^0[0-7]+$/.test(m[2]) ? '0o' + m[2].slice(1) : m[2]);
  return BigInt.asUintN(64, m[1] === '-' ? -v : v);
}

/** libtraceevent's `eval_type_str`: the masks a cast applies (sign is never extended). */
export function castValue(v: bigint, type: string, pointer: boolean): bigint {
  let t = type.trim();
  if (pointer) {
    if (!t.endsWith('*')) return v;
    t = t.slice(0, -1).trim();
  } else if (t.endsWith('*')) return v;
  if (t.startsWith('struct')) return v;
  if (t === 'u8' || t === 's8') return v & 0xffn;
  if (t === 'u16' || t === 's16') return v & 0xffffn;
  if (t === 'u32' || t === 's32') return v & 0xffffffffn;
  if (t.startsWith('unsigned ')) t = t.slice(9);
  if (t === 'char') return v & 0xffn;
  if (t === 'short') return v & 0xffffn;
  if (t === 'int') return v & 0xffffffffn;
  return v;
}

/** Resolves C escapes of a string literal (`\n`, `\t`, `\\`, `\"`). */
export function unescape(s: string): string {
  return s.replace(/\\(.)/g, (_m, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : c === 'r' ? '\r' : c));
}

/** Splits a format string into pieces bound to arguments (libtraceevent's `parse_args`). */
function bindPieces(fmt: string, args: Node[]): { pieces: Piece[]; failed?: string } {
  const pieces: Piece[] = [];
  let ai = 0;
  let i = 0;
  let text = '';
  const flush = () => {
    if (text) pieces.push({ t: 'text', s: text });
    text = '';
  };
  while (i < fmt.length) {
    const ch = fmt[i];
    if (ch === '\\' && i + 1 < fmt.length) {
      const e = fmt[i + 1];
      text += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e;
      i += 2;
      continue;
    }
    if (ch !== '%') {
      text += ch;
      i++;
      continue;
    }
    if (fmt[i + 1] === '%') {
      text += '%';
      i += 2;
      continue;
    }
    flush();
    // A conversion: flags, width, precision, length, then the conversion character.
    let j = i + 1;
    let ls = 0;
    let len: Node | undefined;
    for (; j < fmt.length; j++) {
      const c = fmt[j];
      if (c === '#' || c === '.' || c === '-' || (c >= '0' && c <= '9')) continue;
      if (c === 'h') ls--;
      else if (c === 'l') ls++;
      else if (c === 'L') ls = 2;
      else if (c === 'z' || c === 'Z') ls = 1;
      else if (c === '*') {
        if (ai >= args.length) return { pieces, failed: 'no argument match' };
        if (len) return { pieces, failed: 'argument already matched' };
        len = args[ai++];
      } else break;
    }
    const c = fmt[j];
    if (c === 'p') {
      if (ai >= args.length) return { pieces, failed: 'no argument match' };
      const ext = pointerExt(fmt.slice(j + 1));
      pieces.push({ t: 'pointer', fmt: fmt.slice(i, j + 1 + ext), arg: args[ai++], len });
      i = j + 1 + ext;
    } else if ('duixXo'.includes(c) && c !== undefined) {
      if (ai >= args.length) return { pieces, failed: 'no argument match' };
      if (ls < -2 || ls > 2) return { pieces, failed: `bad count (${ls})` };
      pieces.push({ t: 'digit', fmt: fmt.slice(i, j + 1), ls, arg: args[ai++], len });
      i = j + 1;
    } else if (c === 's') {
      if (ai >= args.length) return { pieces, failed: 'no matching argument' };
      pieces.push({ t: 'string', fmt: fmt.slice(i, j + 1), arg: args[ai++], len });
      i = j + 1;
    } else {
      // libtraceevent prints an unknown conversion as ">c<" and consumes no argument.
      pieces.push({ t: 'text', s: `>${c ?? ''}<` });
      i = j + 1;
    }
  }
  flush();
  return { pieces };
}

/** Characters after `%p` that belong to the pointer conversion (libtraceevent's rules). */
function pointerExt(f: string): number {
  switch (f[0]) {
    case 'F': case 'S': case 'f': case 's':
      return 1;
    case 'M': case 'm':
      return f[1] === 'R' || f[1] === 'F' ? 2 : 1;
    case 'I': case 'i': {
      let n = 1;
      let idx = 2;
      if (f[1] === 'S') {
        while ('pfs'.includes(f[idx] ?? '#')) {
          n++;
          idx++;
        }
      }
      if (f[1] === 'S' || f[1] === '4') {
        if ('hnlb'.includes(f[idx] ?? '#')) {
          n++;
          idx++;
        }
        if (f[1] === '4') return n + 1;
      }
      if (f[1] === 'S' || f[1] === '6') {
        if (f[idx] === 'c') n++;
        n++;
      }
      return n;
    }
    case 'U':
      return 'LlBb'.includes(f[1] ?? '#') ? 2 : 1;
    case 'h':
      return 'CDN'.includes(f[1] ?? '#') ? 2 : 1;
  }
  return 0;
}

/** Parses an event's print fmt into pieces; never throws (failures are in `failed`). */
export function parsePrintFmt(ev: EventFormat, longSize: number): PrintFmt {
  const text = ev.printFmt;
  const toks = tokenize(text);
  if (toks.length === 0 || toks[0].t !== 'str') return { pieces: [], failed: 'print fmt has no format string' };
  let fmt = '';
  let i = 0;
  while (i < toks.length && toks[i].t === 'str') fmt += toks[i++].v;
  const args: Node[] = [];
  try {
    const p = new ArgParser(toks, ev, longSize);
    p.i = i;
    while (p.i < toks.length) {
      p.expect(',');
      args.push(p.expr());
    }
  } catch (e) {
    if (e instanceof ParseError) return { pieces: [], failed: e.message };
    throw e;
  }
  return bindPieces(fmt, args);
}
