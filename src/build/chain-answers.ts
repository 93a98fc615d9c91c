import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex, digestOf } from '../digest/index.js';
import type { Image } from '../image/index.js';
import { writeFileAtomic } from '../store/index.js';
import type { BuildSession } from './session.js';
// The key holds the question, and one question always has one answer type T.
import { MemoKind } from './memo.js';

const VERSION = 'v1';

/**
 * Answers to questions about an image's filesystem (does WORKDIR's directory exist, which layers make a COPY
 * --from source), kept in `<root>/cache/fs-answers/` by the image's layer chain and the question. The filesystem is
 * a function of the chain, so an answer never goes stale; a rebuild takes it instead of building the file index,
 * and a cached step reads nothing. A file that does not parse, or answers another question, is not used.
 */
export async function chainAnswer<T>(
  session: BuildSession,
  image: Image,
  question: string,
  compute: () => Promise<T>,
  keep: (answer: T) => boolean = () => true,
): Promise<T> {
  const chain = image.layers.map((l) => l.diffId).join(',');
  const id = digestHex(digestOf(`${VERSION}\n${chain}\n${question}`));
  return session.memo.get(new MemoKind<T>('fs-answer').key(id), async () => {
    const path = join(session.deps.store.root, 'cache', 'fs-answers', VERSION, id.slice(0, 2), id);
    try {
      const kept = JSON.parse(await readFile(path, 'utf8')) as { chain?: unknown; question?: unknown; answer?: T };
      if (kept.chain === chain && kept.question === question && kept.answer !== undefined) return kept.answer;
    } catch {
      // Missing or damaged: computed again below.
    }
    const answer = await compute();
    if (keep(answer)) await writeFileAtomic(path, JSON.stringify({ chain, question, answer })).catch(() => undefined);
    return answer;
  });
}
