export type {
  CredentialStore,
  CredentialStoreOptions,
  FoundCredential,
  HelperResult,
  HelperRunner,
  RegistryCredential,
} from './types.js';
export { isIdentityToken } from './types.js';
export { createCredentialStore, credentialFiles, credentialLookup, dockerConfigPath } from './store.js';
export { configKeyFor, registryHostOf, sameRegistry, DOCKER_HUB_KEY } from './keys.js';
export { spawnHelperRunner, IDENTITY_TOKEN_USERNAME } from './helper.js';
