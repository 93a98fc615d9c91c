import { createReadStream } from 'node:fs';
import { listSourceTree, openBuildContext, statSource, type ContextEntry } from '../context/index.js';
import { scanFileTree, type SbomScan, type TreeFile } from '../sbom/index.js';

/** The read paths with those under another one left out ('' covers everything). */
function topmost(reads: readonly string[]): string[] {
  const sorted = [...new Set(reads)].sort();
  const out: string[] = [];
  for (const p of sorted) {
    if (out.some((q) => q === '' || p === q || p.startsWith(`${q}/`))) continue;
    out.push(p);
  }
  return out;
}

function treeFile(path: string, e: ContextEntry): TreeFile | undefined {
  if (e.type !== 'file' && e.type !== 'dir' && e.type !== 'symlink') return undefined;
  return { path, type: e.type, mode: e.mode, size: e.size, open: () => createReadStream(e.absPath) };
}

async function* contextFiles(contextDir: string, dockerfile: string, reads: readonly string[], signal: AbortSignal | undefined): AsyncGenerator<TreeFile> {
  const root = await openBuildContext(contextDir, { dockerfilePath: dockerfile });
  // A build that read nothing of its context gets all of it scanned, as BuildKit sends it all without FollowPaths.
  for (const rel of reads.length === 0 ? [''] : topmost(reads)) {
    const top = rel === '' ? undefined : treeFile(rel, await statSource(root, rel));
    if (top !== undefined) yield top;
    if (rel !== '' && top?.type !== 'dir') continue;
    for (const e of await listSourceTree(root, rel, { signal })) {
      const f = treeFile(rel === '' ? e.relPath : `${rel}/${e.relPath}`, e);
      if (f !== undefined) yield f;
    }
  }
}

/**
 * The packages in the build context as the build read it (BUILDKIT_SBOM_SCAN_CONTEXT): the paths its
 * COPY, ADD and RUN bind-mount sources matched, .dockerignore applied, as BuildKit sends the context
 * (FollowPaths) to its scanner. A lockfile or node_modules there names packages the image may only hold built.
 */
export function scanBuildContext(contextDir: string, dockerfile: string, reads: readonly string[], signal?: AbortSignal): Promise<SbomScan> {
  return scanFileTree(contextFiles(contextDir, dockerfile, reads, signal));
}
