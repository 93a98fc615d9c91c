#!/usr/bin/env node
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

// The program package.json's "bin" names. scripts/bundle-cli.mjs makes the whole CLI one CommonJS file
// beside this one (strata.cjs): Node 20 loads one file much sooner than the ~180 ES modules it was made
// from, and has no compile cache to make up for that. Without the bundle (a build by tsc alone), or with
// one older than tsc's output (stale after a tsc rebuild), the unbundled entry is imported as it is.
const bundlePath = fileURLToPath(new URL('./strata.cjs', import.meta.url));
const entryPath = fileURLToPath(new URL('./entry.js', import.meta.url));
if (isFresh(bundlePath, entryPath)) createRequire(import.meta.url)(bundlePath);
else await import('./entry.js');

/** Whether the bundle exists and is no older than the module it was made from. */
function isFresh(bundle: string, entry: string): boolean {
  const bundleStat = statSync(bundle, { throwIfNoEntry: false });
  if (bundleStat === undefined) return false;
  const entryStat = statSync(entry, { throwIfNoEntry: false });
  return entryStat === undefined || entryStat.mtimeMs <= bundleStat.mtimeMs;
}
