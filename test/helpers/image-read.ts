/** Reads what a build wrote: the entries of a `type=tar` root filesystem, the config of a `tar=false` OCI layout. */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { extract } from 'tar-stream';

export interface TarEntry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  linkname: string | null;
  content: Buffer;
}

/** Every entry of a plain tar file, names without a leading `./` or trailing `/`. */
export async function tarEntries(path: string): Promise<Map<string, TarEntry>> {
  const out = new Map<string, TarEntry>();
  const tar = extract();
  const done = (async () => {
    for await (const entry of tar) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      const h = entry.header;
      const name = h.name.replace(/^\.\//, '').replace(/\/$/, '');
      out.set(name, {
        name,
        type: h.type ?? 'file',
        mode: h.mode ?? 0,
        uid: h.uid ?? 0,
        gid: h.gid ?? 0,
        mtime: Math.floor((h.mtime?.getTime() ?? 0) / 1000),
        linkname: h.linkname ?? null,
        content: Buffer.concat(chunks),
      });
    }
  })();
  createReadStream(path).pipe(tar);
  await done;
  return out;
}

/** The image config of the single manifest in an OCI layout directory. */
export async function layoutConfig(dir: string): Promise<{ config: Record<string, unknown>; history: { created_by?: string }[]; text: string }> {
  const blob = (d: string): Promise<string> => readFile(join(dir, 'blobs', ...d.split(':')), 'utf8');
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(await blob(index.manifests[0]!.digest)) as { config: { digest: string } };
  const text = await blob(manifest.config.digest);
  const parsed = JSON.parse(text) as { config: Record<string, unknown>; history: { created_by?: string }[] };
  return { ...parsed, text };
}
