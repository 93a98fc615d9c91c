import type { Digest } from '../digest/index.js';
import {
  MediaType,
  canonicalJsonBytes,
  layerCompression,
  layerMediaType,
  type Annotations,
  type ContainerConfig,
  type Descriptor,
  type HistoryEntry,
  type ImageConfig,
  type Manifest,
  type Platform,
} from '../oci/index.js';
import { digestOf } from '../digest/index.js';

export interface ImageLayer {
  /** The blob as stored: compressed bytes, their digest and size. */
  readonly descriptor: Descriptor;
  /** sha256 of the uncompressed tar, the layer's identity in the config. */
  readonly diffId: Digest;
}

/**
 * An image as a value: config plus layers. Mutators return new values and never touch the old one,
 * so a base image can be shared by several derived images.
 */
export interface Image {
  readonly config: ImageConfig;
  readonly layers: readonly ImageLayer[];
  /** The manifest family to write: OCI, or Docker schema 2 for registries and tools that need it. */
  readonly format: 'oci' | 'docker';
  readonly annotations?: Annotations;
}

export function emptyImage(platform: Platform, format: 'oci' | 'docker' = 'oci'): Image {
  const config: ImageConfig = { architecture: platform.architecture, os: platform.os, config: {}, rootfs: { type: 'layers', diff_ids: [] }, history: [] };
  if (platform.variant) config.variant = platform.variant;
  if (platform['os.version']) config['os.version'] = platform['os.version'];
  return { config, layers: [], format };
}

/** Rebuilds an image value from a manifest and its parsed config (a base image). */
export function imageFromManifest(manifest: Manifest, config: ImageConfig, mediaType: string): Image {
  const diffIds = config.rootfs.diff_ids;
  const layers = manifest.layers.map((descriptor, i) => ({ descriptor, diffId: diffIds[i] ?? descriptor.digest }));
  const format = mediaType === MediaType.DockerManifest ? 'docker' : 'oci';
  return manifest.annotations ? { config, layers, format, annotations: manifest.annotations } : { config, layers, format };
}

export function imagePlatform(image: Image): Platform {
  const p: Platform = { architecture: image.config.architecture, os: image.config.os };
  if (image.config.variant) p.variant = image.config.variant;
  if (image.config['os.version']) p['os.version'] = image.config['os.version'];
  return p;
}

export function appendLayer(image: Image, layer: ImageLayer, history: HistoryEntry): Image {
  const config: ImageConfig = {
    ...image.config,
    rootfs: { type: 'layers', diff_ids: [...image.config.rootfs.diff_ids, layer.diffId] },
    history: [...(image.config.history ?? []), withoutEmptyFlag(history)],
  };
  return { ...image, config, layers: [...image.layers, layer] };
}

/** Adds a history entry for a step that changed only metadata (docker's `empty_layer: true`). */
export function addEmptyHistory(image: Image, history: HistoryEntry): Image {
  return { ...image, config: { ...image.config, history: [...(image.config.history ?? []), { ...history, empty_layer: true }] } };
}

export function updateContainerConfig(image: Image, update: (config: ContainerConfig) => ContainerConfig): Image {
  return { ...image, config: { ...image.config, config: update({ ...(image.config.config ?? {}) }) } };
}

export function setCreated(image: Image, created: string | undefined): Image {
  const { created: _old, ...rest } = image.config;
  return { ...image, config: created === undefined ? rest : { ...rest, created } };
}

export function setFormat(image: Image, format: 'oci' | 'docker'): Image {
  return { ...image, format };
}

function withoutEmptyFlag(history: HistoryEntry): HistoryEntry {
  const { empty_layer: _flag, ...rest } = history;
  return rest;
}

export interface SerializedImage {
  config: { descriptor: Descriptor; bytes: Buffer };
  manifest: { descriptor: Descriptor; bytes: Buffer };
}

/**
 * The config and manifest blobs of an image, as canonical JSON. The manifest's media types follow
 * `image.format`; layer media types are translated between the OCI and Docker families.
 */
export function serializeImage(image: Image): SerializedImage {
  const docker = image.format === 'docker';
  const configBytes = canonicalJsonBytes(image.config);
  const configDescriptor: Descriptor = {
    mediaType: docker ? MediaType.DockerConfig : MediaType.OciConfig,
    digest: digestOf(configBytes),
    size: configBytes.byteLength,
  };
  const layers = image.layers.map((l) => translateLayer(l.descriptor, image.format));
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: docker ? MediaType.DockerManifest : MediaType.OciManifest,
    config: configDescriptor,
    layers,
  };
  if (image.annotations && !docker) manifest.annotations = image.annotations;
  const manifestBytes = canonicalJsonBytes(manifest);
  const manifestDescriptor: Descriptor = {
    mediaType: manifest.mediaType!,
    digest: digestOf(manifestBytes),
    size: manifestBytes.byteLength,
  };
  return { config: { descriptor: configDescriptor, bytes: configBytes }, manifest: { descriptor: manifestDescriptor, bytes: manifestBytes } };
}

function translateLayer(d: Descriptor, format: 'oci' | 'docker'): Descriptor {
  const compression = layerCompression(d.mediaType);
  const foreign = d.mediaType.includes('foreign') || d.mediaType.includes('nondistributable');
  if (compression === undefined || foreign) return d;
  const mediaType = layerMediaType(compression, format);
  return mediaType === d.mediaType ? d : { ...d, mediaType };
}
