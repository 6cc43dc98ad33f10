// Parses every ```mermaid block of the given Markdown files with mermaid's own parser (in jsdom:
// mermaid wants a DOM even to parse), so a diagram that GitHub would show as an error fails CI.
// Usage: node scripts/docs-diagrams/check.mjs docs/*.md README.md
import { JSDOM } from 'jsdom';
import fs from 'node:fs';

const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
globalThis.DOMParser = dom.window.DOMParser;
globalThis.Element = dom.window.Element;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false });

let diagrams = 0;
let bad = 0;
for (const file of process.argv.slice(2)) {
  const text = fs.readFileSync(file, 'utf8');
  for (const match of text.matchAll(/^```mermaid\n([\s\S]*?)^```/gm)) {
    diagrams += 1;
    const line = text.slice(0, match.index).split('\n').length;
    try {
      await mermaid.parse(match[1]);
    } catch (error) {
      bad += 1;
      console.error(`${file}:${line}: ${String(error.message ?? error).split('\n').slice(0, 3).join(' | ')}`);
    }
  }
}
console.log(`docs diagrams: ${diagrams} parsed, ${bad} with errors`);
process.exit(bad === 0 && diagrams > 0 ? 0 : 1);
