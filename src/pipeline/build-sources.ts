import { join } from 'node:path';
import { downloadEvents, type BaseImage, type NamedContext } from '../build/index.js';
import { StrataError } from '../errors/index.js';
import type { Platform } from '../oci/index.js';
import type { FetchLike } from '../registry/index.js';
import { redactUrl } from '../remote/index.js';
import type { BlobReader, LocalStore } from '../store/index.js';
import { openImage, parseImageLocation, type OpenedImage, type RegistryIo, type StrataContext } from '../transports/index.js';
import type { AttestRecorder } from './attest.js';
import type { BuildImageOptions } from './build-options.js';
import { openBaseImage, openNamedContext } from './inputs.js';
import { openRemoteContext, type RemoteContext } from './remote-context.js';
import { sshSockets, type PreparedSecrets } from './secrets.js';

/**
 * What a build reads besides its context directory: base images (counted, so the summary can say when a
 * build never downloaded a base layer), named contexts, and remote contexts made local once for every
 * platform. `close` releases them all.
 */
export class BuildSources {
  /** Base layer blobs opened for any reason (a COPY's look at the base, RUN, an output elsewhere). */
  baseLayersOpened = 0;
  /** Whether a base came from a registry (so a registry-level build was possible). */
  registryBase = false;
  private readonly opened: OpenedImage[] = [];
  private readonly remotes = new Map<string, Promise<RemoteContext>>();

  constructor(
    private readonly options: BuildImageOptions,
    private readonly ctx: StrataContext,
    private readonly io: RegistryIo,
    private readonly store: LocalStore,
    private readonly secrets: PreparedSecrets,
    readonly fetch: FetchLike,
    private readonly attest: AttestRecorder,
  ) {}

  /** The build's own context when it is no directory (git, http(s) tar, stdin), made local. */
  mainContext(source: string): Promise<RemoteContext> {
    const opened = this.openRemoteContext(source, true);
    this.remotes.set('\0main', opened);
    return opened;
  }

  /** Opens a remote context (once per value) and records what it resolved to for provenance. */
  private openRemoteContext(source: string, main: boolean): Promise<RemoteContext> {
    const opened = openRemoteContext(source, {
      scratchDir: join(this.store.root, 'tmp'),
      fetch: this.fetch,
      ...(main ? { stdin: this.options.stdin } : {}),
      secrets: this.secrets.files,
      ssh: sshSockets(this.options.ssh ?? [], this.options.env ?? {}),
      env: this.options.env,
      signal: this.options.signal,
      onProgress: downloadEvents(this.options.events, main ? 'context' : '--build-context', source),
    });
    return opened.then((r) => {
      if (r.source !== undefined) this.attest.context(r.source);
      return r;
    });
  }

  /** `--build-context NAME=<git or http(s) URL>`: made local once for every platform, removed at the end. */
  readonly namedRemote = (value: string): Promise<string> => {
    let opened = this.remotes.get(value);
    if (opened === undefined) {
      opened = this.openRemoteContext(value, false);
      this.remotes.set(value, opened);
    }
    return opened.then((r) => {
      if (r.dockerfileText !== undefined) throw new StrataError('E_USAGE', `--build-context ${redactUrl(value)}: not a tar archive or git repository`);
      return r.dir;
    });
  };

  readonly openBase = async (ref: string, platform: Platform): Promise<BaseImage> => {
    const base = await openBaseImage(ref, { ...this.ctx, platform }, this.store, this.io);
    this.attest.base(ref, platform, base);
    return this.track(base);
  };

  readonly openLayout = async (dirAndTag: string, platform: Platform): Promise<BaseImage> => {
    const base = await openImage(parseImageLocation(`oci:${dirAndTag}`), { ...this.ctx, platform }, this.io);
    this.attest.base(dirAndTag, platform, base);
    return this.track(base);
  };

  /** A `--build-context` value (an image, a layout, a directory, a remote context) for a platform. */
  openNamed(name: string, value: string, platform: Platform, contextDir: string): Promise<NamedContext> {
    return openNamedContext(name, value, platform, this.openBase, this.openLayout, contextDir, this.namedRemote);
  }

  async close(): Promise<void> {
    await Promise.all(this.opened.map((o) => o.close()));
    await Promise.all(
      [...this.remotes.values()].map((r) =>
        r.then(
          (c) => c.cleanup(),
          () => undefined,
        ),
      ),
    );
  }

  private track(image: OpenedImage): BaseImage {
    this.opened.push(image);
    if (image.location.transport === 'docker') this.registryBase = true;
    const layerDigests = new Set(image.image.layers.map((l) => l.descriptor.digest));
    const reader: BlobReader = {
      openBlob: (d, o) => {
        if (layerDigests.has(d.digest)) this.baseLayersOpened++;
        return image.reader.openBlob(d, o);
      },
      readBlob: (d, o) => image.reader.readBlob(d, o),
    };
    return { image: image.image, reader, description: image.description };
  }
}
