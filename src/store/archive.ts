import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { StrataError, ioError } from '../errors/index.js';
import { tempPathFor } from './atomic.js';

/** A member's path inside an archive, refused when it could land outside the destination. */
function safeMemberPath(archive: string, name: string): string {
  const cleaned = posix.normalize(name.replace(/^\.\/+/, ''));
  if (name.startsWith('/') || cleaned === '..' || cleaned.startsWith('../') || cleaned.includes('\0')) {
    throw new StrataError('E_LAYER_UNSAFE', `${archive}: member "${name}" points outside the archive; refused`);
  }
  return cleaned.replace(/\/$/, '');
}

/**
 * Unpacks an image archive (oci-archive, docker-archive) into `dest`. Only regular files and
 * directories are taken: image archives have no reason to hold links or devices, and refusing them
 * keeps a hostile archive from writing anywhere but `dest`.
 */
export async function extractImageArchive(file: string, dest: string): Promise<void> {
  await mkdir(dest, { recursive: true });
  const extract = tar.extract();
  const source = createReadStream(file);
  const magic = await isGzipFile(file);
  const input = magic ? source.pipe(createGunzip()) : source;
  const asLayoutError = (cause: unknown): StrataError =>
    cause instanceof StrataError ? cause : new StrataError('E_LAYOUT_INVALID', `${file} is not a readable tar archive: ${(cause as Error).message}`, { cause });
  // Settled whatever happens below, so a refusal in the loop never leaves a rejection unhandled.
  const done = pipeline(input, extract).then(
    () => undefined,
    (cause: unknown) => asLayoutError(cause),
  );
  try {
    for await (const entry of extract) {
      const { name, type } = entry.header;
      const rel = safeMemberPath(file, name);
      const target = join(dest, rel);
      if (type === 'directory') {
        await mkdir(target, { recursive: true });
        entry.resume();
      } else if (type === 'file' || type === 'contiguous-file') {
        await mkdir(dirname(target), { recursive: true });
        await pipeline(entry, createWriteStream(target, { flags: 'wx', mode: 0o644 }));
      } else {
        entry.resume();
        throw new StrataError('E_LAYER_UNSAFE', `${file}: member "${name}" is a ${type}; image archives may hold only files and directories`);
      }
    }
  } catch (cause) {
    extract.destroy();
    source.destroy();
    await done;
    throw asLayoutError(cause);
  }
  const failure = await done;
  if (failure) throw failure;
}

/** Whether a file starts with the gzip magic bytes (archives and layers are told apart by content). */
export async function isGzipFile(file: string): Promise<boolean> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(file, 'r');
    const head = Buffer.alloc(2);
    const { bytesRead } = await handle.read(head, 0, 2, 0);
    return bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } catch (cause) {
    throw ioError('read', file, cause);
  } finally {
    await handle?.close();
  }
}

export interface ArchiveMember {
  /** Path inside the archive. */
  name: string;
  size: number;
  /** Opens the member's bytes; called once, when the member is written. */
  open: () => Promise<Readable>;
}

/**
 * Writes a tar with members sorted by name, parents first, every header fixed (mtime, owner, mode),
 * so the same content gives the same archive bytes. Goes to a temp name first, renamed at the end.
 */
export async function writeDeterministicTar(file: string, members: readonly ArchiveMember[], mtime = new Date(0)): Promise<void> {
  const sorted = [...members].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const dirs = new Set<string>();
  for (const m of sorted) for (let d = posix.dirname(m.name); d !== '.' && d !== '/'; d = posix.dirname(d)) dirs.add(d);
  const all = [...[...dirs].map((d) => ({ dir: d })), ...sorted.map((m) => ({ member: m }))].sort((a, b) => {
    const an = 'dir' in a ? `${a.dir}/` : a.member.name;
    const bn = 'dir' in b ? `${b.dir}/` : b.member.name;
    return an < bn ? -1 : an > bn ? 1 : 0;
  });
  const tmp = tempPathFor(file);
  const pack = tar.pack();
  const out = createWriteStream(tmp, { flags: 'wx' });
  const writing = pipeline(pack, out);
  try {
    for (const item of all) {
      const base = { mtime, uid: 0, gid: 0, uname: '', gname: '' };
      if ('dir' in item) {
        await new Promise<void>((resolve, reject) =>
          pack.entry({ ...base, name: `${item.dir}/`, type: 'directory', mode: 0o755 }, (e) => (e ? reject(e) : resolve())),
        );
        continue;
      }
      const m = item.member;
      const sink = pack.entry({ ...base, name: m.name, type: 'file', mode: 0o644, size: m.size });
      await pipeline(await m.open(), sink);
    }
    pack.finalize();
    await writing;
    await rename(tmp, file);
  } catch (cause) {
    pack.destroy();
    await writing.catch(() => undefined);
    await rm(tmp, { force: true });
    if (cause instanceof StrataError) throw cause;
    throw ioError('write', file, cause);
  }
}

/** Every file under `dir` as archive members named relative to it (for packing a layout). */
export async function directoryMembers(dir: string): Promise<ArchiveMember[]> {
  const out: ArchiveMember[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of await readdir(join(dir, rel))) {
      const relPath = rel ? `${rel}/${name}` : name;
      const info = await lstat(join(dir, relPath));
      if (info.isDirectory()) await walk(relPath);
      else if (info.isFile()) out.push({ name: relPath, size: info.size, open: async () => createReadStream(join(dir, relPath)) });
    }
  };
  await walk('');
  return out;
}
