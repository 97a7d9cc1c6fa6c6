// `npm test`: bundles test/*.test.ts (esbuild, Node target, packages left external) into
// build/test/ and runs them with Node's test runner, one file at a time. Exits non-zero on any
// failure. Extra arguments go to `node --test` (e.g. --test-name-pattern=offline).
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'build', 'test');
rmSync(out, { recursive: true, force: true });
const entries = readdirSync(join(root, 'test')).filter((f) => f.endsWith('.test.ts')).map((f) => join(root, 'test', f));
await build({
  absWorkingDir: root,
  entryPoints: entries,
  outdir: out,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: 'inline',
  logLevel: 'warning',
});
const files = readdirSync(out).filter((f) => f.endsWith('.test.mjs')).map((f) => join(out, f));
const r = spawnSync(process.execPath, ['--enable-source-maps', '--test', '--test-concurrency=1', ...process.argv.slice(2), ...files], { stdio: 'inherit', cwd: root });
process.exit(r.status ?? 1);
