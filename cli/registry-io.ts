import type { RegistryIo, StrataContext } from '../src/index.js';
import type { CliContext } from './context.js';

/** Registry access for commands that read or write `docker://` images. */
export function registryIo(_cli: CliContext, _api: StrataContext): RegistryIo {
  return {};
}
