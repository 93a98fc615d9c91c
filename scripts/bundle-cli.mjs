// Bundles the compiled CLI (dist/cli/entry.js and everything it imports, dependencies included) into
// one CommonJS file, dist/cli/strata.cjs, which dist/cli/main.js (the program, cli/main.ts) loads:
// Node 20 has no compile cache, and loading ~180 ES modules one by one costs a command's start-up
// more than compiling one file. The library (dist/src) and the rest of dist/cli stay as tsc wrote
// them, for importers and for main.js when the bundle is missing.
import { chmodSync } from 'node:fs';
import { build } from 'esbuild';

const entry = new URL('../dist/cli/entry.js', import.meta.url).pathname;
const outfile = new URL('../dist/cli/strata.cjs', import.meta.url).pathname;
await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  legalComments: 'none',
  logLevel: 'warning',
  // @cyclonedx/cyclonedx-library (a dependency) is loaded from node_modules when an SBOM is made
  // (src/sbom/cdx-lib.ts): bundled, its SPDX license list made a third of the bundle every command
  // parses. Its optional peers (XML, validation) it loads only when asked, which strata never does.
  external: ['@cyclonedx/cyclonedx-library', '@cyclonedx/cyclonedx-library/SPDX'],
  // CommonJS has no import.meta; run.ts finds package.json (for --version) from it. The banner comes
  // before esbuild's own "use strict", which would then no longer be a directive: so it says it first.
  define: { 'import.meta.url': 'strataImportMetaUrl' },
  banner: { js: "'use strict';\nconst strataImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
});

// package.json's "bin": npm makes it executable on install; a local build does it here.
chmodSync(new URL('../dist/cli/main.js', import.meta.url).pathname, 0o755);
