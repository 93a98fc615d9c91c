/** A login for one registry: a username and password, or an OAuth2 identity (refresh) token. */
export type RegistryCredential = { username: string; password: string } | { identityToken: string; username?: string };

export interface HelperResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `program` with `args`, writes `stdin` to it, and collects its output. */
export type HelperRunner = (program: string, args: string[], stdin: string) => Promise<HelperResult>;

export interface CredentialStoreOptions {
  /** The environment to read DOCKER_CONFIG, REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR and PATH from. */
  env: Record<string, string | undefined>;
  homeDir: string;
  /** How credential helpers are run; default: spawn from the env's PATH. */
  runHelper?: HelperRunner;
}

export interface FoundCredential {
  credential: RegistryCredential;
  /** Where it came from: a file path, or `docker-credential-NAME` for a helper. Never the secret. */
  source: string;
}

export interface CredentialStore {
  get(registryHost: string): Promise<FoundCredential | undefined>;
  login(registryHost: string, credential: RegistryCredential): Promise<{ path: string } | { helper: string }>;
  /** True when a stored credential was removed. */
  logout(registryHost: string): Promise<boolean>;
}

export function isIdentityToken(credential: RegistryCredential): credential is { identityToken: string; username?: string } {
  return 'identityToken' in credential;
}
