/** A minimal tar block reader, independent of tar-stream, to check exactly what was written. */
export interface RawHeader {
  name: string;
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  uname: string;
  gname: string;
  magic: string;
  /** PAX records that applied to this entry. */
  pax: Record<string, string>;
}

function str(block: Buffer, offset: number, length: number): string {
  const end = block.indexOf(0, offset);
  return block.toString('utf8', offset, end === -1 || end > offset + length ? offset + length : end);
}

function num(block: Buffer, offset: number, length: number): number {
  if ((block[offset] ?? 0) & 0x80) {
    let value = 0;
    for (let i = offset + 1; i < offset + length; i++) value = value * 256 + (block[i] ?? 0);
    return value;
  }
  const text = str(block, offset, length).trim();
  return text === '' ? 0 : parseInt(text, 8);
}

export function parsePax(data: Buffer): Record<string, string> {
  const records: Record<string, string> = {};
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    const length = parseInt(data.toString('utf8', at, space), 10);
    const record = data.toString('utf8', space + 1, at + length - 1);
    const eq = record.indexOf('=');
    records[record.slice(0, eq)] = record.slice(eq + 1);
    at += length;
  }
  return records;
}

/** Every entry header of an uncompressed tar, with its PAX records; stops at the first zero block. */
export function rawHeaders(tar: Buffer): RawHeader[] {
  const out: RawHeader[] = [];
  let at = 0;
  let pax: Record<string, string> = {};
  while (at + 512 <= tar.length) {
    const block = tar.subarray(at, at + 512);
    if (block.every((b) => b === 0)) break;
    const size = num(block, 124, 12);
    const typeflag = String.fromCharCode(block[156] ?? 0);
    const dataStart = at + 512;
    at = dataStart + Math.ceil(size / 512) * 512;
    if (typeflag === 'x') {
      pax = parsePax(tar.subarray(dataStart, dataStart + size));
      continue;
    }
    const prefix = str(block, 345, 155);
    const name = str(block, 0, 100);
    out.push({
      name: prefix === '' ? name : `${prefix}/${name}`,
      typeflag,
      mode: num(block, 100, 8),
      uid: num(block, 108, 8),
      gid: num(block, 116, 8),
      size,
      mtime: num(block, 136, 12),
      linkname: str(block, 157, 100),
      uname: str(block, 265, 32),
      gname: str(block, 297, 32),
      magic: block.toString('latin1', 257, 265),
      pax,
    });
    pax = {};
  }
  return out;
}
