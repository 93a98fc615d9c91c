#!/usr/bin/env node
import { isAscii } from 'node:buffer';
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';
import { codeCacheDir, codeCacheFile, commandOf, leavesCodeCache, readCodeCache, runtimeFlags, sha256, writeCodeCache } from './code-cache.js';

// The program, which the launcher package.json's "bin" names (cli/strata) starts: it loads the CLI, and
// entry.ts runs it. Node 20 has no compile cache (module.enableCompileCache came in 22), so this does by
// hand what that would do: scripts/bundle-cli.mjs makes the whole CLI one CommonJS file beside this one
// (strata.cjs), which is compiled here with V8's cached data from an earlier run of the same command
// (code-cache.ts) and, when there was none or V8 refused it, leaves the cache for the next run when
// this one ends well and soon.
// Without the bundle (a build by tsc alone), or with one older than tsc's output (stale after a tsc
// rebuild), the unbundled entry is imported as it is.

interface CachedBundle {
  script: Script;
  run: (exports: object, require: NodeJS.Require, module: { exports: object }, filename: string, dirname: string) => void;
}

const bundlePath = fileURLToPath(new URL('./strata.cjs', import.meta.url));
const bundle = readFreshBundle(bundlePath, fileURLToPath(new URL('./entry.js', import.meta.url)));
if (bundle === undefined) await import('./entry.js');
else runBundle(bundle);

/** The bundle's bytes, unless it is missing or older than the module it was made from. */
function readFreshBundle(path: string, entryPath: string): Buffer | undefined {
  const bundleStat = statSync(path, { throwIfNoEntry: false });
  if (bundleStat === undefined) return undefined;
  const entryStat = statSync(entryPath, { throwIfNoEntry: false });
  if (entryStat !== undefined && entryStat.mtimeMs > bundleStat.mtimeMs) return undefined;
  return readFileSync(path);
}

function runBundle(source: Buffer): void {
  const cache = cacheOf(source);
  const cachedData = cache === undefined ? undefined : readCodeCache(cache.file, cache.bundleDigest, process.getuid?.());
  const { script, run } = compile(source, cachedData);
  if (cache !== undefined && (cachedData === undefined || script.cachedDataRejected === true)) {
    // At the end, so the cache holds every function the command compiled, not only the top level; only
    // after a success, and a short run (leavesCodeCache says why).
    process.on('exit', (code) => {
      if (leavesCodeCache(code, performance.now())) writeCodeCache(cache.file, cache.bundleDigest, () => script.createCachedData());
    });
  }
  const module = { exports: {} };
  run.call(module.exports, module.exports, createRequire(bundlePath), module, bundlePath, dirname(bundlePath));
}

/** This run's cache file (by bundle, Node release, Node options and command), unless there is to be none. */
function cacheOf(source: Buffer): { file: string; bundleDigest: Buffer } | undefined {
  const dir = codeCacheDir(process.env);
  if (dir === undefined) return undefined;
  const bundleDigest = sha256(source);
  const flags = runtimeFlags(process.execArgv, process.env.NODE_OPTIONS);
  const runtime = { version: process.version, arch: process.arch, flags };
  return { file: codeCacheFile(dir, bundleDigest, runtime, commandOf(process.argv.slice(2))), bundleDigest };
}

/** Compiles the bundle as Node compiles a CommonJS module, under its own file name for stack traces. */
function compile(source: Buffer, cachedData: Buffer | undefined): CachedBundle {
  // The bundle is ASCII (bundle-cli.mjs sees to it), and latin1 decoding is several times cheaper.
  const text = isAscii(source) ? source.toString('latin1') : source.toString('utf8');
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${text}\n})`, {
    filename: bundlePath,
    ...(cachedData === undefined ? {} : { cachedData }),
  });
  return { script, run: script.runInThisContext() as CachedBundle['run'] };
}
