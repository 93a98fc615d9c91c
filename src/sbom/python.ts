import { streamLines } from './lines.js';
import type { ScanWarnings } from './types.js';

/**
 * A Python distribution's core metadata (`*.dist-info/METADATA`, `*.egg-info/PKG-INFO`, or a
 * distutils `*.egg-info` file): RFC 822 headers up to the first blank line.
 */
export async function parsePythonMetadata(
  content: AsyncIterable<Buffer>,
  path: string,
  warnings: ScanWarnings,
): Promise<{ name: string; version: string; license?: string | undefined } | undefined> {
  const headers = new Map<string, string>();
  let lines = 0;
  for await (const line of streamLines(content)) {
    if (line === '' || ++lines > 5_000) break;
    if (line.startsWith(' ') || line.startsWith('\t')) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const key = line.slice(0, colon).toLowerCase();
    if (!headers.has(key)) headers.set(key, line.slice(colon + 1).trim());
  }
  const name = headers.get('name');
  const version = headers.get('version');
  if (!name || !version) {
    warnings.warn('python-metadata', `${path}: no Name and Version headers; skipped`);
    return undefined;
  }
  const expression = headers.get('license-expression');
  const license = headers.get('license');
  const classifier = undefined;
  return { name, version, license: expression || (license && license !== 'UNKNOWN' && license.length < 200 ? license : classifier) };
}

/** pip's normalized project name (PEP 503), which purls use. */
export function normalizePythonName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}
