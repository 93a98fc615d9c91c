import {
  BlobLocations,
  RegistryClient,
  createNodeFetch,
  proxySettingsFromEnv,
  type CredentialLookup,
  type DeadlineOptions,
  type FetchLike,
  type ProgressListener,
  type RetryOptions,
} from '../registry/index.js';
import { registryApiHost } from '../ref/index.js';
import { createCredentialStore, credentialLookup, type HelperRunner } from '../registry/credentials/index.js';
import { openFromRegistry } from './registry-open.js';
import type { RegistryConnection } from './registry-target.js';
import { pushToRegistry } from './registry-write.js';

export interface RegistryIoOptions {
  /** Where DOCKER_CONFIG, REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR and PATH (for credential helpers) come from. */
  env: Record<string, string | undefined>;
  homeDir: string;
  /** Registries (host[:port]) allowed over plain HTTP besides loopback ones. */
  insecureRegistries?: readonly string[] | undefined;
  /** PEM text of CA certificates to trust besides the system's (the CLI reads `--ca-cert FILE`). */
  caCert?: string | undefined;
  /** Injected HTTP; default one node-fetch adapter with keep-alive agents, shared by every registry. */
  fetch?: FetchLike | undefined;
  progress?: ProgressListener | undefined;
  now?: (() => Date) | undefined;
  retry?: RetryOptions | undefined;
  /** Connect, time-to-first-byte and body idle deadlines of every registry request (30 s each by default). */
  deadlines?: DeadlineOptions | undefined;
  /** Credential helpers runner (tests); default spawns `docker-credential-*` from the env's PATH. */
  runHelper?: HelperRunner | undefined;
  /** Blobs in flight at once per image; default 4. */
  concurrency?: number | undefined;
  /**
   * The store's record of where blobs were seen (`<store>/cache/blob-locations.json`): pushes mount from
   * repositories of the same registry that earlier runs pulled from or pushed to. None: this run's reads only.
   */
  blobLocationsFile?: string | undefined;
  /**
   * Registries (host[:port] as written in references) whose TLS certificates are not verified; `*` for all
   * (kaniko's --skip-tls-verify). Each is warned about once, when first used.
   */
  skipTlsVerify?: readonly string[] | undefined;
  /**
   * Registry mirrors (docker's `registry-mirrors`, kaniko's `--registry-mirror`), per registry as written in
   * references: pulls try them in order and fall back to the registry; pushes never use them.
   */
  registryMirrors?: Readonly<Record<string, readonly string[]>> | undefined;
  /** Where warnings go (the CLI: stderr). */
  warn?: ((message: string) => void) | undefined;
}

/** Wires the registry client into the API: `docker://` sources and destinations, shared connections and tokens. */
export function createRegistryIo(options: RegistryIoOptions): RegistryConnection {
  // Proxies from the environment, as docker and skopeo take them (never for loopback registries).
  const proxy = proxySettingsFromEnv(options.env);
  const skipped = new Set((options.skipTlsVerify ?? []).map((r) => (r === '*' ? r : registryApiHost(r))));
  const skipsVerify = (host: string): boolean => skipped.has('*') || skipped.has(host);
  const fetch =
    options.fetch ??
    createNodeFetch({
      caCert: options.caCert,
      connectTimeoutMs: options.deadlines?.connectMs,
      ...(proxy !== undefined ? { proxy } : {}),
      ...(skipped.size > 0 ? { skipVerify: skipsVerify } : {}),
    });
  const warned = new Set<string>();
  const credentials = createCredentialStore({
    env: options.env,
    homeDir: options.homeDir,
    ...(options.runHelper !== undefined ? { runHelper: options.runHelper } : {}),
  });
  const lookup = credentialLookup(credentials);
  const clock = options.now;
  const clients = new Map<string, RegistryClient>();
  const newClient = (registry: string, creds: CredentialLookup = lookup, retry: RetryOptions | undefined = options.retry): RegistryClient => {
    const host = registryApiHost(registry);
    if (skipsVerify(host) && !warned.has(host)) {
      warned.add(host);
      options.warn?.(`TLS certificate verification is off for ${registry}, so any server can pose as it`);
    }
    return new RegistryClient({
      registry,
      fetch,
      credentials: creds,
      insecureRegistries: options.insecureRegistries,
      retry,
      deadlines: options.deadlines,
      progress: options.progress,
      ...(clock !== undefined ? { now: () => clock().getTime() } : {}),
    });
  };
  const conn: RegistryConnection = {
    openRegistry: (ref, ctx, openOptions) => openFromRegistry(conn, ref, ctx, openOptions),
    writeRegistry: (ref, content, ctx) => pushToRegistry(conn, ref, content, ctx.signal),
    client(registry) {
      let client = clients.get(registry);
      if (!client) clients.set(registry, (client = newClient(registry)));
      return client;
    },
    newClient,
    credentials,
    fetch,
    progress: options.progress,
    concurrency: options.concurrency ?? 4,
    readFrom: new Map(),
    mirrors: new Map(Object.entries(options.registryMirrors ?? {}).filter(([, hosts]) => hosts.length > 0)),
    mirrorClient(host) {
      const key = `mirror:${host}`;
      let client = clients.get(key);
      if (!client) clients.set(key, (client = newClient(host, lookup, { ...options.retry, retries: 1 })));
      return client;
    },
    blobLocations: options.blobLocationsFile === undefined ? undefined : new BlobLocations(options.blobLocationsFile),
  };
  return conn;
}
