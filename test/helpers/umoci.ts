/**
 * Reading an OCI image layout as an independent judge would: `umoci unpack` (as root, so owners are
 * kept) for the root filesystem, and the config blob straight from the layout's files.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** `umoci unpack --image DIR:TAG BUNDLE`; returns the bundle's rootfs directory. */
export async function umociUnpack(layoutDir: string, tag: string, bundle: string): Promise<string> {
  await execFileP('umoci', ['unpack', '--image', `${layoutDir}:${tag}`, bundle], { maxBuffer: 16 * 1024 * 1024 });
  return join(bundle, 'rootfs');
}

interface IndexJson {
  manifests: { digest: string; mediaType?: string; annotations?: Record<string, string> }[];
}

async function blob(layoutDir: string, digest: string): Promise<Buffer> {
  const [alg, hex] = digest.split(':');
  return readFile(join(layoutDir, 'blobs', alg ?? 'sha256', hex ?? ''));
}

/** The manifest tagged `tag` (org.opencontainers.image.ref.name) in an OCI layout, or the only one. */
export async function layoutManifest(
  layoutDir: string,
  tag = 'latest',
): Promise<{ digest: string; manifest: { config: { digest: string }; layers: { digest: string; mediaType: string }[] } }> {
  const index = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as IndexJson;
  const entry =
    index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag) ??
    (index.manifests.length === 1 ? index.manifests[0] : undefined);
  if (entry === undefined) throw new Error(`no manifest tagged ${tag} in ${layoutDir}/index.json`);
  return { digest: entry.digest, manifest: JSON.parse((await blob(layoutDir, entry.digest)).toString('utf8')) as never };
}

/** The image config (the JSON of the config blob, unconverted) of `tag` in an OCI layout. */
export async function layoutConfig(layoutDir: string, tag = 'latest'): Promise<Record<string, unknown>> {
  const { manifest } = await layoutManifest(layoutDir, tag);
  return JSON.parse((await blob(layoutDir, manifest.config.digest)).toString('utf8')) as Record<string, unknown>;
}

const DOCKER_TO_OCI: Record<string, string> = {
  'application/vnd.docker.distribution.manifest.v2+json': 'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.container.image.v1+json': 'application/vnd.oci.image.config.v1+json',
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.docker.image.rootfs.diff.tar': 'application/vnd.oci.image.layer.v1.tar',
};

/**
 * A copy of an OCI layout whose manifest of `tag` has docker media types, rewritten with the OCI
 * ones (same config and layer blobs), because umoci and skopeo's oci: transport read only OCI
 * manifests. Returns `layoutDir` itself when the manifest is already OCI.
 */
export async function withOciMediaTypes(layoutDir: string, tag = 'latest'): Promise<string> {
  const { manifest } = await layoutManifest(layoutDir, tag);
  const raw = manifest as unknown as { mediaType?: string; config: { mediaType: string }; layers: { mediaType: string }[] };
  if (raw.mediaType === undefined || !raw.mediaType.includes('docker')) return layoutDir;
  const out = `${layoutDir}-oci`;
  await cp(layoutDir, out, { recursive: true });
  const converted = {
    ...raw,
    mediaType: DOCKER_TO_OCI[raw.mediaType] ?? raw.mediaType,
    config: { ...raw.config, mediaType: DOCKER_TO_OCI[raw.config.mediaType] ?? raw.config.mediaType },
    layers: raw.layers.map((l) => ({ ...l, mediaType: DOCKER_TO_OCI[l.mediaType] ?? l.mediaType })),
  };
  const bytes = Buffer.from(JSON.stringify(converted));
  const hex = createHash('sha256').update(bytes).digest('hex');
  await writeFile(join(out, 'blobs', 'sha256', hex), bytes);
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: converted.mediaType, digest: `sha256:${hex}`, size: bytes.byteLength, annotations: { 'org.opencontainers.image.ref.name': tag } }],
  };
  await writeFile(join(out, 'index.json'), JSON.stringify(index));
  return out;
}
