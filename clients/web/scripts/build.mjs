// Builds the app into dist/ (or the directory given as the first argument): app.js and app.css
// bundled and minified by esbuild with fixed options, index.html and favicon.svg copied as they
// are. Nothing in the output depends on the time, the machine or the checkout's path, so the
// same sources give the same bytes (scripts/check-dist.mjs relies on it).
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = resolve(process.argv[2] ?? join(root, 'dist'));

mkdirSync(out, { recursive: true });
for (const f of readdirSync(out)) rmSync(join(out, f), { recursive: true, force: true });

const common = {
  absWorkingDir: root,
  bundle: true,
  minify: true,
  legalComments: 'none',
  charset: 'utf8',
  sourcemap: false,
  logLevel: 'warning',
  target: ['es2022', 'chrome110', 'firefox115', 'safari16'],
};

await build({
  ...common,
  entryPoints: ['src/main.ts'],
  outfile: join(out, 'app.js'),
  format: 'esm',
  platform: 'browser',
  // The SDK is compiled from its sources (../typescript/src), so it needs no build of its own.
  tsconfig: join(root, 'tsconfig.json'),
});
await build({ ...common, entryPoints: ['src/app.css'], outfile: join(out, 'app.css') });
for (const f of ['index.html', 'favicon.svg']) copyFileSync(join(root, 'src', f), join(out, f));
