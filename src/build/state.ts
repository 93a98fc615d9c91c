import type { Image } from '../image/index.js';
import type { BlobReader } from '../store/index.js';
import { ConfigDraft } from './config-draft.js';
import type { CacheMiss } from './cache-explain.js';
import type { OverlayLayer } from '../layer/index.js';

/** A stage's RUN root between steps: a private copied tree, or the lower directories of an overlay. */
export type StageRoot = { kind: 'copy'; dir: string; layers: number } | { kind: 'overlay'; stack: OverlayStack; layers: number };

/**
 * A stage's overlay layers in its scratch directory `dir`: `base` (a link to the unpacked base chain, or an empty
 * directory), then one directory per later RUN step or run of other layers, all named relative to `dir`.
 */
export interface OverlayStack {
  dir: string;
  /** The lower directories, the top one first, with the names they have in `dir`. */
  lowers: Array<{ name: string; layer: OverlayLayer }>;
  /** How many directories were made in `dir` (names are never used twice). */
  made: number;
}

/** A stage as the build walks through it. The image value is replaced, never mutated. */
export interface StageState {
  /** The stage's image so far; reading it applies the pending metadata edits. */
  image: Image;
  /** The pending metadata edits, which metadata instructions make in place (see config-draft.ts). */
  metadata(): ConfigDraft;
  /** Where the image's layer blobs can be read. */
  reader: BlobReader;
  /** ARGs declared in this stage, with their values. */
  args: Map<string, string>;
  /** The SHELL for shell-form commands. */
  shell: string[];
  /** ENTRYPOINT set in this stage (which clears an inherited CMD, as docker does). */
  entrypointSet: boolean;
  cmdSet: boolean;
  /**
   * The stage's private root filesystem for RUN, in step with the first `layers` layers of the image:
   * consecutive RUN steps reuse it, later layers are applied on top instead of unpacking again. Either a
   * copied tree (`dir`) or, where overlayfs mounts, a stack of lower directories (see run-root.ts).
   */
  rootfs?: StageRoot | undefined;
  /** Why the step being run missed the cache, for its step event (set by the handler, taken by the engine). */
  miss?: CacheMiss | undefined;
  /** The last step of this stage (or the stage below it) that wrote a new layer, to name it when the parent changed. */
  lastWritten?: number | undefined;
  /**
   * Under --explain-cache, set once a step of this stage (or of the stage it starts from) missed: the
   * steps after it cannot be looked up, as their parent would be new. Says why, as a miss does.
   */
  dryMiss?: string | undefined;
  /** How many of the image's layers the stage's FROM image has: the chain RUN roots are kept unpacked for. */
  baseLayers?: number | undefined;
  /** Where the Dockerfile lives, for messages. */
  file: string;
  escapeToken: '\\' | '`';
}

export const DEFAULT_SHELL = ['/bin/sh', '-c'];

export function where(state: Pick<StageState, 'file'>, line: number): string {
  return `${state.file}:${line}`;
}

type StageFields = Omit<StageState, 'image' | 'metadata'>;

/**
 * A StageState whose metadata edits wait in a draft until something reads `image`. Assigning
 * `image` replaces it (every assignment is computed from a read, which applied the draft first).
 */
export class Stage implements StageState {
  private current: Image;
  private draft: ConfigDraft | undefined;
  // Declared, not initialized: the constructor takes every field of StageState at once, so a field added
  // there cannot be dropped here (the per-field copy this replaced lost baseLayers once).
  declare reader: BlobReader;
  declare args: Map<string, string>;
  declare shell: string[];
  declare entrypointSet: boolean;
  declare cmdSet: boolean;
  declare rootfs?: StageRoot | undefined;
  declare miss?: CacheMiss | undefined;
  declare lastWritten?: number | undefined;
  declare dryMiss?: string | undefined;
  declare baseLayers?: number | undefined;
  declare file: string;
  declare escapeToken: '\\' | '`';

  constructor(image: Image, fields: StageFields) {
    Object.assign(this, fields);
    this.current = image;
  }

  get image(): Image {
    if (this.draft) {
      this.current = this.draft.apply();
      this.draft = undefined;
    }
    return this.current;
  }

  set image(image: Image) {
    this.draft = undefined;
    this.current = image;
  }

  metadata(): ConfigDraft {
    this.draft ??= new ConfigDraft(this.current);
    return this.draft;
  }
}
