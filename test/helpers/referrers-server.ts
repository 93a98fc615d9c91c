/**
 * A loopback registry with the OCI distribution 1.1 referrers API, in front of a real docker-registry
 * (distribution 2.8, which has none): requests go through to it; a manifest PUT whose body has a
 * `subject` is recorded and answered with `OCI-Subject`, and `GET /v2/<name>/referrers/<digest>`
 * answers the index of what was recorded, as the spec describes.
 */
import { createHash } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReferrersServer {
  host: string;
  url: string;
  /** Referrer descriptors recorded, by repository and subject digest. */
  referrers: Map<string, Array<Record<string, unknown>>>;
  /** Requests seen (method and path). */
  requests: string[];
  stop(): Promise<void>;
}

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export async function startReferrersServer(upstream: string): Promise<ReferrersServer> {
  const target = new URL(upstream);
  const referrers = new Map<string, Array<Record<string, unknown>>>();
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    void (async () => {
      const path = req.url ?? '/';
      requests.push(`${req.method} ${path}`);
      const listing = /^\/v2\/(.+)\/referrers\/(sha256:[0-9a-f]{64})(\?.*)?$/.exec(path);
      if (req.method === 'GET' && listing) {
        const manifests = referrers.get(`${listing[1]}@${listing[2]}`) ?? [];
        const index = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests });
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json', 'content-length': Buffer.byteLength(index) });
        res.end(index);
        return;
      }
      const data = await body(req);
      const put = /^\/v2\/(.+)\/manifests\/([^/?]+)$/.exec(path);
      let subject: string | undefined;
      if (req.method === 'PUT' && put) {
        try {
          const doc = JSON.parse(data.toString('utf8')) as {
            subject?: { digest?: string };
            artifactType?: string;
            annotations?: Record<string, string>;
            mediaType?: string;
            config?: { mediaType?: string };
          };
          if (doc.subject?.digest) {
            subject = doc.subject.digest;
            const key = `${put[1]}@${subject}`;
            const list = referrers.get(key) ?? [];
            const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
            list.push({
              mediaType: doc.mediaType,
              digest,
              size: data.length,
              artifactType: doc.artifactType ?? doc.config?.mediaType,
              ...(doc.annotations ? { annotations: doc.annotations } : {}),
            });
            referrers.set(key, list);
          }
        } catch {
          // not JSON: the registry will say so
        }
      }
      const headers = { ...req.headers, host: target.host };
      const up = request({ host: target.hostname, port: target.port, method: req.method, path, headers }, (upRes) => {
        const out = { ...upRes.headers };
        if (subject !== undefined && (upRes.statusCode === 201 || upRes.statusCode === 200)) out['oci-subject'] = subject;
        res.writeHead(upRes.statusCode ?? 502, out);
        upRes.pipe(res);
      });
      up.on('error', () => {
        res.writeHead(502);
        res.end();
      });
      up.end(data);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    referrers,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
