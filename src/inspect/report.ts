import { formatPlatform, type Descriptor, type ImageConfig, type Index, type Manifest } from '../oci/index.js';

export interface HistoryRow {
  created?: string;
  createdBy: string;
  comment?: string;
  emptyLayer: boolean;
  /** The layer this step made, when it made one. */
  layer?: { digest: string; size: number; mediaType: string };
}

export interface InspectReport {
  name: string;
  /** Digest of what the name points at (the index, for multi-platform images). */
  digest: string;
  mediaType: string;
  manifestDigest: string;
  manifestMediaType: string;
  platform: string;
  /** Manifest, config and compressed layers together. */
  size: number;
  created?: string;
  author?: string;
  config: {
    env: string[];
    entrypoint: string[] | null;
    cmd: string[] | null;
    workingDir: string;
    user: string;
    exposedPorts: string[];
    volumes: string[];
    labels: Record<string, string>;
    stopSignal?: string;
    healthcheck?: unknown;
    onBuild?: string[];
    shell?: string[];
  };
  layers: Array<{ digest: string; size: number; mediaType: string; diffId?: string }>;
  history: HistoryRow[];
  /** For an index: every image it lists. */
  manifests?: Array<{ digest: string; mediaType: string; platform?: string; size: number }>;
  /** Where the image was read from (`local store`, `registry`, ...), set by the API. */
  source?: string;
}

export interface InspectInput {
  name: string;
  top: Descriptor;
  index?: Index | undefined;
  manifestDescriptor: Descriptor;
  manifest: Manifest;
  config: ImageConfig;
}

/** Summarizes an image: its identity, runtime config, and each history step beside the layer it made. */
export function buildInspectReport(input: InspectInput): InspectReport {
  const { manifest, config } = input;
  const c = config.config ?? {};
  const layerRows = manifest.layers.map((l, i) => {
    const row: InspectReport['layers'][number] = { digest: l.digest, size: l.size, mediaType: l.mediaType };
    const diffId = config.rootfs.diff_ids[i];
    if (diffId) row.diffId = diffId;
    return row;
  });
  const history: HistoryRow[] = [];
  let layerIndex = 0;
  for (const h of config.history ?? []) {
    const row: HistoryRow = { createdBy: h.created_by ?? '', emptyLayer: h.empty_layer === true };
    if (h.created) row.created = h.created;
    if (h.comment) row.comment = h.comment;
    if (!row.emptyLayer) {
      const layer = manifest.layers[layerIndex++];
      if (layer) row.layer = { digest: layer.digest, size: layer.size, mediaType: layer.mediaType };
    }
    history.push(row);
  }
  // Layers without history (images assembled by tools that skip it) still show up.
  for (; layerIndex < manifest.layers.length; layerIndex++) {
    const layer = manifest.layers[layerIndex]!;
    history.push({ createdBy: '', emptyLayer: false, layer: { digest: layer.digest, size: layer.size, mediaType: layer.mediaType } });
  }
  const report: InspectReport = {
    name: input.name,
    digest: input.top.digest,
    mediaType: input.top.mediaType,
    manifestDigest: input.manifestDescriptor.digest,
    manifestMediaType: input.manifestDescriptor.mediaType,
    platform: formatPlatform({ os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) }),
    size: input.manifestDescriptor.size + manifest.config.size + manifest.layers.reduce((s, l) => s + l.size, 0),
    config: {
      env: c.Env ?? [],
      entrypoint: c.Entrypoint ?? null,
      cmd: c.Cmd ?? null,
      workingDir: c.WorkingDir ?? '',
      user: c.User ?? '',
      exposedPorts: Object.keys(c.ExposedPorts ?? {}).sort(),
      volumes: Object.keys(c.Volumes ?? {}).sort(),
      labels: c.Labels ?? {},
    },
    layers: layerRows,
    history,
  };
  if (config.created) report.created = config.created;
  if (config.author) report.author = config.author;
  if (c.StopSignal) report.config.stopSignal = c.StopSignal;
  if (c.Healthcheck) report.config.healthcheck = c.Healthcheck;
  if (c.OnBuild?.length) report.config.onBuild = c.OnBuild;
  if (c.Shell?.length) report.config.shell = c.Shell;
  if (input.index) {
    report.manifests = input.index.manifests.map((m) => {
      const row: NonNullable<InspectReport['manifests']>[number] = { digest: m.digest, mediaType: m.mediaType, size: m.size };
      if (m.platform) row.platform = formatPlatform(m.platform);
      return row;
    });
  }
  return report;
}
