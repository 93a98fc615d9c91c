import type { DebRecord } from './findings.js';
import { streamLines, type LineStats } from './lines.js';
import type { ScanWarnings } from './types.js';

/** More packages than any real distribution has: a status file past it is hostile or broken. */
export const MAX_PACKAGES_PER_FILE = 100_000;

const FIELDS = new Set(['package', 'status', 'version', 'architecture', 'source']);

/**
 * The installed packages of a dpkg status file (or a distroless `status.d/` file), read line by line:
 * stanzas separated by blank lines, `Field: value` with continuation lines (which none of the fields
 * kept here use). A package whose status is `not-installed` or `config-files` is not installed.
 */
export async function parseDpkgStatus(content: AsyncIterable<Buffer>, path: string, warnings: ScanWarnings): Promise<DebRecord[]> {
  const out: DebRecord[] = [];
  const stats: LineStats = { truncated: 0 };
  let fields = new Map<string, string>();
  let malformed = 0;
  let firstBad = 0;
  let lineNo = 0;
  const flush = (): void => {
    if (fields.size === 0) return;
    const name = fields.get('package');
    const version = fields.get('version');
    const status = fields.get('status');
    const state = status?.split(/\s+/)[2];
    if (!name || !version) {
      malformed++;
      if (firstBad === 0) firstBad = lineNo;
    } else if (state === undefined || (state !== 'not-installed' && state !== 'config-files')) {
      if (out.length < MAX_PACKAGES_PER_FILE) out.push({ name, version, arch: fields.get('architecture'), source: fields.get('source') });
      else if (out.length === MAX_PACKAGES_PER_FILE)
        warnings.warn('dpkg-too-many', `${path}: more than ${MAX_PACKAGES_PER_FILE} packages; the rest are not listed`);
    }
    fields = new Map();
  };
  for await (const line of streamLines(content, stats)) {
    lineNo++;
    if (line.trim() === '') {
      flush();
      continue;
    }
    if (line.startsWith(' ') || line.startsWith('\t')) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) {
      malformed++;
      if (firstBad === 0) firstBad = lineNo;
      continue;
    }
    const key = line.slice(0, colon).toLowerCase();
    if (FIELDS.has(key)) fields.set(key, line.slice(colon + 1).trim());
  }
  flush();
  if (malformed > 0) warnings.warn('dpkg-status', `${path}:${firstBad}: ${malformed} malformed line(s) or stanza(s) skipped`);
  if (stats.truncated > 0) warnings.warn('oversized', `${path}: ${stats.truncated} line(s) over 64 KiB cut short`);
  return out;
}

/** The `License:` values of a machine-readable debian/copyright file (DEP-5). */
export async function parseDebCopyright(content: AsyncIterable<Buffer>): Promise<string[]> {
  const licenses = new Set<string>();
  let lines = 0;
  for await (const line of streamLines(content)) {
    if (++lines > 20_000) break;
    const m = /^License:\s*(\S.*)$/i.exec(line);
    if (m) licenses.add(m[1]!.trim());
  }
  return [...licenses].sort();
}
