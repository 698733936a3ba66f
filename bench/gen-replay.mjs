// Generates a large ftrace-text host/guest pair by replaying a real capture N times, each copy
// shifted in time by the capture's span (host and guest alike, so the TSC offset still holds).
// Usage: node bench/gen-replay.mjs HOST GUEST COPIES OUTDIR [GUEST_TO_HOST] → prints the event
// count. GUEST_TO_HOST (host TSC − guest TSC) lets the copies be spaced by the span of both traces,
// so no guest event of one copy falls among another copy's host events.
import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { join } from 'node:path';

const [host, guest, copiesArg, out, shiftArg] = process.argv.slice(2);
const copies = Number(copiesArg);

async function span(file) {
  let lo, hi;
  for await (const l of createInterface({ input: createReadStream(file) })) {
    const m = /\[\d{3}\] ?(\d+):/.exec(l);
    if (!m) continue;
    const t = BigInt(m[1]);
    if (lo === undefined || t < lo) lo = t;
    if (hi === undefined || t > hi) hi = t;
  }
  return [lo, hi];
}

async function replay(src, dst, shiftStep) {
  const w = createWriteStream(dst);
  let events = 0;
  for (let k = 0; k < copies; k++) {
    const shift = shiftStep * BigInt(k);
    for await (const l of createInterface({ input: createReadStream(src) })) {
      if (k > 0 && !/\[\d{3}\]/.test(l)) continue; // headers once
      const line = l.replace(/(\[\d{3}\] ?)(\d+):/, (_m, p, t) => (events++, `${p}${BigInt(t) + shift}:`));
      if (!w.write(line + '\n')) await once(w, 'drain');
    }
  }
  w.end();
  await once(w, 'finish');
  return events;
}

let [lo, hi] = await span(host);
if (shiftArg !== undefined) {
  const [glo, ghi] = await span(guest);
  const d = BigInt(shiftArg);
  if (glo + d < lo) lo = glo + d;
  if (ghi + d > hi) hi = ghi + d;
}
const step = hi - lo + 1_000_000n;
const h = await replay(host, join(out, 'host.txt'), step);
const g = await replay(guest, join(out, 'guest.txt'), step);
console.log(JSON.stringify({ hostEvents: h, guestEvents: g, events: h + g }));
