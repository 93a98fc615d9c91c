import { createServer } from 'node:net';

/**
 * A loopback port that was free a moment ago. Another process can take it before the caller binds
 * it, so callers that start a separate program retry on EADDRINUSE.
 */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('could not read the port of a loopback listener'));
        return;
      }
      const port = address.port;
      server.close(() => resolve(port));
    });
  });
}

/** Listens an http/net server on 127.0.0.1 with a kernel-chosen port and returns that port. */
export async function listenLoopback(server: {
  listen(port: number, host: string, cb: () => void): unknown;
  once(event: 'error', cb: (err: Error) => void): unknown;
  address(): unknown;
}): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address !== 'object' || !('port' in address)) {
    throw new Error('could not read the port of a loopback server');
  }
  return (address as { port: number }).port;
}
