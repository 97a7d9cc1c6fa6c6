// Bundles the browser entry (src/index.ts) with esbuild, minified, and prints its size raw and
// gzipped: what an app pays for the SDK (tree-shaking can only make it smaller).
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';

const out = await build({
  entryPoints: ['src/index.ts'],
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  write: false,
  metafile: true,
});
const code = out.outputFiles[0].contents;
const gz = gzipSync(code, { level: 9 });
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
console.log(`browser bundle (src/index.ts, esbuild --minify): ${code.length} bytes (${kib(code.length)}), gzipped ${gz.length} bytes (${kib(gz.length)})`);
