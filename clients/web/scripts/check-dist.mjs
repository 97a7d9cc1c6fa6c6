// Rebuilds the app into a temporary directory and fails if it differs from the committed dist/
// (CI runs it: the served files must be what the sources build to).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const tmp = mkdtempSync(join(tmpdir(), 'switchyard-web-dist-'));
try {
  execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs'), tmp], { stdio: 'inherit' });
  const list = (d) => readdirSync(d).sort();
  let committed = [];
  try {
    committed = list(dist);
  } catch {
    /* no dist at all */
  }
  const built = list(tmp);
  const problems = [];
  for (const f of new Set([...committed, ...built])) {
    if (!committed.includes(f)) problems.push(`${f}: built but not in dist/`);
    else if (!built.includes(f)) problems.push(`${f}: in dist/ but not built`);
    else if (!readFileSync(join(dist, f)).equals(readFileSync(join(tmp, f)))) problems.push(`${f}: differs from a fresh build`);
  }
  if (problems.length > 0) {
    console.error(`clients/web/dist is not what the sources build to:\n  ${problems.join('\n  ')}\nRun \`npm run build\` in clients/web and commit dist/.`);
    process.exit(1);
  }
  console.log(`dist/ matches a fresh build (${built.length} files)`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
