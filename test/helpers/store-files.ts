/**
 * What a command left in a store's scratch space: entries of `<root>/tmp` (whose `blobs` directory, where the
 * store writes blobs before they are verified, may stay behind empty), and temp files among the blobs.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export function storeLeftovers(root: string): string[] {
  const list = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir) : []);
  const tmp = list(join(root, 'tmp')).filter((name) => name !== 'blobs');
  const blobTemps = list(join(root, 'tmp', 'blobs')).map((name) => `tmp/blobs/${name}`);
  const stray = list(join(root, 'oci', 'blobs', 'sha256')).filter((name) => name.startsWith('.tmp'));
  return [...tmp.map((name) => `tmp/${name}`), ...blobTemps, ...stray];
}
