import { describe, expect, it } from 'vitest';
import { digestOf } from '../../src/digest/index.js';
import {
  addEmptyHistory,
  appendLayer,
  emptyImage,
  imageFromManifest,
  imagePlatform,
  serializeImage,
  setCreated,
  setFormat,
  updateContainerConfig,
  type Image,
  type ImageLayer,
} from '../../src/image/index.js';
import { MediaType, parseImageConfig, parseManifestOrIndex, parsePlatform } from '../../src/oci/index.js';

// A variant that survives normalization (arm64 v8 is written without one), to show it is carried.
const linux = { os: 'linux', architecture: 'arm', variant: 'v7' };

function layer(seed: string, mediaType: string = MediaType.OciLayerGzip): ImageLayer {
  return { descriptor: { mediaType, digest: digestOf(`blob ${seed}`), size: 10 + seed.length }, diffId: digestOf(`tar ${seed}`) };
}

/** A deep copy, to show a value was not touched. */
const snapshot = (image: Image): unknown => JSON.parse(JSON.stringify(image));

function sample(): Image {
  let image = emptyImage(linux);
  image = appendLayer(image, layer('a'), { created_by: 'COPY a /', created: '2024-01-01T00:00:00Z' });
  image = addEmptyHistory(image, { created_by: 'ENV X=1' });
  image = appendLayer(image, layer('b'), { created_by: 'COPY b /' });
  return updateContainerConfig(image, (c) => ({ ...c, Env: ['X=1'], Cmd: ['sh'] }));
}

describe('emptyImage', () => {
  it('has the platform, no layers, no history and an OCI format by default', () => {
    const image = emptyImage(linux);
    expect(image.config).toEqual({ architecture: 'arm', os: 'linux', variant: 'v7', config: {}, rootfs: { type: 'layers', diff_ids: [] }, history: [] });
    expect(image.layers).toEqual([]);
    expect(image.format).toBe('oci');
    expect(emptyImage({ os: 'linux', architecture: 'amd64' }, 'docker').format).toBe('docker');
    expect(imagePlatform(image)).toEqual(linux);
  });

  it('carries os.version and leaves out an absent variant', () => {
    const image = emptyImage({ os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348' });
    expect(image.config['os.version']).toBe('10.0.20348');
    expect('variant' in image.config).toBe(false);
    // linux/arm64 (and linux/arm64/v8) normalize to no variant, as BuildKit writes them.
    const arm64 = emptyImage(parsePlatform('linux/arm64/v8'));
    expect(arm64.config).toMatchObject({ os: 'linux', architecture: 'arm64' });
    expect('variant' in arm64.config).toBe(false);
  });
});

describe('mutators', () => {
  it('appendLayer returns a new image and leaves the old one as it was', () => {
    const base = emptyImage(linux);
    const before = snapshot(base);
    const next = appendLayer(base, layer('a'), { created_by: 'COPY a /', empty_layer: true });
    expect(snapshot(base)).toEqual(before);
    expect(next.layers).toHaveLength(1);
    expect(next.config.rootfs.diff_ids).toEqual([layer('a').diffId]);
    // A step that made a layer is never marked empty, whatever the caller passed.
    expect(next.config.history).toEqual([{ created_by: 'COPY a /' }]);
  });

  it('addEmptyHistory marks the step empty and leaves the old image alone', () => {
    const base = appendLayer(emptyImage(linux), layer('a'), { created_by: 'COPY' });
    const before = snapshot(base);
    const next = addEmptyHistory(base, { created_by: 'ENV A=1' });
    expect(snapshot(base)).toEqual(before);
    expect(next.config.history?.at(-1)).toEqual({ created_by: 'ENV A=1', empty_layer: true });
    expect(next.layers).toBe(base.layers);
  });

  it('two images derived from one base do not see each other', () => {
    const base = appendLayer(emptyImage(linux), layer('base'), { created_by: 'base' });
    const left = appendLayer(base, layer('left'), { created_by: 'left' });
    const right = updateContainerConfig(addEmptyHistory(base, { created_by: 'right' }), (c) => ({ ...c, User: 'nobody' }));
    expect(left.layers).toHaveLength(2);
    expect(right.layers).toHaveLength(1);
    expect(left.config.config?.User).toBeUndefined();
    expect(base.config.history).toHaveLength(1);
  });

  it('updateContainerConfig hands the updater a copy', () => {
    const base = updateContainerConfig(emptyImage(linux), () => ({ Env: ['A=1'] }));
    const before = snapshot(base);
    const next = updateContainerConfig(base, (c) => {
      c.User = 'root';
      return c;
    });
    expect(snapshot(base)).toEqual(before);
    expect(next.config.config).toEqual({ Env: ['A=1'], User: 'root' });
  });

  it('diff_ids line up with layers and non-empty history entries with layers', () => {
    const image = sample();
    expect(image.config.rootfs.diff_ids).toEqual(image.layers.map((l) => l.diffId));
    const history = image.config.history ?? [];
    expect(history).toHaveLength(3);
    expect(history.filter((h) => !h.empty_layer)).toHaveLength(image.layers.length);
  });

  it('setCreated sets and removes the created time', () => {
    const image = setCreated(sample(), '2024-05-01T00:00:00Z');
    expect(image.config.created).toBe('2024-05-01T00:00:00Z');
    expect('created' in setCreated(image, undefined).config).toBe(false);
    expect(setFormat(image, 'docker').format).toBe('docker');
    expect(image.format).toBe('oci');
  });
});

describe('serializeImage', () => {
  it('writes an OCI manifest whose config and layers match the image', () => {
    const image = sample();
    const { config, manifest } = serializeImage(image);
    expect(config.descriptor).toEqual({ mediaType: MediaType.OciConfig, digest: digestOf(config.bytes), size: config.bytes.byteLength });
    expect(manifest.descriptor).toEqual({ mediaType: MediaType.OciManifest, digest: digestOf(manifest.bytes), size: manifest.bytes.byteLength });
    const parsed = parseManifestOrIndex(manifest.bytes, 'manifest');
    expect(parsed.kind).toBe('manifest');
    if (parsed.kind !== 'manifest') return;
    expect(parsed.manifest.config).toEqual(config.descriptor);
    expect(parsed.manifest.layers).toEqual(image.layers.map((l) => l.descriptor));
    expect(parseImageConfig(config.bytes, 'config')).toEqual(image.config);
  });

  it('writes Docker media types and translates OCI layer types for docker format', () => {
    const image = setFormat(appendLayer(sample(), layer('plain', MediaType.OciLayer), { created_by: 'plain' }), 'docker');
    const { config, manifest } = serializeImage(image);
    expect(config.descriptor.mediaType).toBe(MediaType.DockerConfig);
    expect(manifest.descriptor.mediaType).toBe(MediaType.DockerManifest);
    const parsed = parseManifestOrIndex(manifest.bytes, 'manifest');
    if (parsed.kind !== 'manifest') throw new Error('expected a manifest');
    expect(parsed.mediaType).toBe(MediaType.DockerManifest);
    expect(parsed.manifest.config.mediaType).toBe(MediaType.DockerConfig);
    expect(parsed.manifest.layers.map((l) => l.mediaType)).toEqual([
      MediaType.DockerLayerGzip,
      MediaType.DockerLayerGzip,
      'application/vnd.docker.image.rootfs.diff.tar',
    ]);
    expect(parsed.manifest.layers.map((l) => l.digest)).toEqual(image.layers.map((l) => l.descriptor.digest));
  });

  it('translates Docker layer types back to OCI and leaves foreign layers alone', () => {
    const foreign = layer('foreign', MediaType.DockerLayerForeignGzip);
    let image = appendLayer(emptyImage(linux, 'docker'), layer('d', MediaType.DockerLayerGzip), { created_by: 'd' });
    image = setFormat(appendLayer(image, foreign, { created_by: 'f' }), 'oci');
    const parsed = parseManifestOrIndex(serializeImage(image).manifest.bytes, 'manifest');
    if (parsed.kind !== 'manifest') throw new Error('expected a manifest');
    expect(parsed.manifest.layers.map((l) => l.mediaType)).toEqual([MediaType.OciLayerGzip, MediaType.DockerLayerForeignGzip]);
  });

  it('keeps annotations in OCI manifests only', () => {
    const image: Image = { ...sample(), annotations: { 'org.example': 'yes' } };
    expect(JSON.parse(serializeImage(image).manifest.bytes.toString()).annotations).toEqual({ 'org.example': 'yes' });
    expect(JSON.parse(serializeImage(setFormat(image, 'docker')).manifest.bytes.toString()).annotations).toBeUndefined();
  });

  it('gives the same digests for the same image, and different ones for any change', () => {
    const a = serializeImage(sample());
    const b = serializeImage(sample());
    expect(b.manifest.bytes.equals(a.manifest.bytes)).toBe(true);
    expect(b.manifest.descriptor.digest).toBe(a.manifest.descriptor.digest);
    const c = serializeImage(setCreated(sample(), '2024-01-01T00:00:00Z'));
    expect(c.config.descriptor.digest).not.toBe(a.config.descriptor.digest);
    expect(c.manifest.descriptor.digest).not.toBe(a.manifest.descriptor.digest);
  });

  it('round-trips through imageFromManifest', () => {
    const image = setFormat(sample(), 'docker');
    const { config, manifest } = serializeImage(image);
    const parsed = parseManifestOrIndex(manifest.bytes, 'manifest');
    if (parsed.kind !== 'manifest') throw new Error('expected a manifest');
    const back = imageFromManifest(parsed.manifest, parseImageConfig(config.bytes, 'config'), parsed.mediaType);
    expect(back.format).toBe('docker');
    expect(back.layers.map((l) => l.diffId)).toEqual(image.layers.map((l) => l.diffId));
    expect(serializeImage(back).manifest.descriptor.digest).toBe(manifest.descriptor.digest);
  });
});

describe('createdTimestamp', () => {
  it('writes one format, to the second, for SOURCE_DATE_EPOCH and the clock alike', async () => {
    const { createdTimestamp } = await import('../../src/image/index.js');
    expect(createdTimestamp(1700000000, () => new Date(0))).toBe('2023-11-14T22:13:20Z');
    expect(createdTimestamp(undefined, () => new Date('2026-12-06T10:11:12.345Z'))).toBe('2026-12-06T10:11:12Z');
  });
});
