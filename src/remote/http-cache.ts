import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex, digestOf, isDigest, type Digest } from '../digest/index.js';
import { writeFileAtomic } from '../store/index.js';
import { StrataError } from '../errors/index.js';
import { downloadUrl, type DownloadOptions } from './download.js';
import { redactUrl } from './source.js';

/** What a URL gave last time: its validators, for revalidation, and the digest of its bytes. */
interface UrlRecord {
  url: string;
  etag?: string | undefined;
  lastModified?: string | undefined;
  digest: Digest;
  size: number;
}

export interface FetchedUrl {
  /** The bytes, in the cache: read them, never change or move them. */
  path: string;
  digest: Digest;
  size: number;
  /** The server's Last-Modified, if it sent one (the file's mtime, as docker sets it). */
  lastModified: string | undefined;
  /** Whether the server answered 304 or a checksum found the bytes already here. */
  reused: boolean;
}

/**
 * Downloaded files by content under `<dir>/blobs/`, and per URL the validators the server gave, so the
 * next fetch of that URL sends If-None-Match/If-Modified-Since (as BuildKit does) and a 304 reuses the
 * bytes already here. With a checksum, bytes already here are used without asking the server at all.
 */
export class HttpDownloadCache {
  constructor(private readonly dir: string) {}

  private blobPath(digest: Digest): string {
    return join(this.dir, 'blobs', digestHex(digest));
  }

  private recordPath(url: string): string {
    return join(this.dir, 'urls', `${digestHex(digestOf(url))}.json`);
  }

  async fetch(url: string, options: Omit<DownloadOptions, 'dir' | 'validators'>): Promise<FetchedUrl> {
    await mkdir(join(this.dir, 'blobs'), { recursive: true });
    await mkdir(join(this.dir, 'urls'), { recursive: true });
    const record = await this.readRecord(url);
    if (options.checksum !== undefined) {
      const size = await sizeOf(this.blobPath(options.checksum));
      if (size !== undefined) {
        return {
          path: this.blobPath(options.checksum),
          digest: options.checksum,
          size,
          lastModified: record?.digest === options.checksum ? record.lastModified : undefined,
          reused: true,
        };
      }
    }
    const known = record !== undefined && (await sizeOf(this.blobPath(record.digest))) === record.size ? record : undefined;
    const validators =
      known !== undefined && (known.etag !== undefined || known.lastModified !== undefined)
        ? { etag: known.etag, lastModified: known.lastModified }
        : undefined;
    const result = await downloadUrl(url, { ...options, dir: join(this.dir, 'blobs'), validators });
    if (result.kind === 'not-modified') {
      // Only asked with validators, which only a known record gives.
      const kept = known;
      if (kept === undefined) throw new StrataError('E_INTERNAL', `${redactUrl(url)} answered 304 to a request without validators`);
      if (options.checksum !== undefined && kept.digest !== options.checksum) {
        // The server says unchanged, but what we hold is not what the checksum asks: fetch it whole.
        await rm(this.recordPath(url), { force: true });
        return this.fetch(url, options);
      }
      const next = { ...kept, etag: result.etag, lastModified: result.lastModified };
      await writeFileAtomic(this.recordPath(url), JSON.stringify(next));
      return { path: this.blobPath(kept.digest), digest: kept.digest, size: kept.size, lastModified: next.lastModified, reused: true };
    }
    const path = this.blobPath(result.digest);
    await rename(result.path, path);
    await writeFileAtomic(
      this.recordPath(url),
      JSON.stringify({ url, etag: result.etag, lastModified: result.lastModified, digest: result.digest, size: result.size } satisfies UrlRecord),
    );
    // The bytes this URL gave before go, so the cache holds each URL's latest only. Another URL that gave
    // the same bytes finds them gone and downloads them again.
    if (record !== undefined && record.digest !== result.digest && record.digest !== options.checksum) await rm(this.blobPath(record.digest), { force: true });
    return { path, digest: result.digest, size: result.size, lastModified: result.lastModified, reused: false };
  }

  private async readRecord(url: string): Promise<UrlRecord | undefined> {
    try {
      const parsed = JSON.parse(await readFile(this.recordPath(url), 'utf8')) as Partial<UrlRecord>;
      if (parsed.url !== url || typeof parsed.digest !== 'string' || !isDigest(parsed.digest) || typeof parsed.size !== 'number') return undefined;
      return {
        url,
        digest: parsed.digest,
        size: parsed.size,
        etag: typeof parsed.etag === 'string' ? parsed.etag : undefined,
        lastModified: typeof parsed.lastModified === 'string' ? parsed.lastModified : undefined,
      };
    } catch {
      // No record, or a damaged one: download as if never seen.
      return undefined;
    }
  }
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    const st = await stat(path);
    return st.isFile() ? st.size : undefined;
  } catch {
    return undefined;
  }
}
