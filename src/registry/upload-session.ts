import { StrataError } from '../errors/index.js';
import type { Descriptor } from '../oci/index.js';
import { describeContext, type RegistryErrorContext } from './errors.js';
import { discardBody, type FetchResponse } from './http.js';
import { isRetryableError, isRetryableStatus } from './retry.js';
import type { RegistryTransport } from './transport.js';
import type { BlobSource } from './upload.js';

/** One blob upload in progress: what every request of it needs. */
export interface UploadRun {
  transport: RegistryTransport;
  repoPath: string;
  repository: string;
  descriptor: Descriptor;
  source: BlobSource;
  scopes: string[];
  ctx: RegistryErrorContext;
  signal: AbortSignal | undefined;
  monolithicMax: number;
  chunkSize: number | undefined;
  onBytes: ((sent: number) => void) | undefined;
}

/**
 * `Range: 0-<last>` from an upload status; returns the next offset. distribution 2.8 answers
 * `0-0` for an empty upload (it cannot say "nothing"), so `0-0` is read as 0. If one byte had in
 * fact arrived, the registry refuses the resumed range and the upload restarts: slower, never corrupt.
 */
export function parseUploadRange(value: string | null): number | undefined {
  const m = /^(?:bytes=)?0-(-?\d+)$/.exec(value?.trim() ?? '');
  if (m?.[1] === undefined) return undefined;
  const last = Number(m[1]);
  return last <= 0 ? 0 : last + 1;
}

export function isRestartable(error: unknown): boolean {
  if (error instanceof StrataError) return error.code === 'E_REGISTRY_UNREACHABLE' || (error as { restartable?: boolean }).restartable === true;
  return isRetryableError(error);
}

export function restartable(error: StrataError): StrataError {
  return Object.assign(error, { restartable: true });
}

export function locationOf(run: UploadRun, response: FetchResponse, previous: string | undefined): string {
  const location = response.headers.get('location');
  if (!location) {
    if (previous) return previous;
    throw new StrataError('E_REGISTRY', `${describeContext(run.ctx)}: the registry opened an upload without a Location`);
  }
  // Relative Locations are common; resolve against where we are.
  return new URL(location, previous ?? run.transport.url('/')).toString();
}

/** Where the registry thinks the upload is; a lost session makes the whole upload restart. */
export async function uploadStatus(run: UploadRun, location: string): Promise<{ location: string; offset: number }> {
  const response = await run.transport.send({ method: 'GET', url: location, scopes: run.scopes, ctx: run.ctx, signal: run.signal, followRedirects: false });
  if (response.status !== 204 && response.status !== 200) {
    const error = await run.transport.fail(response, run.ctx);
    throw response.status === 404 || isRetryableStatus(response.status) ? restartable(error) : error;
  }
  await discardBody(response);
  return { location: locationOf(run, response, location), offset: parseUploadRange(response.headers.get('range')) ?? 0 };
}
