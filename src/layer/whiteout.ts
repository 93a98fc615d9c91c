import { posix } from 'node:path';
import { StrataError } from '../errors/index.js';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_WHITEOUT = '.wh..wh..opq';

export type WhiteoutKind = { kind: 'entry' } | { kind: 'opaque'; dir: string } | { kind: 'whiteout'; target: string };

/**
 * Classifies a normalized layer path. The opaque marker is matched exactly and first: it also starts with
 * `.wh.`, and reading it as a whiteout of `.wh..opq` is the bug ggcr fixed in PR #2372.
 */
export function classifyWhiteout(path: string): WhiteoutKind {
  const base = posix.basename(path);
  if (!base.startsWith(WHITEOUT_PREFIX)) return { kind: 'entry' };
  const dir = posix.dirname(path);
  if (base === OPAQUE_WHITEOUT) return { kind: 'opaque', dir };
  const name = base.slice(WHITEOUT_PREFIX.length);
  if (name === '') return { kind: 'entry' };
  // `.wh..` and `.wh...` would delete the directory itself or its parent: never a valid whiteout.
  if (name === '.' || name === '..' || name.includes('/')) {
    throw new StrataError('E_LAYER_UNSAFE', `layer entry "${path}" is a whiteout of "${name}", which would delete outside its directory; refused`);
  }
  return { kind: 'whiteout', target: dir === '.' ? name : `${dir}/${name}` };
}

/** The whiteout entry that deletes `path` (a layer path) from the layers below: `dir/.wh.name`. */
export function whiteoutPath(path: string): string {
  const parent = posix.dirname(path);
  return `${parent === '.' ? '' : `${parent}/`}${WHITEOUT_PREFIX}${posix.basename(path)}`;
}
