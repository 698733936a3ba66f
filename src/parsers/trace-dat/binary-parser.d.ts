// binary-parser 2.3 ships types only next to its CommonJS build, which its "exports" map hides
// from NodeNext resolution; this re-exports them for the ESM entry (STYLE.md, package notes).
declare module 'binary-parser' {
  export { Parser } from 'binary-parser/dist/binary_parser.js';
}
