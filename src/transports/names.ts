import { formatReference, familiarReference, parseImageReference, referenceWithTag } from '../ref/index.js';

/** The name an image gets in the local store: the full reference, `:latest` when no tag was given. */
export function localImageName(text: string): string {
  const ref = parseImageReference(text);
  if (ref.digest) return formatReference(ref);
  return formatReference(ref.tag ? ref : referenceWithTag(ref, 'latest'));
}

/** The short form people type and docker prints: `app:latest`, `ghcr.io/o/app:1`. */
export function familiarImageName(fullName: string): string {
  try {
    return familiarReference(parseImageReference(fullName));
  } catch {
    return fullName;
  }
}
