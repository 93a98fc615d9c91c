import { lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { resolveInRootSync, type RootPathLookup } from '../layer/index.js';

/**
 * Resolves `path` inside a directory on the host the way a process chrooted there would see it
 * (symlinks followed inside the root, `..` stopping at it). Undefined when it does not exist.
 */
export function resolveInHostRoot(root: string, path: string): string | undefined {
  const lookup = (rel: string): RootPathLookup => {
    try {
      const st = lstatSync(join(root, rel));
      if (st.isSymbolicLink()) return { kind: 'symlink', target: readlinkSync(join(root, rel)) };
      return st.isDirectory() ? { kind: 'dir' } : { kind: 'other' };
    } catch {
      return { kind: 'missing' };
    }
  };
  const outcome = resolveInRootSync(path, { followFinal: true }, lookup);
  if (!outcome.ok || outcome.missing) return undefined;
  return join(root, outcome.path);
}

/** Reads a small file of the root (`/etc/passwd`), resolved inside it; undefined when missing. */
export function readInHostRoot(root: string, path: string): string | undefined {
  const found = resolveInHostRoot(root, path);
  if (!found) return undefined;
  try {
    return readFileSync(found, 'utf8');
  } catch {
    return undefined;
  }
}
