import type { Header } from 'tar-stream';
import { StrataError } from '../errors/index.js';
import { clampMtime } from './mtime.js';
import type { LayerEntry, WriteLayerOptions } from './types.js';

/** What tar-stream's `pack.entry` takes; a `pax` object adds records and forces a PAX header. */
export type PackHeader = Partial<Omit<Header, 'pax'>> & Pick<Header, 'name'> & { pax?: Record<string, string> };

/** Largest value tar-stream's 6-digit octal uid/gid fields hold; bigger ids need PAX records. */
const MAX_OCTAL_ID = 0o777777;
/** Sizes from 8 GiB on do not fit the 11-digit octal size field. */
const MAX_OCTAL_SIZE = 8 ** 11 - 1;
/** tar-stream truncates mtimes with `| 0`, so only int32 seconds survive; negative ones break the field. */
const MAX_MTIME = 2 ** 31 - 1;

const TYPE: Record<LayerEntry['type'], Header['type']> = {
  file: 'file',
  dir: 'directory',
  symlink: 'symlink',
  hardlink: 'link',
  fifo: 'fifo',
  char: 'character-device',
  block: 'block-device',
};

/**
 * The tar-stream header for an entry. tar-stream itself switches to PAX for long or non-ASCII names and long
 * link targets, and writes only `path`/`linkpath` plus the records given here: never atime, ctime or mtime
 * records, which would make the bytes depend on when the layer was written. We add PAX for what it would
 * otherwise truncate: non-ASCII link targets, sizes over 8 GiB and ids over 262143.
 */
export function toTarHeader(entry: LayerEntry, options: WriteLayerOptions): PackHeader {
  const keep = options.ownership === 'keep';
  const uid = options.uid ?? (keep ? entry.uid : 0);
  const gid = options.gid ?? (keep ? entry.gid : 0);
  const mtime = Math.max(0, Math.min(MAX_MTIME, Math.floor(clampMtime(entry.mtime, options))));
  const header: PackHeader = {
    // tar-stream means to add the conventional trailing slash to directory names but never does (it tests a
    // field it does not set), so add it here as GNU tar and Go's archive/tar do.
    name: entry.type === 'dir' ? `${entry.path}/` : entry.path,
    type: TYPE[entry.type],
    mode: entry.mode & 0o7777,
    uid,
    gid,
    size: entry.type === 'file' ? entry.size : 0,
    mtime: new Date(mtime * 1000),
    uname: '',
    gname: '',
  };
  const pax: Record<string, string> = {};
  let forcePax = false;
  if (entry.type === 'symlink' || entry.type === 'hardlink') {
    if (entry.linkTarget === undefined || entry.linkTarget === '') {
      throw new StrataError('E_LAYER_INVALID', `layer entry ${entry.path} is a link without a target`);
    }
    header.linkname = entry.linkTarget;
    if (!isAscii(entry.linkTarget)) forcePax = true;
  }
  if (entry.type === 'char' || entry.type === 'block') {
    header.devmajor = entry.devMajor ?? 0;
    header.devminor = entry.devMinor ?? 0;
  }
  if (entry.type === 'file' && entry.size > MAX_OCTAL_SIZE) pax['size'] = String(entry.size);
  if (uid > MAX_OCTAL_ID) pax['uid'] = String(uid);
  if (gid > MAX_OCTAL_ID) pax['gid'] = String(gid);
  if (forcePax || Object.keys(pax).length > 0) header.pax = pax;
  return header;
}

function isAscii(value: string): boolean {
  return /^[\x01-\x7f]*$/.test(value);
}
