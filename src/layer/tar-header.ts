import type { Header } from 'tar-stream';
import { StrataError } from '../errors/index.js';
import { hasEscapedBytes, nameBytes } from '../fsname/index.js';
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

/** One PAX record, `"%d %s=%s\n"` with the length counting itself, over bytes. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length = String(length).length + body.length;
  return Buffer.concat([Buffer.from(String(length)), body]);
}

/** `n` octal digits and a space, as tar-stream writes numeric fields. */
function octal(value: number, n: number): string {
  const digits = value.toString(8);
  return digits.length > n ? `${'7'.repeat(n)} ` : `${digits.padStart(n, '0')} `;
}

/** The 512-byte ustar block of a PAX extended header ('x') of `size` bytes, with tar-stream's fields for it. */
function paxHeaderBlock(header: PackHeader, size: number): Buffer {
  const block = Buffer.alloc(512);
  block.write('PaxHeader', 0, 'ascii');
  block.write(octal((header.mode ?? 0o644) & 0o7777, 6), 100, 'ascii');
  block.write(octal(header.uid ?? 0, 6), 108, 'ascii');
  block.write(octal(header.gid ?? 0, 6), 116, 'ascii');
  block.write(octal(size, 11), 124, 'ascii');
  block.write(octal(Math.floor((header.mtime?.getTime() ?? 0) / 1000), 11), 136, 'ascii');
  block[156] = 'x'.charCodeAt(0);
  if (header.linkname) block.write('PaxHeader', 157, 'ascii');
  block.write('ustar\0', 257, 'ascii');
  block.write('00', 263, 'ascii');
  block.write(octal(header.devmajor ?? 0, 6), 329, 'ascii');
  block.write(octal(header.devminor ?? 0, 6), 337, 'ascii');
  let sum = 8 * 32;
  for (let i = 0; i < 512; i++) if (i < 148 || i >= 156) sum += block[i]!;
  block.write(octal(sum, 6), 148, 'ascii');
  return block;
}

/**
 * A name or link target that is not UTF-8 (see fsname) must reach the tar as its exact bytes, in the
 * PAX `path`/`linkpath` records, as GNU tar and Go's archive/tar write them; tar-stream would encode
 * the string as UTF-8. For such an entry this gives the bytes of the PAX extended header (block,
 * records, padding) to write before it, and the entry's own header, laid out as tar-stream lays out
 * its PAX entries (ustar name "PaxHeader").
 */
export function rawPaxHeaders(header: PackHeader): { bytes: Buffer; entry: PackHeader } | undefined {
  const linkname = header.linkname ?? undefined;
  if (!hasEscapedBytes(header.name) && !(linkname !== undefined && hasEscapedBytes(linkname))) return undefined;
  const records = [paxRecord('path', nameBytes(header.name))];
  if (linkname) records.push(paxRecord('linkpath', nameBytes(linkname)));
  for (const [key, value] of Object.entries(header.pax ?? {})) records.push(paxRecord(key, Buffer.from(value, 'utf8')));
  const body = Buffer.concat(records);
  const { pax: _pax, ...rest } = header;
  const entry: PackHeader = { ...rest, name: 'PaxHeader', ...(linkname ? { linkname: 'PaxHeader' } : {}) };
  const padding = Buffer.alloc((512 - (body.length % 512)) % 512);
  return { bytes: Buffer.concat([paxHeaderBlock(header, body.length), body, padding]), entry };
}
