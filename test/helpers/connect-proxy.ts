/**
 * A tiny CONNECT proxy on loopback, plain or behind TLS (an `https://` proxy), written with node:net and
 * node:tls: it reads the CONNECT request head, answers 200 and pipes bytes both ways. Hosts under
 * `.strata.test` resolve to 127.0.0.1, so tests can name loopback servers by a host the client proxies
 * (strata never proxies loopback addresses). Each tunnel is recorded with its Proxy-Authorization; with
 * `auth`, a request without exactly those credentials gets 407.
 */
import { connect as netConnect, createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { listenLoopback } from './ports.js';

export interface ConnectProxy {
  /** `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`. */
  url: string;
  /** `host:port Basic …` (or just `host:port`) per CONNECT, in order. */
  tunnels: string[];
  stop(): Promise<void>;
}

export interface ConnectProxyOptions {
  /** Serve TLS with this certificate and key (PEM). */
  tls?: { cert: Buffer; key: Buffer };
  /** `user:password` the proxy demands (407 otherwise). */
  auth?: string;
}

export async function startConnectProxy(options: ConnectProxyOptions = {}): Promise<ConnectProxy> {
  const tunnels: string[] = [];
  const sockets = new Set<Socket>();
  const onClient = (client: Socket): void => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      client.off('data', onData);
      tunnel(client, head.subarray(0, end).toString('latin1'), head.subarray(end + 4));
    };
    client.on('data', onData);
  };
  const tunnel = (client: Socket, request: string, rest: Buffer): void => {
    const [line = '', ...headerLines] = request.split('\r\n');
    const [method, authority = ''] = line.split(' ');
    const auth = headerLines
      .find((h) => h.toLowerCase().startsWith('proxy-authorization:'))
      ?.slice('proxy-authorization:'.length)
      .trim();
    tunnels.push(`${authority} ${auth ?? ''}`.trim());
    if (method !== 'CONNECT') {
      client.end('HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    if (options.auth !== undefined && auth !== `Basic ${Buffer.from(options.auth).toString('base64')}`) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nproxy-authenticate: Basic realm="test"\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    const colon = authority.lastIndexOf(':');
    const host = authority.slice(0, colon);
    const upstream = netConnect(Number(authority.slice(colon + 1)), host.endsWith('.strata.test') ? '127.0.0.1' : host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(rest);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
  };
  const server: Server = options.tls === undefined ? createNetServer(onClient) : createTlsServer({ ...options.tls }, onClient);
  const port = await listenLoopback(server);
  return {
    url: `${options.tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`,
    tunnels,
    stop: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
