import { extract, type Extract } from 'tar-stream';
import { StrataError } from '../errors/index.js';
import { decodeName } from '../fsname/index.js';

/**
 * The one tar parser every layer reader uses (readLayer, importTarLayer), set up so that names are bytes.
 *
 * tar names are bytes; a layer from GNU tar or Go's archive/tar may hold names that are not UTF-8
 * (`bad\377\376utf8.txt`) in the ustar name/prefix and linkname fields, in GNU long-name (`L`/`K`)
 * entries, or in PAX `path`/`linkpath` records (GNU tar puts the raw bytes there). tar-stream decodes the
 * ustar fields and GNU long names with its `filenameEncoding`, and PAX records always as UTF-8, which turns
 * such bytes into U+FFFD. So the parser decodes every name as latin1 (one char per byte, nothing lost): the
 * fields through `filenameEncoding`, the PAX name records by reading them again here from the record's
 * bytes. `tarName` then turns that byte string into strata's name (see fsname), once, where a header
 * becomes a LayerEntryHeader.
 */
export function tarExtract(): Extract {
  // tar-stream takes the option; its type declarations do not list it.
  const options: Parameters<typeof extract>[0] & { filenameEncoding: BufferEncoding } = { filenameEncoding: 'latin1' };
  const tar = extract(options);
  const parser: Extract & Partial<LongHeaderParser> = tar;
  const decode = parser._decodeLongHeader;
  if (typeof decode !== 'function') {
    // tar-stream is pinned; an upgrade that moved this hook must be noticed, not read names lossily.
    throw new StrataError('E_INTERNAL', 'the tar parser (tar-stream) has no _decodeLongHeader: names in PAX records cannot be read as bytes');
  }
  parser._decodeLongHeader = (body: Buffer): void => {
    decode.call(parser, body);
    const type = parser._header?.type;
    const records = type === 'pax-header' ? parser._pax : type === 'pax-global-header' ? parser._paxGlobal : undefined;
    if (records === null || records === undefined) return;
    for (const [key, value] of paxNameRecords(body)) records[key] = value.toString('latin1');
  };
  return tar;
}

/**
 * What tarExtract reaches into, as tar-stream 3.2.2 has it: the method given the body of a long-name or
 * PAX header, the header that announced it, and the records it keeps (the global ones merged into each
 * entry's, so fixing both before use is enough).
 */
interface LongHeaderParser {
  _decodeLongHeader: (body: Buffer) => void;
  _header: { type?: string | null } | null;
  _pax: Record<string, string> | null;
  _paxGlobal: Record<string, string> | null;
}

const NAME_KEYS: ReadonlySet<string> = new Set(['path', 'linkpath']);

/** The `path` and `linkpath` records of a PAX header body (`"%d %s=%s\n"` records), as their bytes. */
export function paxNameRecords(body: Buffer): Map<string, Buffer> {
  const found = new Map<string, Buffer>();
  let at = 0;
  while (at < body.length) {
    const space = body.indexOf(0x20, at);
    if (space < 0) break;
    const length = Number.parseInt(body.toString('latin1', at, space), 10);
    if (!(length > 0) || at + length > body.length) break;
    const record = body.subarray(space + 1, at + length - 1);
    const equals = record.indexOf(0x3d);
    if (equals < 0) break;
    const key = record.toString('latin1', 0, equals);
    if (NAME_KEYS.has(key)) found.set(key, record.subarray(equals + 1));
    at += length;
  }
  return found;
}

/** A name as tarExtract's parser gives it (one char per byte) as strata's name: UTF-8, other bytes escaped. */
export function tarName(raw: string): string {
  return decodeName(Buffer.from(raw, 'latin1'));
}
