import { StrataError } from '../errors/index.js';
import { LocalStore } from '../store/index.js';
import { type StrataContext, familiarImageName, localImageName, openImage, parseImageLocation } from '../transports/index.js';

export interface ImageListEntry {
  /** Short name (`app:latest`). */
  name: string;
  fullName: string;
  digest: string;
  mediaType: string;
  size: number;
}

export async function listImages(ctx: StrataContext): Promise<ImageListEntry[]> {
  const store = await LocalStore.open(ctx.storeRoot);
  return (await store.list()).map((i) => ({
    name: familiarImageName(i.name),
    fullName: i.name,
    digest: i.descriptor.digest,
    mediaType: i.descriptor.mediaType,
    size: i.descriptor.size,
  }));
}

/** Removes a name from the local store and frees blobs no other image uses. */
export async function removeImage(name: string, ctx: StrataContext): Promise<{ removed: string; freedBytes: number }> {
  const store = await LocalStore.open(ctx.storeRoot);
  const full = localImageName(name);
  // Untag only what the name pointed at when looked up: a name moved meanwhile is looked up again.
  for (;;) {
    const descriptor = await store.lookup(full);
    if (!descriptor) {
      throw new StrataError('E_NOT_FOUND', `image "${name}" is not in the local store (${store.root})`, { hint: '`strata images` lists what is there' });
    }
    if (!(await store.layout.removeNameIf(full, descriptor.digest))) continue;
    // Untagging is the removal; the collector then frees what nothing else (a name, a build's lease) reaches.
    const { freedBytes } = await store.removeUnreachableFrom([descriptor]);
    return { removed: full, freedBytes };
  }
}

/** Gives an image that is in the local store (or any location) another local-store name. */
export async function tagImage(source: string, newName: string, ctx: StrataContext): Promise<{ name: string; digest: string }> {
  const target = localImageName(newName);
  const location = parseImageLocation(source);
  const store = await LocalStore.open(ctx.storeRoot);
  if (location.transport === 'local') {
    const opened = await openImage(location, { ...ctx, platform: undefined });
    try {
      await store.tag(target, opened.top.descriptor);
    } finally {
      await opened.close();
    }
    return { name: target, digest: opened.top.descriptor.digest };
  }
  throw new StrataError('E_USAGE', `tag works on local-store images; use \`strata copy ${source} ${newName}\` to bring another image in`);
}
