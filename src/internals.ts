/**
 * Everything strata's modules export, for the CLI and for tools that need the parts under the commands
 * (`strata/internals`). Unlike the public API (src/index.ts), none of it is promised to stay as it is.
 */
export * from './errors/index.js';
export * from './fsname/index.js';
export * from './digest/index.js';
export * from './oci/index.js';
export * from './ref/index.js';
export * from './registry/index.js';
export * from './registry/credentials/index.js';
export * from './dockerfile/index.js';
export * from './store/index.js';
export * from './layer/index.js';
export * from './image/index.js';
export * from './output/index.js';
export * from './inspect/index.js';
export * from './context/index.js';
export * from './exec/index.js';
export * from './remote/index.js';
export * from './diff/index.js';
export * from './attest/index.js';
export * from './sbom/index.js';
export * from './build/index.js';
export * from './transports/index.js';
export * from './pipeline/index.js';
export * from './api/index.js';
