import { posix } from 'node:path';
import { StrataError } from '../errors/index.js';

/**
 * Normalizes a tar entry name (or hardlink target) to a relative layer path, refusing what could land outside
 * the root when extracted: absolute names and `..` that climbs above the root (tar-slip). Returns `.` for the
 * root itself. `what` names the layer in the error.
 */
export function safeEntryPath(name: string, what = 'layer'): string {
  if (name === '' || name.includes('\0')) {
    throw new StrataError('E_LAYER_UNSAFE', `${what}: entry name ${JSON.stringify(name)} is empty or contains NUL`, {
      hint: 'the archive is malformed; it was refused',
    });
  }
  if (name.startsWith('/')) {
    throw new StrataError('E_LAYER_UNSAFE', `${what}: entry ${JSON.stringify(name)} has an absolute path`, {
      hint: 'layer entries must be relative to the root; re-create the archive with relative paths (tar -C DIR .)',
    });
  }
  let normalized = posix.normalize(name);
  while (normalized.length > 1 && normalized.endsWith('/')) normalized = normalized.slice(0, -1);
  if (normalized === '..' || normalized.startsWith('../')) {
    throw new StrataError('E_LAYER_UNSAFE', `${what}: entry ${JSON.stringify(name)} escapes the layer root with ..`, {
      hint: 'the archive could write outside the directory it is extracted to; it was refused',
    });
  }
  return normalized;
}
