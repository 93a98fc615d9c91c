// Bundles the compiled CLI (dist/cli/main.js and everything it imports, dependencies included) into
// that one file. Node 20 has no compile cache, and loading ~180 ES modules one by one costs about
// 80 ms of every command's start-up; one file costs a fifth of that. The library (dist/src) stays
// as tsc wrote it, for importers.
import { build } from 'esbuild';

const entry = new URL('../dist/cli/main.js', import.meta.url).pathname;
await build({
  entryPoints: [entry],
  outfile: entry,
  allowOverwrite: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  legalComments: 'none',
  logLevel: 'warning',
  // CommonJS dependencies (commander, tar-stream) call require() for Node's built-ins.
  banner: { js: "import { createRequire as strataCreateRequire } from 'node:module'; const require = strataCreateRequire(import.meta.url);" },
});
