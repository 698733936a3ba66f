// Parses ftrace text files with kvmtrace's parser, into the event blocks the merge reads, and
// prints lines and events (for lines/s).
import { readFtraceBlocks } from '../dist/parsers/ftrace-text.js';
import { Diagnostics } from '../dist/model/diagnostics.js';

let lines = 0;
let events = 0;
for (const f of process.argv.slice(2)) {
  let p;
  for await (const b of readFtraceBlocks(f, { diags: new Diagnostics() }, (x) => (p = x))) events += b.n;
  lines += p.stats.lines;
}
console.error(JSON.stringify({ lines, events }));
