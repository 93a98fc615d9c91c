/**
 * Git servers on loopback for `ADD <git>` and git contexts: `git daemon` (git://) and `git http-backend`
 * (smart HTTP) behind a small Node CGI bridge that can require a token, as a forge does. Repositories are
 * made with fixed author and committer dates so commits are reproducible.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, listenLoopback } from './ports.js';

const run = promisify(execFile);

export async function git(cwd: string, args: string[], date = '2024-01-02T03:04:05Z'): Promise<string> {
  const env = {
    PATH: process.env.PATH,
    HOME: cwd,
    GIT_AUTHOR_NAME: 't',
    GIT_AUTHOR_EMAIL: 't@example.com',
    GIT_COMMITTER_NAME: 't',
    GIT_COMMITTER_EMAIL: 't@example.com',
    GIT_AUTHOR_DATE: date,
    GIT_COMMITTER_DATE: date,
    GIT_CONFIG_NOSYSTEM: '1',
  };
  const { stdout } = await run('git', args, { cwd, env });
  return stdout.trim();
}

/** A non-bare repository at `dir` on branch main; returns a function that commits files (path → content, null deletes). */
export async function makeRepo(
  dir: string,
): Promise<(files: Record<string, string | { content: string; mode: number }>, date: string, message?: string) => Promise<string>> {
  await mkdir(dir, { recursive: true });
  await git(dir, ['init', '-q', '-b', 'main']);
  return async (files, date, message = 'commit') => {
    for (const [path, spec] of Object.entries(files)) {
      const abs = join(dir, path);
      await mkdir(dirname(abs), { recursive: true });
      await writeFile(abs, typeof spec === 'string' ? spec : spec.content, { mode: typeof spec === 'string' ? 0o644 : spec.mode });
    }
    await git(dir, ['add', '-A']);
    await git(dir, ['commit', '-q', '-m', message], date);
    return git(dir, ['rev-parse', 'HEAD']);
  };
}

export interface GitServer {
  url: string;
  /** Requests the HTTP bridge saw, with their Authorization header. */
  requests: { path: string; authorization: string | undefined; status: number }[];
  stop(): Promise<void>;
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.end();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`);
}

/** `git daemon` exporting every repository under `base` as git://127.0.0.1:PORT/<name>. */
export async function startGitDaemon(base: string): Promise<GitServer> {
  const port = await freePort();
  const child: ChildProcess = spawn('git', ['daemon', '--reuseaddr', '--export-all', `--base-path=${base}`, `--port=${port}`, '--listen=127.0.0.1', base], {
    stdio: 'ignore',
  });
  await waitForPort(port);
  return {
    url: `git://127.0.0.1:${port}`,
    requests: [],
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

/**
 * Smart HTTP through `git http-backend` as CGI. With `token`, every request must carry
 * `Authorization: basic base64(x-access-token:TOKEN)` (what BuildKit sends for GIT_AUTH_TOKEN), else 401.
 */
export async function startGitHttp(base: string, options: { token?: string } = {}): Promise<GitServer> {
  const requests: GitServer['requests'] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const record = { path: url.pathname, authorization: req.headers.authorization, status: 0 };
    requests.push(record);
    if (
      options.token !== undefined &&
      req.headers.authorization?.toLowerCase() !== `basic ${Buffer.from(`x-access-token:${options.token}`).toString('base64')}`.toLowerCase()
    ) {
      record.status = 401;
      res.writeHead(401, { 'www-authenticate': 'Basic realm="git"', 'content-length': '0' });
      res.end();
      return;
    }
    const cgi = spawn('git', ['http-backend'], {
      env: {
        PATH: process.env.PATH,
        GIT_PROJECT_ROOT: base,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: url.pathname,
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: req.method ?? 'GET',
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        REMOTE_ADDR: '127.0.0.1',
        GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
        ...(req.headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: String(req.headers['content-encoding']) } : {}),
      },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    req.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let started = false;
    cgi.stdout.on('data', (chunk: Buffer) => {
      if (started) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      started = true;
      const headers: Record<string, string> = {};
      let status = 200;
      for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
        const i = line.indexOf(':');
        const k = line.slice(0, i).trim();
        const v = line.slice(i + 1).trim();
        if (k.toLowerCase() === 'status') status = Number(v.split(' ')[0]);
        else headers[k] = v;
      }
      record.status = status;
      res.writeHead(status, headers);
      res.write(head.subarray(end + 4));
    });
    cgi.on('close', () => res.end());
  });
  const port = await listenLoopback(server);
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
