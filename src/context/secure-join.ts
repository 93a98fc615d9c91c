import type { Stats } from 'node:fs';
import { readlink } from 'node:fs/promises';
import { decodeName, fsPath } from '../fsname/index.js';
import { StrataError, ioError } from '../errors/index.js';
import { lstatOrMissing } from './entry.js';
import type { ContextView } from './view.js';

/** Linux's MAXSYMLINKS is 40; securejoin allows 255. Either way a loop ends in an error, not a hang. */
const MAX_LINKS = 255;

export interface Resolved {
  /** The resolved path, slash-separated, relative to the root; '' for the root. */
  rel: string;
  /** lstat of the resolved path when it exists (and is visible); undefined when it does not. */
  stats: Stats | undefined;
}

/**
 * Resolves `path` inside the root the way Go's securejoin and BuildKit's fsutil do: component by component,
 * every symlink read and its target interpreted relative to the root (an absolute target restarts at the
 * root, `..` stops at the root). A component that does not exist ends the lookup lexically. Every path
 * lstat'ed is the root plus components already seen to be real directories, so nothing outside the root is
 * touched (a concurrent swap of a directory for a symlink is outside this guarantee).
 * With `followFinal` false the last component is not followed when it is a symlink (its parent still is).
 */
export async function resolveInRoot(view: ContextView, path: string, followFinal: boolean): Promise<Resolved> {
  const queue = path.split('/');
  const resolved: string[] = [];
  /** Index in `resolved` of the first component known not to exist, or -1. */
  let missingAt = -1;
  let links = 0;
  while (queue.length > 0) {
    const part = queue.shift() as string;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      resolved.pop();
      if (missingAt >= resolved.length) missingAt = -1;
      continue;
    }
    if (missingAt >= 0) {
      resolved.push(part);
      continue;
    }
    const rel = [...resolved, part].join('/');
    const abs = view.abs(rel);
    let st = await lstatOrMissing(abs);
    if (st !== undefined && !(await view.visible(rel, st.isDirectory()))) st = undefined;
    if (st === undefined) {
      missingAt = resolved.length;
      resolved.push(part);
      continue;
    }
    const last = queue.every((p) => p === '' || p === '.');
    if (st.isSymbolicLink() && (followFinal || !last)) {
      if (++links > MAX_LINKS) {
        throw new StrataError('E_IO', `cannot resolve ${JSON.stringify(path)} in the ${view.root.description}: too many levels of symbolic links`, {
          hint: 'a symlink in the source path points back at itself; fix or remove the link',
        });
      }
      let target: string;
      try {
        target = decodeName(await readlink(fsPath(abs), { encoding: 'buffer' }));
      } catch (cause) {
        throw ioError('read symlink', abs, cause);
      }
      if (target.startsWith('/')) resolved.length = 0;
      queue.unshift(...target.split('/'));
      continue;
    }
    resolved.push(part);
  }
  const rel = resolved.join('/');
  if (missingAt >= 0) return { rel, stats: undefined };
  // Every component was checked on the way; this lstat gives the final object's own metadata.
  const stats = await lstatOrMissing(view.abs(rel));
  return { rel, stats };
}
