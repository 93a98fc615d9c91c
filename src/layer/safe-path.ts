import { posix } from 'node:path';
import { StrataError } from '../errors/index.js';
import { quotedName } from '../fsname/index.js';

/**
 * Normalizes a tar entry name (or hardlink target) to a relative layer path, refusing what could land outside
 * the root when extracted: absolute names and `..` that climbs above the root (tar-slip). Returns `.` for the
 * root itself. `what` names the layer in the error. This is the strict form for layers strata authors or imports.
 */
export function safeEntryPath(name: string, what = 'layer'): string {
  refuseEmpty(name, what);
  if (name.startsWith('/')) {
    throw new StrataError('E_LAYER_UNSAFE', `${what}: entry ${quotedName(name)} has an absolute path`, {
      hint: 'layer entries must be relative to the root; re-create the archive with relative paths (tar -C DIR .)',
    });
  }
  return normalizeInside(name, name, what);
}

/**
 * The name of an entry in a layer strata reads, cleaned as containerd and docker clean it: the root written as
 * `/`, `./` or `.` becomes `.`, and a leading `/` or `./` is dropped (joined to the root, the name stays inside
 * it). A name that still climbs above the root after cleaning (`../x`, `a/../../x`, `/../x`) is refused.
 */
export function cleanEntryPath(name: string, what = 'layer'): string {
  refuseEmpty(name, what);
  let relative = name;
  while (relative.startsWith('/')) relative = relative.slice(1);
  return relative === '' ? '.' : normalizeInside(relative, name, what);
}

function refuseEmpty(name: string, what: string): void {
  if (name === '' || name.includes('\0')) {
    throw new StrataError('E_LAYER_UNSAFE', `${what}: entry name ${quotedName(name)} is empty or contains NUL`, {
      hint: 'the archive is malformed; it was refused',
    });
  }
}

function normalizeInside(relative: string, name: string, what: string): string {
  let normalized = posix.normalize(relative);
  while (normalized.length > 1 && normalized.endsWith('/')) normalized = normalized.slice(0, -1);
  if (normalized === '..' || normalized.startsWith('../')) {
    throw new StrataError('E_LAYER_UNSAFE', `${what}: entry ${quotedName(name)} escapes the layer root with ..`, {
      hint: 'the archive could write outside the directory it is extracted to; it was refused',
    });
  }
  return normalized;
}
