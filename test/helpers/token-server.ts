/**
 * A small token server for the distribution token flow, for tests only.
 *
 * - `GET /token?service=&scope=...` with Basic auth answers `{token, access_token, expires_in,
 *   issued_at}` (and `refresh_token` when `offline_token=true`). Wrong credentials: 401.
 *   Anonymous (no Authorization header): 200 with a token that grants NO access, so the registry
 *   answers 401 on every repository request; that is how "missing credentials" looks to a client.
 * - `POST /token` with the OAuth2 form: `grant_type=password` (username, password) or
 *   `grant_type=refresh_token` (refresh_token), `scope` space-separated, `access_type=offline`
 *   adds a `refresh_token`. Bad credentials or an unknown refresh token: 401 `invalid_grant`.
 *
 * Tokens are ES256 JWTs, signed with a P-256 key made at start; the signature is raw r||s. The
 * header names the key by libtrust `kid` (default), by `jwk`, or by `x5c` with the self-signed
 * certificate that is also the registry's `rootcertbundle`.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { execFile } from 'node:child_process';
import { writeFile, readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { listenLoopback } from './ports.js';

const execFileP = promisify(execFile);

export type TokenKeyHeader = 'kid' | 'jwk' | 'x5c';

export interface TokenAccess {
  type: string;
  name: string;
  actions: string[];
}

/** How the server misbehaves, for the next `times` token requests (default: until cleared). */
export type TokenServerFailure =
  | { kind: 'wrong-scope'; times?: number } // grants the requested actions on another repository
  | { kind: 'pull-only'; times?: number } // drops every action but pull
  | { kind: 'expired'; times?: number } // exp far enough in the past that the registry's 60 s leeway does not save it
  | { kind: 'status'; status: number; times?: number } // answers this status with an error body
  | { kind: 'no-post'; times?: number }; // POST answers 404, as registries without the OAuth2 form do

export interface TokenRequestRecord {
  method: 'GET' | 'POST';
  grantType?: string;
  /** The scopes as received, space-joined. */
  scope: string;
  scopes: string[];
  service?: string;
  account?: string;
  /** 'basic' or 'refresh_token' when credentials were presented, else 'anonymous'. */
  auth: 'basic' | 'password' | 'refresh_token' | 'anonymous';
  status: number;
  failure?: TokenServerFailure['kind'];
}

export interface TokenServer {
  url: string;
  /** The realm to put in the registry config: `${url}/token`. */
  realm: string;
  service: string;
  issuer: string;
  /** PEM certificate of the signing key: the registry's rootcertbundle. */
  certPath: string;
  /** The libtrust key ID of the signing key. */
  keyId: string;
  readonly issuedTokens: number;
  readonly requests: TokenRequestRecord[];
  setFailure(failure: TokenServerFailure | undefined): void;
  setTtlSeconds(seconds: number): void;
  /** Signs a token directly, bypassing HTTP, e.g. to hand a client a token for the wrong scope. */
  mintToken(options: { account?: string; access: TokenAccess[]; ttlSeconds?: number; expiredSecondsAgo?: number }): string;
  /** A refresh (identity) token for a user, as `access_type=offline` would return. */
  issueRefreshToken(account: string): string;
  stop(): Promise<void>;
}

export interface TokenServerOptions {
  dir: string;
  users: Record<string, string>;
  ttlSeconds?: number;
  service?: string;
  issuer?: string;
  keyHeader?: TokenKeyHeader;
  /**
   * Which of the requested actions an account gets (account undefined: anonymous). Default: a
   * known user gets every action asked for, anonymous callers get none.
   */
  permissions?: TokenPermissions;
}

export type TokenPermissions = (account: string | undefined, requested: TokenAccess) => string[];

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** libtrust's key ID: base32 of the first 240 bits of sha256(DER SPKI), 12 groups of 4, ':'-joined. */
export function libtrustKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ format: 'der', type: 'spki' });
  const hash = createHash('sha256').update(der).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of hash) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  // 240 bits is a multiple of 5: no padding, exactly 48 characters.
  return (out.match(/.{4}/g) ?? []).join(':');
}

/** Parses `type:name:actions`; the name may itself hold ':' (e.g. a port in a plugin name). */
export function parseScope(scope: string): TokenAccess | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last <= first) return undefined;
  const actions = scope
    .slice(last + 1)
    .split(',')
    .filter((a) => a !== '');
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const service = options.service ?? 'strata-test-registry';
  const issuer = options.issuer ?? 'strata-test-issuer';
  const keyHeader = options.keyHeader ?? 'kid';
  let ttlSeconds = options.ttlSeconds ?? 300;
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keyId = libtrustKeyId(publicKey);

  // distribution 2.8 reads rootcertbundle as X.509 certificates; node cannot make one, openssl can.
  const keyPath = join(options.dir, 'token-key.pem');
  const certPath = join(options.dir, 'token-cert.pem');
  await writeFile(keyPath, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  try {
    await execFileP('openssl', ['req', '-new', '-x509', '-key', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=strata-test-token-issuer']);
  } catch (err) {
    throw new Error(`openssl could not make the token certificate (Debian package 'openssl'): ${String(err)}`);
  }
  const certDer = Buffer.from((await readFile(certPath, 'utf8')).replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');

  const header: Record<string, unknown> = { typ: 'JWT', alg: 'ES256' };
  if (keyHeader === 'kid') header['kid'] = keyId;
  else if (keyHeader === 'x5c') header['x5c'] = [certDer.toString('base64')];
  else {
    const jwk = publicKey.export({ format: 'jwk' });
    header['jwk'] = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, kid: keyId };
  }
  const encodedHeader = b64url(JSON.stringify(header));

  let issuedTokens = 0;
  const requests: TokenRequestRecord[] = [];
  let failure: TokenServerFailure | undefined;
  let failuresLeft = Infinity;
  const refreshTokens = new Map<string, string>();

  function mintToken(opts: { account?: string; access: TokenAccess[]; ttlSeconds?: number; expiredSecondsAgo?: number }): string {
    const now = Math.floor(Date.now() / 1000);
    const ttl = opts.ttlSeconds ?? ttlSeconds;
    const exp = opts.expiredSecondsAgo !== undefined ? now - opts.expiredSecondsAgo : now + ttl;
    const claims = {
      iss: issuer,
      sub: opts.account ?? '',
      aud: service,
      exp,
      nbf: Math.min(now, exp) - 10,
      iat: Math.min(now, exp) - 10,
      jti: randomBytes(12).toString('hex'),
      access: opts.access,
    };
    const signingInput = `${encodedHeader}.${b64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(signingInput), { key: privateKey, dsaEncoding: 'ieee-p1363' });
    return `${signingInput}.${b64url(signature)}`;
  }

  function issueRefreshToken(account: string): string {
    const token = `rt-${randomBytes(18).toString('hex')}`;
    refreshTokens.set(token, account);
    return token;
  }

  function takeFailure(): TokenServerFailure | undefined {
    if (failure === undefined || failuresLeft <= 0) return undefined;
    failuresLeft -= 1;
    return failure;
  }

  function grant(account: string | undefined, scopes: string[], active: TokenServerFailure | undefined): TokenAccess[] {
    const permissions: TokenPermissions = options.permissions ?? ((who, requested) => (who === undefined ? [] : requested.actions));
    const access: TokenAccess[] = [];
    for (const scope of scopes) {
      const parsed = parseScope(scope);
      if (parsed === undefined) continue;
      parsed.actions = permissions(account, parsed);
      if (parsed.actions.length === 0) continue;
      if (active?.kind === 'wrong-scope') parsed.name = `${parsed.name}-not-this-one`;
      if (active?.kind === 'pull-only') parsed.actions = parsed.actions.filter((a) => a === 'pull');
      access.push(parsed);
    }
    return access;
  }

  function checkBasic(req: IncomingMessage): { account?: string; bad: boolean } {
    const value = req.headers.authorization;
    if (value === undefined) return { bad: false };
    const match = /^Basic\s+(.+)$/i.exec(value);
    if (match === null || match[1] === undefined) return { bad: true };
    const decoded = Buffer.from(match[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return { bad: true };
    const user = decoded.slice(0, colon);
    const pass = decoded.slice(colon + 1);
    if (options.users[user] !== undefined && options.users[user] === pass) return { account: user, bad: false };
    return { account: user, bad: true };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== '/token') {
      sendJson(res, 404, { errors: [{ code: 'NOT_FOUND', message: 'no such endpoint' }] });
      return;
    }
    const now = new Date();
    if (req.method === 'GET') {
      const scopes = url.searchParams
        .getAll('scope')
        .flatMap((s) => s.split(' '))
        .filter((s) => s !== '');
      const basic = checkBasic(req);
      const record: TokenRequestRecord = {
        method: 'GET',
        scope: scopes.join(' '),
        scopes,
        auth: req.headers.authorization === undefined ? 'anonymous' : 'basic',
        status: 200,
      };
      const svc = url.searchParams.get('service');
      if (svc !== null) record.service = svc;
      if (basic.account !== undefined) record.account = basic.account;
      requests.push(record);
      const active = takeFailure();
      if (active !== undefined) record.failure = active.kind;
      if (active?.kind === 'status') {
        record.status = active.status;
        sendJson(res, active.status, { errors: [{ code: 'UNAVAILABLE', message: 'injected token server failure' }] });
        return;
      }
      if (basic.bad) {
        record.status = 401;
        sendJson(
          res,
          401,
          { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] },
          {
            'www-authenticate': 'Basic realm="strata-test-token"',
          },
        );
        return;
      }
      const token = mintToken({
        ...(basic.account !== undefined ? { account: basic.account } : {}),
        access: grant(basic.account, scopes, active),
        ...(active?.kind === 'expired' ? { expiredSecondsAgo: 600 } : {}),
      });
      issuedTokens += 1;
      const body: Record<string, unknown> = { token, access_token: token, expires_in: ttlSeconds, issued_at: now.toISOString() };
      if (basic.account !== undefined && url.searchParams.get('offline_token') === 'true') {
        body['refresh_token'] = issueRefreshToken(basic.account);
      }
      sendJson(res, 200, body);
      return;
    }
    if (req.method === 'POST') {
      const form = new URLSearchParams(await readBody(req));
      const scopes = form
        .getAll('scope')
        .flatMap((s) => s.split(' '))
        .filter((s) => s !== '');
      const grantType = form.get('grant_type') ?? '';
      const record: TokenRequestRecord = {
        method: 'POST',
        grantType,
        scope: scopes.join(' '),
        scopes,
        auth: grantType === 'password' ? 'password' : grantType === 'refresh_token' ? 'refresh_token' : 'anonymous',
        status: 200,
      };
      const svc = form.get('service');
      if (svc !== null) record.service = svc;
      requests.push(record);
      const active = takeFailure();
      if (active !== undefined) record.failure = active.kind;
      if (active?.kind === 'no-post') {
        record.status = 404;
        sendJson(res, 404, { errors: [{ code: 'NOT_FOUND', message: 'POST is not supported here' }] });
        return;
      }
      if (active?.kind === 'status') {
        record.status = active.status;
        sendJson(res, active.status, { errors: [{ code: 'UNAVAILABLE', message: 'injected token server failure' }] });
        return;
      }
      let account: string | undefined;
      if (grantType === 'password') {
        const user = form.get('username') ?? '';
        record.account = user;
        if (options.users[user] !== undefined && options.users[user] === form.get('password')) account = user;
      } else if (grantType === 'refresh_token') {
        account = refreshTokens.get(form.get('refresh_token') ?? '');
        if (account !== undefined) record.account = account;
      } else {
        record.status = 400;
        sendJson(res, 400, { error: 'unsupported_grant_type' });
        return;
      }
      if (account === undefined) {
        record.status = 401;
        sendJson(res, 401, { error: 'invalid_grant', error_description: 'bad credentials' });
        return;
      }
      const token = mintToken({
        account,
        access: grant(account, scopes, active),
        ...(active?.kind === 'expired' ? { expiredSecondsAgo: 600 } : {}),
      });
      issuedTokens += 1;
      const body: Record<string, unknown> = {
        access_token: token,
        scope: scopes.join(' '),
        expires_in: ttlSeconds,
        issued_at: now.toISOString(),
      };
      if (form.get('access_type') === 'offline') {
        body['refresh_token'] = grantType === 'refresh_token' ? (form.get('refresh_token') ?? '') : issueRefreshToken(account);
      }
      sendJson(res, 200, body);
      return;
    }
    sendJson(res, 405, { errors: [{ code: 'UNSUPPORTED', message: 'method not allowed' }] });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { errors: [{ code: 'UNKNOWN', message: String(err) }] });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 1000;
  const port = await listenLoopback(server);
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    realm: `${url}/token`,
    service,
    issuer,
    certPath,
    keyId,
    get issuedTokens() {
      return issuedTokens;
    },
    requests,
    setFailure(next) {
      failure = next;
      failuresLeft = next?.times ?? Infinity;
    },
    setTtlSeconds(seconds) {
      ttlSeconds = seconds;
    },
    mintToken,
    issueRefreshToken,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
