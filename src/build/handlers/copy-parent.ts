import type { Digest } from '../../digest/index.js';
import { digestOf } from '../../digest/index.js';
import { canonicalJson } from '../../oci/index.js';
import { filesystemKey } from '../cache.js';
import { imageFilesystem } from '../imagefs.js';
import type { BuildSession } from '../session.js';
import type { StageState } from '../state.js';

/** The filesystem a COPY or ADD reads below it: the layer chain, or for --link only the user databases --chown reads. */
export async function copyParentKey(link: boolean, chownSpec: string | undefined, session: BuildSession, state: StageState): Promise<Digest> {
  if (!link) return filesystemKey(state.image);
  let users: string[] | null = null;
  if (chownSpec !== undefined && !isNumericOwner(chownSpec)) {
    const fs = await imageFilesystem(session, state.image, state.reader);
    users = ['/etc/passwd', '/etc/group'].map((p) => fs.content(p)?.toString('base64') ?? '');
  }
  return digestOf(canonicalJson({ link: true, users }));
}

export function isNumericOwner(spec: string): boolean {
  const [user = '', group] = spec.split(':');
  return /^\d+$/.test(user) && (group === undefined || /^\d+$/.test(group));
}
