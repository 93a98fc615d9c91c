import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex, digestOf, type Digest } from '../digest/index.js';
import type { Image } from '../image/index.js';
import { canonicalJson } from '../oci/index.js';
import { writeFileAtomic } from '../store/index.js';
import { imageContentKey } from './cache.js';

interface ImageRecord {
  created: string | null;
  historyCreated: Array<string | null>;
}

/**
 * Remembers the timestamps an image was first built with, so a rebuild in which every step was a
 * cache hit gives the same image (same config, same ID), as docker's does. Without it the `created`
 * times would come from the clock and move on every rebuild. Not used with SOURCE_DATE_EPOCH,
 * which fixes the times anyway.
 */
export class ImageRecords {
  constructor(private readonly dir: string) {}

  static forStore(storeRoot: string): ImageRecords {
    return new ImageRecords(join(storeRoot, 'cache', 'images'));
  }

  /** `image` with the recorded times when every step was replayed, else records its times. */
  async settle(image: Image, created: string, allReplayed: boolean): Promise<Image> {
    const key = recordKey(image);
    const path = join(this.dir, `${digestHex(key)}.json`);
    if (allReplayed) {
      const record = await readFile(path, 'utf8').then(
        (t) => JSON.parse(t) as ImageRecord,
        () => undefined,
      );
      const history = image.config.history ?? [];
      if (record && record.historyCreated.length === history.length) {
        const restored = history.map((h, i) => {
          const { created: _c, ...rest } = h;
          const at = record.historyCreated[i];
          return at === null || at === undefined ? rest : { ...rest, created: at };
        });
        const { created: _created, ...config } = image.config;
        return { ...image, config: { ...config, ...(record.created ? { created: record.created } : {}), history: restored } };
      }
    }
    const withCreated: Image = { ...image, config: { ...image.config, created } };
    const record: ImageRecord = { created, historyCreated: (image.config.history ?? []).map((h) => h.created ?? null) };
    await mkdir(this.dir, { recursive: true });
    await writeFileAtomic(path, canonicalJson(record));
    return withCreated;
  }
}

/** The image's content and the steps that made it, without any time. */
function recordKey(image: Image): Digest {
  const steps = (image.config.history ?? []).map((h) => [h.created_by ?? '', h.empty_layer === true, h.comment ?? '']);
  return digestOf(canonicalJson({ v: 1, content: imageContentKey(image), steps, author: image.config.author ?? null }));
}
