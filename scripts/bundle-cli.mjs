// Bundles the compiled CLI (dist/cli/entry.js and everything it imports, dependencies included) into
// one CommonJS file, dist/cli/strata.cjs, which dist/cli/main.js (the program, cli/main.ts) compiles
// with a V8 code cache kept per user (cli/code-cache.ts). Node 20 has no compile cache and no way to
// give V8 cached data for an ES module, hence CommonJS. Loading ~180 ES modules one by one cost ~80 ms
// of every command's start-up; compiling and running one file ~40 ms; the same with cached data from
// an earlier run of the command ~25 ms. The library (dist/src) and the rest of dist/cli stay as tsc
// wrote them, for importers and for main.js when the bundle is missing.
import { chmodSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
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

// esbuild escapes every non-ASCII character of code (its default charset), but copies comments as they
// are. Escaping those too keeps the file ASCII, which main.js decodes several times faster than UTF-8.
// U+2028/U+2029 end a line even in a comment, so they stay.
const text = readFileSync(outfile, 'utf8');
const ascii = text.replace(/[^\x00-\x7f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
if (ascii !== text) writeFileSync(outfile, ascii);

// The launcher package.json's "bin" names (a shell script; see the file) goes beside main.js.
const launcher = new URL('../dist/cli/strata', import.meta.url).pathname;
copyFileSync(new URL('../cli/strata', import.meta.url).pathname, launcher);
chmodSync(launcher, 0o755);
