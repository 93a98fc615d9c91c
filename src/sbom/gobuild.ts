import type { GoModule } from './findings.js';
import type { ScanWarnings } from './types.js';

const MAGIC = Buffer.from('\xff Go buildinf:', 'latin1');
const ELF = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
/** A header, two varints and two strings: far more than any real module list needs. */
const MAX_INFO = 4 * 1024 * 1024;

export interface GoBuildInfo {
  goVersion: string;
  main: GoModule;
  deps: GoModule[];
}

/**
 * Looks through an ELF executable's bytes, as they stream, for the build info the Go linker embeds
 * (`debug/buildinfo`: the `\xff Go buildinf:` header, then since Go 1.18 the version and module
 * strings inline, each after a uvarint length). Returns undefined for a file that is not an ELF or not
 * a Go binary. Reads the file to its end or to the build info, never holding more than the info.
 */
export async function scanGoBinary(content: AsyncIterable<Buffer>, path: string, warnings: ScanWarnings): Promise<GoBuildInfo | undefined> {
  let first = true;
  let window: Buffer = Buffer.alloc(0);
  let collected: Buffer | undefined;
  for await (const chunk of content) {
    if (first) {
      first = false;
      if (chunk.length < 4 || !chunk.subarray(0, 4).equals(ELF)) return undefined;
    }
    if (collected !== undefined) {
      collected = Buffer.concat([collected, chunk]);
    } else {
      const buf = window.length > 0 ? Buffer.concat([window, chunk]) : chunk;
      let at = buf.indexOf(MAGIC);
      let partial = false;
      while (at >= 0) {
        if (buf.length - at < 16) {
          partial = true;
          break;
        }
        const ptrSize = buf[at + 14]!;
        if (ptrSize === 4 || ptrSize === 8) {
          collected = Buffer.from(buf.subarray(at));
          break;
        }
        at = buf.indexOf(MAGIC, at + 1);
      }
      if (collected === undefined) window = Buffer.from(partial && at >= 0 ? buf.subarray(at) : buf.subarray(Math.max(0, buf.length - (MAGIC.length - 1))));
    }
    if (collected !== undefined) {
      const parsed = tryParse(collected);
      if (parsed === 'need-more') {
        if (collected.length > MAX_INFO) {
          warnings.warn('go-buildinfo', `${path}: Go build info is corrupt (its lengths run past ${MAX_INFO} bytes); skipped`);
          return undefined;
        }
        continue;
      }
      if (parsed === 'old') {
        warnings.warn('go-buildinfo', `${path}: Go build info from before Go 1.18 (pointers, not inline strings) is not read; skipped`);
        return undefined;
      }
      if (parsed === 'corrupt') {
        warnings.warn('go-buildinfo', `${path}: Go build info is corrupt; skipped`);
        return undefined;
      }
      return parsed;
    }
  }
  if (collected !== undefined) warnings.warn('go-buildinfo', `${path}: Go build info is cut short by the end of the file; skipped`);
  return undefined;
}

function uvarint(buf: Buffer, at: number): { value: number; next: number } | 'need-more' | 'corrupt' {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (at + i >= buf.length) return 'need-more';
    const b = buf[at + i]!;
    value += (b & 0x7f) * scale;
    if (value > MAX_INFO) return 'corrupt';
    if ((b & 0x80) === 0) return { value, next: at + i + 1 };
    scale *= 128;
  }
  return 'corrupt';
}

function tryParse(buf: Buffer): GoBuildInfo | 'need-more' | 'old' | 'corrupt' {
  if (buf.length < 32) return 'need-more';
  const flags = buf[15]!;
  if ((flags & 2) === 0) return 'old';
  const vlen = uvarint(buf, 32);
  if (typeof vlen === 'string') return vlen;
  if (buf.length < vlen.next + vlen.value) return 'need-more';
  const goVersion = buf.subarray(vlen.next, vlen.next + vlen.value).toString('utf8');
  const mlen = uvarint(buf, vlen.next + vlen.value);
  if (typeof mlen === 'string') return mlen;
  if (buf.length < mlen.next + mlen.value) return 'need-more';
  if (!/^go[0-9][\w.+-]*/.test(goVersion) && !goVersion.startsWith('devel')) return 'corrupt';
  let modinfo = buf.subarray(mlen.next, mlen.next + mlen.value).toString('latin1');
  // The module info is wrapped in 16-byte sentinels (runtime/debug's modinfo markers).
  if (modinfo.length >= 33 && modinfo[modinfo.length - 17] === '\n') modinfo = modinfo.slice(16, -16);
  return parseModInfo(goVersion, Buffer.from(modinfo, 'latin1').toString('utf8'));
}

/** `runtime/debug.BuildInfo` text: `path`, `mod`, `dep` and `=>` (replacement of the line above) lines. */
export function parseModInfo(goVersion: string, text: string): GoBuildInfo {
  let mainPath = '';
  let main: GoModule | undefined;
  const deps: GoModule[] = [];
  for (const line of text.split('\n')) {
    const f = line.split('\t');
    if (f[0] === 'path' && f[1]) mainPath = f[1];
    else if (f[0] === 'mod' && f[1]) main = { path: f[1], version: f[2] || '(devel)' };
    else if (f[0] === 'dep' && f[1] && f[2]) deps.push({ path: f[1], version: f[2] });
    else if (f[0] === '=>' && f[1] && deps.length > 0) {
      const last = deps[deps.length - 1]!;
      // A replacement by a local directory has no version: the module stays listed as required.
      if (f[2]) deps[deps.length - 1] = { path: f[1], version: f[2] };
      else deps[deps.length - 1] = { ...last };
    }
  }
  return { goVersion, main: main ?? { path: mainPath || 'command-line-arguments', version: '(devel)' }, deps };
}
