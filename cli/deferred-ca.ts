/**
 * The launcher (cli/strata, package.json "bin") starts Node without NODE_EXTRA_CA_CERTS, which Node 20
 * would read and parse at start, with every well-known root besides: ~35 ms before any code runs, spent
 * again by every build that verifies no certificate (a loopback or plain-HTTP registry). It hands the
 * variable over under this name instead.
 */
export const DEFERRED_CA_CERTS_VARIABLE = 'STRATA_DEFERRED_EXTRA_CA_CERTS';

/**
 * The CA file Node was started without, if the launcher deferred one. NODE_EXTRA_CA_CERTS is given back
 * to `env`, so the programs strata starts (credential helpers, RUN executors) see what the user set.
 */
export function takeDeferredCaCerts(env: NodeJS.ProcessEnv): string | undefined {
  const file = env[DEFERRED_CA_CERTS_VARIABLE];
  delete env[DEFERRED_CA_CERTS_VARIABLE];
  if (file === undefined || file === '') return undefined;
  env.NODE_EXTRA_CA_CERTS = file;
  return file;
}
