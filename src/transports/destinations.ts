import { StrataError } from '../errors/index.js';
import type { Digest } from '../digest/index.js';
import { descendToManifest, hostPlatform, parseManifestOrIndex, parseImageConfig, type Descriptor, type ParsedManifest } from '../oci/index.js';
import { writeDockerArchive, writeOciArchive, writeToLocalStore, writeToOciLayout, type ImageContent } from '../output/index.js';
import { LocalStore } from '../store/index.js';
import type { StrataContext } from './context.js';
import { familiarImageName, localImageName } from './names.js';
import { formatImageLocation, type ImageLocation } from './location.js';

export type RegistryWriter = (ref: string, content: ImageContent, ctx: StrataContext) => Promise<Descriptor>;

export interface WriteImageOptions {
  /** Pushes `docker://` destinations; wired in by the registry layer. */
  writeRegistry?: RegistryWriter;
  /** Names used inside a docker-archive when the location names none. */
  defaultRepoTags?: readonly string[];
}

/**
 * Writes an image (manifest or index plus its blobs) to any location. Every writer makes the image
 * visible last (index entry, tag, rename of the archive), so a failure leaves the old state.
 */
export async function writeImage(location: ImageLocation, content: ImageContent, ctx: StrataContext, options: WriteImageOptions = {}): Promise<Descriptor> {
  switch (location.transport) {
    case 'local': {
      const store = await LocalStore.open(ctx.storeRoot);
      try {
        await writeToLocalStore(store, content, [localImageName(location.name)], ctx.signal);
      } finally {
        store.release();
      }
      return content.descriptor;
    }
    case 'oci':
      await writeToOciLayout(location.dir, content, location.tag, { signal: ctx.signal });
      return content.descriptor;
    case 'oci-archive':
      await writeOciArchive(location.file, content, location.tag, `${ctx.storeRoot}/tmp`, { signal: ctx.signal });
      return content.descriptor;
    case 'docker-archive': {
      const manifestDescriptor = await singleManifest(content, formatImageLocation(location), ctx);
      const manifestBytes = await content.reader.readBlob(manifestDescriptor);
      const parsed = parseManifestOrIndex(manifestBytes, formatImageLocation(location), manifestDescriptor.mediaType);
      if (parsed.kind !== 'manifest') throw new StrataError('E_MANIFEST_INVALID', `${formatImageLocation(location)}: expected a manifest`);
      const configBytes = await content.reader.readBlob(parsed.manifest.config);
      const config = parseImageConfig(configBytes, `config ${parsed.manifest.config.digest}`);
      const repoTags = location.ref ? [familiarImageName(localImageName(location.ref))] : [...(options.defaultRepoTags ?? [])];
      await writeDockerArchive(location.file, {
        manifest: parsed.manifest,
        configBytes,
        diffIds: config.rootfs.diff_ids as Digest[],
        reader: content.reader,
        repoTags,
      });
      return manifestDescriptor;
    }
    case 'docker':
      if (!options.writeRegistry) throw new StrataError('E_TRANSPORT_INVALID', `${formatImageLocation(location)}: registry access is not available here`);
      return options.writeRegistry(location.ref, content, ctx);
  }
}

/** docker-archive holds one platform's image: an index is resolved to the requested platform. */
async function singleManifest(content: ImageContent, what: string, ctx: StrataContext): Promise<Descriptor> {
  const read = async (descriptor: Descriptor): Promise<{ descriptor: Descriptor; parsed: ParsedManifest }> => ({
    descriptor,
    parsed: parseManifestOrIndex(await content.reader.readBlob(descriptor), what, descriptor.mediaType),
  });
  const { node } = await descendToManifest(await read(content.descriptor), ctx.platform ?? hostPlatform(), what, read);
  return node.descriptor;
}
