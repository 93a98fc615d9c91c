/**
 * strata's public API. The CLI imports only this file. Modules are re-exported here; the wiring of
 * real dependencies (fetch, stores, clock) lives in src/api/.
 */
export * from './errors/index.js';
export * from './digest/index.js';
export * from './oci/index.js';
export * from './store/index.js';
