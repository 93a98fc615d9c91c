import { describe, expect, it } from 'vitest';
import { digestOf } from '../../src/digest/index.js';
import { buildInspectReport, formatBytes, renderInspectText, type InspectInput } from '../../src/inspect/index.js';
import { MediaType, type Descriptor, type ImageConfig, type Index, type Manifest } from '../../src/oci/index.js';

const layerA: Descriptor = { mediaType: MediaType.OciLayerGzip, digest: digestOf('layer a'), size: 1000 };
const layerB: Descriptor = { mediaType: MediaType.OciLayerGzip, digest: digestOf('layer b'), size: 3 * 1024 * 1024 };
const configDescriptor: Descriptor = { mediaType: MediaType.OciConfig, digest: digestOf('config'), size: 500 };
const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: configDescriptor, layers: [layerA, layerB] };
const manifestDescriptor: Descriptor = { mediaType: MediaType.OciManifest, digest: digestOf('manifest'), size: 400 };

const config: ImageConfig = {
  architecture: 'arm',
  os: 'linux',
  variant: 'v7',
  created: '2024-03-01T12:00:00Z',
  author: 'someone',
  config: {
    Env: ['PATH=/usr/bin', 'A=1'],
    Cmd: ['serve', '--port', '80'],
    WorkingDir: '/srv',
    User: 'app',
    ExposedPorts: { '80/tcp': {}, '443/tcp': {} },
    Volumes: { '/data': {} },
    Labels: { b: '2', a: '1' },
    StopSignal: 'SIGTERM',
  },
  rootfs: { type: 'layers', diff_ids: [digestOf('tar a'), digestOf('tar b')] },
  history: [
    { created: '2024-03-01T11:00:00Z', created_by: 'COPY a /' },
    { created_by: 'ENV A=1', empty_layer: true },
    { created_by: 'COPY b /', comment: 'second' },
    { created_by: 'CMD ["serve"]', empty_layer: true },
  ],
};

const input = (over: Partial<InspectInput> = {}): InspectInput => ({
  name: 'app:latest',
  top: manifestDescriptor,
  manifestDescriptor,
  manifest,
  config,
  ...over,
});

describe('buildInspectReport', () => {
  it('pairs each non-empty history step with the next layer', () => {
    const report = buildInspectReport(input());
    expect(report.history.map((h) => [h.createdBy, h.emptyLayer, h.layer?.digest])).toEqual([
      ['COPY a /', false, layerA.digest],
      ['ENV A=1', true, undefined],
      ['COPY b /', false, layerB.digest],
      ['CMD ["serve"]', true, undefined],
    ]);
    expect(report.history[0]!.created).toBe('2024-03-01T11:00:00Z');
    expect(report.history[2]!.comment).toBe('second');
  });

  it('lists layers with their diff IDs', () => {
    const report = buildInspectReport(input());
    expect(report.layers).toEqual([
      { ...layerA, diffId: config.rootfs.diff_ids[0] },
      { ...layerB, diffId: config.rootfs.diff_ids[1] },
    ]);
  });

  it('still shows every layer when the config has no history', () => {
    const { history: _h, ...bare } = config;
    const report = buildInspectReport(input({ config: bare }));
    expect(report.history).toEqual([
      { createdBy: '', emptyLayer: false, layer: { digest: layerA.digest, size: layerA.size, mediaType: layerA.mediaType } },
      { createdBy: '', emptyLayer: false, layer: { digest: layerB.digest, size: layerB.size, mediaType: layerB.mediaType } },
    ]);
  });

  it('adds rows for layers the history does not account for', () => {
    const report = buildInspectReport(input({ config: { ...config, history: [{ created_by: 'only one' }] } }));
    expect(report.history.map((h) => h.layer?.digest)).toEqual([layerA.digest, layerB.digest]);
    expect(report.history[1]!.createdBy).toBe('');
  });

  it('summarizes identity, platform, size and runtime config', () => {
    const report = buildInspectReport(input());
    expect(report).toMatchObject({
      name: 'app:latest',
      digest: manifestDescriptor.digest,
      manifestDigest: manifestDescriptor.digest,
      mediaType: MediaType.OciManifest,
      platform: 'linux/arm/v7',
      size: 400 + 500 + 1000 + 3 * 1024 * 1024,
      created: '2024-03-01T12:00:00Z',
      author: 'someone',
    });
    expect(report.config).toEqual({
      env: ['PATH=/usr/bin', 'A=1'],
      entrypoint: null,
      cmd: ['serve', '--port', '80'],
      workingDir: '/srv',
      user: 'app',
      exposedPorts: ['443/tcp', '80/tcp'],
      volumes: ['/data'],
      labels: { b: '2', a: '1' },
      stopSignal: 'SIGTERM',
    });
    expect(report.manifests).toBeUndefined();
  });

  it('has empty defaults for a config with no runtime part', () => {
    const { config: _c, ...bare } = config;
    const report = buildInspectReport(input({ config: bare }));
    expect(report.config).toEqual({ env: [], entrypoint: null, cmd: null, workingDir: '', user: '', exposedPorts: [], volumes: [], labels: {} });
  });

  it('lists the manifests of an index', () => {
    const indexDescriptor: Descriptor = { mediaType: MediaType.OciIndex, digest: digestOf('index'), size: 700 };
    const other: Descriptor = { mediaType: MediaType.OciManifest, digest: digestOf('other'), size: 410, platform: { os: 'linux', architecture: 'amd64' } };
    const attestation: Descriptor = { mediaType: MediaType.OciManifest, digest: digestOf('att'), size: 300 };
    const index: Index = {
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [{ ...manifestDescriptor, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } }, other, attestation],
    };
    const report = buildInspectReport(input({ top: indexDescriptor, index }));
    expect(report.digest).toBe(indexDescriptor.digest);
    expect(report.mediaType).toBe(MediaType.OciIndex);
    expect(report.manifestDigest).toBe(manifestDescriptor.digest);
    expect(report.manifests).toEqual([
      { digest: manifestDescriptor.digest, mediaType: MediaType.OciManifest, size: 400, platform: 'linux/arm/v7' },
      { digest: other.digest, mediaType: MediaType.OciManifest, size: 410, platform: 'linux/amd64' },
      { digest: attestation.digest, mediaType: MediaType.OciManifest, size: 300 },
    ]);
  });
});

describe('renderInspectText', () => {
  it('shows the key fields and one row per history step', () => {
    const text = renderInspectText(buildInspectReport(input()));
    for (const expected of [
      'Name:         app:latest',
      `Digest:       ${manifestDescriptor.digest}`,
      'Platform:     linux/arm/v7',
      'Created:      2024-03-01T12:00:00Z',
      'PATH=/usr/bin',
      'Cmd:',
      '["serve","--port","80"]',
      'WorkingDir: /srv',
      '443/tcp, 80/tcp',
      'a=1',
      'History (4 steps, 2 layers):',
      layerA.digest.slice(7, 19),
      'ENV A=1',
      '3.0 MiB',
    ]) {
      expect(text).toContain(expected);
    }
    expect(text.endsWith('\n')).toBe(true);
    expect(text.indexOf('a=1')).toBeLessThan(text.indexOf('b=2'));
    expect(text).not.toContain('Manifests:');
    expect(text).not.toContain('Entrypoint');
  });

  it('shows the manifest beside the index digest, and the manifests list', () => {
    const indexDescriptor: Descriptor = { mediaType: MediaType.OciIndex, digest: digestOf('index'), size: 700 };
    const index: Index = { schemaVersion: 2, manifests: [{ ...manifestDescriptor, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } }] };
    const text = renderInspectText(buildInspectReport(input({ top: indexDescriptor, index })));
    expect(text).toContain(`Manifest:     ${manifestDescriptor.digest} (${MediaType.OciManifest})`);
    expect(text).toContain('Manifests:');
    expect(text).toContain(`  ${manifestDescriptor.digest}  linux/arm/v7  400 B`);
  });

  it('formats byte sizes', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1024)).toBe('1.0 KiB');
    expect(formatBytes(15 * 1024)).toBe('15 KiB');
    expect(formatBytes(5 * 1024 ** 3)).toBe('5.0 GiB');
    expect(formatBytes(2 * 1024 ** 5)).toBe('2048 TiB');
  });
});
