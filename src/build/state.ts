import type { Image } from '../image/index.js';
import type { BlobReader } from '../store/index.js';

/** A stage as the build walks through it. The image value is replaced, never mutated. */
export interface StageState {
  image: Image;
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
   * The stage's private unpacked root filesystem, in step with the first `layers` layers of the
   * image: consecutive RUN steps reuse it, later layers are applied on top instead of unpacking again.
   */
  rootfs?: { dir: string; layers: number } | undefined;
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
