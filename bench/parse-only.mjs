// Parses ftrace text files with kvmtrace's parser, into the event blocks the merge reads, and
// prints lines, events and the seconds the parse took in this process (start-up excluded).
import { readFtraceBlocks } from '../dist/parsers/ftrace-text.js';
import { Diagnostics } from '../dist/model/diagnostics.js';

let lines = 0;
let events = 0;
const t0 = process.hrtime.bigint();
for (const f of process.argv.slice(2)) {
  let p;
  for await (const b of readFtraceBlocks(f, { diags: new Diagnostics() }, (x) => (p = x))) events += b.n;
  lines += p.stats.lines;
}
const parseSecs = Number(process.hrtime.bigint() - t0) / 1e9;
console.error(JSON.stringify({ lines, events, parseSecs }));
