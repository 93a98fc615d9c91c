import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { StrataError, errnoCode, ioError } from '../errors/index.js';
import { MediaType, canonicalJson, checkDescriptor, type Descriptor, type Index } from '../oci/index.js';
import { writeFileAtomic } from './atomic.js';
import { FileBlobStore, type FileBlobStoreOptions } from './file-blob-store.js';
import { withLock } from './lock.js';
import { currentOwner } from './owner.js';

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
const LAYOUT_VERSION = '1.0.0';

/**
 * An OCI image layout directory: `oci-layout`, `index.json`, `blobs/`. The index is rewritten
 * atomically; blobs are verified before they appear.
 */
export class OciLayout {
  readonly blobs: FileBlobStore;

  private constructor(
    readonly dir: string,
    blobOptions: FileBlobStoreOptions,
  ) {
    this.blobs = new FileBlobStore(join(dir, 'blobs'), blobOptions);
  }

  /** Opens an existing layout; with `create`, makes an empty one when the directory has none. */
  static async open(dir: string, options: { create?: boolean; blobs?: FileBlobStoreOptions } = {}): Promise<OciLayout> {
    const layout = new OciLayout(dir, options.blobs ?? {});
    let text: string | undefined;
    try {
      text = await readFile(join(dir, 'oci-layout'), 'utf8');
    } catch (cause) {
      if (errnoCode(cause) !== 'ENOENT' || !options.create) {
        if (errnoCode(cause) === 'ENOENT') {
          const exists = await stat(dir).then(
            () => true,
            () => false,
          );
          throw new StrataError('E_NOT_FOUND', exists ? `${dir} is not an OCI image layout (no oci-layout file)` : `OCI layout ${dir} does not exist`);
        }
        throw ioError('read', join(dir, 'oci-layout'), cause);
      }
    }
    if (text === undefined) {
      await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
      // Two processes may create the same layout at once: the index is written only where there is
      // none (under the lock), or the second would empty what the first already named.
      await layout.updateIndex(async () => {
        const exists = await stat(join(dir, 'index.json')).then(
          () => true,
          () => false,
        );
        if (!exists) await layout.writeIndex({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] });
      });
      await writeFileAtomic(join(dir, 'oci-layout'), canonicalJson({ imageLayoutVersion: LAYOUT_VERSION }));
      return layout;
    }
    let version: unknown;
    try {
      version = (JSON.parse(text) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
    } catch {
      version = undefined;
    }
    if (typeof version !== 'string' || !version.startsWith('1.')) {
      throw new StrataError('E_LAYOUT_INVALID', `${join(dir, 'oci-layout')}: unsupported or missing imageLayoutVersion`);
    }
    return layout;
  }

  async readIndex(): Promise<Index> {
    const path = join(this.dir, 'index.json');
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (cause) {
      throw ioError('read', path, cause);
    }
    let index: Index;
    try {
      index = JSON.parse(text) as Index;
    } catch (cause) {
      throw new StrataError('E_LAYOUT_INVALID', `${path}: not valid JSON`, { cause });
    }
    if (index.schemaVersion !== 2 || !Array.isArray(index.manifests)) {
      throw new StrataError('E_LAYOUT_INVALID', `${path}: not an OCI image index`);
    }
    for (const [i, m] of index.manifests.entries()) checkDescriptor(m, `${path}: manifests[${i}]`);
    return index;
  }

  async writeIndex(index: Index): Promise<void> {
    await writeFileAtomic(join(this.dir, 'index.json'), canonicalJson(index));
  }

  /**
   * Finds the manifest (or index) that `name` points at: the entry whose ref.name annotation equals
   * it, or with no name the single entry of the layout.
   */
  async resolve(name: string | undefined): Promise<Descriptor> {
    const index = await this.readIndex();
    if (name === undefined || name === '') {
      if (index.manifests.length === 1) return index.manifests[0]!;
      if (index.manifests.length === 0) throw new StrataError('E_NOT_FOUND', `OCI layout ${this.dir} holds no image`);
      const names = index.manifests.map((m) => m.annotations?.[REF_NAME_ANNOTATION]).filter(Boolean);
      throw new StrataError('E_USAGE', `OCI layout ${this.dir} holds ${index.manifests.length} images; name one`, {
        hint: names.length ? `names: ${names.join(', ')}` : 'use oci:DIR@sha256:… to pick one by digest',
      });
    }
    const found =
      index.manifests.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === name) ??
      (name.startsWith('sha256:') ? index.manifests.find((m) => m.digest === name) : undefined);
    if (!found) throw new StrataError('E_NOT_FOUND', `no image named "${name}" in OCI layout ${this.dir}`);
    return found;
  }

  /**
   * Runs a read-modify-write of `index.json` under the layout's lock (`index.json.lock`), so writers
   * in other processes neither lose nor resurrect entries. Readers take no lock: the index is
   * replaced by rename, so they see the old version or the new. Only the write is locked, never a
   * build, so the lock is held for a read, a small write and an fsync.
   */
  async updateIndex<T>(change: () => Promise<T>): Promise<T> {
    return withLock(join(this.dir, 'index.json.lock'), { owner: currentOwner() }, change);
  }

  /** Points `name` (when given) at `descriptor`, replacing what it named before; unnamed entries are added once. */
  async setManifest(descriptor: Descriptor, name?: string): Promise<void> {
    await this.updateIndex(() => this.setManifestUnlocked(descriptor, name));
  }

  private async setManifestUnlocked(descriptor: Descriptor, name?: string): Promise<void> {
    const index = await this.readIndex();
    const entry: Descriptor = { ...descriptor };
    if (name !== undefined) entry.annotations = { ...(descriptor.annotations ?? {}), [REF_NAME_ANNOTATION]: name };
    const kept = index.manifests.filter((m) =>
      name === undefined
        ? !(m.digest === descriptor.digest && m.annotations?.[REF_NAME_ANNOTATION] === undefined)
        : m.annotations?.[REF_NAME_ANNOTATION] !== name,
    );
    await this.writeIndex({ ...index, manifests: [...kept, entry] });
  }

  /** Removes the entry called `name`; returns whether there was one. */
  async removeName(name: string): Promise<boolean> {
    return this.updateIndex(() => this.removeNameUnlocked(name));
  }

  /** Removes the entry called `name` if it still points at `digest` (a removal that lost a race to a new tag keeps it). */
  async removeNameIf(name: string, digest: string): Promise<boolean> {
    return this.updateIndex(async () => {
      const index = await this.readIndex();
      if (!index.manifests.some((m) => m.annotations?.[REF_NAME_ANNOTATION] === name && m.digest === digest)) return false;
      return this.removeNameUnlocked(name);
    });
  }

  private async removeNameUnlocked(name: string): Promise<boolean> {
    const index = await this.readIndex();
    const kept = index.manifests.filter((m) => m.annotations?.[REF_NAME_ANNOTATION] !== name);
    if (kept.length === index.manifests.length) return false;
    await this.writeIndex({ ...index, manifests: kept });
    return true;
  }
}
