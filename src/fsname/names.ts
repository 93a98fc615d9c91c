import { isUtf8 } from 'node:buffer';

/**
 * File names are bytes; strata's paths are strings. A name that is not UTF-8 (`bad\377\376utf8.txt`)
 * becomes a string losslessly the way Python's `surrogateescape` does it: each byte that is not part
 * of a valid UTF-8 sequence becomes the lone surrogate U+DC80..U+DCFF, which no valid UTF-8 decodes
 * to. Valid names are the strings they always were; `nameBytes` gives back the exact bytes, and
 * `fsPath` the argument an fs call needs (a Buffer only where the string holds such escapes).
 */

const LOW = 0xdc80;
const HIGH = 0xdcff;
const ESCAPED = /[\udc80-\udcff]/;

/** The name of these bytes as a string, escaping the bytes that are not UTF-8. */
export function decodeName(bytes: Uint8Array): string {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (isUtf8(buf)) return buf.toString('utf8');
  let out = '';
  for (let i = 0; i < buf.length; ) {
    const n = sequenceLength(buf, i);
    if (n === 0) {
      out += String.fromCharCode(LOW - 0x80 + buf[i]!);
      i += 1;
    } else {
      out += buf.toString('utf8', i, i + n);
      i += n;
    }
  }
  return out;
}

/** Length of the valid UTF-8 sequence at `i` (1-4), or 0 when the byte there starts none. */
function sequenceLength(b: Buffer, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (k: number): boolean => i + k < b.length && (b[i + k]! & 0xc0) === 0x80;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    const c1 = b[i + 1]!;
    if (c === 0xe0 && c1 < 0xa0) return 0; // overlong
    if (c === 0xed && c1 >= 0xa0) return 0; // a surrogate
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const c1 = b[i + 1]!;
    if (c === 0xf0 && c1 < 0x90) return 0; // overlong
    if (c === 0xf4 && c1 >= 0x90) return 0; // beyond U+10FFFF
    return 4;
  }
  return 0;
}

/** Whether a name holds escaped bytes (was not UTF-8). */
export function hasEscapedBytes(name: string): boolean {
  return ESCAPED.test(name);
}

/** The exact bytes of a name decoded by `decodeName`. */
export function nameBytes(name: string): Buffer {
  if (!hasEscapedBytes(name)) return Buffer.from(name, 'utf8');
  const parts: Buffer[] = [];
  let run = '';
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    if (code >= LOW && code <= HIGH && !(i > 0 && isHighSurrogate(name.charCodeAt(i - 1)))) {
      if (run) parts.push(Buffer.from(run, 'utf8'));
      run = '';
      parts.push(Buffer.of(code - LOW + 0x80));
    } else {
      run += name[i];
    }
  }
  if (run) parts.push(Buffer.from(run, 'utf8'));
  return Buffer.concat(parts);
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

/** A path for fs calls: the string itself, or its exact bytes when it holds escaped ones. */
export function fsPath(path: string): string | Buffer {
  return hasEscapedBytes(path) ? nameBytes(path) : path;
}

/** A name for messages: escaped bytes shown as `\xNN`. */
export function displayName(name: string): string {
  return hasEscapedBytes(name) ? name.replace(/[\udc80-\udcff]/g, (c) => `\\x${(c.charCodeAt(0) - LOW + 0x80).toString(16)}`) : name;
}

/** A name for messages, quoted as JSON quotes it, with escaped bytes shown as `\xNN`. */
export function quotedName(name: string): string {
  const quoted = JSON.stringify(name);
  return hasEscapedBytes(name) ? quoted.replace(/\\udc([89a-f][0-9a-f])/g, '\\x$1') : quoted;
}
