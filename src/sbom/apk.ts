import type { ApkRecord } from './findings.js';
import { MAX_PACKAGES_PER_FILE } from './dpkg.js';
import { streamLines, type LineStats } from './lines.js';
import type { ScanWarnings } from './types.js';

/** apk's database (`lib/apk/db/installed`): `K:value` lines, one blank-line-separated stanza per package. */
export async function parseApkInstalled(content: AsyncIterable<Buffer>, path: string, warnings: ScanWarnings): Promise<ApkRecord[]> {
  const out: ApkRecord[] = [];
  const stats: LineStats = { truncated: 0 };
  let current = new Map<string, string>();
  let malformed = 0;
  const flush = (): void => {
    if (current.size === 0) return;
    const name = current.get('P');
    const version = current.get('V');
    if (!name || !version) malformed++;
    else if (out.length < MAX_PACKAGES_PER_FILE) out.push({ name, version, arch: current.get('A'), license: current.get('L'), origin: current.get('o') });
    current = new Map();
  };
  for await (const line of streamLines(content, stats)) {
    if (line === '') {
      flush();
      continue;
    }
    if (line.length < 2 || line[1] !== ':') {
      malformed++;
      continue;
    }
    const key = line[0]!;
    if ('PVALo'.includes(key) && !current.has(key)) current.set(key, line.slice(2).trim());
  }
  flush();
  if (malformed > 0) warnings.warn('apk-installed', `${path}: ${malformed} malformed line(s) or stanza(s) skipped`);
  if (stats.truncated > 0) warnings.warn('oversized', `${path}: ${stats.truncated} line(s) over 64 KiB cut short`);
  return out;
}
